/**
 * The cross-worker protocol (cluster-sync.ts) on real caches, over an in-process bus with the PM2
 * daemon's ordering (support/memory-daemon.ts). The real PM2 path is covered by pm2-cluster.test.ts.
 */
import pino from 'pino';
import { createEnabledCache, type ReadCacheInternals } from '../../cache';
import { monotonicMs } from '../../cache/clock';
import type { ClusterSync } from '../../cache/cluster-sync';
import { planFromChanges } from '../../cache/invalidation';
import { idKey } from '../../cache/keys';
import { loadConfig } from '../../config';
import { doc, hexId, overwriteChange } from './support/fixtures';
import { MemoryDaemon, type MemoryTransport } from './support/memory-daemon';

const T = 100;
const L = 300;
const logger = pino({ level: 'silent' });
const config = loadConfig({ CACHE_SYNC_TIMEOUT_MS: String(T), CACHE_LEASE_MS: String(L) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(5);
  }
}

function cluster(n: number, cfg = config) {
  const daemon = new MemoryDaemon();
  const workers: { cache: ReadCacheInternals; transport: MemoryTransport }[] = [];
  const add = (label = String(workers.length)) => {
    const transport = daemon.transport(label);
    const cache = createEnabledCache(cfg, logger, { transport });
    workers.push({ cache, transport });
    return workers[workers.length - 1];
  };
  for (let i = 0; i < n; i++) add();
  return { daemon, workers, add, close: () => Promise.all(workers.map((w) => w.cache.close())) };
}

function fillId(c: ReadCacheInternals, seg: string, body: string) {
  return c.worker.fill(
    c.worker.beginRead(c.sync.leaseEpoch()),
    c.sync.leaseEpoch(),
    { kind: 'id', key: idKey('id', seg), segment: seg },
    body,
    {},
  );
}

describe('cluster sync', () => {
  test('workers join and hold leases; an invalidation resolves once every sibling dropped the entry', async () => {
    const c = cluster(4);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    for (const w of c.workers) expect(fillId(w.cache, d._id, '{"n":1}')).toBe(true);
    const publish = jest.spyOn(c.workers[0].cache.sync, 'publish');
    await c.workers[0].cache.invalidate(overwriteChange(d, { n: 2 }).changes);
    for (const w of c.workers) expect(w.cache.worker.store.has(idKey('id', d._id))).toBe(false);
    // resolved by the three siblings' acknowledgements, not by the timeout (a timing bound is noise on a loaded machine)
    const result = await publish.mock.results[0].value;
    expect({ acked: result.acked, timedOut: result.timedOut }).toEqual({ acked: 3, timedOut: [] });
    publish.mockRestore();
    expect((c.workers[1].cache.sync as ClusterSync).view().sort()).toEqual(['0', '2', '3']);
    await c.close();
  });

  test('the invalidations of one turn travel as one message; each write still reaches every sibling before it resolves', async () => {
    const c = cluster(4);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const docs = Array.from({ length: 10 }, (_, n) => doc(hexId(), { n }));
    for (const w of c.workers) for (const d of docs) expect(fillId(w.cache, d._id, '{}')).toBe(true);
    const writer = c.workers[0];
    const sent = jest.spyOn(writer.transport, 'sendTo');
    const publish = jest.spyOn(writer.cache.sync, 'publish');
    // ten writes finishing in the same turn (one database batch)
    await Promise.all(docs.map((d) => writer.cache.invalidate(overwriteChange(d, { n: -1 }).changes)));
    const invs = sent.mock.calls.filter(([, m]) => (m as { t?: string }).t === 'inv');
    expect(invs).toHaveLength(1);
    expect([...invs[0][0]].sort()).toEqual(
      c.workers
        .slice(1)
        .map((w) => w.transport.instanceId)
        .sort(),
    ); // to each sibling
    expect((invs[0][1] as { plan: { docs: unknown[] } }).plan.docs).toHaveLength(20); // before and after of each
    for (const r of publish.mock.results) expect(await r.value).toMatchObject({ acked: 3, timedOut: [] });
    for (const w of c.workers) for (const d of docs) expect(w.cache.worker.store.has(idKey('id', d._id))).toBe(false);
    sent.mockRestore();
    publish.mockRestore();
    await c.close();
  });

  test("a sibling's acknowledgement and the invalidation it publishes in the same turn are handed to the transport before one flush", async () => {
    const c = cluster(2);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const [a, b] = c.workers;
    const sent = jest.spyOn(b.transport, 'sendTo');
    const flush = jest.spyOn(b.transport, 'flush');
    const deliver = b.transport.deliver.bind(b.transport);
    let own: Promise<void> | undefined;
    // b publishes a write of its own in the turn in which a's invalidation reaches it
    jest.spyOn(b.transport, 'deliver').mockImplementation((from, data) => {
      deliver(from, data);
      if ((data as { t?: string }).t === 'inv' && !own) own = b.cache.invalidate(overwriteChange(doc(hexId(), { n: 1 }), { n: 2 }).changes);
    });
    await a.cache.invalidate(overwriteChange(doc(hexId(), { n: 1 }), { n: 2 }).changes);
    await own;
    const kinds = (m: { calls: unknown[][] }) => m.calls.map(([, msg]) => (msg as { t: string }).t);
    const ack = kinds(sent.mock).indexOf('invAck');
    const inv = kinds(sent.mock).indexOf('inv');
    expect(ack).toBeGreaterThanOrEqual(0);
    expect(inv).toBeGreaterThan(ack);
    const order = (i: number) => sent.mock.invocationCallOrder[i];
    const firstFlushAfterAck = flush.mock.invocationCallOrder.find((o) => o > order(ack));
    expect(firstFlushAfterAck).toBeDefined();
    expect(order(inv)).toBeLessThan(firstFlushAfterAck!); // both leave in the same write
    jest.restoreAllMocks();
    await c.close();
  });

  test('a worker that closes before the end of the turn still sends the invalidations published in it', async () => {
    const c = cluster(3);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    for (const w of c.workers) expect(fillId(w.cache, d._id, '{}')).toBe(true);
    const [writer, ...siblings] = c.workers;
    const written = writer.cache.invalidate(overwriteChange(d, { n: 2 }).changes);
    await writer.cache.close();
    await written;
    await until(() => siblings.every((w) => !w.cache.worker.store.has(idKey('id', d._id))));
    await Promise.all(siblings.map((w) => w.cache.close()));
  });

  test('a stopped sibling: the write waits out its lease (bounded by T + L) and it cannot serve the stale entry after resuming', async () => {
    const c = cluster(3);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    for (const w of c.workers) fillId(w.cache, d._id, '{"n":1}');
    const victim = c.workers[2];
    victim.transport.stop();
    const t0 = monotonicMs();
    await c.workers[0].cache.invalidate(overwriteChange(d, { n: 2 }).changes);
    const took = monotonicMs() - t0;
    expect(took).toBeGreaterThanOrEqual(T);
    expect(took).toBeLessThanOrEqual(T + L + 50);
    // By the time the writer answered, the victim's lease has run out: it may not serve its copy.
    expect(victim.cache.sync.canServe()).toBe(false);
    expect(victim.cache.worker.store.has(idKey('id', d._id))).toBe(false); // the lapse cleared it
    await sleep(L); // stopped for a while longer
    victim.transport.resume();
    await until(() => victim.cache.sync.canServe());
    expect(victim.cache.worker.store.has(idKey('id', d._id))).toBe(false);
    // the others kept or regained their leases once the silent member dropped out of their view
    await until(() => c.workers[0].cache.sync.canServe() && c.workers[1].cache.sync.canServe());
    await c.close();
  });

  test('an invalidation lost with a broken connection: the sibling hears the break on the next message over it and clears, and the writer waits out its lease', async () => {
    const c = cluster(3);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    for (const w of c.workers) expect(fillId(w.cache, d._id, '{"n":1}')).toBe(true);
    const [writer, victim] = c.workers;
    // the connection from the writer to the victim breaks with the invalidation in flight
    const send = c.daemon.sendTo.bind(c.daemon);
    let lost = 0;
    const spy = jest.spyOn(c.daemon, 'sendTo').mockImplementation((from, to, data) => {
      send(from, to, data);
      if (from === writer.transport && to === victim.transport.instanceId && (data as { t?: string }).t === 'inv') {
        lost += c.daemon.cut(writer.transport, victim.transport);
      }
    });
    const publish = jest.spyOn(writer.cache.sync, 'publish');
    const t0 = monotonicMs();
    await writer.cache.invalidate(overwriteChange(d, { n: 2 }).changes);
    expect(lost).toBeGreaterThanOrEqual(1); // the invalidation (and whatever else was in flight to it)
    expect(await publish.mock.results[0].value).toMatchObject({ acked: 1, timedOut: ['1'] });
    expect(monotonicMs() - t0).toBeGreaterThanOrEqual(L - 5);
    // the writer kept acknowledging the victim's heartbeats over a new connection: the first of them
    // said so, and the victim dropped its lease and cleared its cache instead of renewing with the stale entry
    expect(victim.cache.worker.store.has(idKey('id', d._id))).toBe(false);
    spy.mockRestore();
    publish.mockRestore();
    await until(() => victim.cache.sync.canServe());
    expect(fillId(victim.cache, d._id, '{"n":2}')).toBe(true);
    await c.close();
  });

  test('a stopped sibling that still holds the stale entry in memory cannot use it: its lease lapsed and renewal clears first', async () => {
    const c = cluster(2);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    const victim = c.workers[1];
    fillId(victim.cache, d._id, '{"n":1}');
    victim.transport.stop();
    // the victim does not even run its lease check while "stopped": its entry is still there
    await c.workers[0].cache.invalidate(overwriteChange(d, { n: 2 }).changes);
    victim.transport.resume();
    // any serve decision now sees the lapsed lease
    expect(victim.cache.sync.canServe()).toBe(false);
    await until(() => victim.cache.sync.canServe());
    expect(victim.cache.worker.store.has(idKey('id', d._id))).toBe(false);
    await c.close();
  });

  test('a new worker joins before it may publish, and its invalidations reach everyone', async () => {
    const c = cluster(2);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    for (const w of c.workers) fillId(w.cache, d._id, '{"n":1}');
    const late = c.add();
    await late.cache.invalidate(overwriteChange(d, { n: 2 }).changes); // waits for its join
    expect((late.cache.sync as ClusterSync).isJoined).toBe(true);
    for (const w of c.workers.slice(0, 2)) expect(w.cache.worker.store.has(idKey('id', d._id))).toBe(false);
    await c.close();
  });

  test('a joining worker that hears a new member after its heartbeat went out beats again at once instead of an interval later', async () => {
    // a long lease: heartbeats 1 s apart, so waiting for the next one shows
    const slow = loadConfig({ CACHE_SYNC_TIMEOUT_MS: '100', CACHE_LEASE_MS: '3000' });
    const daemon = new MemoryDaemon();
    const start = (label: string) => {
      const transport = daemon.transport(label);
      return { transport, cache: createEnabledCache(slow, logger, { transport }) };
    };
    const ws = [start('0'), start('1')];
    await until(() => ws.every((w) => w.cache.sync.canServe()));
    ws[1].transport.stop(); // its acknowledgements wait, so the newcomer cannot join on its first heartbeat yet
    const newcomer = start('2');
    await until(() => daemon.delivered > 0 && (newcomer.cache.sync as ClusterSync).view().includes('1'));
    await sleep(20); // the newcomer's first heartbeat has been relayed
    const later = start('3'); // never saw that heartbeat
    await until(() => (newcomer.cache.sync as ClusterSync).view().includes('3'));
    const resumed = monotonicMs();
    ws[1].transport.resume();
    await until(() => (newcomer.cache.sync as ClusterSync).isJoined);
    expect(monotonicMs() - resumed).toBeLessThan(500); // the next periodic heartbeat is ~1 s after the first
    await Promise.all([...ws, newcomer, later].map((w) => w.cache.close()));
  });

  test('a read that began before the worker held its lease never fills (it may have missed invalidations)', async () => {
    const c = cluster(2);
    const late = c.add();
    const token = late.cache.worker.beginRead(late.cache.sync.leaseEpoch()); // before its first lease
    await until(() => late.cache.sync.canServe());
    const info = { kind: 'id' as const, key: idKey('id', 'early'), segment: 'early' };
    expect(late.cache.worker.fill(token, late.cache.sync.leaseEpoch(), info, '{}', {})).toBe(false);
    expect(fillId(late.cache, 'early', '{}')).toBe(true); // a read that begins now may
    await c.close();
  });

  test('stats gather every worker; clear empties every worker', async () => {
    const c = cluster(3);
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    c.workers.forEach((w, i) => {
      for (let k = 0; k <= i; k++) fillId(w.cache, `seg${i}-${k}`, '{}');
    });
    const s = await c.workers[1].cache.sync.clusterStats(false);
    expect(s.workers.map((w) => w.worker).sort()).toEqual(['0', '1', '2']);
    expect(s.workers.reduce((n, w) => n + Number(w.entries), 0)).toBe(6);
    await c.workers[0].cache.invalidate([{ before: null, after: null }]);
    for (const w of c.workers) expect(w.cache.worker.store.entries).toBe(0);
    await c.close();
  });

  test('negative control: with CACHE_SYNC_DISABLED_FOR_TEST=1 the writer drops only its own entry, a sibling keeps serving the stale one', async () => {
    process.env.CACHE_SYNC_DISABLED_FOR_TEST = '1';
    let c: ReturnType<typeof cluster>;
    try {
      c = cluster(2);
    } finally {
      delete process.env.CACHE_SYNC_DISABLED_FOR_TEST;
    }
    await until(() => c.workers.every((w) => w.cache.sync.canServe()));
    const d = doc(hexId(), { n: 1 });
    for (const w of c.workers) fillId(w.cache, d._id, '{"n":1}');
    await c.workers[0].cache.invalidate(overwriteChange(d, { n: 2 }).changes);
    expect(c.workers[0].cache.worker.store.has(idKey('id', d._id))).toBe(false);
    expect(c.workers[1].cache.sync.canServe()).toBe(true);
    expect(c.workers[1].cache.worker.get(idKey('id', d._id))?.rep.body.toString()).toBe('{"n":1}');
    await c.close();
  });

  describe('dormancy (rule 7)', () => {
    const IDLE = 150;
    const idleConfig = loadConfig({ CACHE_SYNC_TIMEOUT_MS: String(T), CACHE_LEASE_MS: String(L), CACHE_IDLE_MS: String(IDLE) });
    const stateOf = (w: ReadCacheInternals) => (w.sync as ClusterSync).cacheStateForTest;
    /** Writes of unrelated documents by `writer` until one resolves without waiting for anybody (its siblings are dormant in its view). */
    async function writeUntilNobodyWaitedFor(writer: ReadCacheInternals): Promise<void> {
      const end = Date.now() + 3000;
      for (;;) {
        const d = doc(hexId(), { n: 1 });
        const r = await writer.sync.publish(planFromChanges(overwriteChange(d, { n: 2 }).changes));
        if (r.acked === 0 && r.timedOut.length === 0) return;
        if (Date.now() > end) throw new Error('the writer kept waiting for its sibling');
        await sleep(20);
      }
    }

    test('a worker whose cache is not read while a sibling writes goes dormant: it empties its cache, writes neither reach nor wait for it, and a read wakes it', async () => {
      const c = cluster(2, idleConfig);
      const [writer, quiet] = c.workers.map((w) => w.cache);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      const d = doc(hexId(), { n: 1 });
      expect(fillId(quiet, d._id, '{"n":1}')).toBe(true);
      await writeUntilNobodyWaitedFor(writer);
      expect(stateOf(quiet)).toBe('dormant');
      expect(quiet.sync.canServe()).toBe(false);
      expect(quiet.worker.store.entries).toBe(0);
      // its stats: still holding its lease (the cluster is healthy), dormant
      expect((await quiet.sync.clusterStats(false)).workers[0]).toMatchObject({ leaseValid: true, sync: { cache: 'dormant' } });
      // stopped, it could not acknowledge: the write still resolves at once (before: it waited T, then the lease)
      c.workers[1].transport.stop();
      const delivered = jest.spyOn(c.workers[1].transport, 'deliver');
      const t0 = monotonicMs();
      const r = await writer.sync.publish(planFromChanges(overwriteChange(d, { n: 2 }).changes));
      expect(monotonicMs() - t0).toBeLessThan(T);
      expect(r).toEqual({ acked: 0, dropped: 0, timedOut: [] });
      c.workers[1].transport.resume();
      await sleep(10);
      expect(delivered.mock.calls.filter(([, data]) => (data as { t?: string }).t === 'inv')).toEqual([]); // nothing was sent to it
      delivered.mockRestore();
      quiet.sync.noteRead();
      expect(stateOf(quiet)).toBe('waking');
      await until(() => quiet.sync.canServe());
      expect(stateOf(quiet)).toBe('active');
      expect(fillId(quiet, d._id, '{"n":2}')).toBe(true);
      // awake, it is told and waited for again
      const back = await writer.sync.publish(planFromChanges(overwriteChange(d, { n: 3 }).changes));
      expect({ acked: back.acked, dropped: back.dropped }).toEqual({ acked: 1, dropped: 1 });
      expect(quiet.worker.store.has(idKey('id', d._id))).toBe(false);
      await c.close();
    });

    /** Wakes `quiet` and waits until it serves; a read that began at the wake must not fill afterwards. */
    async function wakeAndServe(quiet: ReadCacheInternals): Promise<number> {
      const woke = monotonicMs();
      quiet.sync.noteRead();
      const early = quiet.worker.beginRead(quiet.sync.leaseEpoch());
      await until(() => quiet.sync.canServe());
      const took = monotonicMs() - woke;
      const seg = hexId();
      expect(quiet.worker.fill(early, quiet.sync.leaseEpoch(), { kind: 'id', key: idKey('id', seg), segment: seg }, '{}', {})).toBe(false);
      return took;
    }

    test('a worker woken while a writer that skipped it is stopped serves again only from a new lease, once that writer dropped out of its view', async () => {
      const c = cluster(2, idleConfig);
      const [writer, quiet] = c.workers.map((w) => w.cache);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      await writeUntilNobodyWaitedFor(writer);
      c.workers[0].transport.stop();
      expect((await writer.sync.publish(planFromChanges(overwriteChange(doc(hexId(), { n: 1 }), { n: 2 }).changes))).timedOut).toEqual([]);
      expect(await wakeAndServe(quiet)).toBeGreaterThanOrEqual(L / 3);
      c.workers[0].transport.resume();
      await c.close();
    });

    test('a worker woken after a writer that skipped it left (its bye arrived, then it was gone) serves again only L after its last idle heartbeat', async () => {
      const c = cluster(2, idleConfig);
      const [writer, quiet] = c.workers.map((w) => w.cache);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      await writeUntilNobodyWaitedFor(writer);
      expect((await writer.sync.publish(planFromChanges(overwriteChange(doc(hexId(), { n: 1 }), { n: 2 }).changes))).timedOut).toEqual([]);
      (writer.sync as ClusterSync).leave();
      await until(() => (quiet.sync as ClusterSync).view().length === 0);
      c.workers[0].transport.stop(); // it will not acknowledge the waking heartbeat; the quiet worker's lease does not need it
      expect(await wakeAndServe(quiet)).toBeGreaterThanOrEqual(L / 3); // not on its own heartbeat's echo alone
      c.workers[0].transport.resume();
      await c.close();
    });

    test('a worker whose cache is read, or whose siblings do not write, stays active', async () => {
      const c = cluster(3, idleConfig);
      const [writer, reader, idle] = c.workers.map((w) => w.cache);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      const end = Date.now() + 5 * IDLE;
      while (Date.now() < end) {
        reader.sync.noteRead();
        const d = doc(hexId(), { n: 1 });
        await writer.sync.publish(planFromChanges(overwriteChange(d, { n: 2 }).changes));
        await sleep(20);
      }
      expect(stateOf(reader)).toBe('active');
      expect(stateOf(idle)).toBe('dormant');
      // the writer itself heard no sibling write: it stays active without reads
      expect(stateOf(writer)).toBe('active');
      await c.close();
    });
  });

  describe('pm2 reload', () => {
    /** One write's publish from worker w: which siblings it had to wait out (none, when nobody waits for a lease). */
    const write = async (w: ReadCacheInternals) => {
      const d = doc(hexId(), { n: 1 });
      return (await w.sync.publish(planFromChanges(overwriteChange(d, { n: 2 }).changes))).timedOut;
    };

    test('the parked worker (_old_N) and its replacement (same pm_id) both take part; nobody waits; the old one leaves with a bye', async () => {
      const c = cluster(3);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      const old = c.workers[1];
      old.transport.park(); // PM2 renames it to _old_1 and starts the replacement under 1
      const repl = c.add('1');
      await until(() => (repl.cache.sync as ClusterSync).isJoined, L);
      const joinMs = ((await repl.cache.sync.clusterStats(false)).workers[0].sync as { joinMs: number }).joinMs;
      expect(joinMs).toBeLessThan(L / 3); // within one heartbeat
      // everyone sees both processes labelled 1 (old and new), and the old one still holds its lease
      await sleep(L); // several lease renewals with both in the view
      for (const w of c.workers) expect(w.cache.sync.canServe()).toBe(true);
      expect((c.workers[0].cache.sync as ClusterSync).view().sort()).toEqual(['1', '1', '2']);
      // writes from every worker, old and new included, are acknowledged by all: no lease wait
      const d = doc(hexId(), { n: 1 });
      for (const w of c.workers) fillId(w.cache, d._id, '{"n":1}');
      const t0 = monotonicMs();
      await c.workers[0].cache.invalidate(overwriteChange(d, { n: 2 }).changes);
      expect(monotonicMs() - t0).toBeLessThan(L - 50);
      for (const w of c.workers) expect(w.cache.worker.store.has(idKey('id', d._id))).toBe(false);
      for (const w of c.workers) expect(await write(w.cache)).toEqual([]);
      // the old one is stopped: it says bye on its way out, writes go on without waiting for its lease
      await old.cache.close();
      for (const w of [c.workers[0], c.workers[2], repl]) expect(await write(w.cache)).toEqual([]);
      await until(() => (c.workers[0].cache.sync as ClusterSync).view().length === 2);
      expect((c.workers[0].cache.sync as ClusterSync).view().sort()).toEqual(['1', '2']);
      const s = await c.workers[0].cache.sync.clusterStats(false);
      expect(s.missing).toEqual([]);
      expect(s.workers.map((w) => w.worker).sort()).toEqual(['0', '1', '2']);
      await Promise.all([c.workers[0], c.workers[2], repl].map((w) => w.cache.close()));
    });

    test('a replacement does not wait for a listed worker that exited before it could hear it, but does wait while it still runs', async () => {
      const c = cluster(2);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      const old = c.workers[1];
      old.transport.park();
      old.transport.stop(); // silent from now on (its bye will never reach anyone)
      const repl = c.add('1');
      await sleep(L / 2);
      // listed by the daemon as running and never heard: it may not know the replacement yet
      expect((repl.cache.sync as ClusterSync).isJoined).toBe(false);
      const gone = monotonicMs();
      await old.cache.close(); // exits: the daemon no longer lists it
      await until(() => repl.cache.sync.canServe(), L);
      expect(monotonicMs() - gone).toBeLessThan(L / 3 + 50); // the next heartbeat's re-list
      expect(await write(repl.cache)).toEqual([]);
      await Promise.all([c.workers[0], repl].map((w) => w.cache.close()));
    });

    test('a worker PM2 is stopping leaves before its drain: nobody waits for it, its own late write still reaches everyone, and a replacement can join on its acknowledgement', async () => {
      const c = cluster(3);
      await until(() => c.workers.every((w) => w.cache.sync.canServe()));
      const old = c.workers[1];
      old.transport.park();
      (old.cache.sync as ClusterSync).leave(); // what the SIGINT from PM2 triggers
      expect(old.cache.sync.canServe()).toBe(false);
      await until(() => (c.workers[0].cache.sync as ClusterSync).view().length === 1);
      old.transport.stop(); // draining and then killed without a word: nobody must wait for it
      for (const w of [c.workers[0], c.workers[2]]) expect(await write(w.cache)).toEqual([]);
      old.transport.resume();
      // an in-flight write on the leaving worker is still broadcast and acknowledged
      const d = doc(hexId(), { n: 1 });
      for (const w of [c.workers[0], c.workers[2]]) fillId(w.cache, d._id, '{"n":1}');
      const t0 = monotonicMs();
      await old.cache.invalidate(overwriteChange(d, { n: 2 }).changes);
      expect(monotonicMs() - t0).toBeLessThan(L - 50);
      for (const w of [c.workers[0], c.workers[2]]) expect(w.cache.worker.store.has(idKey('id', d._id))).toBe(false);
      // the replacement lists it (still running) and joins on its acknowledgement, without taking it into the view
      const repl = c.add('1');
      await until(() => repl.cache.sync.canServe(), L / 3);
      expect((repl.cache.sync as ClusterSync).view().sort()).toEqual(['0', '2']);
      expect(await write(repl.cache)).toEqual([]);
      await Promise.all(c.workers.map((w) => w.cache.close()));
    });
  });
});
