/**
 * Randomized, model-based concurrency check of the read cache against a real PM2 cluster.
 *
 *   npm run race:random                          (long run: 4 minutes)
 *   node dist/scripts/race-random.js [--duration 45] [--ops N] [--seed S] [--clients 4] [--instances 4]
 *                                    [--broken-sync] [--verbose]
 *   node dist/scripts/race-random.js --base URL --mongo URI --token T [--uncached URL]
 *                                    (a server that is already running; --uncached: one with CACHING=false on the same database)
 *
 * Without --base it starts its own cluster (ecosystem.config.cjs: INSTANCES workers, CACHING=true, the
 * embedded database as its own PM2 app, a private PM2_HOME and DATA_DIR on free ports, all removed
 * at the end), mints a local-issuer token and connects to the same database with the `mongodb` driver.
 *
 * Several clients run at once, each on its own "families" of objects (every document of a family
 * carries the content field `fam`, and a search word of its own). A client repeats rounds:
 *   1. warm: random cached reads of its family (id, history, since, query with operators over
 *      `__rerum` fields and content, search, phrase search), several times each, so the workers cache them;
 *   2. burst: 1–4 random writes sent at the same moment (create, bulkCreate, update, patch, set,
 *      unset, overwrite, delete, release, bulkUpdate — often on the SAME object, on a parent and
 *      its child, and bulkUpdate naming one object two or three times), with more random reads
 *      (fresh query keys) in flight while they run;
 *   3. check: every key read so far in the round, plus alias URLs (`/v1/id/nope%2FS`, `S%23x`,
 *      `S%3Fx`, `S%20`, `%20S`, also for history and since), several times each on fresh
 *      connections, so every worker answers and the second and later reads are cache HITs.
 *
 * Oracle. Every read in every phase is recorded with the time its request was sent (s). After its
 * response the expected answer is computed from a read of the database through the driver (the same
 * lookup or filter the uncached server runs, finished at d). The read is checked only when no write
 * that could change its answer was in flight at any moment of [s, d] (writes are tracked from
 * request sent to response received, per family, and per object for id reads); then the database
 * did not change while the read ran, so the only correct answer is the driver's, and any other
 * answer is a state older than a write acknowledged before the read started (or one that never
 * existed). Reads overlapping such a write are counted as "unchecked". No false positives under
 * concurrency; and the stale entries concurrent writes leave behind are seen by the check phase.
 * The alias URLs are judged against an uncached server (CACHING=false, started beside the cluster on
 * the same database): their right answer is whatever it answers (404 today). 5% of the other checked
 * reads are also asked of it, as a check of the driver oracle (disagreements are printed as warnings).
 * Each stale entry is attributed to the bursts since that worker last answered that key right, and
 * categorized by which of them raced on the objects the wrong answer has wrong.
 *
 * Prints operations, reads checked (HITs among them), and every stale read (route, URL, worker,
 * X-Cache, expected vs got, the bursts since that worker last answered that key right, the seed). Exits 1 on any stale read (or if no
 * checked read was a HIT: then it could not have seen one), 2 when it could not run.
 * --broken-sync (negative control, own cluster only): CACHE_SYNC_DISABLED_FOR_TEST=1, expects stale reads.
 * The seed fixes each client's choices; the interleaving of concurrent requests still varies.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Collection, type Document, type Filter } from 'mongodb';
import { ROOT, awaitCluster, failWithLogs, freePort, pm2Logs, request, type HttpResult } from '../bench/support/cluster-harness';
import { loadConfig } from '../config';
import { toResponse } from '../rerum/document';
import { isDeleted, treeRootOf } from '../rerum/metadata';
import { ancestorsOf, descendantsOf } from '../rerum/tree';
import type { RerumDocument, StoredDocument } from '../types/rerum';

// ---------------------------------------------------------------- options

interface Options {
  durationS: number;
  maxOps: number;
  seed: number;
  clients: number;
  instances: number;
  base?: string;
  mongo?: string;
  token?: string;
  uncached?: string;
  brokenSync: boolean;
  verbose: boolean;
  maxReport: number;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    durationS: 45,
    maxOps: Infinity,
    seed: Math.floor(Math.random() * 2 ** 31),
    clients: 4,
    instances: 4,
    brokenSync: false,
    verbose: false,
    maxReport: 20,
  };
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a number ≥ 0 (got ${String(v)})`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    switch (a) {
      case '--duration':
        o.durationS = num('duration', v());
        break;
      case '--ops':
        o.maxOps = num('ops', v());
        break;
      case '--seed':
        o.seed = Math.floor(num('seed', v()));
        break;
      case '--clients':
        o.clients = Math.max(1, Math.floor(num('clients', v())));
        break;
      case '--instances':
        o.instances = Math.max(1, Math.floor(num('instances', v())));
        break;
      case '--base':
        o.base = v()?.replace(/\/+$/, '');
        break;
      case '--mongo':
        o.mongo = v();
        break;
      case '--token':
        o.token = v();
        break;
      case '--uncached':
        o.uncached = v()?.replace(/\/+$/, '');
        break;
      case '--broken-sync':
        o.brokenSync = true;
        break;
      case '--verbose':
        o.verbose = true;
        break;
      case '--max-report':
        o.maxReport = num('max-report', v());
        break;
      case '--help':
      case '-h':
        console.log(fs.readFileSync(__filename.replace(/\.js$/, '.ts'), 'utf8').split('*/')[0]);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (o.base && !o.mongo) throw new Error('--base needs --mongo (the database the server uses) and --token');
  if (o.base && o.brokenSync) throw new Error('--broken-sync needs its own cluster (no --base)');
  return o;
}

// ---------------------------------------------------------------- helpers

/** mulberry32: small, fast, seedable. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  weighted<T extends string>(w: Record<T, number>): T {
    const entries = Object.entries(w) as [T, number][];
    let r = this.next() * entries.reduce((n, [, x]) => n + x, 0);
    for (const [k, x] of entries) if ((r -= x) < 0) return k;
    return entries[entries.length - 1][0];
  }
}

const now = (): number => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortDeep((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}
const canon = (v: unknown): string => JSON.stringify(sortDeep(v));
const segOf = (id: string): string => id.slice(id.lastIndexOf('/') + 1);
const short = (id: unknown): string => (typeof id === 'string' ? segOf(id).slice(-6) : String(id));

// ---------------------------------------------------------------- the cluster

interface Target {
  base: string;
  mongoUri: string;
  dbName: string;
  collection: string;
  idPrefix: string;
  token: string;
  dataDir?: string;
  stop(): Promise<void>;
  logs(): string;
}

function runPm2(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      path.join(ROOT, 'node_modules', '.bin', 'pm2'),
      args,
      { cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        resolve({ code: err ? 1 : 0, out: `${String(stdout)}${String(stderr)}` });
      },
    );
  });
}

async function startOwnCluster(opts: Options): Promise<Target> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rerum-race-random-'));
  const pm2Home = path.join(tmp, 'pm2');
  const dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const dbPort = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PM2_HOME: pm2Home,
    PM2_APP_NAME: `rerum-random-${port}`,
    INSTANCES: String(opts.instances),
    PORT: String(port),
    RERUM_BASE: base,
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    CACHING: 'true',
    NODE_ENV: 'production',
    EMBEDDED_MONGO_PORT: String(dbPort),
    EMBEDDED_MONGO_DBPATH: path.join(dataDir, 'embedded-mongo'),
    ...(opts.brokenSync ? { CACHE_SYNC_DISABLED_FOR_TEST: '1' } : {}),
  };
  for (const k of [
    'MONGO_CONNECTION_STRING',
    'NODE_APP_INSTANCE',
    'pm_id',
    'JEST_WORKER_ID',
    'RERUM_PREFIX',
    'RERUM_ID_PREFIX',
    'AUDIENCE',
    'ISSUER_BASE_URL',
  ])
    delete env[k];
  let stopped = false;
  const logs = () => pm2Logs(pm2Home, 20);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await runPm2(['kill'], env, 60_000);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  cleanupHooks.push(stop);
  try {
    const r = await runPm2(['start', path.join(ROOT, 'ecosystem.config.cjs')], env);
    if (r.code !== 0) throw new Error(`pm2 start failed:\n${r.out}`);
    await awaitCluster(base, (j) => j.workerCount === opts.instances && !!j.workers?.every((w) => w.leaseValid), 120_000, logs);
    const t = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'token.js'), '--agent', `${base}/v1/id/race-random-agent`], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const token = (t.stdout ?? '').trim().split(/\s+/).pop();
    if (t.status !== 0 || !token) throw new Error(`token: ${t.stderr}`);
    const config = loadConfig(env);
    return {
      base,
      mongoUri: `mongodb://127.0.0.1:${dbPort}/?directConnection=true`,
      dbName: config.mongoDbName,
      collection: config.mongoCollection,
      idPrefix: config.idPrefix,
      token,
      dataDir,
      stop,
      logs,
    };
  } catch (e) {
    return failWithLogs(e, logs, stop);
  }
}

/**
 * A single uncached server (CACHING=false, no PM2) on the cluster's database: the oracle for the
 * alias URLs, whose right answer is "what the uncached server answers", and a cross-check of the
 * driver oracle on a sample of the other reads.
 */
async function startUncachedServer(
  base: string,
  mongoUri: string,
  dataDir: string | undefined,
): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    RERUM_BASE: base,
    CACHING: 'false',
    MONGO_CONNECTION_STRING: mongoUri,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
  };
  if (dataDir) env.DATA_DIR = dataDir;
  for (const k of ['NODE_APP_INSTANCE', 'pm_id', 'PM2_HOME', 'RERUM_PREFIX', 'RERUM_ID_PREFIX', 'AUDIENCE', 'ISSUER_BASE_URL'])
    delete env[k];
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'server.js')], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  cleanupHooks.unshift(stop);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the uncached server exited: ${stderr}`);
    try {
      if ((await request('GET', `${url}/v1/api`, { timeoutMs: 3000 })).status === 200) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`the uncached server did not come up: ${stderr}`);
    await sleep(200);
  }
  return { url, stop };
}

const cleanupHooks: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  for (const h of cleanupHooks.splice(0)) await h().catch(() => {});
}

// ---------------------------------------------------------------- the model: families and writes in flight

interface Family {
  name: string;
  word: string;
  client: number;
  /** Segments of every document made in this family, with what the client knows of them. */
  members: string[];
  parent: Map<string, string>;
  children: Map<string, string[]>;
  deleted: Set<string>;
  released: Set<string>;
  /** The root @id of its first tree. */
  rootId: string;
  lastBurst: string;
  /** Every burst on this family: when it ended, what it was. */
  bursts: Burst[];
}

interface Burst {
  end: number;
  desc: string;
  /** Objects two or more of its writes touched at once. */
  same: Set<string>;
  /** Objects a bulkUpdate of it named more than once. */
  bulkdup: Set<string>;
  /** A delete or release ran beside other writes. */
  multistep: boolean;
}

interface WriteRec {
  fams: string[];
  /** Existing objects it may change; null: any document of its families (delete, release). */
  objs: Set<string> | null;
  start: number;
  end: number;
}

const writesByFam = new Map<string, WriteRec[]>();

function beginWrite(fams: string[], objs: Set<string> | null): WriteRec {
  const rec: WriteRec = { fams, objs, start: now(), end: Infinity };
  for (const f of fams) {
    const list = writesByFam.get(f) ?? [];
    list.push(rec);
    writesByFam.set(f, list);
  }
  return rec;
}

/** True when no write that could change what `fams` (or, with `obj`, that one object) answer ran at any moment of [from, to]. */
function stable(fams: string[], obj: string | undefined, from: number, to: number): boolean {
  for (const f of fams) {
    for (const w of writesByFam.get(f) ?? []) {
      if (w.start > to || w.end < from) continue;
      if (obj === undefined || w.objs === null || w.objs.has(obj)) return false;
    }
  }
  return true;
}

function pruneWrites(): void {
  const old = now() - 120_000;
  for (const [f, list] of writesByFam)
    writesByFam.set(
      f,
      list.filter((w) => w.end > old),
    );
}

// ---------------------------------------------------------------- reads: what is asked, and what the database says

type Route = 'id' | 'history' | 'since' | 'query' | 'search' | 'phrase';

interface ReadSpec {
  route: Route;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  fams: string[];
  /** For id/history/since: the id segment as the server decodes it. */
  segment?: string;
  /** id reads depend on one object only. */
  obj?: string;
  alias?: boolean;
  /** For query: the filter and limit. */
  filter?: Record<string, unknown>;
  limit?: number;
  searchText?: string;
  key: string;
}

interface Answer {
  status: number;
  body?: unknown;
}

class Oracle {
  private memo = new Map<string, { at: number; answer: Answer }>();
  driverReads = 0;
  uncachedReads = 0;
  constructor(
    private readonly coll: Collection<Document>,
    private readonly idPrefix: string,
    /** An uncached server on the same database (the alias URLs' oracle), if there is one. */
    readonly uncachedUrl?: string,
  ) {}

  /** The uncached server's answer to the same request. */
  async uncached(spec: ReadSpec): Promise<Answer> {
    this.uncachedReads++;
    const r = await request(spec.method, this.uncachedUrl + spec.path, { body: spec.body, timeoutMs: 30_000 });
    return { status: r.status, body: r.json };
  }

  private async bySegment(seg: string): Promise<StoredDocument | null> {
    return (await this.coll.findOne({
      $or: [{ _id: seg }, { '__rerum.slug': seg }],
    } as Filter<Document>)) as unknown as StoredDocument | null;
  }

  private async compute(spec: ReadSpec): Promise<Answer> {
    if (spec.alias && this.uncachedUrl) return this.uncached(spec);
    this.driverReads++;
    const resp = (d: unknown) => toResponse(d as StoredDocument, this.idPrefix);
    switch (spec.route) {
      case 'id': {
        const doc = await this.bySegment(spec.segment!);
        if (!doc || isDeleted(doc)) return { status: 404 };
        return { status: 200, body: resp(doc) };
      }
      case 'history':
      case 'since': {
        const doc = await this.bySegment(spec.segment!);
        if (!doc) return { status: 404 };
        if (isDeleted(doc)) return { status: 200, body: [] };
        const root = treeRootOf(doc as RerumDocument);
        const versions = (await this.coll
          .find({ $or: [{ '@id': root }, { '__rerum.history.prime': root }], __deleted: { $exists: false } } as Filter<Document>)
          .toArray()) as unknown as RerumDocument[];
        const walk = spec.route === 'history' ? ancestorsOf : descendantsOf;
        return { status: 200, body: walk(versions, doc as RerumDocument).map(resp) };
      }
      case 'query': {
        const docs = await this.coll
          .find({ $and: [spec.filter!, { __deleted: { $exists: false } }] } as Filter<Document>)
          .limit(spec.limit ?? 100)
          .toArray();
        return { status: 200, body: docs.map(resp) };
      }
      case 'search':
      case 'phrase': {
        const text = spec.route === 'phrase' ? `"${spec.searchText!.replace(/"/g, ' ').trim()}"` : spec.searchText!;
        const docs = await this.coll.find({ $text: { $search: text }, __deleted: { $exists: false } } as Filter<Document>).toArray();
        return { status: 200, body: docs.map(resp) };
      }
    }
  }

  /** The answer the database gives now, and the time before it was asked (memoized while nothing it depends on was written). */
  async expected(spec: ReadSpec): Promise<{ at: number; answer: Answer }> {
    const m = this.memo.get(spec.key);
    if (m && stable(spec.fams, spec.obj, m.at, now())) return m;
    const at = now();
    const answer = await this.compute(spec);
    const entry = { at, answer };
    this.memo.set(spec.key, entry);
    return entry;
  }

  prune(): void {
    if (this.memo.size > 20_000) this.memo.clear();
  }
}

/** Lists are compared as sets (order is the database's natural or score order); search scores are left out. */
function normalize(route: Route, a: Answer): string {
  if (a.status !== 200) return `HTTP ${a.status}`;
  if (!Array.isArray(a.body)) return canon(a.body);
  const items = (a.body as Record<string, unknown>[]).map((x) => {
    if (route !== 'search' && route !== 'phrase') return canon(x);
    const r = { ...(x.__rerum as Record<string, unknown> | undefined) };
    delete r.score;
    return canon({ ...x, __rerum: r });
  });
  return JSON.stringify(items.sort());
}

/** Segments of the objects two answers disagree on (missing from one, or different). */
function differingObjects(a: Answer, b: Answer): Set<string> {
  const items = (x: Answer): Map<string, string> => {
    const list =
      x.status !== 200
        ? []
        : Array.isArray(x.body)
          ? (x.body as Record<string, unknown>[])
          : x.body
            ? [x.body as Record<string, unknown>]
            : [];
    return new Map(list.map((o) => [segOf(String(o['@id'] ?? o.id ?? '')), canon(o)]));
  };
  const A = items(a);
  const B = items(b);
  const out = new Set<string>();
  for (const [k, v] of A) if (B.get(k) !== v) out.add(k);
  for (const [k, v] of B) if (A.get(k) !== v) out.add(k);
  return out;
}

/** A short human description of an answer: status, and per object its id, n, tag and history/release links. */
function describe(a: Answer): string {
  if (a.status !== 200) return `HTTP ${a.status}`;
  const one = (x: Record<string, unknown>) => {
    const r = (x.__rerum ?? {}) as { history?: { next?: string[]; previous?: string }; isOverwritten?: string; isReleased?: string };
    const bits = [`${short(x['@id'] ?? x.id)} n=${String(x.n)}`];
    if (x.tag !== undefined) bits.push(`tag=${String(x.tag)}`);
    bits.push(`next=[${(r.history?.next ?? []).map(short).join(',')}]`);
    if (r.isOverwritten) bits.push(`overwritten=${r.isOverwritten.slice(11)}`);
    if (r.isReleased) bits.push('released');
    return bits.join(' ');
  };
  if (Array.isArray(a.body)) return `[${(a.body as Record<string, unknown>[]).map(one).join(' | ')}]`;
  return a.body && typeof a.body === 'object' ? `{${one(a.body as Record<string, unknown>)}}` : String(a.body);
}

// ---------------------------------------------------------------- counters and the report

interface Stale {
  client: number;
  round: number;
  phase: string;
  route: Route;
  method: string;
  path: string;
  body?: unknown;
  worker: string;
  cache: string;
  expected: string;
  got: string;
  sinceLastWriteMs: number;
  lastBurst: string;
  category: string;
  /** The key and the wrong answer: one stale cache entry. */
  entry: string;
}

const CATEGORIES = {
  same: 'concurrent writes on one object (defect 1)',
  bulkdup: 'bulkUpdate naming one object twice (defect 2)',
  both: 'concurrent writes on one object incl. a bulkUpdate naming it twice (defects 1/2)',
  alias: 'alias URL answered from another entry (defect 3)',
  multistep: 'delete or release (multi-step, may be undone on 409) racing other writes',
  other: 'other',
};
const staleOrigins = new Map<string, { category: string; burst: string }>();
/** key|worker → when a read of it, answered right by that worker, was sent. */
const lastFresh = new Map<string, number>();

const stats = {
  ops: 0,
  writes: {} as Record<string, number>,
  writeStatus: {} as Record<string, number>,
  /** The first few 5xx write answers, with what the server said (the summary prints them). */
  serverErrors: [] as string[],
  reads: 0,
  readErrors: 0,
  checked: 0,
  checkedHits: 0,
  unchecked: 0,
  byRoute: {} as Record<string, { checked: number; hits: number; stale: number }>,
  workers: new Set<string>(),
  aliasChecked: 0,
  rounds: 0,
  oracleChecks: 0,
  oracleDisagreements: [] as string[],
  stale: [] as Stale[],
};
const bump = (o: Record<string, number>, k: string) => (o[k] = (o[k] ?? 0) + 1);

// ---------------------------------------------------------------- one client

const ALIAS_FORMS: Array<(s: string) => string> = [
  (s) => `nope%2F${s}`,
  (s) => `${s}%23x`,
  (s) => `${s}%3Fx`,
  (s) => `${s}%20`,
  (s) => `%20${s}`,
];
const TAGS = ['alpha', 'beta', 'gamma'];
const EXTRAS = ['x1', 'x2', 'x3'];
const MAX_MEMBERS = 30; // + at most 16 from one burst: query limits are ≥ 50, a family always fits in one page

class Client {
  private rng: Rng;
  private famCount = 0;
  round = 0;

  constructor(
    readonly index: number,
    private readonly run: Run,
  ) {
    this.rng = new Rng((run.opts.seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  }

  private get t(): Target {
    return this.run.target;
  }

  // ------------------------------------------------ reads

  private randomMember(f: Family, liveOnly = false): string {
    const live = f.members.filter((m) => !f.deleted.has(m));
    return this.rng.pick(liveOnly && live.length ? live : this.rng.chance(0.9) && live.length ? live : f.members);
  }

  private querySpec(fams: Family[], clause: Record<string, unknown>, limit?: number): ReadSpec {
    const famCond = fams.length === 1 ? fams[0].name : { $in: fams.map((f) => f.name) };
    const filter = { fam: famCond, ...clause };
    return {
      route: 'query',
      method: 'POST',
      path: `/v1/api/query${limit !== undefined ? `?limit=${limit}` : ''}`,
      body: filter,
      fams: fams.map((f) => f.name),
      filter,
      limit: limit ?? 100,
      key: `query ${canon(filter)} ${limit ?? ''}`,
    };
  }

  /** A random filter clause over `__rerum` fields and content. */
  private randomClause(f: Family): Record<string, unknown> {
    const r = this.rng;
    const member = () => this.t.idPrefix + this.randomMember(f);
    switch (r.int(14)) {
      case 0:
      case 1:
      case 2:
        return { '__rerum.history.next': { $size: r.int(4) } };
      case 3:
        return { '__rerum.history.next.0': { $exists: r.chance(0.5) } };
      case 4:
        return { '__rerum.history.prime': r.chance(0.5) ? 'root' : f.rootId };
      case 5:
        return { '__rerum.isReleased': r.chance(0.5) ? '' : { $ne: '' } };
      case 6:
        return { '__rerum.isOverwritten': r.chance(0.5) ? '' : { $ne: '' } };
      case 7:
        return { '__rerum.history.previous': member() };
      case 8:
        return { '__rerum.history.next': member() };
      case 9:
        return { n: r.chance(0.5) ? { $gte: r.int(10) } : { $lt: r.int(10) } };
      case 10:
        return { tag: r.chance(0.7) ? r.pick(TAGS) : { $exists: false } };
      case 11:
        return { tag: r.pick(TAGS), '__rerum.history.next': { $size: r.int(3) } };
      case 12:
        return { $or: [{ tag: r.pick(TAGS) }, { '__rerum.history.next': { $size: r.range(1, 2) } }] };
      default:
        return { [`extra.${r.pick(EXTRAS)}`]: { $exists: true } };
    }
  }

  private idSpec(route: 'id' | 'history' | 'since', f: Family, seg: string, alias?: string): ReadSpec {
    const encoded = alias ?? encodeURIComponent(seg);
    const decoded = decodeURIComponent(encoded);
    return {
      route,
      method: 'GET',
      path: `/v1/${route}/${encoded}`,
      fams: [f.name],
      segment: decoded,
      // an alias depends on nothing but, should the server read it as S, on S: conservative
      obj: route === 'id' ? seg : undefined,
      alias: alias !== undefined,
      key: alias !== undefined ? `${route} alias ${encoded}` : `${route} ${decoded}`,
    };
  }

  private randomRead(f: Family, freshKey = false): ReadSpec {
    const r = this.rng;
    const kind = r.weighted({ id: 20, history: 8, since: 8, query: 50, search: 8, phrase: 4, cross: 4 });
    const limit = freshKey || r.chance(0.3) ? r.range(50, 99) : undefined;
    switch (kind) {
      case 'id':
      case 'history':
      case 'since':
        return this.idSpec(kind, f, this.randomMember(f));
      case 'search':
      case 'phrase': {
        const text = kind === 'phrase' ? `${f.word} ${r.pick(TAGS)}` : f.word;
        const body = r.chance(0.5) ? { searchText: text } : { searchText: text, options: {} };
        const route = kind === 'phrase' ? '/v1/api/search/phrase' : '/v1/api/search';
        const l = limit ?? undefined;
        return {
          route: kind,
          method: 'POST',
          path: `${route}${l !== undefined ? `?limit=${l}` : ''}`,
          body,
          fams: [f.name],
          searchText: text,
          key: `${kind} ${canon(body)} ${l ?? ''}`,
        };
      }
      case 'cross': {
        // two families can hold up to ~92 live documents: the default limit (100) keeps them in one page
        const other = this.run.randomFamily(r, f);
        return this.querySpec(other ? [f, other] : [f], this.randomClause(f));
      }
      default:
        return this.querySpec([f], this.randomClause(f), limit);
    }
  }

  /** One read, judged. */
  private async read(spec: ReadSpec, phase: string, f: Family): Promise<void> {
    if (this.run.over()) return;
    const s = now();
    let res: HttpResult;
    stats.ops++;
    stats.reads++;
    try {
      res = await request(spec.method, this.t.base + spec.path, { body: spec.body, timeoutMs: 30_000 });
    } catch (e) {
      stats.readErrors++;
      if (this.run.opts.verbose) console.log(`read error ${spec.path}: ${(e as Error).message}`);
      return;
    }
    const worker = String(res.headers['x-worker'] ?? '?');
    const cache = String(res.headers['x-cache'] ?? '-');
    stats.workers.add(worker);
    if (!stable(spec.fams, spec.obj, s, now())) {
      stats.unchecked++; // a write overlapped: no need to ask the database
      return;
    }
    const exp = await this.run.oracle.expected(spec);
    const d = now();
    if (!stable(spec.fams, spec.obj, Math.min(s, exp.at), d)) {
      stats.unchecked++;
      return;
    }
    const r = (stats.byRoute[spec.alias ? `${spec.route} (alias)` : spec.route] ??= { checked: 0, hits: 0, stale: 0 });
    stats.checked++;
    r.checked++;
    if (spec.alias) stats.aliasChecked++;
    if (cache === 'HIT') {
      stats.checkedHits++;
      r.hits++;
    }
    const got: Answer = { status: res.status, body: res.json };
    const freshKey = `${spec.key}|${worker}`;
    if (normalize(spec.route, got) === normalize(spec.route, exp.answer)) {
      lastFresh.set(freshKey, s);
      // now and then: does the driver oracle agree with the uncached server? (a check of this checker)
      if (!spec.alias && this.run.oracle.uncachedUrl && this.rng.chance(0.05)) {
        const u = await this.run.oracle.uncached(spec);
        if (stable(spec.fams, spec.obj, Math.min(s, exp.at), now())) {
          stats.oracleChecks++;
          if (normalize(spec.route, u) !== normalize(spec.route, exp.answer)) {
            stats.oracleDisagreements.push(
              `${spec.method} ${spec.path} ${spec.body ? JSON.stringify(spec.body) : ''}: driver ${describe(exp.answer)}, uncached server ${describe(u)}`,
            );
          }
        }
      }
      return;
    }
    r.stale++;
    const lastWrite = Math.max(0, ...spec.fams.map((n) => this.run.lastWriteEndOf(n)));
    // One stale entry is usually read many times, in later rounds too: it is attributed to the
    // burst before the first read that saw it.
    const entry = `${spec.key}|${normalize(spec.route, got)}`;
    let origin = staleOrigins.get(entry);
    if (!origin) {
      // the candidates: the family's bursts since this worker last answered this key right
      const since = lastFresh.get(freshKey) ?? -Infinity;
      const fams = spec.fams.map((n) => this.run.families.find((x) => x.name === n)).filter((x): x is Family => !!x);
      const candidates = fams.flatMap((x) => x.bursts).filter((b) => b.end > since && b.end <= s);
      // which objects the wrong answer has wrong, and which candidate bursts raced on them
      const wrong = differingObjects(got, exp.answer);
      const raced = (sel: (b: Burst) => Set<string>) => candidates.some((b) => [...sel(b)].some((o) => wrong.has(o)));
      const same = raced((b) => b.same);
      const dup = raced((b) => b.bulkdup);
      const category = spec.alias
        ? CATEGORIES.alias
        : dup && same
          ? CATEGORIES.both
          : dup
            ? CATEGORIES.bulkdup
            : same
              ? CATEGORIES.same
              : candidates.some((b) => b.multistep)
                ? CATEGORIES.multistep
                : CATEGORIES.other;
      const shown = candidates.slice(-3).map((b) => b.desc);
      const burst = candidates.length
        ? `${candidates.length > 3 ? `${candidates.length - 3} earlier bursts … ` : ''}${shown.join(' ; ')}`
        : `(none since this worker last answered it right) last: ${f.lastBurst}`;
      origin = { category, burst };
      staleOrigins.set(entry, origin);
    }
    const category = origin.category;
    const st: Stale = {
      client: this.index,
      round: this.round,
      phase,
      route: spec.route,
      method: spec.method,
      path: spec.path,
      body: spec.body,
      worker,
      cache,
      expected: describe(exp.answer),
      got: describe(got),
      sinceLastWriteMs: Math.round(s - lastWrite),
      lastBurst: origin.burst,
      category,
      entry,
    };
    stats.stale.push(st);
    if (this.run.opts.verbose || stats.stale.length <= 3) console.log(`STALE ${formatStale(st, this.run.opts.seed)}`);
  }

  // ------------------------------------------------ writes

  private content(f: Family): Record<string, unknown> {
    const tag = this.rng.pick(TAGS);
    return { type: 'RaceRandom', fam: f.name, n: this.rng.int(10), tag, body: { value: `${f.word} ${tag}` } };
  }

  private learn(f: Family, res: HttpResult, parent?: string): string[] {
    const j = res.json as Record<string, unknown> | Record<string, unknown>[] | undefined;
    const objs = Array.isArray(j) ? j : j ? [((j as Record<string, unknown>).new_obj_state as Record<string, unknown>) ?? j] : [];
    const segs: string[] = [];
    for (const o of objs) {
      const id = (o?.['@id'] ?? o?.id) as string | undefined;
      if (typeof id !== 'string') continue;
      const seg = segOf(id);
      segs.push(seg);
      if (!f.members.includes(seg)) {
        f.members.push(seg);
        if (parent) {
          f.parent.set(seg, parent);
          f.children.set(parent, [...(f.children.get(parent) ?? []), seg]);
        }
      }
    }
    return segs;
  }

  /** One write; resolves to its HTTP status (or "error"). */
  private async write(f: Family, kind: string, target: string, extra: { bulk?: string[] } = {}): Promise<string> {
    const t = this.t;
    const id = t.idPrefix + target;
    let method = 'PUT';
    let url = '';
    let body: unknown;
    let objs: Set<string> | null = new Set([target]);
    switch (kind) {
      case 'create':
        method = 'POST';
        url = '/v1/api/create';
        body = this.content(f);
        objs = new Set();
        break;
      case 'bulkCreate':
        method = 'POST';
        url = '/v1/api/bulkCreate';
        body = Array.from({ length: this.rng.range(1, 3) }, () => this.content(f));
        objs = new Set();
        break;
      case 'update':
        url = '/v1/api/update';
        body = { '@id': id, ...this.content(f) };
        break;
      case 'overwrite':
        url = '/v1/api/overwrite';
        body = { '@id': id, ...this.content(f) };
        break;
      case 'patch':
        method = 'PATCH';
        url = '/v1/api/patch';
        body = { '@id': id, n: this.rng.int(10) };
        break;
      case 'set':
        method = 'PATCH';
        url = '/v1/api/set';
        body = { '@id': id, extra: { [this.rng.pick(EXTRAS)]: this.rng.int(5) }, [`s${this.rng.int(3)}`]: 1 };
        break;
      case 'unset':
        method = 'PATCH';
        url = '/v1/api/unset';
        body = { '@id': id, [this.rng.chance(0.5) ? 'tag' : `s${this.rng.int(3)}`]: null };
        break;
      case 'delete':
        method = 'DELETE';
        url = `/v1/api/delete/${encodeURIComponent(target)}`;
        objs = null;
        break;
      case 'release':
        method = 'PATCH';
        url = `/v1/api/release/${encodeURIComponent(target)}`;
        objs = null;
        break;
      case 'bulkUpdate':
        url = '/v1/api/bulkUpdate';
        body = extra.bulk!.map((seg) => ({ '@id': t.idPrefix + seg, ...this.content(f) }));
        objs = new Set(extra.bulk);
        break;
    }
    const rec = beginWrite([f.name], objs);
    stats.ops++;
    bump(stats.writes, kind);
    let res: HttpResult | undefined;
    try {
      res = await request(method, t.base + url, { body, token: t.token, timeoutMs: 30_000 });
      rec.end = now();
    } catch (e) {
      // the server may still be writing: this family is never "quiet" again, nothing on it is checked
      bump(stats.writeStatus, `${kind} error`);
      if (this.run.opts.verbose) console.log(`write error ${kind}: ${(e as Error).message}`);
      return 'error';
    }
    this.run.noteWriteEnd(f.name, rec.end);
    bump(stats.writeStatus, `${kind} ${res.status}`);
    if (res.status >= 500 && stats.serverErrors.length < 5) stats.serverErrors.push(`${kind} ${res.status}: ${res.text.slice(0, 300)}`);
    if (res.status >= 300) return String(res.status);
    if (kind === 'delete') f.deleted.add(target);
    else if (kind === 'release') f.released.add(target);
    else if (kind === 'create' || kind === 'bulkCreate') this.learn(f, res);
    else if (kind === 'bulkUpdate') {
      const made = this.learn(f, res);
      made.forEach((seg, i) => {
        const p = extra.bulk?.[i];
        if (p && !f.parent.has(seg)) {
          f.parent.set(seg, p);
          f.children.set(p, [...(f.children.get(p) ?? []), seg]);
        }
      });
    } else this.learn(f, res, target);
    return String(res.status);
  }

  private async newFamily(): Promise<Family | undefined> {
    const k = this.famCount++;
    const tag = `${this.run.tag}c${this.index}f${k}`;
    const f: Family = {
      name: `rr-${tag}`,
      word: `zq${tag}`,
      client: this.index,
      members: [],
      parent: new Map(),
      children: new Map(),
      deleted: new Set(),
      released: new Set(),
      rootId: '',
      lastBurst: '(none)',
      bursts: [],
    };
    this.run.families.push(f);
    await this.write(f, 'create', '');
    if (!f.members.length) return undefined;
    f.rootId = this.t.idPrefix + f.members[0];
    // a few versions to start with, so trees have parents and children
    for (let i = 0; i < 2; i++) await this.write(f, 'update', this.rng.pick(f.members));
    return f;
  }

  /** One burst: 1–4 writes at the same moment, biased to one hot object (and its parent or child), with reads in flight. */
  private async burst(f: Family, hot: string, inflightReads: ReadSpec[]): Promise<void> {
    const r = this.rng;
    const live = f.members.filter((m) => !f.deleted.has(m));
    if (!live.length) return;
    const relative = () => {
      const kin = [f.parent.get(hot), ...(f.children.get(hot) ?? [])].filter((x): x is string => !!x && !f.deleted.has(x));
      return kin.length ? r.pick(kin) : r.pick(live);
    };
    const n = r.weighted({ one: 1, two: 4, three: 3, four: 2 });
    const count = { one: 1, two: 2, three: 3, four: 4 }[n];
    const grow = f.members.length < MAX_MEMBERS;
    const plan: Array<{ kind: string; target: string; bulk?: string[] }> = [];
    const shape = grow ? r.weighted({ bulkdup: 1, same: 1, mixed: 2 }) : 'mixed';
    if (shape === 'same') {
      // two or three writes on the hot object at the same moment (new versions, or an overwrite racing
      // them), now and then one on its parent or child too
      for (let i = r.range(2, 3); i > 0; i--) plan.push({ kind: r.weighted({ update: 4, patch: 1, set: 1, overwrite: 2 }), target: hot });
      if (r.chance(0.3)) plan.push({ kind: r.weighted({ update: 2, overwrite: 1 }), target: relative() });
    }
    if (shape === 'bulkdup') {
      // a bulkUpdate alone, naming the hot object two or three times, with more reads in flight that
      // ask for the sizes of history.next it passes through
      const bulk = Array.from({ length: r.range(2, 3) }, () => hot);
      if (r.chance(0.3)) bulk.push(relative());
      plan.push({ kind: 'bulkUpdate', target: hot, bulk });
      const k = (f.children.get(hot) ?? []).length;
      const dup = bulk.filter((x) => x === hot).length;
      for (let i = 0; i < 4; i++)
        inflightReads.push(this.querySpec([f], { '__rerum.history.next': { $size: k + r.range(1, dup - 1) } }, r.range(50, 99)));
    }
    for (let i = plan.length ? count : 0; i < count; i++) {
      const kind = grow
        ? r.weighted({
            update: 24,
            overwrite: 14,
            bulkUpdate: 16,
            patch: 8,
            set: 6,
            unset: 5,
            create: 3,
            bulkCreate: 2,
            delete: 3,
            release: 3,
          })
        : r.weighted({ overwrite: 40, delete: 8, release: 5 });
      const target = r.chance(0.65) ? hot : r.chance(0.6) ? relative() : r.pick(live);
      if (kind === 'bulkUpdate') {
        const bulk = [target];
        if (r.chance(0.7)) bulk.push(target); // the same object twice
        if (r.chance(0.3)) bulk.push(r.chance(0.5) ? target : relative());
        if (r.chance(0.3)) bulk.push(relative());
        plan.push({ kind, target, bulk: r.chance(0.5) ? bulk : bulk.reverse() });
      } else plan.push({ kind, target });
    }
    const features = new Set<string>();
    const perObj = new Map<string, number>();
    const bulkdupObjs = new Set<string>();
    for (const p of plan) {
      if (p.kind === 'create' || p.kind === 'bulkCreate') continue;
      for (const o of new Set(p.bulk ?? [p.target])) perObj.set(o, (perObj.get(o) ?? 0) + 1);
      if (p.bulk && new Set(p.bulk).size < p.bulk.length) features.add('bulkdup');
      for (const o of p.bulk ?? []) if (p.bulk!.filter((x) => x === o).length > 1) bulkdupObjs.add(o);
    }
    const sameObjs = new Set([...perObj].filter(([, c]) => c > 1).map(([o]) => o));
    if (sameObjs.size) features.add('same');
    if (plan.length > 1 && plan.some((p) => p.kind === 'delete' || p.kind === 'release')) features.add('multistep');
    const describePlan = (statuses?: string[]) =>
      plan
        .map((p, i) => {
          const what = p.bulk
            ? `bulkUpdate[${p.bulk.map(short).join(',')}]`
            : p.kind === 'create' || p.kind === 'bulkCreate'
              ? p.kind
              : `${p.kind} ${short(p.target)}`;
          return statuses ? `${what} → ${statuses[i]}` : what;
        })
        .join(' ∥ ');
    f.lastBurst = describePlan();
    const writes = Promise.all(plan.map((p) => this.write(f, p.kind, p.target, { bulk: p.bulk })));
    const reads = inflightReads.map(async (spec) => {
      await sleep(r.int(12));
      await this.read(spec, 'during-burst', f);
    });
    const [statuses] = await Promise.all([writes, ...reads]);
    f.lastBurst = describePlan(statuses as string[]);
    f.bursts.push({ end: now(), desc: f.lastBurst, same: sameObjs, bulkdup: bulkdupObjs, multistep: features.has('multistep') });
  }

  private async readAll(specs: ReadSpec[], times: number, phase: string, f: Family, parallel = 4): Promise<void> {
    const queue: ReadSpec[] = [];
    for (let i = 0; i < times; i++) queue.push(...specs);
    const worker = async () => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) await this.read(spec, phase, f);
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  async loop(): Promise<void> {
    let f: Family | undefined;
    while (!this.run.over()) {
      if (!f || (f.members.length >= MAX_MEMBERS && this.rng.chance(0.3)) || f.members.every((m) => f!.deleted.has(m))) {
        f = await this.newFamily();
        if (!f) {
          await sleep(100);
          continue;
        }
      }
      this.round++;
      stats.rounds++;
      const r = this.rng;
      // 1. warm: cache a few keys; among them the sizes of history.next the burst's hot object may
      //    reach (the model knows how many next versions it has now)
      const live = f.members.filter((m) => !f!.deleted.has(m));
      const hot = r.pick(live.length ? live : f.members);
      const k = (f.children.get(hot) ?? []).length;
      const warm: ReadSpec[] = [];
      for (let i = 0; i < 5; i++) warm.push(this.randomRead(f));
      for (let i = 0; i < 2; i++)
        warm.push(
          this.querySpec([f], { '__rerum.history.next': { $size: k + r.range(1, 3) } }, r.chance(0.5) ? undefined : r.range(50, 99)),
        );
      await this.readAll(warm, 2, 'warm', f);
      // 2. burst, with fresh-key reads in flight
      const during: ReadSpec[] = [];
      for (let i = 0; i < r.range(3, 7); i++) {
        during.push(
          r.chance(0.6)
            ? this.querySpec([f], { '__rerum.history.next': { $size: r.range(1, 4) } }, r.range(50, 99))
            : this.randomRead(f, true),
        );
      }
      await this.burst(f, hot, during);
      if (this.run.over()) break;
      // 3. check: everything read in this round, a few new keys, and now and then the alias forms
      const check = [...warm, ...during];
      for (let i = 0; i < 2; i++) check.push(this.randomRead(f));
      await this.readAll(check, 3, 'check', f);
      if (r.chance(0.2)) {
        const live = f.members.filter((m) => !f!.deleted.has(m));
        if (live.length) {
          const s = r.pick(live);
          const route = r.pick(['id', 'id', 'history', 'since'] as const);
          await this.readAll([this.idSpec(route, f, s)], 4, 'alias-warm', f);
          const aliases = ALIAS_FORMS.map((form) => this.idSpec(route, f!, s, form(encodeURIComponent(s))));
          await this.readAll(aliases, 2, 'alias', f);
        }
      }
      if (stats.rounds % 20 === 0) {
        pruneWrites();
        this.run.oracle.prune();
      }
    }
  }
}

// ---------------------------------------------------------------- the run

class Run {
  target!: Target;
  oracle!: Oracle;
  families: Family[] = [];
  tag = '';
  private deadline = 0;
  private lastEnd = new Map<string, number>();
  constructor(readonly opts: Options) {}

  over(): boolean {
    return now() > this.deadline || stats.ops >= this.opts.maxOps;
  }
  noteWriteEnd(fam: string, t: number): void {
    this.lastEnd.set(fam, Math.max(t, this.lastEnd.get(fam) ?? 0));
  }
  lastWriteEndOf(fam: string): number {
    return this.lastEnd.get(fam) ?? 0;
  }
  randomFamily(r: Rng, not: Family): Family | undefined {
    const others = this.families.filter((f) => f !== not && f.members.length > 0);
    return others.length ? r.pick(others) : undefined;
  }

  async main(): Promise<number> {
    const o = this.opts;
    const started = now();
    if (o.base) {
      const config = loadConfig({ ...process.env, RERUM_BASE: process.env.RERUM_BASE ?? o.base });
      this.target = {
        base: o.base,
        mongoUri: o.mongo!,
        dbName: config.mongoDbName,
        collection: config.mongoCollection,
        idPrefix: config.idPrefix,
        token: o.token ?? '',
        stop: async () => {},
        logs: () => '',
      };
      console.log(`race-random: against ${o.base} (database ${o.mongo})`);
    } else {
      console.log(
        `race-random: starting a ${o.instances}-worker PM2 cluster on the embedded database${o.brokenSync ? ' (NEGATIVE CONTROL: CACHE_SYNC_DISABLED_FOR_TEST=1)' : ''}…`,
      );
      this.target = await startOwnCluster(o);
      console.log(`race-random: cluster up at ${this.target.base} in ${((now() - started) / 1000).toFixed(1)} s`);
    }
    const mongo = new MongoClient(this.target.mongoUri, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
    await mongo.connect();
    cleanupHooks.unshift(() => mongo.close());
    let uncachedUrl = o.uncached;
    if (!o.base) {
      const u = await startUncachedServer(this.target.base, this.target.mongoUri, this.target.dataDir);
      uncachedUrl = u.url;
    }
    this.oracle = new Oracle(mongo.db(this.target.dbName).collection(this.target.collection), this.target.idPrefix, uncachedUrl);
    this.tag = `${o.seed.toString(36)}${Date.now().toString(36).slice(-4)}`;
    console.log(
      `race-random: seed ${o.seed}, ${o.clients} clients, ${o.durationS} s${Number.isFinite(o.maxOps) ? `, at most ${o.maxOps} operations` : ''}`,
    );
    const t0 = now();
    this.deadline = t0 + o.durationS * 1000;
    const clients = Array.from({ length: o.clients }, (_, i) => new Client(i, this));
    const ticker = setInterval(() => {
      console.log(
        `  … ${((now() - t0) / 1000).toFixed(0)} s: ${stats.ops} ops, ${stats.checked} reads checked (${stats.checkedHits} HITs), ${stats.stale.length} stale`,
      );
    }, 15_000);
    try {
      await Promise.all(clients.map((c) => c.loop()));
    } finally {
      clearInterval(ticker);
    }
    const elapsed = (now() - t0) / 1000;
    let cacheStats = '';
    try {
      const s = (await request('GET', `${this.target.base}/v1/api/cache/stats`)).json as {
        workerCount: number;
        hits: number;
        misses: number;
        invalidations: number;
        entries: number;
      };
      cacheStats = `workers ${s.workerCount}, hits ${s.hits}, misses ${s.misses}, invalidations ${s.invalidations}, entries ${s.entries}`;
    } catch {
      /* ignore */
    }
    return this.report(elapsed, cacheStats);
  }

  private report(elapsed: number, cacheStats: string): number {
    const o = this.opts;
    const fmt = (rec: Record<string, number>) =>
      Object.entries(rec)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
    const writes = Object.values(stats.writes).reduce((a, b) => a + b, 0);
    console.log('');
    console.log(`== race-random summary (seed ${o.seed})`);
    console.log(`elapsed:        ${elapsed.toFixed(1)} s, ${stats.rounds} rounds, ${this.families.length} families`);
    console.log(`operations:     ${stats.ops} (${(stats.ops / elapsed).toFixed(0)}/s): ${writes} writes, ${stats.reads} reads`);
    console.log(`writes:         ${fmt(stats.writes)}`);
    console.log(`write answers:  ${fmt(stats.writeStatus)}`);
    for (const e of stats.serverErrors) console.log(`server error:   ${e}`);
    console.log(
      `reads checked:  ${stats.checked} (cache HITs ${stats.checkedHits}); unchecked (a write that could change them overlapped): ${stats.unchecked}; errors ${stats.readErrors}`,
    );
    console.log(
      `by route:       ${Object.entries(stats.byRoute)
        .map(([k, v]) => `${k} ${v.checked} (HIT ${v.hits}, stale ${v.stale})`)
        .join('; ')}`,
    );
    console.log(`workers seen:   ${[...stats.workers].sort().join(', ')}`);
    console.log(
      `oracle:         ${this.oracle.driverReads} driver reads, ${this.oracle.uncachedReads} uncached-server reads${this.oracle.uncachedUrl ? '' : ' (no uncached server: alias URLs judged by the driver lookup)'}`,
    );
    console.log(
      `oracle check:   ${stats.oracleChecks} checked reads also asked of the uncached server, ${stats.oracleDisagreements.length} disagreements with the driver oracle`,
    );
    for (const d of stats.oracleDisagreements.slice(0, 5))
      console.log(`  WARNING oracle disagreement (a fault of this checker, not counted as stale): ${d}`);
    if (cacheStats) console.log(`cache stats:    ${cacheStats}`);
    // per category: stale reads, and distinct stale entries (key + wrong answer); examples: the first read of each entry
    const cats = new Map<string, { reads: number; entries: Stale[] }>();
    const seen = new Set<string>();
    for (const s of stats.stale) {
      const c = cats.get(s.category) ?? { reads: 0, entries: [] };
      c.reads++;
      if (!seen.has(s.entry)) {
        seen.add(s.entry);
        c.entries.push(s);
      }
      cats.set(s.category, c);
    }
    console.log(`stale reads:    ${stats.stale.length} (${seen.size} distinct stale entries: key + wrong answer)`);
    for (const [cat, c] of cats) console.log(`  ${cat}: ${c.reads} reads, ${c.entries.length} entries`);
    const perCat = Math.max(1, Math.ceil(o.maxReport / Math.max(1, cats.size)));
    let shown = 0;
    for (const [, c] of cats) {
      for (const s of c.entries.slice(0, perCat)) {
        console.log(`  ${formatStale(s, o.seed)}`);
        shown++;
      }
    }
    if (seen.size > shown) console.log(`  … and ${seen.size - shown} more entries (--max-report N shows more)`);
    console.log(
      `replay:         node dist/scripts/race-random.js --seed ${o.seed} --duration ${o.durationS} --clients ${o.clients} (same choices; the interleaving varies)`,
    );
    if (o.brokenSync) {
      if (stats.stale.length > 0) {
        console.log(`PASS (negative control): sync disabled, ${stats.stale.length} stale reads detected`);
        return 0;
      }
      console.log('FAIL (negative control): sync disabled but no stale read seen — this checker cannot detect broken sync');
      return 1;
    }
    if (stats.stale.length > 0) {
      console.log(`FAIL: ${stats.stale.length} stale reads`);
      return 1;
    }
    if (stats.checkedHits === 0) {
      console.log('FAIL: no checked read was a cache HIT; the checker could not have seen a stale one');
      return 1;
    }
    console.log('PASS: no stale reads');
    return 0;
  }
}

function formatStale(s: Stale, seed: number): string {
  const body = s.body === undefined ? '' : ` ${JSON.stringify(s.body)}`;
  return (
    `[${s.category}] ${s.method} ${s.path}${body} (worker ${s.worker}, ${s.cache}, ${s.phase}, client ${s.client} round ${s.round}, ` +
    `${s.sinceLastWriteMs} ms after the family's last acknowledged write; seed ${seed})\n` +
    `      bursts since worker ${s.worker} last answered this key right: ${s.lastBurst}\n` +
    `      expected ${s.expected}\n      got      ${s.got}`
  );
}

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      console.error(`${sig}: stopping the cluster`);
      void cleanup().then(() => process.exit(130));
    });
  }
  let code: number;
  try {
    code = await new Run(opts).main();
  } catch (e) {
    console.error(`race-random could not run: ${(e as Error).stack ?? String(e)}`);
    code = 2;
  } finally {
    await cleanup();
  }
  process.exit(code);
}

void main();
