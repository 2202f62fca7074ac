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
 * Then the ratios rerum/bare. Targets: 304 at least as fast as a HIT; a HIT close to the bare app.
 *
 * Environment: BENCH_SECONDS (default 5) per measurement, BENCH_CONNECTIONS (default 16),
 * BENCH_WORKERS (default "1,4"), BENCH_BASELINE_SCRIPT (optional: another build's dist/server.js,
 * e.g. of an older commit, measured the same way and printed beside, for before/after figures).
 * The machine may be shared: compare only the ratios of one run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createObject, freePort, request, startCluster, type Cluster } from './support/cluster-harness';

// autocannon ships no types; the part used here
interface AcResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  statusCodeStats?: Record<string, { count: number }>;
}
interface AcOptions {
  url: string;
  connections: number;
  duration: number;
  requests?: Array<{ method: string; path: string; headers?: Record<string, string> }>;
  headers?: Record<string, string>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (o: AcOptions) => Promise<AcResult>;

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,4').split(',').map(Number);
const BASELINE = process.env.BENCH_BASELINE_SCRIPT;
const MISS_IDS = 200;

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  statuses: string;
}

async function measure(url: string, opts: Partial<AcOptions> = {}): Promise<Figures> {
  const r = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, ...opts });
  const statuses = Object.entries(r.statusCodeStats ?? {})
    .map(([code, s]) => `${code}×${s.count}`)
    .join(' ');
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, statuses: r.errors ? `${statuses} errors×${r.errors}` : statuses };
}

/** A bare Express app (in its own process tree) answering `body` with `headers`. */
async function startBare(workers: number, body: Buffer, headers: Record<string, string>): Promise<{ base: string; stop(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-http-'));
  const file = path.join(dir, 'body');
  fs.writeFileSync(file, body);
  const port = await freePort();
  const child: ChildProcess = fork(path.join(__dirname, 'support', 'bare-express.js'), [], {
    env: { ...process.env, BARE_PORT: String(port), BARE_WORKERS: String(workers), BARE_BODY_FILE: file, BARE_HEADERS: JSON.stringify(headers), NODE_ENV: 'production' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`bare express exited (${code})`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Headers worth copying into the bare app (the representation; not per-request or validator ones). */
function describing(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const skip = new Set(['date', 'connection', 'keep-alive', 'x-cache', 'x-worker', 'etag', 'content-length', 'transfer-encoding', 'last-modified']);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !skip.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

type Row = Record<string, Figures>;

async function rerumFigures(c: Cluster, label: string): Promise<{ row: Row; body: Buffer; headers: Record<string, string> }> {
  const hitId = (await createObject(c, { type: 'BenchHttp', label: 'hit', body: { value: 'x'.repeat(300) } })).split('/').pop()!;
  const missIds: string[] = [];
  for (let i = 0; i < MISS_IDS; i++) missIds.push((await createObject(c, { type: 'BenchHttp', k: i, body: { value: 'y'.repeat(300) } })).split('/').pop()!);
  const url = `${c.base}/v1/id/${hitId}`;
  // warm: fill every worker's cache with the hit object (the last one read, CACHE_MAX_ENTRIES=1)
  let first: Awaited<ReturnType<typeof request>> | undefined;
  for (let i = 0; i < 8 * c.instances; i++) first = await request('GET', url);
  if (!first || first.status !== 200) throw new Error(`GET ${url}: ${first?.status}`);
  const etag = String(first.headers.etag);
  const row: Row = {};
  process.stdout.write(`  ${label}: HIT`);
  await measure(url, { duration: 1 }); // warm-up
  row.hit = await measure(url);
  process.stdout.write(', 304');
  row.notModified = await measure(url, { headers: { 'If-None-Match': etag } });
  process.stdout.write(', MISS');
  row.miss = await measure(c.base, { requests: missIds.map((id) => ({ method: 'GET', path: `/v1/id/${id}` })) });
  process.stdout.write('\n');
  return { row, body: Buffer.from(first.text, 'utf8'), headers: describing(first.headers as Record<string, string>) };
}

async function bareFigures(workers: number, body: Buffer, headers: Record<string, string>): Promise<Row> {
  const bare = await startBare(workers, body, headers);
  try {
    const url = `${bare.base}/v1/id/x`;
    const first = await request('GET', url);
    process.stdout.write(`  bare express ×${workers}: 200`);
    await measure(url, { duration: 1 });
    const row: Row = { hit: await measure(url) };
    process.stdout.write(', 304\n');
    row.notModified = await measure(url, { headers: { 'If-None-Match': String(first.headers.etag) } });
    return row;
  } finally {
    bare.stop();
  }
}

const fmt = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '—');
const line = (name: string, f: Figures | undefined) =>
  f ? `    ${name.padEnd(28)} ${fmt(f.rps, 0).padStart(8)} req/s   p50 ${fmt(f.p50).padStart(6)} ms   p99 ${fmt(f.p99).padStart(6)} ms   [${f.statuses}]` : '';

async function main(): Promise<void> {
  console.log(`bench:http — ${SECONDS}s per measurement, ${CONNECTIONS} connections, workers ${WORKERS.join(',')}${BASELINE ? `, baseline ${BASELINE}` : ''}`);
  const summary: string[] = [];
  for (const workers of WORKERS) {
    console.log(`\n== ${workers} worker(s)`);
    const env = { CACHE_MAX_ENTRIES: '1', LOG_LEVEL: 'warn' };
    const c = await startCluster({ instances: workers, noBuild: true, env });
    let rerum: Awaited<ReturnType<typeof rerumFigures>>;
    try {
      rerum = await rerumFigures(c, `rerum ×${workers}`);
    } finally {
      await c.stop();
    }
    let baseline: Row | undefined;
    if (BASELINE) {
      const b = await startCluster({ instances: workers, noBuild: true, env: { ...env, RERUM_SCRIPT: BASELINE } });
      try {
        baseline = (await rerumFigures(b, `baseline ×${workers}`)).row;
      } finally {
        await b.stop();
      }
    }
    const bare = await bareFigures(workers, rerum.body, rerum.headers);
    const r = rerum.row;
    const out = [
      `-- ${workers} worker(s), ${rerum.body.length}-byte body`,
      line('rerum HIT', r.hit),
      line('rerum 304 (If-None-Match)', r.notModified),
      line('rerum MISS (database read)', r.miss),
      line('bare express 200', bare.hit),
      line('bare express 304', bare.notModified),
      ...(baseline ? [line('baseline HIT', baseline.hit), line('baseline 304', baseline.notModified), line('baseline MISS', baseline.miss)] : []),
      `    ratios (req/s): HIT/bare ${fmt(r.hit.rps / bare.hit.rps)}   304/bare 304 ${fmt(r.notModified.rps / bare.notModified.rps)}   304/HIT ${fmt(r.notModified.rps / r.hit.rps)}   MISS/HIT ${fmt(r.miss.rps / r.hit.rps)}` +
        (baseline ? `   HIT/baseline HIT ${fmt(r.hit.rps / baseline.hit.rps)}   304/baseline 304 ${fmt(r.notModified.rps / baseline.notModified.rps)}` : ''),
    ].filter(Boolean);
    console.log(out.join('\n'));
    summary.push(...out);
  }
  console.log(`\n== summary\n${summary.join('\n')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
