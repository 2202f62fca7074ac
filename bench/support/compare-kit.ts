/**
 * Shared parts of `npm run bench:compare` and `npm run bench:profile`: one embedded database process
 * seeded with SEED_COUNT RERUM objects, servers started as plain child processes on it, a local-issuer
 * token valid for all of them, and autocannon workloads (HIT / MISS reads, query HIT / MISS, create,
 * update) whose rotating ids come from one counter shared by all connections, so no two requests of a
 * MISS workload name the same object in a row. Not part of the product.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Collection, type Document } from 'mongodb';
import { composeDocument } from '../../rerum/document';
import { rootMetadata } from '../../rerum/metadata';
import { ROOT, freePort, request } from './cluster-harness';

// autocannon ships no types; the part used here
export interface AcResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  statusCodeStats?: Record<string, { count: number }>;
}
interface AcRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: AcRequest) => AcRequest;
}
export interface AcOptions {
  url: string;
  connections: number;
  duration: number;
  requests?: AcRequest[];
  headers?: Record<string, string>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- autocannon ships no types: typed by hand above
const autocannon = require('autocannon') as (o: AcOptions) => Promise<AcResult>;

export const SEED_COUNT = Number(process.env.BENCH_SEED ?? 10_000);
/** Every server of the run answers for this base, so `@id`s are the same whoever serves them. */
export const BASE = 'http://rerum.bench';
export const ID_PREFIX = `${BASE}/v1/id/`;
export const DB_NAME = 'bench';
export const COLLECTION = 'alpha';
export const AGENT = `${ID_PREFIX}bench-agent`;

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  statuses: string;
  /** Server CPU time (user + system of the target's processes) per request, µs; NaN when unknown. */
  cpuUs: number;
  /** Requests answered in the run. */
  requests: number;
}

/** utime + stime of processes and their direct children, in clock ticks (Linux /proc). */
export function cpuTicks(pids: number[]): number {
  if (pids.length === 0) return NaN;
  const all = new Set(pids);
  const stat = (pid: string | number) => {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  };
  try {
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (pids.includes(Number(stat(d)[1]))) all.add(Number(d));
      } catch {
        /* gone */
      }
    }
  } catch {
    return NaN;
  }
  let ticks = 0;
  for (const pid of all) {
    try {
      const f = stat(pid);
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return ticks;
}
const HEADER_SKIP = new Set([
  'date',
  'connection',
  'keep-alive',
  'x-cache',
  'x-worker',
  'etag',
  'content-length',
  'transfer-encoding',
  'last-modified',
]);
/** Headers worth copying into a bare app (the representation; not per-request or validator ones). */
export const describing = (headers: Record<string, string | string[] | undefined>): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HEADER_SKIP.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
};

export const TICK_US = 1e6 / 100; // USER_HZ

export interface Bench {
  tmp: string;
  mongoUri: string;
  dataDir: string;
  token: string;
  seeds: string[];
  /** The object the HIT workloads read. */
  hitId: string;
  stop(): Promise<void>;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** A RERUM root object as the server stores it. */
export function seedDoc(i: number): Document {
  const _id = `5eed${hex(i, 20)}`;
  const content = {
    type: 'BenchSeed',
    k: i,
    label: `seeded object ${i}`,
    body: { value: `Lorem ipsum dolor sit amet ${i} `.repeat(8) },
    target: `http://example.org/canvas/${i % 500}`,
  };
  const meta = rootMetadata({ context: 'http://store.rerum.io/v1/context.json', apiVersion: '1.1.0' }, AGENT, '2024-01-01T00:00:00.000');
  return composeDocument(content, _id, ID_PREFIX + _id, meta);
}

/** Inserts the SEED_COUNT seed objects (seedDoc) into `coll`; their `_id`s. */
export async function seedCollection(coll: Collection<Document>): Promise<string[]> {
  const seeds: string[] = [];
  for (let from = 0; from < SEED_COUNT; from += 1000) {
    const docs = Array.from({ length: Math.min(1000, SEED_COUNT - from) }, (_, j) => seedDoc(from + j));
    await coll.insertMany(docs);
    for (const d of docs) seeds.push(String(d._id));
  }
  return seeds;
}

function waitMessage(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${what} exited (${code})`)));
  });
}

/** Start the embedded database (its own process), seed it, mint a token. */
/** The environment of the Express + driver floor (bare-driver.ts) on the bench's database. */
export const floorEnv = (bench: Bench): Record<string, string> => ({
  BARE_MONGO_URI: bench.mongoUri,
  BARE_DB: DB_NAME,
  BARE_COLLECTION: COLLECTION,
  BARE_ID_PREFIX: ID_PREFIX,
});

/** `dbNodeArgs`: node options of the database process (bench:profile's `--cpu-prof` for BENCH_PROFILE_TARGET=db). */
export async function startBench(dbNodeArgs: string[] = []): Promise<Bench> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-compare-'));
  const dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const dbPort = await freePort();
  const db = fork(path.join(ROOT, 'dist', 'db', 'embedded', 'standalone.js'), [], {
    execArgv: dbNodeArgs,
    env: { ...process.env, EMBEDDED_MONGO_PORT: String(dbPort), EMBEDDED_MONGO_DBPATH: path.join(tmp, 'db') },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const mongoUri = `mongodb://127.0.0.1:${dbPort}/?directConnection=true`;
  const stopDb = async () => {
    if (db.exitCode !== null) return;
    const gone = new Promise((r) => db.once('exit', r));
    db.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
  };
  try {
    let client: MongoClient | undefined;
    for (let i = 0; !client; i++) {
      const c = new MongoClient(mongoUri, { serverSelectionTimeoutMS: 1000 });
      try {
        await c.connect();
        client = c;
      } catch (e) {
        await c.close().catch(() => undefined);
        if (i > 60) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const seeds = await seedCollection(client.db(DB_NAME).collection<Document>(COLLECTION));
    await client.close();
    const token = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'token.js'), '--agent', AGENT, '--expires', '86400'], {
      env: { ...process.env, DATA_DIR: dataDir, RERUM_BASE: BASE, ISSUER_BASE_URL: '' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split(/\s+/)
      .pop()!;
    return {
      tmp,
      mongoUri,
      dataDir,
      token,
      seeds,
      hitId: seeds[0],
      async stop() {
        await stopDb();
        fs.rmSync(tmp, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await stopDb();
    throw e;
  }
}

export interface Server {
  base: string;
  pid: number;
  stop(): Promise<void>;
}

/** `node [nodeArgs] script` on its own port, until `GET probe` answers 200. */
export async function startProcess(
  script: string,
  env: Record<string, string>,
  opts: { nodeArgs?: string[]; probe?: string; logFile?: string; ready?: 'ipc' | 'http'; port?: number } = {},
): Promise<Server> {
  const port = opts.port ?? (await freePort());
  const out = opts.logFile ? fs.openSync(opts.logFile, 'a') : 'ignore';
  const child = fork(script, [], {
    execArgv: opts.nodeArgs ?? [],
    env: { ...process.env, ...env, PORT: String(port), BARE_PORT: String(port), NODE_ENV: 'production' },
    stdio: ['ignore', out, 'inherit', 'ipc'],
  });
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 20_000))]);
    if (typeof out === 'number') fs.closeSync(out);
  };
  try {
    if (opts.ready === 'ipc') await waitMessage(child, script);
    else {
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`${script} exited (${child.exitCode})`);
        const r = await request('GET', base + (opts.probe ?? '/v1/api'), { timeoutMs: 2000 }).catch(() => undefined);
        if (r?.status === 200) break;
        if (Date.now() > deadline) throw new Error(`${script} did not come up`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, pid: child.pid ?? 0, stop };
}

/** The real server (this build's dist/server.js, or another build's) on the bench database. */
export function startRerum(
  bench: Bench,
  script = path.join(ROOT, 'dist', 'server.js'),
  extra: { nodeArgs?: string[]; env?: Record<string, string>; port?: number } = {},
): Promise<Server> {
  return startProcess(
    script,
    {
      RERUM_BASE: BASE,
      MONGO_CONNECTION_STRING: bench.mongoUri,
      MONGODBNAME: DB_NAME,
      MONGODBCOLLECTION: COLLECTION,
      DATA_DIR: bench.dataDir,
      ISSUER_BASE_URL: '',
      // one entry: every MISS workload request misses; HIT workloads warm their entry first
      CACHE_MAX_ENTRIES: '1',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      ...extra.env,
    },
    { nodeArgs: extra.nodeArgs, logFile: path.join(bench.tmp, `server-${Date.now()}.log`), port: extra.port },
  );
}

export type Workload = 'hit' | 'miss' | 'queryHit' | 'queryMiss' | 'create' | 'update';
export const WORKLOADS: Workload[] = ['hit', 'miss', 'queryHit', 'queryMiss', 'create', 'update'];
/** The run's shape from the environment, shared by bench:compare and bench:reference. */
export const RUN = {
  seconds: Number(process.env.BENCH_SECONDS ?? 5),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 32),
  rounds: Number(process.env.BENCH_ROUNDS ?? 3),
  /** Seconds of each workload on each target before the first round, not measured (JIT warm-up). */
  warmup: Number(process.env.BENCH_WARMUP ?? 0),
  workloads: (process.env.BENCH_WORKLOADS ? process.env.BENCH_WORKLOADS.split(',') : WORKLOADS) as Workload[],
};
export const LABELS: Record<Workload, string> = {
  hit: 'GET /v1/id HIT',
  miss: 'GET /v1/id MISS',
  queryHit: 'POST /v1/api/query HIT',
  queryMiss: 'POST /v1/api/query MISS',
  create: 'POST /v1/api/create',
  update: 'PUT /v1/api/update',
};

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const queryBody = (id: string) => JSON.stringify({ '@id': ID_PREFIX + id });

/** The autocannon requests of a workload; rotating workloads start at a random seed. */
export function workloadRequests(bench: Bench, w: Workload): AcRequest[] {
  const auth = { Authorization: `Bearer ${bench.token}` };
  let i = Math.floor(Math.random() * bench.seeds.length);
  const next = () => bench.seeds[i++ % bench.seeds.length];
  switch (w) {
    case 'hit':
      return [{ method: 'GET', path: `/v1/id/${bench.hitId}` }];
    case 'miss':
      return [{ method: 'GET', path: '/', setupRequest: (r) => ({ ...r, path: `/v1/id/${next()}` }) }];
    case 'queryHit':
      return [{ method: 'POST', path: '/v1/api/query', headers: JSON_HEADERS, body: queryBody(bench.hitId) }];
    case 'queryMiss':
      return [{ method: 'POST', path: '/v1/api/query', headers: JSON_HEADERS, setupRequest: (r) => ({ ...r, body: queryBody(next()) }) }];
    case 'create':
      return [
        {
          method: 'POST',
          path: '/v1/api/create',
          headers: { ...JSON_HEADERS, ...auth },
          body: JSON.stringify({ type: 'BenchCreate', label: 'created', body: { value: 'Lorem ipsum dolor sit amet '.repeat(8) } }),
        },
      ];
    case 'update':
      return [
        {
          method: 'PUT',
          path: '/v1/api/update',
          headers: { ...JSON_HEADERS, ...auth },
          setupRequest: (r) => ({
            ...r,
            body: JSON.stringify({
              '@id': ID_PREFIX + next(),
              type: 'BenchSeed',
              label: 'updated',
              body: { value: 'Lorem ipsum '.repeat(16) },
            }),
          }),
        },
      ];
  }
}

/** Make the HIT workloads' entries present (several times: a cluster's workers each fill their own). */
export async function warm(base: string, bench: Bench, w: Workload, times = 8): Promise<void> {
  for (let i = 0; i < times; i++) {
    const r =
      w === 'hit'
        ? await request('GET', `${base}/v1/id/${bench.hitId}`)
        : await request('POST', `${base}/v1/api/query`, { body: { '@id': ID_PREFIX + bench.hitId } });
    if (r.status !== 200) throw new Error(`warm ${w} on ${base}: ${r.status} ${r.text.slice(0, 200)}`);
  }
}

export async function measure(
  base: string,
  bench: Bench,
  w: Workload,
  seconds: number,
  connections: number,
  pids: number[] = [],
): Promise<Figures> {
  return load({ url: base, connections, duration: seconds, requests: workloadRequests(bench, w) }, pids);
}

/** One autocannon run, with the server CPU time per request of the processes `pids` (/proc). */
export async function load(options: AcOptions, pids: number[] = []): Promise<Figures> {
  const before = cpuTicks(pids);
  const r = await autocannon(options);
  const cpuUs = ((cpuTicks(pids) - before) * TICK_US) / Math.max(1, r.requests.total);
  const statuses = Object.entries(r.statusCodeStats ?? {})
    .map(([code, s]) => `${code}×${s.count}`)
    .join(' ');
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    statuses: r.errors ? `${statuses} errors×${r.errors}` : statuses,
    cpuUs,
    requests: r.requests.total,
  };
}
