/**
 * Runnable embedded MongoDB server (dist/db/embedded/standalone.js, used by PM2).
 * EMBEDDED_MONGO_PORT (default 27027), EMBEDDED_MONGO_HOST (default 127.0.0.1),
 * EMBEDDED_MONGO_DBPATH (default `${DATA_DIR || 'data'}/embedded-mongo`),
 * EMBEDDED_MONGO_COMPACT_AT_BYTES (journal size that triggers compaction, default 64 MiB).
 * SIGINT/SIGTERM: stop listening, flush + compact the journal, exit 0.
 */
import * as path from 'node:path';
import { startEmbeddedMongo, type EmbeddedLogger } from './index';

const log = (level: string, obj: unknown, msg?: string): void => {
  const rec = typeof obj === 'string' ? { msg: obj } : { ...(obj as object), ...(msg ? { msg } : {}) };
  process.stdout.write(JSON.stringify({ level, time: new Date().toISOString(), name: 'embedded-mongo', ...rec }) + '\n');
};
const logger: EmbeddedLogger = { info: (o, m) => log('info', o, m), warn: (o, m) => log('warn', o, m) };

async function main(): Promise<void> {
  const port = Number(process.env.EMBEDDED_MONGO_PORT ?? 27027);
  const host = process.env.EMBEDDED_MONGO_HOST ?? '127.0.0.1';
  const dbPath = path.resolve(process.env.EMBEDDED_MONGO_DBPATH ?? path.join(process.env.DATA_DIR || 'data', 'embedded-mongo'));
  const compactJournalAtBytes = Number(process.env.EMBEDDED_MONGO_COMPACT_AT_BYTES) || undefined;
  const handle = await startEmbeddedMongo({ port, host, dbPath, logger, compactJournalAtBytes });
  logger.info({ uri: handle.uri, dbPath, pid: process.pid }, 'embedded-mongo listening');
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    handle
      .stop()
      .then(() => {
        logger.info({ signal }, 'embedded-mongo stopped');
        process.exit(0);
      })
      .catch((e: unknown) => {
        logger.warn({ err: String(e) }, 'embedded-mongo stop failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'embedded-mongo failed to start');
  process.exit(1);
});
