/** Small helpers of the embedded-database tests: temporary folders removed after the file, a driver client per call. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MongoClient } from 'mongodb';

/** A function making fresh temporary folders named `<family>-<prefix>-…`; all are removed after the test file. */
export function tempDirs(family: string): (prefix: string) => string {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `${family}-${prefix}-`));
    made.push(d);
    return d;
  };
}

/** Run `fn` with a connected driver client, closed afterwards whatever happens. */
export async function withClient<T>(uri: string, fn: (c: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}
