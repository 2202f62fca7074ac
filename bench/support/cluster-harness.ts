/**
 * Start and stop a real PM2 cluster of the server (ecosystem.config.cjs) under a private PM2_HOME,
 * plus a keep-alive-free HTTP client, for the PM2 test, the benchmark and scripts.
 *
 * Target: the real server (dist/server.js, on the embedded database unless MONGO_CONNECTION_STRING
 * is given, with a local-issuer token from `npm run token`) when server.ts exists; otherwise the
 * stand-in bench/support/mini-server.ts (same cache, file-backed shared store, no auth).
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The project root: the nearest directory above this file with ecosystem.config.cjs (works from dist/ too). */
export const ROOT = (() => {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    if (fs.existsSync(path.join(dir, 'ecosystem.config.cjs')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
})();
const PM2 = path.join(ROOT, 'node_modules', '.bin', 'pm2');

export type Target = 'real' | 'mini';

export function defaultTarget(): Target {
  const forced = process.env.CACHE_TEST_TARGET;
  if (forced === 'real' || forced === 'mini') return forced;
  return fs.existsSync(path.join(ROOT, 'server.ts')) && fs.existsSync(path.join(ROOT, 'db', 'embedded', 'standalone.ts')) ? 'real' : 'mini';
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 180_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Compiles what the target needs. */
export async function build(target: Target): Promise<void> {
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const project = target === 'real' ? 'tsconfig.build.json' : 'bench/tsconfig.json';
  const r = await run(tsc, ['-p', project], process.env);
  if (r.code !== 0) throw new Error(`build (${project}) failed:\n${r.stdout}\n${r.stderr}`);
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
  ms: number;
}

/** One request on its own connection (no keep-alive), so PM2's round robin spreads requests. A Buffer body is sent as it is (JSON). */
export function request(
  method: string,
  url: string,
  opts: { body?: unknown; token?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(JSON.stringify(opts.body));
    const started = process.hrtime.bigint();
    const req = http.request(
      url,
      {
        method,
        agent: false,
        headers: {
          Connection: 'close',
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
          ...(opts.token ? { Authorization: `Bearer ${opts.token}` } : {}),
        },
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: Number(process.hrtime.bigint() - started) / 1e6 });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** The last `lines` lines of every PM2 log of a cluster (for errors). */
export function pm2Logs(pm2Home: string, lines: number): string {
  const dir = path.join(pm2Home, 'logs');
  if (!fs.existsSync(dir)) return '';
  return fs
    .readdirSync(dir)
    .map((f) => `== ${f}\n${fs.readFileSync(path.join(dir, f), 'utf8').split('\n').slice(-lines).join('\n')}`)
    .join('\n');
}

/**
 * Waits until the cluster at `base` answers its cache stats with `ready(stats)`; throws with `logs()`
 * after `timeoutMs`.
 */
/** A cluster that failed to come up: stop it, then throw the failure with the cluster's last log lines. */
export async function failWithLogs(e: unknown, logs: () => string, stop: () => Promise<void>): Promise<never> {
  const l = logs();
  await stop();
  throw new Error(`${(e as Error).message}\n${l}`, { cause: e });
}

export async function awaitCluster(
  base: string,
  ready: (stats: { workerCount?: number; workers?: { leaseValid?: boolean }[] }) => boolean,
  timeoutMs: number,
  logs: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await request('GET', `${base}/v1/api/cache/stats`, { timeoutMs: 5000 });
      if (s.status === 200 && ready((s.json ?? {}) as Parameters<typeof ready>[0])) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`the cluster did not come up\n${logs()}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

export interface Cluster {
  target: Target;
  base: string;
  /** An ordinary agent's token (real target only). */
  token: string | undefined;
  /** A token of the cluster's CACHE_ADMIN_AGENT (cache clear, detailed stats; real target only). */
  adminToken: string | undefined;
  instances: number;
  pm2Home: string;
  /** The PM2 app name of the server workers (not the database's). */
  appName: string;
  /** Runs the pm2 CLI against this cluster's daemon, e.g. `['reload', c.appName]`. */
  pm2(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** pm_id → pid of the server workers. */
  pids(): Promise<Map<number, number>>;
  stop(): Promise<void>;
  logs(): string;
}

export interface StartOptions {
  instances: number;
  target?: Target;
  env?: Record<string, string>;
  /** Skip the build (already done). */
  noBuild?: boolean;
}

export async function startCluster(opts: StartOptions): Promise<Cluster> {
  const target = opts.target ?? defaultTarget();
  if (!opts.noBuild) await build(target);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rerum-cluster-'));
  const pm2Home = path.join(tmp, 'pm2');
  const dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const appName = `rerum-test-${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PM2_HOME: pm2Home,
    PM2_APP_NAME: appName,
    INSTANCES: String(opts.instances),
    PORT: String(port),
    RERUM_BASE: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    CACHING: 'true',
    // the agent allowed to clear the cache and read its detailed stats (adminToken below)
    CACHE_ADMIN_AGENT: `http://127.0.0.1:${port}/v1/id/cache-admin`,
    ...opts.env,
  };
  delete env.NODE_APP_INSTANCE;
  delete env.pm_id;
  delete env.JEST_WORKER_ID;
  env.NODE_ENV = opts.env?.NODE_ENV ?? 'production';
  // the cluster gets its own embedded database unless the caller names one
  if (!opts.env?.MONGO_CONNECTION_STRING) delete env.MONGO_CONNECTION_STRING;
  if (target === 'mini') {
    env.RERUM_SCRIPT = 'dist/.bench/bench/support/mini-server.js';
    env.MONGO_CONNECTION_STRING = 'mongodb://127.0.0.1:1/unused';
    env.MINI_DB_DIR = path.join(dataDir, 'mini-db');
  } else if (!env.MONGO_CONNECTION_STRING) {
    env.EMBEDDED_MONGO_PORT = String(await freePort());
    env.EMBEDDED_MONGO_DBPATH = path.join(dataDir, 'embedded-mongo');
  }
  const base = `http://127.0.0.1:${port}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await run(PM2, ['kill'], env, 60_000);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const logs = () => pm2Logs(pm2Home, 30);
  try {
    const r = await run(PM2, ['start', path.join(ROOT, 'ecosystem.config.cjs')], env, 120_000);
    if (r.code !== 0) throw new Error(`pm2 start failed:\n${r.stdout}\n${r.stderr}`);
    // wait until every worker answers and holds its cache lease
    const expected = env.MINI_BREAK_SYNC === '1' ? 1 : opts.instances; // negative control: each worker alone
    await awaitCluster(
      base,
      (body) => env.CACHING === 'false' || (body.workerCount === expected && !!body.workers?.every((w) => w.leaseValid)),
      90_000,
      logs,
    );
    let token: string | undefined;
    let adminToken: string | undefined;
    if (target === 'real') {
      const mint = (agent: string) => {
        const t = spawnSync('npm', ['run', '-s', 'token', '--', '--agent', agent], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
        const tok = (t.stdout ?? '').trim().split(/\s+/).pop();
        if (t.status !== 0 || !tok) throw new Error(`npm run token failed: ${t.stderr}`);
        return tok;
      };
      token = mint(`${base}/v1/id/cache-test-agent`);
      adminToken = env.CACHE_ADMIN_AGENT ? mint(env.CACHE_ADMIN_AGENT) : undefined;
    }
    return {
      target,
      base,
      token,
      adminToken,
      instances: opts.instances,
      pm2Home,
      appName,
      pm2: (args, timeoutMs = 120_000) => run(PM2, args, env, timeoutMs),
      async pids() {
        const j = await run(PM2, ['jlist'], env, 30_000);
        const list = JSON.parse(j.stdout.slice(j.stdout.indexOf('['))) as { name: string; pm_id: number; pid: number }[];
        return new Map(list.filter((p) => p.name === appName).map((p) => [p.pm_id, p.pid]));
      },
      stop,
      logs,
    };
  } catch (e) {
    return failWithLogs(e, logs, stop);
  }
}

/** Creates a document through the API; returns its @id. */
export async function createObject(c: Cluster, body: Record<string, unknown>): Promise<string> {
  const r = await request('POST', `${c.base}/v1/api/create`, { body, token: c.token });
  const j = r.json as Record<string, unknown> | undefined;
  const obj = (j?.new_obj_state as Record<string, unknown> | undefined) ?? j;
  const id = (obj?.['@id'] ?? obj?.id) as string | undefined;
  if (r.status >= 300 || !id) throw new Error(`create failed: ${r.status} ${r.text}`);
  return id;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
