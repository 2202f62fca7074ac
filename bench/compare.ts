/**
 * `npm run bench:compare`: the real server beside two honest baselines, all in one run, on one embedded
 * database (its own process) seeded with 10,000 RERUM objects:
 *   - bare:  a bare Express 5 app answering the same bytes from memory (bench/support/bare-express.ts):
 *            the ceiling for a cache HIT;
 *   - floor: a bare Express 5 app doing the same single findOne / find / insertOne (update: findOne +
 *            insertOne + updateOne) through the same driver (bench/support/bare-driver.ts): the floor
 *            for "Express + MongoDB".
 * Workloads (autocannon, keep-alive): GET /v1/id HIT and MISS, POST /v1/api/query HIT and MISS (a query
 * by `@id`, indexed), POST /v1/api/create, PUT /v1/api/update (each on another seeded object). MISS
 * workloads rotate over the 10,000 seeds with CACHE_MAX_ENTRIES=1, so every request misses.
 * The server runs at its default LOG_LEVEL (info) with stdout to a file. Beside req/s and latency, the
 * server CPU time per request (user + system from /proc, the database process not included; for a
 * cluster its workers and its PM2 daemon, which relays the cache's invalidations), of the median
 * round and over all rounds: on a loaded shared machine throughput follows whoever else is running,
 * CPU time per request much less.
 *
 * All targets of one worker count run at once and are measured in turn, BENCH_ROUNDS rounds (default
 * 3), in an order that flips every round; the median req/s of the rounds is shown, with every ratio
 * of the medians and every ratio of one round's figures (and their median). The machine may be shared and noisy:
 * only ratios of one run mean anything.
 * Environment: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32), BENCH_WORKERS (default "1";
 * "1,4" adds the 4-worker PM2 cluster beside 4-worker bare apps and beside the same cluster with
 * CACHING=false for create and update: the cost of blocking invalidation), BENCH_WORKLOADS (default all),
 * BENCH_VARIANTS ("name=/path/to/other/dist/server.js;…": other builds measured beside, one process,
 * and in a cluster run also as that cluster, caching on, for create and update;
 * "name=dist/server.js|uri:&maxPoolSize=10|KEY=VALUE" appends to the database URI and sets variables),
 * BENCH_SEED (default 10000), BENCH_LOG_LEVEL (default info), BENCH_WARMUP (seconds of each workload
 * on each target before the first round, not measured; default 0: the rounds include the JIT warm-up).
 */
import path from 'node:path';
import { ROOT, startCluster } from './support/cluster-harness';
import {
  BASE,
  COLLECTION,
  DB_NAME,
  ID_PREFIX,
  LABELS,
  RUN,
  SEED_COUNT,
  WORKLOADS,
  describing,
  floorEnv,
  measure,
  startBench,
  startProcess,
  startRerum,
  warm,
  type Bench,
  type Figures,
  type Workload,
} from './support/compare-kit';
import { request } from './support/cluster-harness';
import fs from 'node:fs';

const { seconds: SECONDS, connections: CONNECTIONS, rounds: ROUNDS, workloads: SELECTED, warmup: WARMUP } = RUN;
const WORKERS = (process.env.BENCH_WORKERS ?? '1').split(',').map(Number);
const VARIANTS = (process.env.BENCH_VARIANTS ?? '')
  .split(';')
  .filter(Boolean)
  .map((v) => {
    const [spec, ...extras] = v.split('|');
    const [name, script] = spec.split('=');
    const uriSuffix = extras.find((e) => e.startsWith('uri:'))?.slice(4) ?? '';
    // KEY=VALUE, split at the first '=' (a value may hold more: NODE_OPTIONS=--max-semi-space-size=32)
    const env = Object.fromEntries(
      extras.filter((e) => !e.startsWith('uri:')).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    return { name, script: path.resolve(script), uriSuffix, env };
  });

interface Target {
  name: string;
  base: string;
  /** The workloads this target answers. */
  serves: Workload[];
  token: string;
  /** The target's server processes (CPU time per request); their direct children count too. */
  pids: number[];
  stop(): Promise<void>;
}

/** A cluster's worker processes and its PM2 daemon, which relays the cache's invalidation messages. */
async function clusterPids(c: { pids(): Promise<Map<number, number>>; pm2Home: string }): Promise<number[]> {
  const daemon = Number(fs.readFileSync(path.join(c.pm2Home, 'pm2.pid'), 'utf8'));
  return [...(await c.pids()).values(), ...(Number.isInteger(daemon) && daemon > 0 ? [daemon] : [])];
}

async function rerumTargets(bench: Bench, workers: number): Promise<Target[]> {
  const all: Workload[] = [...WORKLOADS];
  if (workers === 1) {
    const out: Target[] = [];
    const s = await startRerum(bench);
    out.push({ name: 'rerum', base: s.base, serves: all, token: bench.token, pids: [s.pid], stop: s.stop });
    for (const v of VARIANTS) {
      const o = await startRerum(bench, v.script, {
        env: { ...v.env, ...(v.uriSuffix ? { MONGO_CONNECTION_STRING: bench.mongoUri + v.uriSuffix } : {}) },
      });
      out.push({ name: v.name, base: o.base, serves: all, token: bench.token, pids: [o.pid], stop: o.stop });
    }
    return out;
  }
  const cluster = async (caching: boolean, extra: Record<string, string> = {}) =>
    startCluster({
      instances: workers,
      noBuild: true,
      env: {
        MONGO_CONNECTION_STRING: bench.mongoUri,
        MONGODBNAME: DB_NAME,
        MONGODBCOLLECTION: COLLECTION,
        RERUM_BASE: BASE,
        CACHE_MAX_ENTRIES: '1',
        CACHING: String(caching),
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
        ...extra,
      },
    });
  const c = await cluster(true);
  const out: Target[] = [{ name: 'rerum', base: c.base, serves: all, token: c.token ?? '', pids: await clusterPids(c), stop: c.stop }];
  // The same cluster with CACHING=false: what blocking invalidation costs the writes (target: rerum/nocache ≥ 0.8).
  try {
    const off = await cluster(false);
    out.push({
      name: 'nocache',
      base: off.base,
      serves: ['create', 'update'],
      token: off.token ?? '',
      pids: await clusterPids(off),
      stop: off.stop,
    });
    // Other builds as the same cluster (caching on) for the writes: what a change to the
    // invalidation path costs or saves where it runs, beside this build and beside caching off.
    for (const v of VARIANTS) {
      const o = await cluster(true, {
        ...v.env,
        RERUM_SCRIPT: path.relative(ROOT, v.script), // the ecosystem file resolves it from the project root
        ...(v.uriSuffix ? { MONGO_CONNECTION_STRING: bench.mongoUri + v.uriSuffix } : {}),
      });
      out.push({
        name: v.name,
        base: o.base,
        serves: ['create', 'update'],
        token: o.token ?? '',
        pids: [...(await o.pids()).values()],
        stop: o.stop,
      });
    }
  } catch (e) {
    for (const t of out) await t.stop();
    throw e;
  }
  return out;
}

async function baselines(bench: Bench, rerum: Target, workers: number): Promise<Target[]> {
  // the exact bytes and headers the server answers for the HIT objects
  await warm(rerum.base, bench, 'hit', 1);
  const hit = await request('GET', `${rerum.base}/v1/id/${bench.hitId}`);
  const query = await request('POST', `${rerum.base}/v1/api/query`, { body: { '@id': ID_PREFIX + bench.hitId } });
  const bodyFile = path.join(bench.tmp, 'hit-body');
  const queryFile = path.join(bench.tmp, 'query-body');
  fs.writeFileSync(bodyFile, hit.text);
  fs.writeFileSync(queryFile, query.text);
  const support = path.join(__dirname, 'support');
  const bare = await startProcess(
    path.join(support, 'bare-express.js'),
    {
      BARE_WORKERS: String(workers),
      BARE_BODY_FILE: bodyFile,
      BARE_HEADERS: JSON.stringify(describing(hit.headers)),
      BARE_QUERY_BODY_FILE: queryFile,
      BARE_QUERY_HEADERS: JSON.stringify(describing(query.headers)),
    },
    { ready: 'ipc' },
  );
  const floor = await startProcess(
    path.join(support, 'bare-driver.js'),
    { BARE_WORKERS: String(workers), ...floorEnv(bench) },
    { ready: 'ipc' },
  );
  return [
    { name: 'bare', base: bare.base, serves: ['hit', 'queryHit'], token: '', pids: [bare.pid], stop: bare.stop },
    { name: 'floor', base: floor.base, serves: ['miss', 'queryMiss', 'create', 'update'], token: '', pids: [floor.pid], stop: floor.stop },
  ];
}

const median = (xs: Figures[]): Figures => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)];
/** CPU time per request over all rounds (steadier than the median round's on a shared machine). */
const cpuOfAll = (xs: Figures[]): number =>
  xs.reduce((sum, f) => sum + f.cpuUs * f.requests, 0) /
  Math.max(
    1,
    xs.reduce((sum, f) => sum + f.requests, 0),
  );
const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');

async function runWorkers(bench: Bench, workers: number): Promise<string[]> {
  const targets: Target[] = [];
  try {
    targets.push(...(await rerumTargets(bench, workers)));
    targets.push(...(await baselines(bench, targets[0], workers)));
    const samples = new Map<string, Figures[]>();
    if (WARMUP > 0) {
      // V8 optimises each worker's code on its own: a 4-worker cluster needs ~15 s of load to reach its steady state
      for (const w of SELECTED)
        for (const t of targets) {
          if (!t.serves.includes(w)) continue;
          if (w === 'hit' || w === 'queryHit') await warm(t.base, bench, w, 4 * workers);
          await measure(t.base, { ...bench, token: t.token }, w, WARMUP, CONNECTIONS);
        }
      console.log(`  ${workers} worker(s): warmed up (${WARMUP} s of each workload on each target, not counted)`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      // the order of the targets flips every round, so none is always measured right after another
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const w of SELECTED) {
        for (const t of order) {
          if (!t.serves.includes(w)) continue;
          if (w === 'hit' || w === 'queryHit') await warm(t.base, bench, w, 4 * workers);
          const f = await measure(t.base, { ...bench, token: t.token }, w, SECONDS, CONNECTIONS, t.pids);
          const k = `${t.name}:${w}`;
          samples.set(k, [...(samples.get(k) ?? []), f]);
        }
      }
      console.log(`  ${workers} worker(s): round ${round + 1}/${ROUNDS} done`);
    }
    const get = (t: string, w: Workload) => (samples.has(`${t}:${w}`) ? median(samples.get(`${t}:${w}`)!) : undefined);
    const cpuAll = (t: string, w: Workload) => cpuOfAll(samples.get(`${t}:${w}`) ?? []);
    const out = [
      `-- ${workers} worker(s) (${workers === 1 ? 'one process' : 'PM2 cluster'}), ${CONNECTIONS} connections, ${SECONDS} s × ${ROUNDS} rounds, median`,
    ];
    for (const w of SELECTED) {
      out.push(`  ${LABELS[w]}`);
      for (const t of targets) {
        const f = get(t.name, w);
        if (f)
          out.push(
            `    ${t.name.padEnd(10)} ${fmt(f.rps, 0).padStart(7)} req/s   p50 ${fmt(f.p50, 1).padStart(6)} ms   p99 ${fmt(f.p99, 1).padStart(6)} ms   CPU ${fmt(f.cpuUs, 0).padStart(5)} µs/req (all rounds ${fmt(cpuAll(t.name, w), 0)})   [${f.statuses}]`,
          );
      }
      const r = get('rerum', w);
      if (!r) continue;
      const ratios: string[] = [];
      const cpu: string[] = [];
      const perRound: string[] = [];
      for (const t of targets.slice(1)) {
        const o = get(t.name, w);
        if (!o) continue;
        ratios.push(`rerum/${t.name} ${fmt(r.rps / o.rps)}`);
        cpu.push(`${t.name}/rerum ${fmt(cpuAll(t.name, w) / cpuAll('rerum', w))}`);
        // measured next to each other in time, so less exposed to the load of the moment than the medians
        const mine = samples.get(`rerum:${w}`)!;
        const theirs = samples.get(`${t.name}:${w}`)!;
        const each = mine.map((m, i) => m.rps / theirs[i].rps);
        perRound.push(
          `rerum/${t.name} ${each.map((x) => fmt(x)).join(', ')} (median ${fmt([...each].sort((a, b) => a - b)[Math.floor(each.length / 2)])})`,
        );
      }
      if (ratios.length) out.push(`    ratios (req/s, higher is faster): ${ratios.join('   ')}`);
      if (perRound.length) out.push(`    ratios per round (req/s): ${perRound.join('   ')}`);
      if (cpu.length) out.push(`    ratios (server CPU per request, all rounds, >1 means rerum is cheaper): ${cpu.join('   ')}`);
    }
    return out;
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  console.log(
    `bench:compare — node ${process.version}, ${SEED_COUNT} seeded objects, workers ${WORKERS.join(',')}, workloads ${SELECTED.join(',')}` +
      (VARIANTS.length ? `, variants ${VARIANTS.map((v) => v.name).join(',')}` : ''),
  );
  console.log(`  (root ${ROOT}; the machine may be shared: compare ratios of one run only)`);
  const bench = await startBench();
  const summary: string[] = [];
  try {
    for (const workers of WORKERS) summary.push(...(await runWorkers(bench, workers)));
  } finally {
    await bench.stop();
  }
  console.log(`\n${summary.join('\n')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
