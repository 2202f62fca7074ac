/**
 * Cross-worker consistency of the per-worker read caches under PM2.
 *
 * ───────────────────────────── THE FAILURE RULE ─────────────────────────────
 * T = cacheSyncTimeoutMs, L = cacheLeaseMs, all times on the host's monotonic clock (clock.ts).
 *
 * 1. Leases. A worker serves from (and fills) its cache only while it holds a lease. Every L/3 ms it
 *    broadcasts a heartbeat stamped with its send time s0; every worker (itself included, through the
 *    daemon's echo) acknowledges it. Once every worker in its view has acknowledged, the lease runs
 *    to s0 + L. A worker whose lease lapsed serves from the database and clears its whole cache before
 *    it uses the cache again.
 * 2. Writes. The writer stamps t0, broadcasts the invalidation and drops its own stale entries, all
 *    before it answers (the local drop runs while the siblings apply theirs). invalidate() resolves as soon as every sibling in its view has acknowledged (each applied it).
 *    If some sibling has not acknowledged after T, the writer waits until t0 + L, then resolves.
 * 3. Why that is safe. Invalidations, heartbeats and heartbeat acks all pass through the PM2
 *    daemon, which relays them to every worker in one order (pm2-transport.ts). A sibling S that never
 *    applied the invalidation can only hold a lease from a heartbeat the writer acknowledged before it
 *    sent the invalidation (an ack sent later reaches S after the invalidation). So s0 < t0, and S's
 *    lease has run out by t0 + L: after the writer responds, S cannot serve the stale entry; when S
 *    renews, it clears its cache first. (Invalidation acks and stats answers carry no ordering duty;
 *    they may take a direct socket back to the asker.) In-flight reads are covered by the FillGuard
 *    (invalidation.ts): a read that started before an invalidation it could be affected by never fills.
 * 4. Membership. The view is the daemon's list of online workers of this app at start-up plus every
 *    worker heard from since; a worker silent for more than L is dropped (its lease, which needed our
 *    acknowledgement, has lapsed by then). A starting worker takes part in writes only after its first
 *    lease (all members know it), so no sibling can miss its invalidations unnoticed.
 * 5. Bound. invalidate() never waits more than max(T, L) ≤ T + L: with the defaults (T = 500 ms,
 *    L = 1000 ms) 1 s, and only when a sibling is stopped, hung or dead; normally one daemon round trip
 *    (≈1 ms). Only in a worker's first moments, before its first lease (normally a 1 ms round trip),
 *    a write also waits for that join, at most L + L/3 + T more (when a listed sibling is unresponsive).
 * Assumption: the daemon relays messages in order and without loss while it runs (a stalled daemon
 * stops every acknowledgement, so every lease lapses and all workers serve from the database).
 * A worker that cannot subscribe to the daemon's bus at start-up never serves from its cache; its
 * own writes are still broadcast, but unconfirmed (it waits T and logs) — the one unguaranteed case.
 * ─────────────────────────────────────────────────────────────────────────────
 *
 * Without PM2 (plain `npm start`) LocalSync holds a permanent lease and invalidation is a local call.
 * The same channel carries cluster-wide stats and clear.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { monotonicMs, sleep } from './clock';
import type { InvalidationPlan } from './invalidation';
import { Lease } from './lease';
import type { SyncTransport } from './pm2-transport';

export interface SyncHandlers {
  /** Applies an invalidation plan locally; returns the number of entries dropped. */
  apply(plan: InvalidationPlan): number;
  /** Drops every entry (lease lapse). */
  clearAll(): void;
  /** This worker's stats (and entry list when details is true). */
  stats(details: boolean): Record<string, unknown>;
}

export interface CacheSync {
  readonly workerId: string;
  readonly mode: 'local' | 'cluster';
  /** True while this worker may serve from its cache. */
  canServe(): boolean;
  /** Incremented at each lease lapse; reads that started under another epoch must not fill. */
  leaseEpoch(): number;
  /** Broadcasts a plan already applied locally; resolves when no worker can serve what it drops. */
  publish(plan: InvalidationPlan): Promise<PublishResult>;
  /** Stats of every worker (this one first). */
  clusterStats(details: boolean): Promise<{ workers: Record<string, unknown>[]; missing: string[] }>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface PublishResult {
  /** Siblings that acknowledged. */
  acked: number;
  /** Entries the siblings dropped. */
  dropped: number;
  /** Siblings that did not acknowledge in time (the writer waited out their lease). */
  timedOut: string[];
}

export class LocalSync implements CacheSync {
  readonly mode = 'local' as const;
  readonly workerId: string;
  constructor(private readonly handlers: SyncHandlers, workerId?: string) {
    this.workerId = workerId ?? String(process.env.pm_id ?? process.pid);
  }
  canServe(): boolean {
    return true;
  }
  leaseEpoch(): number {
    return 0;
  }
  async publish(): Promise<PublishResult> {
    return { acked: 0, dropped: 0, timedOut: [] };
  }
  async clusterStats(details: boolean) {
    return { workers: [{ worker: this.workerId, ...this.handlers.stats(details) }], missing: [] };
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {}
}

type Msg =
  | { t: 'hb'; inc: string; seq: number }
  | { t: 'hbAck'; inc: string; to: string; toInc: string; seq: number }
  | { t: 'inv'; inc: string; seq: number; plan: InvalidationPlan }
  | { t: 'invAck'; inc: string; to: string; toInc: string; seq: number; dropped: number }
  | { t: 'statsReq'; inc: string; seq: number; details: boolean }
  | { t: 'statsRes'; inc: string; to: string; toInc: string; seq: number; stats: Record<string, unknown> }
  | { t: 'bye'; inc: string };

interface Member {
  inc: string | undefined;
  lastHeard: number;
}

interface PendingHeartbeat {
  seq: number;
  sentAt: number;
  acked: Set<string>;
}

interface Waiter {
  onAck(from: string, msg: Msg): void;
  check(): void;
}

export interface ClusterSyncOptions {
  syncTimeoutMs: number;
  leaseMs: number;
  now?: () => number;
}

export class ClusterSync implements CacheSync {
  readonly mode = 'cluster' as const;
  readonly workerId: string;
  private readonly inc = randomUUID();
  private readonly lease: Lease;
  private readonly members = new Map<string, Member>();
  private readonly heartbeats: PendingHeartbeat[] = [];
  private readonly waiters = new Set<Waiter>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private joined = false;
  private joinWaiters: (() => void)[] = [];
  private closed = false;
  /** The channel could not be opened: this worker never serves from its cache and does not wait. */
  private failed = false;
  private readonly now: () => number;
  private readonly T: number;
  private readonly L: number;

  constructor(
    private readonly transport: SyncTransport,
    private readonly handlers: SyncHandlers,
    private readonly logger: Logger,
    opts: ClusterSyncOptions,
  ) {
    this.workerId = transport.selfId;
    this.now = opts.now ?? monotonicMs;
    this.T = opts.syncTimeoutMs;
    this.L = opts.leaseMs;
    this.lease = new Lease(this.L, () => this.handlers.clearAll(), this.now);
  }

  canServe(): boolean {
    return !this.closed && this.lease.valid();
  }

  leaseEpoch(): number {
    return this.lease.epoch;
  }

  /** Ids of the siblings currently in the view (for tests and stats). */
  view(): string[] {
    this.prune();
    return [...this.members.keys()];
  }

  get isJoined(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    let initial: string[];
    try {
      initial = await this.transport.start((from, data) => this.onMessage(from, data as Msg));
    } catch (e) {
      this.failed = true;
      this.lease.revoke();
      throw e;
    }
    const now = this.now();
    for (const id of initial) if (id !== this.workerId && !this.members.has(id)) this.members.set(id, { inc: undefined, lastHeard: now });
    this.beat();
    this.timer = setInterval(() => this.beat(), Math.max(5, Math.floor(this.L / 3)));
    this.timer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.transport.broadcast({ t: 'bye', inc: this.inc } satisfies Msg);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.lease.revoke();
    for (const w of this.waiters) w.check();
    for (const f of this.joinWaiters.splice(0)) f();
    await this.transport.close();
  }

  private send(msg: Msg): void {
    this.transport.broadcast(msg);
  }

  /** Replies with no ordering duty (invalidation acks, stats answers) may take a direct path. */
  private reply(to: string, msg: Msg): void {
    if (this.transport.sendTo) this.transport.sendTo(to, msg);
    else this.transport.broadcast(msg);
  }

  private beat(): void {
    if (this.closed) return;
    this.prune();
    const hb: PendingHeartbeat = { seq: ++this.seq, sentAt: this.now(), acked: new Set() };
    this.heartbeats.push(hb);
    if (this.heartbeats.length > 8) this.heartbeats.shift();
    this.send({ t: 'hb', inc: this.inc, seq: hb.seq });
    this.checkAll();
  }

  /** Drops members silent for longer than the lease. */
  private prune(): void {
    const cutoff = this.now() - this.L;
    let changed = false;
    for (const [id, m] of this.members) {
      if (m.lastHeard < cutoff) {
        this.members.delete(id);
        changed = true;
        this.logger.warn({ worker: id }, 'cache sync: sibling silent for longer than the lease; dropped from the view');
      }
    }
    if (changed) this.checkAll();
  }

  private checkAll(): void {
    this.evaluateLease();
    for (const w of [...this.waiters]) w.check();
  }

  /** Renews the lease from the newest heartbeat acknowledged by every member and by our own echo. */
  private evaluateLease(): void {
    for (let i = this.heartbeats.length - 1; i >= 0; i--) {
      const hb = this.heartbeats[i];
      if (!hb.acked.has(this.workerId)) continue;
      let all = true;
      for (const id of this.members.keys()) if (!hb.acked.has(id)) { all = false; break; }
      if (!all) continue;
      this.heartbeats.splice(0, i + 1);
      this.lease.renew(hb.sentAt);
      if (!this.joined) {
        this.joined = true;
        for (const f of this.joinWaiters.splice(0)) f();
      }
      return;
    }
  }

  private heard(from: string, inc: string): void {
    const m = this.members.get(from);
    const now = this.now();
    if (!m || m.inc === undefined || m.inc !== inc) {
      // new worker, or a restarted one under the same pm_id
      this.members.set(from, { inc, lastHeard: now });
    } else {
      m.lastHeard = now;
    }
  }

  private onMessage(from: string, msg: Msg): void {
    if (this.closed || !msg || typeof msg !== 'object' || typeof (msg as { t?: unknown }).t !== 'string') return;
    if (from === this.workerId) {
      if (msg.inc !== this.inc) return; // a previous incarnation's message
      if (msg.t === 'hb') {
        const hb = this.heartbeats.find((h) => h.seq === msg.seq);
        if (hb) {
          hb.acked.add(this.workerId);
          this.evaluateLease();
        }
      }
      return;
    }
    if (msg.t === 'bye') {
      if (this.members.get(from)?.inc === msg.inc) this.members.delete(from);
      this.checkAll();
      return;
    }
    this.heard(from, msg.inc);
    switch (msg.t) {
      case 'hb':
        this.send({ t: 'hbAck', inc: this.inc, to: from, toInc: msg.inc, seq: msg.seq });
        break;
      case 'hbAck': {
        if (msg.to !== this.workerId || msg.toInc !== this.inc) break;
        const hb = this.heartbeats.find((h) => h.seq === msg.seq);
        if (hb) hb.acked.add(from);
        break;
      }
      case 'inv': {
        let dropped = 0;
        try {
          dropped = this.handlers.apply(msg.plan);
        } catch (e) {
          this.logger.error({ err: e }, 'cache sync: applying a sibling invalidation failed; clearing the cache');
          this.handlers.clearAll();
        }
        this.reply(from, { t: 'invAck', inc: this.inc, to: from, toInc: msg.inc, seq: msg.seq, dropped });
        break;
      }
      case 'statsReq':
        this.reply(from, { t: 'statsRes', inc: this.inc, to: from, toInc: msg.inc, seq: msg.seq, stats: this.handlers.stats(!!msg.details) });
        break;
      case 'invAck':
      case 'statsRes':
        if (msg.to === this.workerId && msg.toInc === this.inc) for (const w of [...this.waiters]) w.onAck(from, msg);
        break;
      default:
        break;
    }
    this.checkAll();
  }

  private waitJoined(maxMs: number): Promise<boolean> {
    if (this.joined || this.closed) return Promise.resolve(this.joined);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(this.joined), maxMs);
      this.joinWaiters.push(() => {
        clearTimeout(t);
        resolve(this.joined);
      });
    });
  }

  async publish(plan: InvalidationPlan): Promise<PublishResult> {
    if (this.closed) return { acked: 0, dropped: 0, timedOut: [] };
    if (this.failed) {
      // Not subscribed to the bus (logged at start): we cannot hear acknowledgements. Still tell the
      // others (the daemon relays what we send) and give it the sync timeout to arrive. This is the
      // one case without a guarantee; the error logged at start-up says so.
      this.send({ t: 'inv', inc: this.inc, seq: ++this.seq, plan });
      await sleep(this.T);
      return { acked: 0, dropped: 0, timedOut: ['unknown'] };
    }
    if (!this.joined) {
      const ok = await this.waitJoined(this.L + this.L / 3 + this.T);
      if (!ok) this.logger.warn('cache sync: publishing before this worker joined the cluster');
    }
    this.prune();
    const seq = ++this.seq;
    const need = new Set(this.members.keys());
    let acked = 0;
    let dropped = 0;
    const t0 = this.now();
    this.send({ t: 'inv', inc: this.inc, seq, plan });
    if (need.size === 0) return { acked: 0, dropped: 0, timedOut: [] };
    const onAck = (_from: string, msg: Msg) => {
      if (msg.t !== 'invAck') return;
      acked++;
      dropped += msg.dropped;
    };
    if (await this.awaitReplies('invAck', seq, need, this.T, onAck)) return { acked, dropped, timedOut: [] };
    const timedOut = [...need];
    // Rule 2: a sibling that did not acknowledge cannot hold a lease past t0 + L.
    const remaining = t0 + this.L - this.now();
    this.logger.warn({ timedOut, waitMs: Math.max(0, Math.round(remaining)) }, 'cache sync: siblings did not acknowledge an invalidation in time; waiting out their lease');
    if (remaining > 0) {
      // finish early if they acknowledge (or drop out) meanwhile
      await this.awaitReplies('invAck', seq, need, Math.ceil(remaining) + 1, onAck);
      // setTimeout may fire a hair early relative to the monotonic clock
      const left = t0 + this.L - this.now();
      if (need.size > 0 && left > 0) await sleep(Math.ceil(left) + 1);
    }
    return { acked, dropped, timedOut };
  }

  /**
   * Waits for the `type` replies to request `seq` from every worker in `need` (each removed from it
   * and handed to onReply as it arrives; a worker that leaves the view is no longer waited for), or
   * until this worker closes, or timeoutMs. True when nobody is left to wait for.
   */
  private awaitReplies(type: 'invAck' | 'statsRes', seq: number, need: Set<string>, timeoutMs: number, onReply: (from: string, msg: Msg) => void): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (allIn: boolean) => {
        if (!this.waiters.delete(waiter)) return;
        if (timer) clearTimeout(timer);
        resolve(allIn);
      };
      const waiter: Waiter = {
        onAck: (from, msg) => {
          if (msg.t === type && msg.seq === seq && need.delete(from)) onReply(from, msg);
        },
        check: () => {
          for (const id of need) if (!this.members.has(id)) need.delete(id); // dropped: its lease is gone
          if (need.size === 0 || this.closed) finish(true);
        },
      };
      this.waiters.add(waiter);
      timer = setTimeout(() => finish(false), timeoutMs);
      waiter.check();
    });
  }

  async clusterStats(details: boolean): Promise<{ workers: Record<string, unknown>[]; missing: string[] }> {
    const self = { worker: this.workerId, ...this.handlers.stats(details) };
    if (this.closed) return { workers: [self], missing: [] };
    this.prune();
    const seq = ++this.seq;
    const need = new Set(this.members.keys());
    const got: Record<string, unknown>[] = [];
    this.send({ t: 'statsReq', inc: this.inc, seq, details });
    if (need.size > 0) {
      await this.awaitReplies('statsRes', seq, need, this.T, (from, msg) => {
        if (msg.t === 'statsRes') got.push({ worker: from, ...msg.stats });
      });
    }
    got.sort((a, b) => String(a.worker).localeCompare(String(b.worker), undefined, { numeric: true }));
    return { workers: [self, ...got], missing: [...need] };
  }
}
