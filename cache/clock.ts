/**
 * Monotonic milliseconds shared by every process on this host.
 *
 * `process.hrtime` reads CLOCK_MONOTONIC on Linux (libuv), so a value taken in one PM2 worker can be
 * compared with a value taken in another. Leases and write deadlines depend on that (see
 * cluster-sync.ts). It keeps running while a process is stopped (SIGSTOP), which is what we want.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
