/**
 * How long this worker's recent invalidations took (local drop + cluster acknowledgement), and the
 * local drop alone: the last 1024 of each, summarised for /v1/api/cache/stats.
 */
const KEEP = 1024;

const round = (t: number, places: number) => Math.round(t * 10 ** places) / 10 ** places;

function summary(samples: number[]): { p50: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => (s.length ? round(s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)], 3) : 0);
  return { p50: at(0.5), p99: at(0.99), max: s.length ? round(s[s.length - 1], 3) : 0 };
}

export class WriteTimes {
  private count = 0;
  private readonly total: number[] = [];
  private readonly local: number[] = [];

  record(totalMs: number, localMs: number): void {
    this.count++;
    this.total.push(totalMs);
    this.local.push(localMs);
    if (this.total.length > KEEP) this.total.shift();
    if (this.local.length > KEEP) this.local.shift();
  }

  stats() {
    return { count: this.count, ...summary(this.total), local: summary(this.local) };
  }

  /** The samples themselves (stats?details=true), rounded to 0.01 ms. */
  samples() {
    return { invalidateSamplesMs: this.total.map((t) => round(t, 2)), invalidateLocalSamplesMs: this.local.map((t) => round(t, 2)) };
  }
}
