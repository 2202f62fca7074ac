/**
 * The permission to serve from (and fill) this worker's cache.
 *
 * A lease runs until `start + leaseMs`, where `start` is the monotonic time at which a heartbeat was
 * sent that every sibling then acknowledged (see cluster-sync.ts for why that makes it safe). When
 * it runs out, the worker serves from the database; before it may use its cache again, the next
 * renewal clears the cache (`onLapse`), because invalidations may have been missed meanwhile.
 */
import { monotonicMs } from './clock';

export class Lease {
  private expiresAt = -Infinity;
  private lapseHandled = true;
  /** Bumped at every lapse and every new lease: a read that started under another epoch must not fill. */
  private epochNo = 0;

  constructor(
    readonly leaseMs: number,
    private readonly onLapse: () => void,
    private readonly now: () => number = monotonicMs,
  ) {}

  get epoch(): number {
    return this.epochNo;
  }

  get expiry(): number {
    return this.expiresAt;
  }

  /** True while the lease is held. Notices a lapse (clearing the cache once) as a side effect. */
  valid(): boolean {
    if (this.now() < this.expiresAt) return true;
    this.handleLapse();
    return false;
  }

  private handleLapse(): void {
    if (this.lapseHandled) return;
    this.lapseHandled = true;
    this.epochNo++;
    this.onLapse();
  }

  /** Extends the lease to `sentAt + leaseMs` (never shortens it). */
  renew(sentAt: number): void {
    const until = sentAt + this.leaseMs;
    if (until <= this.expiresAt) return;
    const now = this.now();
    const held = now < this.expiresAt;
    if (!held) this.handleLapse(); // lapsed since last use: clear before reuse
    if (until <= now) return; // already stale
    // A new lease (first one, or after a lapse): reads that began without one must not fill, they
    // may have missed invalidations sent before this worker could hear them.
    if (!held) this.epochNo++;
    this.expiresAt = until;
    this.lapseHandled = false;
  }

  /** A lease that never runs out (single process, nothing to coordinate with). */
  holdForever(): void {
    this.expiresAt = Infinity;
    this.lapseHandled = false;
  }

  revoke(): void {
    this.expiresAt = -Infinity;
    this.handleLapse();
  }
}
