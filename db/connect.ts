/**
 * Connects the official driver to the selected database. The first connection is retried for a
 * while (under PM2 the workers may start before the embedded database app is listening).
 */
import { MongoClient } from 'mongodb';
import type { Logger } from 'pino';

export async function connectWithRetry(uri: string, logger: Logger, totalMs = 30_000): Promise<MongoClient> {
  const deadline = Date.now() + totalMs;
  for (let attempt = 1; ; attempt++) {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2000, appName: 'rerum-ts' });
    try {
      await client.connect();
      await client.db('admin').command({ ping: 1 });
      return client;
    } catch (err) {
      await client.close().catch(() => {});
      if (Date.now() >= deadline) throw err;
      logger.warn({ attempt, err: (err as Error).message }, 'database not reachable yet; retrying');
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** The URI with its credentials (everything between the scheme and the first `@`) masked, for logs. */
export const redactUri = (uri: string) => uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@]*@/i, '$1***@');
