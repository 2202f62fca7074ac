/**
 * Cross-worker consistency of the per-worker read caches under PM2.
 *
 * ───────────────────────────── THE FAILURE RULE ─────────────────────────────
 * T = cacheSyncTimeoutMs, L = cacheLeaseMs, all times on the host's monotonic clock (clock.ts).
 *
 * 1. Leases. A worker serves from (and fills) its cache only while it holds a lease. Every L/3 ms it
 *    broadcasts a heartbeat stamped with its send time s0 (through the PM2 daemon, which echoes it to
 *    itself too); every sibling in whose view it is acknowledges it, by the point-to-point path below.
 *    Once its echo is back and every worker in its view has acknowledged, the lease runs to s0 + L.
 *    A worker whose lease lapsed serves from the database and clears its whole cache before it uses
 *    the cache again.
 * 2. Writes. The writer drops its own stale entries, stamps t0 and sends the invalidation to every
 *    sibling in its view (but a dormant one, rule 7), all before it answers (the local drop runs
 *    while the siblings apply theirs; the writes of one event-loop turn share one message, stamped
 *    as it leaves).
 *    invalidate() resolves as soon as every one of them has acknowledged (each applied it).
 *    If some sibling has not acknowledged after T, the writer waits until t0 + L, then resolves.
 * 3. Why that is safe. A writer's invalidations and its heartbeat acknowledgements to a sibling S
 *    take one path, which delivers them in the order sent (one connection per pair of workers,
 *    pm2-transport.ts). So S can only hold a lease without having applied the invalidation if the
 *    writer acknowledged S's heartbeat before it sent the invalidation: s0 < t0, and S's lease has
 *    run out by t0 + L. ("Sent" is handed to the transport, which may write both at the end of the
 *    turn, in that order; t0 is stamped when the invalidation is handed over, after any
 *    acknowledgement ahead of it.) After the writer responds, S cannot serve the stale entry; when S
 *    renews, it clears its cache first. If that path broke and was opened again (messages may be lost), S's
 *    first message over the new one says so and S clears its cache and drops its lease, as at a
 *    lapse. A worker not in the writer's view holds no lease that the writer's acknowledgement made
 *    (rule 4), and when it gets one, reads it began before cannot fill. In-flight reads are covered
 *    by the FillGuard (invalidation.ts): a read that started before an invalidation it could be
 *    affected by never fills.
 * 4. Membership. Workers are known by instance id (one per process, never reused), not by pm_id:
 *    `pm2 reload` renames the worker it replaces to `_old_N` and starts the replacement as N, and
 *    both run for a while. The view is every worker heard from, plus, until heard from, the workers
 *    of this app the daemon listed as running at start-up that it started before us (one started
 *    after us lists us itself and cannot publish before it has heard us). A worker silent for more
 *    than L is dropped (its lease, which needed our acknowledgement, has lapsed by then); a listed one
 *    the daemon no longer lists (it exited) is not waited for. A starting worker takes part in writes
 *    only after its first lease (all members know it), so no sibling can miss its invalidations
 *    unnoticed; while it waits for that lease it beats again as soon as a member appears (one that
 *    subscribed after its last heartbeat went out never saw it).
 * 5. Leaving. When PM2 starts stopping a worker (reload, restart, stop: its kill signal or the
 *    'shutdown' message) the worker stops serving from its cache and says `bye`, before it drains
 *    its HTTP requests. A sibling that has processed the bye no longer waits for it, and need not:
 *    it serves nothing from its cache. It still publishes its own in-flight writes and acknowledges
 *    the others' (marked `gone`, so nobody takes it back into the view). So a reload makes nobody
 *    wait for a lease, and the replacement joins on its first heartbeat's acknowledgements.
 * 6. Bound. invalidate() never waits more than max(T, L) ≤ T + L: with the defaults (T = 500 ms,
 *    L = 1000 ms) 1 s, and only when a sibling is stopped, hung or dead (or was killed before it
 *    could say bye); normally one round trip to each sibling (≈1 ms). Only in a worker's first moments,
 *    before its first lease (normally a 1 ms round trip), a write also waits for that join, at most
 *    L + L/3 + T more (when a listed sibling is unresponsive).
 * 7. Dormancy. A worker that served no cached read for D (cacheIdleMs) while siblings' writes kept
 *    coming stops serving from its cache, empties it and fills nothing, and says so in its
 *    heartbeats: `idle` = the heartbeat's send time s0, `of` = the siblings in its view. A writer
 *    named in `of` neither sends it invalidations nor waits for it while now < s0 + L (s0 of the
 *    last such heartbeat it processed): there is nothing to drop. The first read wakes it: its
 *    heartbeats stop saying idle, and it fills and serves again only from reads that start once
 *    (a) every sibling it named while dormant has acknowledged a heartbeat sent after waking (each
 *    recorded it awake before acknowledging, so its later writes wait for us again), or (b) L has
 *    passed since its last idle heartbeat (no writer skips us any more). A write that skipped us was
 *    decided after its database write had finished and before that acknowledgement (or before
 *    s0 + L), so every read we fill from sees it. A writer treats a sibling it knows nothing of, or
 *    one of the previous version (no `idle`), as awake.
 * Assumption: the point-to-point path delivers in order, and reports a break (above); the daemon
 * relays heartbeats while it runs (a stalled daemon stops every echo, so every lease lapses and all
 * workers serve from the database).
 * A worker that cannot subscribe to the daemon's bus at start-up never serves from its cache; its
 * own writes are still broadcast, but unconfirmed (it waits T and logs) — the one unguaranteed case.
 * ─────────────────────────────────────────────────────────────────────────────
 *
 * Without PM2 (plain `npm start`) LocalSync holds a permanent lease and invalidation is a local call.
 * The same channel carries cluster-wide stats and clear.
 */
import type { Logger } from 'pino';
import { monotonicMs, sleep } from './clock';
import { mergePlans, type InvalidationPlan } from './invalidation';
import { Lease } from './lease';
import { workerLabel, type ListedProcess, type Sender, type SyncTransport } from './pm2-transport';

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
  /** True while this worker holds its lease (it may be dormant all the same, rule 7). */
  holdsLease(): boolean;
  /** A read the cache could answer arrived: keeps the cache in use, or wakes it (rule 7). */
  noteRead(): void;
  /** Changes at each lease lapse and whenever this worker stops or starts serving (rule 7); reads that started under another epoch must not fill. */
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
  constructor(
    private readonly handlers: SyncHandlers,
    workerId?: string,
  ) {
    this.workerId = workerId ?? workerLabel();
  }
  canServe(): boolean {
    return true;
  }
  holdsLease(): boolean {
    return true;
  }
  noteRead(): void {}
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
  | { t: 'hb'; seq: number; idle?: number; of?: string[] }
  | { t: 'hbAck'; to: string; seq: number }
  | { t: 'inv'; seq: number; plan: InvalidationPlan }
  | { t: 'invAck'; to: string; seq: number; dropped: number }
  | { t: 'statsReq'; seq: number; details: boolean }
  | { t: 'statsRes'; to: string; seq: number; stats: Record<string, unknown> }
  | { t: 'bye' };

/** A sibling in the view, keyed by its instance id. */
interface Member {
  worker: string;
  pid: number | undefined;
  lastHeard: number;
  /** Send time of its last heartbeat processed, when that one said it is dormant and named us (rule 7). */
  idleAt?: number;
}

/** A sibling the daemon listed at start-up that we have not heard from yet, keyed by pid. */
interface Expected {
  worker: string;
  since: number;
}

interface PendingHeartbeat {
  seq: number;
  sentAt: number;
  acked: Set<string>;
}

interface Waiter {
  onAck(from: Sender, msg: Msg): void;
  check(): void;
}

export interface ClusterSyncOptions {
  syncTimeoutMs: number;
  leaseMs: number;
  /** D of rule 7: no cached read for this long while siblings write → dormant (0: never). */
  idleMs?: number;
  now?: () => number;
}

/** Plans one invalidation message carries at most. */
const MAX_PLANS_PER_MESSAGE = 64;

/** How many departed instance ids to remember (each is unique; they only guard against late messages). */
const DEPARTED_MAX = 256;
/** While waiting for siblings listed at start-up, how often to ask the daemon whether they still run. */
const RELIST_MS = 50;

export class ClusterSync implements CacheSync {
  readonly mode = 'cluster' as const;
  readonly workerId: string;
  /** This process's instance id: what siblings key us by and address replies to. */
  private readonly self: string;
  private readonly lease: Lease;
  private readonly members = new Map<string, Member>();
  private readonly expected = new Map<number, Expected>();
  /** Instances that said bye: never taken back into the view. */
  private readonly departed = new Set<string>();
  private readonly heartbeats: PendingHeartbeat[] = [];
  private readonly waiters = new Set<Waiter>();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** An extra heartbeat is scheduled (a member appeared while we wait for our first lease). */
  private extraBeat = false;
  private joined = false;
  private joinWaiters: (() => void)[] = [];
  private closed = false;
  /** Said bye (PM2 is stopping us): no lease, no heartbeats; still publishes our own writes and acknowledges. */
  private leaving = false;
  private startedAt = 0;
  private joinMs: number | undefined;
  private relisting = false;
  private parkedAs: string | undefined;
  /** The channel could not be opened: this worker never serves from its cache and does not wait. */
  private failed = false;
  /** Plans published and not sent yet: they leave together, as one message. */
  private readonly outgoing: { plan: InvalidationPlan; resolve(r: PublishResult): void }[] = [];
  /** The end of this event-loop turn is scheduled (endOfTurn). */
  private turnEnding = false;
  private readonly now: () => number;
  private readonly T: number;
  private readonly L: number;
  private readonly idleMs: number;
  /** Rule 7: 'active' serves from the cache; 'dormant' holds nothing, and writers skip it; 'waking' does not serve yet. */
  private cacheState: 'active' | 'dormant' | 'waking' = 'active';
  /** Reads the cache could answer (noteRead), and sibling invalidations applied: counted, looked at by each heartbeat. */
  private reads = 0;
  private invsIn = 0;
  private readsSeen = 0;
  private lastReadAt = 0;
  private invsAtLastRead = 0;
  /** The siblings named by this dormant spell's heartbeats: each may be answering writes without waiting for us. */
  private readonly idleAudience = new Set<string>();
  /** Send time of the last heartbeat that said dormant. */
  private lastIdleSent = -Infinity;
  /** Heartbeats numbered from here on were sent after waking. */
  private wakeSeq = 0;
  /** Bumped whenever this worker stops or starts serving from its cache: reads begun under another value do not fill. */
  private stateEpoch = 0;

  constructor(
    private readonly transport: SyncTransport,
    private readonly handlers: SyncHandlers,
    private readonly logger: Logger,
    opts: ClusterSyncOptions,
  ) {
    this.workerId = transport.selfId;
    this.self = transport.instanceId;
    this.now = opts.now ?? monotonicMs;
    this.T = opts.syncTimeoutMs;
    this.L = opts.leaseMs;
    this.idleMs = opts.idleMs ?? 0;
    this.lease = new Lease(this.L, () => this.handlers.clearAll(), this.now);
  }

  canServe(): boolean {
    if (this.cacheState !== 'active' && !this.wokeByTime()) return false;
    return this.holdsLease();
  }

  holdsLease(): boolean {
    return !this.closed && !this.leaving && this.lease.valid();
  }

  leaseEpoch(): number {
    if (this.cacheState === 'waking') this.wokeByTime();
    return this.lease.epoch + this.stateEpoch;
  }

  noteRead(): void {
    this.reads++;
    if (this.cacheState === 'dormant') this.wake();
  }

  /** Rule 7: a read came while dormant. The next heartbeat (sent now) no longer says idle. */
  private wake(): void {
    if (this.closed || this.leaving) return;
    this.cacheState = 'waking';
    this.wakeSeq = this.seq + 1;
    this.logger.debug('cache sync: a read woke the cache');
    this.beatSoon();
  }

  /** Rule 7 (b): L after our last idle heartbeat no writer skips us any more. */
  private wokeByTime(): boolean {
    if (this.cacheState !== 'waking' || this.now() < this.lastIdleSent + this.L) return false;
    this.awake();
    return true;
  }

  private awake(): void {
    this.cacheState = 'active';
    this.stateEpoch++;
    this.lastReadAt = this.now();
    this.invsAtLastRead = this.invsIn;
  }

  /** Rule 7: no cached read for D while siblings' invalidations came → stop serving from the cache. */
  private maybeDoze(now: number): void {
    if (this.reads !== this.readsSeen) {
      this.readsSeen = this.reads;
      this.lastReadAt = now;
      this.invsAtLastRead = this.invsIn;
      return;
    }
    if (this.cacheState !== 'active' || this.idleMs <= 0 || !this.joined) return;
    if (now - this.lastReadAt < this.idleMs || this.invsIn === this.invsAtLastRead) return;
    this.cacheState = 'dormant';
    this.stateEpoch++;
    this.idleAudience.clear();
    this.handlers.clearAll(); // writers will not tell us what they change
    this.logger.debug({ idleMs: this.idleMs }, 'cache sync: no cached read lately; dormant (writes do not wait for this worker)');
  }

  /** Labels of the siblings currently in the view, and of those listed at start-up not heard from yet (for tests and stats). */
  view(): string[] {
    this.prune();
    return [...[...this.members.values()].map((m) => m.worker), ...[...this.expected.values()].map((e) => e.worker)];
  }

  get isJoined(): boolean {
    return this.joined;
  }

  get cacheStateForTest(): 'active' | 'dormant' | 'waking' {
    return this.cacheState;
  }

  /** What this worker's stats say about the channel. */
  private syncStats(): Record<string, unknown> {
    return {
      joinMs: this.joinMs === undefined ? null : Math.round(this.joinMs * 10) / 10,
      cache: this.cacheState,
      view: [...this.members.values()].map((m) => m.worker).sort((a, b) => a.localeCompare(b, undefined, { numeric: true })),
      ...(this.parkedAs ? { replacedBy: 'pm2 reload' } : {}),
    };
  }

  private ownStats(details: boolean): Record<string, unknown> {
    return { ...this.handlers.stats(details), sync: this.syncStats() };
  }

  async start(): Promise<void> {
    let listed: ListedProcess[];
    try {
      listed = await this.transport.start((from, data) => this.onMessage(from, data as Msg));
    } catch (e) {
      this.failed = true;
      this.lease.revoke();
      throw e;
    }
    const now = this.now();
    this.startedAt = now; // the join time counts from here: the channel is up
    this.lastReadAt = now;
    const heardPids = new Set([...this.members.values()].map((m) => m.pid));
    for (const p of listed) {
      if (p.startedAfterUs || heardPids.has(p.pid) || this.expected.has(p.pid)) continue;
      this.expected.set(p.pid, { worker: p.worker, since: now });
    }
    this.beat();
    this.timer = setInterval(() => this.beat(), Math.max(5, Math.floor(this.L / 3)));
    this.timer.unref();
    this.transport.onStopping?.(() => this.leave());
  }

  /**
   * Leaves the cluster: stops serving from the cache (lease revoked), stops heartbeats and says `bye`.
   * The bye is ordered like everything else, so from it on no sibling waits for us, and none needs
   * to: we no longer serve from the cache. Our own in-flight writes still publish and wait for the
   * siblings' acknowledgements, and we still acknowledge theirs (marked `gone`, so nobody takes us
   * back into its view). Called when PM2 starts stopping this worker (`pm2 reload`, restart, stop),
   * before the HTTP drain, so a drain that PM2 cuts short cannot make anyone wait for our lease.
   */
  leave(): void {
    if (this.leaving || this.closed) return;
    this.leaving = true;
    this.lease.revoke();
    if (this.timer) clearInterval(this.timer);
    this.send({ t: 'bye' });
    this.logger.info('cache sync: leaving the cluster; this worker no longer serves from its cache');
  }

  /** Leaves (if not done yet), then closes the channel once the bye is out. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.leave();
    this.sendOutgoing(); // published writes still go out (their requests have not been answered)
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.waiters) w.check();
    for (const f of this.joinWaiters.splice(0)) f();
    await this.transport.close();
  }

  private send(msg: Msg): void {
    this.transport.broadcast(this.leaving ? { ...msg, gone: true } : msg);
  }

  /**
   * Sends to the given siblings only, over the transport's point-to-point path (in order per pair);
   * a transport without one broadcasts (the bus's order is a total order).
   */
  private sendTo(to: readonly string[], msg: Msg): void {
    if (!this.transport.sendTo) return this.send(msg);
    // scheduled before the transport's own flush, so that an acknowledgement and the invalidations
    // this turn publishes leave together
    this.endOfTurn();
    this.transport.sendTo(to, this.leaving ? { ...msg, gone: true } : msg);
  }

  private beat(): void {
    if (this.closed || this.leaving) return;
    this.prune();
    this.maybeDoze(this.now());
    const hb: PendingHeartbeat = { seq: ++this.seq, sentAt: this.now(), acked: new Set() };
    this.heartbeats.push(hb);
    if (this.heartbeats.length > 8) this.heartbeats.shift();
    if (this.cacheState === 'dormant') {
      const of = [...this.members.keys()];
      for (const id of of) this.idleAudience.add(id);
      this.lastIdleSent = hb.sentAt;
      this.send({ t: 'hb', seq: hb.seq, idle: hb.sentAt, of });
    } else this.send({ t: 'hb', seq: hb.seq });
    this.checkAll();
    if (this.expected.size > 0) this.relist();
  }

  /**
   * While we wait for siblings listed at start-up, ask the daemon again: one that has exited since
   * (e.g. the worker a reload replaced, whose `bye` went out before we subscribed) is not waited for
   * until it is pruned. One still listed as running (or stopping, i.e. draining) is still waited for.
   */
  private relist(): void {
    if (this.relisting || !this.transport.running) return;
    this.relisting = true;
    this.transport
      .running()
      .then((list) => {
        const running = new Set(list.map((p) => p.pid));
        let changed = false;
        for (const pid of [...this.expected.keys()]) {
          if (!running.has(pid)) {
            this.expected.delete(pid);
            changed = true;
          }
        }
        if (changed) this.checkAll();
      })
      .catch((err: unknown) => this.logger.debug({ err }, 'cache sync: could not list the processes'))
      .finally(() => {
        this.relisting = false;
        // keep asking (cheaply, only while joining) so a departed one does not cost a whole heartbeat
        if (this.expected.size > 0 && !this.closed) setTimeout(() => this.relist(), RELIST_MS).unref();
      });
  }

  /** Drops members silent for longer than the lease, and listed siblings never heard from in that time. */
  private prune(): void {
    const cutoff = this.now() - this.L;
    let changed = false;
    for (const [id, m] of this.members) {
      if (m.lastHeard < cutoff) {
        this.members.delete(id);
        changed = true;
        this.logger.warn(
          { sibling: m.worker, siblingPid: m.pid },
          'cache sync: sibling silent for longer than the lease; dropped from the view',
        );
      }
    }
    for (const [pid, e] of this.expected) {
      if (e.since < cutoff) {
        this.expected.delete(pid);
        changed = true;
        this.logger.warn(
          { sibling: e.worker, siblingPid: pid },
          'cache sync: a sibling listed by PM2 never answered within the lease; no longer waiting for it',
        );
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
    if (this.leaving || this.expected.size > 0) return; // someone listed at start-up may not know us yet
    for (let i = this.heartbeats.length - 1; i >= 0; i--) {
      const hb = this.heartbeats[i];
      if (!hb.acked.has(this.self)) continue;
      let all = true;
      for (const id of this.members.keys())
        if (!hb.acked.has(id)) {
          all = false;
          break;
        }
      if (!all) continue;
      this.heartbeats.splice(0, i + 1);
      this.lease.renew(hb.sentAt);
      // rule 7 (a): everyone we named while dormant acknowledged a heartbeat sent after waking
      if (this.cacheState === 'waking' && hb.seq >= this.wakeSeq && [...this.idleAudience].every((id) => hb.acked.has(id))) this.awake();
      if (!this.joined) {
        this.joined = true;
        this.joinMs = this.now() - this.startedAt;
        this.logger.info({ joinMs: Math.round(this.joinMs), view: this.syncStats().view }, 'cache sync: joined the cluster');
        for (const f of this.joinWaiters.splice(0)) f();
      }
      return;
    }
  }

  /** Records a message from a sibling; false for one that already said bye. */
  private heard(from: Sender): boolean {
    if (this.departed.has(from.id)) return false;
    if (from.pid !== undefined) this.expected.delete(from.pid);
    const m = this.members.get(from.id);
    if (m) m.lastHeard = this.now();
    else {
      this.members.set(from.id, { worker: from.worker, pid: from.pid, lastHeard: this.now() });
      // Our first lease needs one heartbeat acknowledged by every member, and one that subscribed
      // after our last heartbeat went out never saw it (during a reload replacements start one after
      // another): beat again now rather than an interval later.
      if (!this.joined) this.beatSoon();
    }
    return true;
  }

  /** A heartbeat now rather than an interval later: while joining (a new member) or waking (rule 7). */
  private beatSoon(): void {
    if (this.extraBeat || this.timer === undefined || this.closed || this.leaving) return;
    this.extraBeat = true;
    setImmediate(() => {
      this.extraBeat = false;
      if (!this.joined || this.cacheState === 'waking') this.beat();
    });
  }

  private depart(from: Sender): void {
    if (this.departed.has(from.id)) return;
    this.departed.add(from.id);
    if (this.departed.size > DEPARTED_MAX) this.departed.delete(this.departed.values().next().value!);
    if (from.pid !== undefined) this.expected.delete(from.pid);
    if (this.members.delete(from.id)) this.logger.info({ sibling: from.worker, siblingPid: from.pid }, 'cache sync: sibling left');
    this.checkAll();
  }

  private onMessage(from: Sender, msg: Msg): void {
    if (this.closed || !msg || typeof msg !== 'object' || typeof (msg as { t?: unknown }).t !== 'string') return;
    if (from.id === this.self) {
      if (from.slot !== undefined && from.slot !== this.workerId && this.parkedAs === undefined) {
        // PM2 renamed us (`_old_N`): a reload is starting our replacement. Nothing changes for us,
        // since siblings know us by instance id; we keep serving until we are stopped.
        this.parkedAs = from.slot;
        this.logger.info({ as: from.slot }, 'cache sync: pm2 reload is replacing this worker');
      }
      if (msg.t === 'hb') {
        const hb = this.heartbeats.find((h) => h.seq === msg.seq);
        if (hb) {
          hb.acked.add(this.self);
          this.evaluateLease();
        }
      }
      return;
    }
    if (msg.t === 'bye') {
      this.depart(from);
      return;
    }
    // A sibling that said bye marks what it still sends `gone`: its acknowledgements count, it does not rejoin.
    if ((msg as { gone?: unknown }).gone === true) this.depart(from);
    const member = this.heard(from);
    if (from.resumed && this.lease.valid()) {
      // Its connection to us broke and was opened again: an invalidation it sent before may be lost.
      // As at a lapse, the cache is cleared and the lease is held again only from a new heartbeat.
      this.lease.revoke();
      this.logger.warn(
        { sibling: from.worker, siblingPid: from.pid },
        'cache sync: messages from a sibling may have been lost; cache cleared',
      );
    }
    switch (msg.t) {
      case 'hb': {
        const m = this.members.get(from.id);
        // rule 7: recorded before the acknowledgement leaves, so once it has, our writes wait for it again
        if (m) m.idleAt = typeof msg.idle === 'number' && Array.isArray(msg.of) && msg.of.includes(this.self) ? msg.idle : undefined;
        // on the path our invalidations to it take, behind them (rule 3)
        if (member) this.sendTo([from.id], { t: 'hbAck', to: from.id, seq: msg.seq });
        break;
      }
      case 'hbAck': {
        if (msg.to !== this.self) break;
        const hb = this.heartbeats.find((h) => h.seq === msg.seq);
        if (hb) hb.acked.add(from.id);
        break;
      }
      case 'inv': {
        this.invsIn++;
        let dropped = 0;
        try {
          dropped = this.handlers.apply(msg.plan);
        } catch (e) {
          this.logger.error({ err: e }, 'cache sync: applying a sibling invalidation failed; clearing the cache');
          this.handlers.clearAll();
        }
        this.sendTo([from.id], { t: 'invAck', to: from.id, seq: msg.seq, dropped });
        break;
      }
      case 'statsReq':
        this.sendTo([from.id], { t: 'statsRes', to: from.id, seq: msg.seq, stats: this.ownStats(!!msg.details) });
        break;
      case 'invAck':
      case 'statsRes':
        if (msg.to === this.self) for (const w of [...this.waiters]) w.onAck(from, msg);
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

  /**
   * The plans published in one event-loop turn leave together at its end, as one message: applying
   * the union of their documents drops exactly what applying each would. Under a write load the
   * writes of one database batch finish in the same turn, and every message costs a write, a
   * wake-up and a decode in each sibling and an acknowledgement from each. (Holding plans back until
   * the previous message is acknowledged made bigger messages but slower writes; not done.) Each
   * caller resolves with its message's result.
   */
  async publish(plan: InvalidationPlan): Promise<PublishResult> {
    if (this.closed) return { acked: 0, dropped: 0, timedOut: [] };
    if (this.failed) {
      // Not subscribed to the bus (logged at start): we cannot hear acknowledgements. Still tell the
      // others (the daemon relays what we send) and give it the sync timeout to arrive. This is the
      // one case without a guarantee; the error logged at start-up says so.
      this.send({ t: 'inv', seq: ++this.seq, plan });
      await sleep(this.T);
      return { acked: 0, dropped: 0, timedOut: ['unknown'] };
    }
    if (!this.joined) {
      const ok = await this.waitJoined(this.L + this.L / 3 + this.T);
      if (!ok) this.logger.warn('cache sync: publishing before this worker joined the cluster');
    }
    return new Promise((resolve) => {
      this.outgoing.push({ plan, resolve });
      this.endOfTurn();
    });
  }

  /**
   * At the end of this event-loop turn: the plans published in it leave, then the transport writes
   * what this turn sent each sibling (acknowledgements included) in one write per sibling.
   */
  private endOfTurn(): void {
    if (this.turnEnding) return;
    this.turnEnding = true;
    setImmediate(() => {
      try {
        this.sendOutgoing();
      } finally {
        this.turnEnding = false;
        this.transport.flush?.();
      }
    });
  }

  /** Sends the plans published and not sent yet, at most MAX_PLANS_PER_MESSAGE to a message. */
  private sendOutgoing(): void {
    while (this.outgoing.length > 0) {
      const batch = this.outgoing.splice(0, MAX_PLANS_PER_MESSAGE);
      this.invalidate(mergePlans(batch.map((b) => b.plan)))
        .catch(async (err: unknown) => {
          // not expected; a sibling may not have applied it: what rule 2 waits for without acknowledgements
          this.logger.error({ err }, 'cache sync: publishing an invalidation failed; waiting out the lease');
          await sleep(this.L);
          return { acked: 0, dropped: 0, timedOut: ['unknown'] };
        })
        .then((result) => {
          for (const b of batch) b.resolve(result);
        });
    }
  }

  /** Broadcasts one plan and waits until no sibling can serve what it drops (rule 2). */
  private async invalidate(plan: InvalidationPlan): Promise<PublishResult> {
    if (this.closed) return { acked: 0, dropped: 0, timedOut: [] };
    this.prune();
    const seq = ++this.seq;
    let acked = 0;
    let dropped = 0;
    // t0 is stamped as the message leaves, not when its first plan was published: a heartbeat we
    // acknowledged meanwhile went out before it, so its sender's lease still ends by t0 + L.
    const t0 = this.now();
    const need = new Set<string>();
    // rule 7: a dormant sibling holds nothing to drop (a cache clear still goes to everyone: it resets the counters)
    for (const [id, m] of this.members) if (plan.all || !(m.idleAt !== undefined && t0 < m.idleAt + this.L)) need.add(id);
    if (need.size === 0) return { acked: 0, dropped: 0, timedOut: [] };
    this.sendTo([...need], { t: 'inv', seq, plan });
    const onAck = (_from: Sender, msg: Msg) => {
      if (msg.t !== 'invAck') return;
      acked++;
      dropped += msg.dropped;
    };
    if (await this.awaitReplies('invAck', seq, need, this.T, onAck)) return { acked, dropped, timedOut: [] };
    const timedOut = this.labels(need);
    // Rule 2: a sibling that did not acknowledge cannot hold a lease past t0 + L.
    const remaining = t0 + this.L - this.now();
    this.logger.warn(
      { timedOut, waitMs: Math.max(0, Math.round(remaining)) },
      'cache sync: siblings did not acknowledge an invalidation in time; waiting out their lease',
    );
    if (remaining > 0) {
      // finish early if they acknowledge (or drop out) meanwhile
      await this.awaitReplies('invAck', seq, need, Math.ceil(remaining) + 1, onAck);
      // setTimeout may fire a hair early relative to the monotonic clock
      const left = t0 + this.L - this.now();
      if (need.size > 0 && left > 0) await sleep(Math.ceil(left) + 1);
    }
    return { acked, dropped, timedOut };
  }

  /** Labels (pm_ids) of the given members, with the pid where two share one (during a reload). */
  private labels(ids: Iterable<string>): string[] {
    const ms = [...ids].map((id) => this.members.get(id)).filter((m): m is Member => m !== undefined);
    return ms.map((m) => (ms.filter((o) => o.worker === m.worker).length > 1 ? `${m.worker} (pid ${String(m.pid)})` : m.worker));
  }

  /**
   * Waits for the `type` replies to request `seq` from every worker in `need` (each removed from it
   * and handed to onReply as it arrives; a worker that leaves the view is no longer waited for), or
   * until this worker closes, or timeoutMs. True when nobody is left to wait for.
   */
  private awaitReplies(
    type: 'invAck' | 'statsRes',
    seq: number,
    need: Set<string>,
    timeoutMs: number,
    onReply: (from: Sender, msg: Msg) => void,
  ): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (allIn: boolean) => {
        if (!this.waiters.delete(waiter)) return;
        if (timer) clearTimeout(timer);
        resolve(allIn);
      };
      const waiter: Waiter = {
        onAck: (from, msg) => {
          if (msg.t === type && msg.seq === seq && need.delete(from.id)) onReply(from, msg);
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
    const self = { worker: this.workerId, ...this.ownStats(details) };
    if (this.closed) return { workers: [self], missing: [] };
    this.prune();
    const seq = ++this.seq;
    const need = new Set(this.members.keys());
    const got: Record<string, unknown>[] = [];
    this.send({ t: 'statsReq', seq, details });
    if (need.size > 0) {
      await this.awaitReplies('statsRes', seq, need, this.T, (from, msg) => {
        if (msg.t === 'statsRes') got.push({ worker: from.worker, ...msg.stats });
      });
    }
    got.sort((a, b) => String(a.worker).localeCompare(String(b.worker), undefined, { numeric: true }));
    return { workers: [self, ...got], missing: this.labels(need) };
  }
}
