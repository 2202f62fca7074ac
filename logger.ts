/**
 * Structured logs (pino, JSON lines on stdout). Under PM2 every line carries `worker`: the worker's
 * pm_id as a string, the same value as its `X-Worker` header, its entry in the cache stats and its id
 * in `pm2 list`, so a cluster's interleaved output can be told apart. (`pid` tells an old worker from
 * its replacement during `pm2 reload`, which keeps the pm_id.) No other field is called `worker`.
 *
 * Lines are written asynchronously (pino.destination with sync: false): a request never waits for a
 * write(2) on stdout, and lines logged while a write is in flight go out together in the next one.
 * Nothing is held back waiting for more (no minimum length), and pending lines are flushed
 * synchronously when the process exits, so a shutdown or crash line is not lost.
 */
import pino, { type Logger } from 'pino';

/** This process's PM2 id (pm_id), or undefined outside PM2. */
export function pm2WorkerId(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const id = env.pm_id ?? env.NODE_APP_INSTANCE;
  return id === undefined || id === '' ? undefined : String(id);
}

export function createLogger(level: string): Logger {
  const worker = pm2WorkerId();
  return pino(
    {
      level,
      base: { pid: process.pid, ...(worker !== undefined ? { worker } : {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: 1, sync: false }),
  );
}

export type { Logger };
