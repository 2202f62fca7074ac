/**
 * Structured logs (pino, JSON lines on stdout). Under PM2 every line carries `worker`: the worker's
 * pm_id as a string, the same value as its `X-Worker` header, its entry in the cache stats and its id
 * in `pm2 list`, so a cluster's interleaved output can be told apart. (`pid` tells an old worker from
 * its replacement during `pm2 reload`, which keeps the pm_id.) No other field is called `worker`.
 */
import pino, { type Logger } from 'pino';

/** This process's PM2 id (pm_id), or undefined outside PM2. */
export function pm2WorkerId(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const id = env.pm_id ?? env.NODE_APP_INSTANCE;
  return id === undefined || id === '' ? undefined : String(id);
}

export function createLogger(level: string): Logger {
  const worker = pm2WorkerId();
  return pino({
    level,
    base: { pid: process.pid, ...(worker !== undefined ? { worker } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
