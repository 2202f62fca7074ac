/**
 * The real thing: a PM2 cluster of 4 workers (ecosystem.config.cjs, private PM2_HOME, shared
 * database), requests on fresh connections so PM2's round robin spreads them over the workers.
 *
 * - 1,000 rounds of PUT /v1/api/overwrite → GET /v1/id/{id} ×3 + POST /v1/api/query: 0 stale reads,
 *   reads served by workers other than the writer, and cache HITs do happen (so staleness could show);
 * - a worker SIGSTOPped for 2 s mid-run and resumed: still 0 stale, and no write served by a running
 *   worker waits longer than the documented bound max(T, L) ≤ T + L;
 * - /v1/api/cache/stats sums every worker (and matches what the client saw);
 * - /v1/api/cache/clear (CACHE_ADMIN_AGENT's token only) empties every worker;
 * - stall (short `npm run stall`): hostile queries and a poisoned cache beside GET /v1/id pings get
 *   their 400/413/200 and no ping fails or waits past a generous bound;
 * - pm2 reload under writes and reads: fresh reads, bounded writes, no request lost (also over three
 *   reloads under 24 clients opening a connection per request).
 * Self-contained: builds, starts, stops and removes everything (bench/support/cluster-harness.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatTable, runStall } from '../../bench/stall';
import { createObject, percentile, request, startCluster, type Cluster } from '../../bench/support/cluster-harness';

const T = 300; // CACHE_SYNC_TIMEOUT_MS
const L = 600; // CACHE_LEASE_MS
const IDLE = 1000; // CACHE_IDLE_MS
const ROUNDS = Number(process.env.PM2_TEST_ROUNDS ?? 1000);
const STOP_AT = Math.floor(ROUNDS * 0.4);

jest.setTimeout(170_000);
let built = false; // the second cluster reuses the first one's build

describe('PM2 cluster (4 workers)', () => {
  let c: Cluster;

  beforeAll(async () => {
    c = await startCluster({
      instances: 4,
      env: { CACHE_SYNC_TIMEOUT_MS: String(T), CACHE_LEASE_MS: String(L), CACHE_IDLE_MS: String(IDLE), CACHE_MAX_ENTRIES: '10000' },
    });
    built = true;
    console.log(`pm2 cluster test against the ${c.target} server at ${c.base}`);
  });

  afterAll(async () => {
    await c?.stop();
  });

  test('no stale reads across workers, also around a stopped worker; writes stay within the bound; stats and clear cover every worker', async () => {
    const rid = `race-${Date.now()}`;
    const id = await createObject(c, { type: 'CacheRaceTest', rid, n: 0 });
    const seg = id.split('/').pop()!;
    let warmHits = 0;
    for (let k = 0; k < 8; k++) if ((await request('GET', `${c.base}/v1/id/${seg}`)).headers['x-cache'] === 'HIT') warmHits++;

    const pids = await c.pids();
    const victimId = [...pids.keys()].sort()[1];
    const victimPid = pids.get(victimId)!;

    let stale = 0;
    let crossWorkerRounds = 0;
    let hits = 0;
    let misses = 0;
    const writes: { ms: number; start: number; end: number }[] = [];
    let resumedAt = Infinity;
    let stopTimer: Promise<void> | undefined;
    const staleSamples: string[] = [];
    const now = () => Number(process.hrtime.bigint()) / 1e6;

    for (let i = 1; i <= ROUNDS; i++) {
      if (i === STOP_AT) {
        process.kill(victimPid, 'SIGSTOP');
        stopTimer = new Promise((res) =>
          setTimeout(() => {
            process.kill(victimPid, 'SIGCONT');
            resumedAt = now();
            res();
          }, 2000),
        );
      }
      const start = now();
      const w = await request('PUT', `${c.base}/v1/api/overwrite`, {
        body: { '@id': id, type: 'CacheRaceTest', rid, n: i },
        token: c.token,
      });
      if (w.status !== 200) throw new Error(`overwrite ${w.status}: ${w.text}`);
      writes.push({ ms: w.ms, start, end: now() });
      // read right after the write's response, one after the other, on fresh connections
      const servedBy = new Set<string>();
      for (let k = 0; k < 6; k++) {
        const r =
          k < 5 ? await request('GET', `${c.base}/v1/id/${seg}`) : await request('POST', `${c.base}/v1/api/query`, { body: { rid } });
        const body = r.json as { n?: number } | { n?: number }[];
        const n = Array.isArray(body) ? (body.length === 1 ? body[0].n : undefined) : body?.n;
        if (n !== i) {
          stale++;
          if (staleSamples.length < 5)
            staleSamples.push(
              `round ${i}: got ${JSON.stringify(n)} from worker ${String(r.headers['x-worker'])} (${String(r.headers['x-cache'])})`,
            );
        }
        servedBy.add(String(r.headers['x-worker']));
        if (r.headers['x-cache'] === 'HIT') hits++;
        if (r.headers['x-cache'] === 'MISS') misses++;
      }
      if (servedBy.size >= 2) crossWorkerRounds++; // at least one read was not served by the writer
    }
    await stopTimer;

    const bound = Math.max(T, L);
    // A write slower than the bound is only acceptable if it sat in the stopped worker itself,
    // i.e. it started before the resume and finished right after it.
    const slow = writes.filter((w) => w.ms > bound + 400);
    const unexplained = slow.filter((w) => !(w.start < resumedAt && w.end >= resumedAt - 50));
    const running = writes.filter((w) => !slow.includes(w));
    console.log(
      `rounds=${ROUNDS} stale=${stale} crossWorkerRounds=${crossWorkerRounds} hits=${hits} misses=${misses} ` +
        `write p50=${percentile(
          writes.map((w) => w.ms),
          50,
        ).toFixed(1)}ms p99=${percentile(
          writes.map((w) => w.ms),
          99,
        ).toFixed(1)}ms ` +
        `max(not held by the stopped worker)=${Math.max(...running.map((w) => w.ms)).toFixed(0)}ms bound=max(T,L)=${bound}ms slow=${slow.map((w) => Math.round(w.ms)).join(',')}`,
    );
    expect(staleSamples).toEqual([]);
    expect(stale).toBe(0);
    expect(crossWorkerRounds).toBeGreaterThan(ROUNDS * 0.9);
    expect(hits).toBeGreaterThan(ROUNDS / 2); // the cache really served, so staleness could have shown
    expect(unexplained).toEqual([]);
    // the stop really exercised the failure rule: some write waited for the stopped sibling
    expect(writes.some((w) => w.ms >= T)).toBe(true);

    // stats: summed over all 4 workers, and they add up to what this client saw
    const s = await request('GET', `${c.base}/v1/api/cache/stats?details=true`, { token: c.adminToken });
    expect(s.status).toBe(200);
    const stats = s.json as {
      workerCount: number;
      hits: number;
      misses: number;
      entries: number;
      workers: { worker: string; hits: number; misses: number; entries: number; details: { key: string }[] }[];
    };
    expect(stats.workerCount).toBe(4);
    expect(new Set(stats.workers.map((w) => w.worker)).size).toBe(4);
    expect(stats.hits).toBe(stats.workers.reduce((n, w) => n + w.hits, 0));
    expect(stats.entries).toBe(stats.workers.reduce((n, w) => n + w.entries, 0));
    expect(stats.hits).toBe(hits + warmHits);
    expect(stats.workers.some((w) => w.details.some((d) => d.key === `id:${seg}`))).toBe(true);

    // clear (the admin agent only): every worker empty afterwards
    expect((await request('POST', `${c.base}/v1/api/cache/clear`)).status).toBe(c.target === 'real' ? 401 : 200);
    if (c.target === 'real') expect((await request('POST', `${c.base}/v1/api/cache/clear`, { token: c.token })).status).toBe(403);
    const cl = await request('POST', `${c.base}/v1/api/cache/clear`, { token: c.adminToken });
    expect(cl.status).toBe(200);
    const s2 = (await request('GET', `${c.base}/v1/api/cache/stats`)).json as { entries: number; workers: { entries: number }[] };
    expect(s2.entries).toBe(0);
    expect(s2.workers.every((w) => w.entries === 0)).toBe(true);
    for (let k = 0; k < 4; k++) expect((await request('GET', `${c.base}/v1/id/${seg}`)).headers['x-cache']).toBe('MISS');
  });

  test('workers whose cache is not read while writes go on turn dormant; reads wake them, nothing stale, and the cache serves again', async () => {
    const rid = `dormant-${Date.now()}`;
    const id = await createObject(c, { type: 'CacheDormancyTest', rid, n: 0 });
    const seg = id.split('/').pop()!;
    for (let k = 0; k < 8; k++) await request('GET', `${c.base}/v1/id/${seg}`); // entries on every worker
    const other = await createObject(c, { type: 'CacheDormancyTest', rid: `${rid}-other`, n: 0 });
    const states = async () => {
      const s = (await request('GET', `${c.base}/v1/api/cache/stats`)).json as { workers: { sync?: { cache?: string } }[] };
      return s.workers.map((w) => w.sync?.cache);
    };
    // writes only (spread over the workers): each hears its siblings' invalidations and serves no read
    const end = Date.now() + 10 * IDLE;
    let dormant: (string | undefined)[] = [];
    for (let i = 1; Date.now() < end; i++) {
      const w = await request('PUT', `${c.base}/v1/api/overwrite`, {
        body: { '@id': other, type: 'CacheDormancyTest', n: i },
        token: c.token,
      });
      expect(w.status).toBe(200);
      if (i % 20 === 0 && (dormant = await states()).every((x) => x === 'dormant')) break;
    }
    expect(dormant).toEqual(['dormant', 'dormant', 'dormant', 'dormant']);
    let stale = 0;
    let hits = 0;
    for (let n = 1; n <= 20; n++) {
      const w = await request('PUT', `${c.base}/v1/api/overwrite`, {
        body: { '@id': id, type: 'CacheDormancyTest', rid, n },
        token: c.token,
      });
      expect(w.status).toBe(200);
      for (let k = 0; k < 8; k++) {
        const r =
          k < 6 ? await request('GET', `${c.base}/v1/id/${seg}`) : await request('POST', `${c.base}/v1/api/query`, { body: { rid } });
        const body = r.json as { n?: number } | { n?: number }[];
        if ((Array.isArray(body) ? body[0]?.n : body?.n) !== n) stale++;
        if (r.headers['x-cache'] === 'HIT') hits++;
      }
    }
    console.log(`dormancy: states ${dormant.join(',')}; then 20 overwrites × 8 reads: stale=${stale} hits=${hits}`);
    expect(stale).toBe(0);
    expect(hits).toBeGreaterThan(20); // awake again: the cache serves
    expect((await states()).every((x) => x === 'active')).toBe(true);
  });

  test('stall: hostile queries and a poisoned cache beside GET /v1/id pings (HIT and MISS)', async () => {
    const t0 = Date.now();
    const r = await runStall(
      {
        phaseMs: 1000,
        parallel: 2,
        filters: 150,
        only: ['regex', '$or 30,000', '$nin', '$expr', 'search 1 MB', 'poison'],
        log: () => undefined,
      },
      c,
    );
    console.log(
      `${formatTable(r.phases)}\nworst ping beside the attacks (${r.worst.pings} pings): p99 ${r.worst.p99.toFixed(1)} ms, ` +
        `max ${r.worst.max.toFixed(1)} ms (targets p99 < 100 ms, max < 1 s; asserted: max < 5 s) in ${Date.now() - t0} ms`,
    );
    const status = (prefix: string) => r.phases.find((p) => p.name.startsWith(prefix))!.statuses;
    expect(status('regex')).toMatch(/^\d+×200$/);
    expect(status('$or 30,000')).toMatch(/^\d+×400$/);
    expect(status('$nin')).toMatch(/^\d+×400$/);
    expect(status('$expr')).toMatch(/^\d+×400$/);
    expect(status('search 1 MB')).toMatch(/^\d+×413$/);
    expect(status('poisoning')).toMatch(/^\d+×200$/);
    expect(status('innocent creates')).toMatch(/^\d+×201$/);
    expect(r.worst.pings).toBeGreaterThan(20);
    expect(r.worst.failedPings).toBe(0);
    expect(r.worst.max).toBeLessThan(5_000); // generous: the machine may be shared and loaded
  }, 120_000);
});

/**
 * `pm2 reload` under write load: PM2 replaces the workers one by one (each old worker is parked
 * under the daemon id `_old_N` while its replacement starts under N, then stopped). Writes must not
 * wait for anyone's lease meanwhile, no read may be stale, and each replacement must join (hold its
 * first lease) within one heartbeat of its channel being up. Long timings (T = 1 s, L = 4 s) keep a
 * starved 2-core machine from passing for a protocol wait: a lease wait is logged by the writer
 * ("did not acknowledge … in time") and costs up to L, while the latency bound asserted is L/2.
 */
describe('pm2 reload under write load (4 workers)', () => {
  const RT = 1000; // CACHE_SYNC_TIMEOUT_MS
  const RL = 4000; // CACHE_LEASE_MS
  const WRITERS = 3;
  let c: Cluster;

  beforeAll(async () => {
    c = await startCluster({ instances: 4, noBuild: built, env: { CACHE_SYNC_TIMEOUT_MS: String(RT), CACHE_LEASE_MS: String(RL) } });
  });

  afterAll(async () => {
    await c?.stop();
  });

  test('writes never wait for a lease during a reload, reads stay fresh, and every replacement joins within one heartbeat', async () => {
    const now = () => Number(process.hrtime.bigint()) / 1e6;
    const before = await c.pids();
    const ids: { id: string; seg: string }[] = [];
    for (let k = 0; k < WRITERS; k++) {
      const id = await createObject(c, { type: 'CacheReloadTest', k, n: 0 });
      ids.push({ id, seg: id.split('/').pop()! });
    }
    const writes: { ms: number; start: number; end: number; status: number }[] = [];
    const errors: string[] = [];
    /** Connections lost without an answer: Node's cluster primary can lose a connection it was handing to a worker that is exiting. */
    const lost: string[] = [];
    const stale: string[] = [];
    let running = true;
    const writer = async (k: number) => {
      const { id, seg } = ids[k];
      for (let n = 1; running; n++) {
        const start = now();
        try {
          const w = await request('PUT', `${c.base}/v1/api/overwrite`, {
            body: { '@id': id, type: 'CacheReloadTest', k, n },
            token: c.token,
            timeoutMs: 10_000,
          });
          writes.push({ ms: w.ms, start, end: now(), status: w.status });
          if (w.status !== 200) {
            errors.push(`overwrite ${w.status}: ${w.text.slice(0, 200)}`);
            continue;
          }
          const r = await request('GET', `${c.base}/v1/id/${seg}`, { timeoutMs: 10_000 });
          const got = (r.json as { n?: number } | undefined)?.n;
          if (got !== n)
            stale.push(
              `writer ${k}: wrote n=${n}, worker ${String(r.headers['x-worker'])} answered ${JSON.stringify(got)} (${String(r.headers['x-cache'])})`,
            );
        } catch (e) {
          lost.push(String((e as Error).message));
        }
      }
    };
    const loops = ids.map((_, k) => writer(k));
    await new Promise((r) => setTimeout(r, 1000));
    const reloadStart = now();
    const reload = await c.pm2(['reload', c.appName]);
    const reloadEnd = now();
    await new Promise((r) => setTimeout(r, 1000));
    running = false;
    await Promise.all(loops);
    expect(reload.code).toBe(0);

    const during = writes.filter((w) => w.end >= reloadStart && w.start <= reloadEnd).map((w) => w.ms);
    const p = (q: number) => percentile(during, q).toFixed(1);
    const logDir = path.join(c.pm2Home, 'logs');
    const logs = fs
      .readdirSync(logDir)
      .map((f) => fs.readFileSync(path.join(logDir, f), 'utf8'))
      .join('\n');
    const leaseWaits = logs.split('\n').filter((l) => l.includes('did not acknowledge an invalidation in time'));

    // every worker replaced, every replacement in the view of the others and holding a lease
    const after = await c.pids();
    const s = (await request('GET', `${c.base}/v1/api/cache/stats`)).json as {
      workerCount: number;
      workers: { worker: string; pid: number; leaseValid: boolean; sync?: { joinMs?: number; view?: string[] } }[];
    };
    const joinMs = s.workers.map((w) => w.sync?.joinMs);
    console.log(
      `pm2 reload of 4 workers took ${((reloadEnd - reloadStart) / 1000).toFixed(1)} s; writes during it: ${during.length}, ` +
        `latency p50=${p(50)}ms p99=${p(99)}ms max=${Math.max(...during).toFixed(0)}ms (bound L/2=${RL / 2}ms); ` +
        `stale=${stale.length} errors=${errors.length} lost connections=${lost.length} lease waits logged=${leaseWaits.length}; replacements joined after ${joinMs.map((j) => (j === undefined ? '?' : `${Math.round(j)}ms`)).join(', ')} (heartbeat every ${Math.floor(RL / 3)}ms)`,
    );
    if (lost.length) console.log(`lost connections (first 5): ${[...new Set(lost)].slice(0, 5).join('; ')}`);
    expect(stale).toEqual([]);
    expect(errors).toEqual([]);
    // every request is answered: an exiting worker stays up until the daemon has stopped handing it connections
    expect(lost).toEqual([]);
    expect(during.length).toBeGreaterThanOrEqual(30);
    expect(Math.max(...during)).toBeLessThan(RL / 2);
    expect(leaseWaits).toEqual([]);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [pmId, pid] of after) expect(pid).not.toBe(before.get(pmId));
    expect(s.workerCount).toBe(4);
    expect(new Set(s.workers.map((w) => w.pid))).toEqual(new Set(after.values()));
    expect(s.workers.every((w) => w.leaseValid)).toBe(true);
    // one heartbeat (RL / 3); a loaded machine may add up to one sync timeout of scheduling delay
    for (const j of joinMs) expect(j).toBeLessThan(RL / 3 + RT);
  });

  test('no request is lost across reloads: 24 clients opening a connection per request, three reloads', async () => {
    // PM2's daemon hands each connection to a worker over IPC; one handed to a worker that has just
    // exited was lost (its client waited for ever): server.ts keeps an exiting worker up a moment
    let running = true;
    let answered = 0;
    const lost: string[] = [];
    const client = async () => {
      while (running) {
        try {
          const r = await request('GET', `${c.base}/v1/api`, { timeoutMs: 5_000 });
          if (r.status === 200) answered++;
          else lost.push(`status ${r.status}`);
        } catch (e) {
          lost.push(String((e as Error).message));
        }
      }
    };
    const clients = Array.from({ length: 24 }, client);
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect((await c.pm2(['reload', c.appName])).code).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await Promise.all(clients);
    console.log(`3 reloads under 24 clients: ${answered} answered, ${lost.length} lost`);
    expect(answered).toBeGreaterThan(1000);
    expect(lost).toEqual([]);
  });

  test("a worker whose socket file is gone is still reached (by PM2's bus) by a sibling that starts afterwards: writes stay fast and reads fresh", async () => {
    const pids = await c.pids();
    const [victimId, restartId] = [...pids.keys()].sort((a, b) => a - b);
    const victimPid = pids.get(victimId)!;
    const dir = os.tmpdir();
    const files = fs.readdirSync(dir).filter((f) => f.startsWith(`rerum-cache-${victimPid}-`));
    expect(files).toHaveLength(1);
    fs.rmSync(path.join(dir, files[0])); // the victim keeps running; nobody can open a connection to it any more
    expect((await c.pm2(['restart', String(restartId)])).code).toBe(0);
    const restarted = (await c.pids()).get(restartId)!;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = (await request('GET', `${c.base}/v1/api/cache/stats`)).json as { workers?: { pid?: number; leaseValid?: boolean }[] };
      if (s.workers?.length === 4 && s.workers.some((w) => w.pid === restarted) && s.workers.every((w) => w.leaseValid)) break;
      if (Date.now() > deadline) throw new Error(`the restarted worker did not join: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const id = await createObject(c, { type: 'CacheSocketGone', n: 0 });
    const seg = id.split('/').pop()!;
    let fromRestarted = 0;
    let stale = 0;
    let slowest = 0;
    for (let n = 1; n <= 40; n++) {
      const t0 = Date.now();
      const w = await request('PUT', `${c.base}/v1/api/overwrite`, { body: { '@id': id, type: 'CacheSocketGone', n }, token: c.token });
      slowest = Math.max(slowest, Date.now() - t0);
      expect(w.status).toBe(200);
      for (let k = 0; k < 4; k++) {
        const r = await request('GET', `${c.base}/v1/id/${seg}`);
        if ((r.json as { n?: number }).n !== n) stale++;
        if (r.headers['x-worker'] === String(restartId)) fromRestarted++;
      }
    }
    // one connection per request, which PM2 hands to the workers in turn: about a quarter of the writes were the restarted worker's
    console.log(`socket file gone: 40 writes, slowest ${slowest} ms; 160 reads (${fromRestarted} by the restarted worker), stale ${stale}`);
    expect(fromRestarted).toBeGreaterThan(0);
    expect(stale).toBe(0);
    // without the bus fallback, every write by the restarted worker waited for the victim's acknowledgement (T, then its lease)
    expect(slowest).toBeLessThan(RT);
  });
});
