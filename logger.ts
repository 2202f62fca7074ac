/**
 * Structured logs (pino, JSON lines on stdout). Every line carries the worker id under PM2 so a
 * cluster's interleaved output can be told apart.
 */
import pino, { type Logger } from 'pino';

export function createLogger(level: string): Logger {
  const worker = process.env.NODE_APP_INSTANCE ?? process.env.pm_id;
  return pino({
    level,
    base: { pid: process.pid, ...(worker !== undefined ? { worker: Number(worker) } : {}) },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export type { Logger };
