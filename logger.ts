/**
 * Structured logs (pino, JSON lines on stdout). Every line carries the worker id under PM2 so a
 * cluster's interleaved output can be told apart.
 *
 * Lines are written asynchronously (pino.destination with sync: false): a request never waits for a
 * write(2) on stdout, and lines logged while a write is in flight go out together in the next one.
 * Nothing is held back waiting for more (no minimum length), and pending lines are flushed
 * synchronously when the process exits, so a shutdown or crash line is not lost.
 */
import pino, { type Logger } from 'pino';

export function createLogger(level: string): Logger {
  const worker = process.env.NODE_APP_INSTANCE ?? process.env.pm_id;
  return pino({
    level,
    base: { pid: process.pid, ...(worker !== undefined ? { worker: Number(worker) } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, pino.destination({ dest: 1, sync: false }));
}

export type { Logger };
