/**
 * Cooperative time slicing: the server runs on one thread, so a long scan, a big insert or a
 * compaction hands the event loop back every SLICE_MS, letting other connections be served in
 * between; the same checkpoints enforce a command's maxTimeMS (50 MaxTimeMSExpired).
 *
 * Usage in a loop: `if (slicer.due()) await slicer.pause();` — due() is a counter test on most
 * iterations and reads the clock only every CHECK_EVERY calls.
 */
import { fail } from './errors';

export const SLICE_MS = 8;
const CHECK_EVERY = 64;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Slicer {
  private n = 0;
  private sliceStart = performance.now();

  /** @param deadline ms since epoch (Date.now() scale) after which the command fails, or Infinity. */
  constructor(readonly deadline = Infinity) {}

  /** True when the current slice is used up or the deadline has passed (then call pause()). */
  due(): boolean {
    if (++this.n % CHECK_EVERY !== 0) return false;
    return performance.now() - this.sliceStart >= SLICE_MS || Date.now() > this.deadline;
  }

  /** Throws MaxTimeMSExpired past the deadline; otherwise yields to the event loop once. */
  async pause(): Promise<void> {
    this.check();
    await nextTurn();
    this.check();
    this.sliceStart = performance.now();
  }

  check(): void {
    if (Date.now() > this.deadline) throw fail('MaxTimeMSExpired', 'operation exceeded time limit');
  }
}

/** A slicer that never yields nor expires (synchronous callers). */
export const NO_SLICING = new Slicer();
