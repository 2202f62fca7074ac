/**
 * jest globalSetup: picks the test database once for the whole run (db/select.ts) and exposes it
 * to the test workers through the environment (workers inherit the parent's env).
 *   MONGO_TEST_URI  — connection string
 *   MONGO_TEST_KIND — 'uri' | 'memory-server' | 'embedded'
 */
import { selectDatabase, type SelectedDatabase } from '../../db/select';

declare global {
  var __RERUM_TEST_DB__: SelectedDatabase | undefined;
}

export default async function globalSetup(): Promise<void> {
  const db = await selectDatabase({
    purpose: 'test',
    logger: { info: (_obj: unknown, msg?: string) => process.stdout.write(`\n[global-setup] ${msg ?? ''}\n`) },
  });
  globalThis.__RERUM_TEST_DB__ = db;
  process.env.MONGO_TEST_URI = db.uri;
  process.env.MONGO_TEST_KIND = db.kind;
}
