/**
 * HTTP read-path benchmark (`npm run bench:http`): the real server under PM2 (1 worker, then
 * 4 workers) beside a bare Express 5 app (bench/support/bare-express.ts, same worker count)
 * answering the same bytes from memory, all measured in one run with autocannon (keep-alive).
 *
 * Per target: requests/s and latency p50/p99 of
 *   - HIT:  GET /v1/id/:id answered from the read cache (bare: the plain app's answer);
 *   - 304:  the same GET with If-None-Match: <current ETag> (bare: with Express's own ETag);
 *   - MISS: GET /v1/id/:id of objects not in the cache (CACHE_MAX_ENTRIES=1, ids rotated), i.e.
 *           a database read, serialization and a cache fill per request (rerum only).
 * Then the ratios rerum/bare, of requests/s and of server CPU time per request (user + system time of
 * the target's server processes from /proc, the embedded database not included): on a shared, loaded
 * machine throughput follows whoever else is running, CPU time per request much less.
 * Targets: 304 at least as fast as a HIT; a HIT close to the bare app.
 *
 * All targets run at once and are measured in turn for BENCH_ROUNDS rounds (default 3); the run
 * with the median req/s is shown.
 * Environment: BENCH_SECONDS (default 5) per measurement, BENCH_CONNECTIONS (default 16),
 * BENCH_WORKERS (default "1,4"), BENCH_BASELINE_SCRIPT (optional: another build's dist/server.js,
 * e.g. of an older commit, measured the same way and printed beside, for before/after figures).
 * The machine may be shared: compare only the ratios of one run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createObject, freePort, request, startCluster } from './support/cluster-harness';
import { describing, load, type AcOptions, type Figures } from './support/compare-kit';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,4').split(',').map(Number);
const BASELINE = process.env.BENCH_BASELINE_SCRIPT;
const MISS_IDS = 200;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** One measurement against `url` with this bench's connections and duration. */
const measure = (url: string, opts: Partial<AcOptions> = {}, pids: number[] = []): Promise<Figures> =>
  load({ url, connections: CONNECTIONS, duration: SECONDS, ...opts }, pids);

/** A bare Express app (in its own process tree) answering `body` with `headers`. */
async function startBare(
  workers: number,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ base: string; pid: number; stop(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-http-'));
  const file = path.join(dir, 'body');
  fs.writeFileSync(file, body);
  const port = await freePort();
  const child: ChildProcess = fork(path.join(__dirname, 'support', 'bare-express.js'), [], {
    env: {
      ...process.env,
      BARE_PORT: String(port),
      BARE_WORKERS: String(workers),
      BARE_BODY_FILE: file,
      BARE_HEADERS: JSON.stringify(headers),
      NODE_ENV: 'production',
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`bare express exited (${code})`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid ?? 0,
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Scenario = 'hit' | 'notModified' | 'miss';

/** A running target and how to measure each scenario on it (re-warming the cache before HIT/304). */
interface Target {
  name: string;
  body: Buffer;
  headers: Record<string, string>;
  run(s: Scenario): Promise<Figures | undefined>;
  stop(): Promise<void>;
}

async function rerumTarget(name: string, workers: number, env: Record<string, string>): Promise<Target> {
  const c = await startCluster({ instances: workers, noBuild: true, env });
  try {
    const hitId = (await createObject(c, { type: 'BenchHttp', label: 'hit', body: { value: 'x'.repeat(300) } })).split('/').pop()!;
    const missIds: string[] = [];
    for (let i = 0; i < MISS_IDS; i++)
      missIds.push((await createObject(c, { type: 'BenchHttp', k: i, body: { value: 'y'.repeat(300) } })).split('/').pop()!);
    const url = `${c.base}/v1/id/${hitId}`;
    // fill every worker's cache with the hit object (CACHE_MAX_ENTRIES=1: the MISS runs evict it)
    const warm = async () => {
      let r: Awaited<ReturnType<typeof request>> | undefined;
      for (let i = 0; i < 8 * workers; i++) r = await request('GET', url);
      if (!r || r.status !== 200) throw new Error(`GET ${url}: ${r?.status}`);
      return r;
    };
    const first = await warm();
    const etag = String(first.headers.etag);
    const pids = [...(await c.pids()).values()];
    await measure(url, { duration: 1 });
    return {
      name,
      body: Buffer.from(first.text, 'utf8'),
      headers: describing(first.headers as Record<string, string>),
      async run(s) {
        if (s === 'miss') return measure(c.base, { requests: missIds.map((id) => ({ method: 'GET', path: `/v1/id/${id}` })) }, pids);
        await warm();
        return measure(url, s === 'notModified' ? { headers: { 'If-None-Match': etag } } : {}, pids);
      },
      stop: () => c.stop(),
    };
  } catch (e) {
    await c.stop();
    throw e;
  }
}

async function bareTarget(workers: number, body: Buffer, headers: Record<string, string>): Promise<Target> {
  const bare = await startBare(workers, body, headers);
  const url = `${bare.base}/v1/id/x`;
  const first = await request('GET', url);
  await measure(url, { duration: 1 });
  return {
    name: 'bare',
    body,
    headers,
    async run(s) {
      if (s === 'miss') return undefined;
      return measure(url, s === 'notModified' ? { headers: { 'If-None-Match': String(first.headers.etag) } } : {}, [bare.pid]);
    },
    stop: async () => bare.stop(),
  };
}

/** The run with the median req/s of several. */
const median = (xs: Figures[]): Figures => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)];

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const line = (name: string, f: Figures | undefined) =>
  f
    ? `    ${name.padEnd(28)} ${fmt(f.rps, 0).padStart(8)} req/s   p50 ${fmt(f.p50).padStart(6)} ms   p99 ${fmt(f.p99).padStart(6)} ms   server CPU ${fmt(f.cpuUs, 0).padStart(5)} µs/req   [${f.statuses}]`
    : '';

async function main(): Promise<void> {
  console.log(
    `bench:http — ${SECONDS}s per measurement, ${ROUNDS} interleaved rounds (median shown), ${CONNECTIONS} connections, workers ${WORKERS.join(',')}${BASELINE ? `, baseline ${BASELINE}` : ''}`,
  );
  const summary: string[] = [];
  for (const workers of WORKERS) {
    console.log(`\n== ${workers} worker(s)`);
    const env = { CACHE_MAX_ENTRIES: '1', LOG_LEVEL: 'warn' };
    const targets: Target[] = [];
    try {
      targets.push(await rerumTarget('rerum', workers, env));
      if (BASELINE) targets.push(await rerumTarget('baseline', workers, { ...env, RERUM_SCRIPT: BASELINE }));
      targets.push(await bareTarget(workers, targets[0].body, targets[0].headers));
      // all targets up at once, measured in turn, round after round: drift on a shared machine hits all alike
      const samples = new Map<string, Figures[]>();
      for (let round = 0; round < ROUNDS; round++) {
        for (const s of ['hit', 'notModified', 'miss'] as Scenario[]) {
          for (const t of targets) {
            const f = await t.run(s);
            if (!f) continue;
            const k = `${t.name}:${s}`;
            samples.set(k, [...(samples.get(k) ?? []), f]);
          }
        }
        process.stdout.write(`  round ${round + 1}/${ROUNDS} done\n`);
      }
      const get = (t: string, s: Scenario) => (samples.has(`${t}:${s}`) ? median(samples.get(`${t}:${s}`)!) : undefined);
      const r = { hit: get('rerum', 'hit')!, notModified: get('rerum', 'notModified')!, miss: get('rerum', 'miss')! };
      const bare = { hit: get('bare', 'hit')!, notModified: get('bare', 'notModified')! };
      const base = BASELINE
        ? { hit: get('baseline', 'hit')!, notModified: get('baseline', 'notModified')!, miss: get('baseline', 'miss')! }
        : undefined;
      const cpu = (a?: Figures, b?: Figures) => (a && b ? fmt(a.cpuUs / b.cpuUs) : '—');
      const out = [
        `-- ${workers} worker(s), ${targets[0].body.length}-byte body`,
        line('rerum HIT', r.hit),
        line('rerum 304 (If-None-Match)', r.notModified),
        line('rerum MISS (database read)', r.miss),
        line('bare express 200', bare.hit),
        line('bare express 304', bare.notModified),
        ...(base ? [line('baseline HIT', base.hit), line('baseline 304', base.notModified), line('baseline MISS', base.miss)] : []),
        `    ratios (req/s): HIT/bare ${fmt(r.hit.rps / bare.hit.rps)}   304/bare 304 ${fmt(r.notModified.rps / bare.notModified.rps)}   304/HIT ${fmt(r.notModified.rps / r.hit.rps)}   MISS/HIT ${fmt(r.miss.rps / r.hit.rps)}` +
          (base
            ? `   HIT/baseline HIT ${fmt(r.hit.rps / base.hit.rps)}   304/baseline 304 ${fmt(r.notModified.rps / base.notModified.rps)}   MISS/baseline MISS ${fmt(r.miss.rps / base.miss.rps)}`
            : ''),
        `    ratios (server CPU per request, lower is cheaper): HIT/bare ${cpu(r.hit, bare.hit)}   304/bare 304 ${cpu(r.notModified, bare.notModified)}   304/HIT ${cpu(r.notModified, r.hit)}   MISS/HIT ${cpu(r.miss, r.hit)}` +
          (base
            ? `   HIT/baseline HIT ${cpu(r.hit, base.hit)}   304/baseline 304 ${cpu(r.notModified, base.notModified)}   MISS/baseline MISS ${cpu(r.miss, base.miss)}`
            : ''),
      ].filter(Boolean);
      console.log(out.join('\n'));
      summary.push(...out);
    } finally {
      for (const t of targets) await t.stop();
    }
  }
  console.log(`\n== summary\n${summary.join('\n')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
