/**
 * How the bench's bare apps (bare-express.ts, bare-driver.ts) start: with BARE_WORKERS > 1 the primary
 * forks that many node:cluster workers on one port and tells its parent 'ready' once every worker
 * has; otherwise this process is the one worker. A worker calls `ready()` once it listens.
 * Not part of the product.
 */
import cluster from 'node:cluster';

export const ready = (): void => void process.send?.('ready');

export function runBare(worker: () => void | Promise<void>): void {
  const workers = Number(process.env.BARE_WORKERS ?? 1);
  if (cluster.isPrimary && workers > 1) {
    for (let i = 0; i < workers; i++) cluster.fork();
    let up = 0;
    cluster.on('message', () => {
      if (++up === workers) ready();
    });
    return;
  }
  process.on('SIGTERM', () => process.exit(0)); // a normal exit, so `node --cpu-prof` writes its profile (bench:profile)
  Promise.resolve()
    .then(worker)
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
