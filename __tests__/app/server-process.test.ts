/**
 * The real server process (`node dist/server.js`, on the embedded database, free PORT, temp DATA_DIR):
 * - a client that sends its headers, or its body, byte by byte is answered 408 and dropped within
 *   HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS (plus Node's check interval), while others are served;
 * - SIGTERM exits within SHUTDOWN_TIMEOUT_MS even when a request is stuck: a body that never ends,
 *   or a query the database never answers (a standalone embedded database, SIGSTOPped);
 * - SIGTERM with nothing in flight exits 0 at once;
 * - a request whose body is nested far too deeply is refused, and the process goes on.
 * The timeouts are configured small here; the defaults are 10 s / 30 s / 15 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { build, freePort, request, ROOT } from '../../bench/support/cluster-harness';

jest.setTimeout(120_000);

const SLACK_MS = 2_000; // a shared, loaded machine: process scheduling and start-up noise

/** Builds dist/ unless dist/server.js is newer than every source file (scripts/test-all.sh builds first). */
async function ensureBuilt(): Promise<void> {
  const out = path.join(ROOT, 'dist', 'server.js');
  const newest = (dir: string): number => {
    let m = 0;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', 'dist', '__tests__', 'bench', '.git', 'data', 'public'].includes(e.name)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) m = Math.max(m, newest(p));
      else if (e.name.endsWith('.ts')) m = Math.max(m, fs.statSync(p).mtimeMs);
    }
    return m;
  };
  if (fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest(ROOT)) return;
  await build('real');
}

interface Proc {
  child: ChildProcess;
  base: string;
  port: number;
  output(): string;
  /** Resolves with the exit code and the time of exit (ms, performance.now()). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const tmpDirs: string[] = [];
const children: ChildProcess[] = [];

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rerum-server-test-'));
  tmpDirs.push(d);
  return d;
}

function spawnNode(script: string, env: Record<string, string>, ready: RegExp): Promise<Proc & { child: ChildProcess }> {
  const base = env.RERUM_BASE ?? '';
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', ...env };
  for (const k of ['MONGO_CONNECTION_STRING', 'NODE_APP_INSTANCE', 'pm_id', 'JEST_WORKER_ID']) if (!(k in env)) delete fullEnv[k];
  const child = spawn(process.execPath, [path.join(ROOT, script)], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, base, port: Number(env.PORT ?? 0), output: () => out, exited });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready:\n${out}`));
    });
  });
}

async function startServer(env: Record<string, string> = {}): Promise<Proc> {
  const port = await freePort();
  return spawnNode(
    'dist/server.js',
    { PORT: String(port), RERUM_BASE: `http://127.0.0.1:${port}`, DATA_DIR: tmpDir(), LOG_LEVEL: 'info', CACHING: 'true', ...env },
    /RERUM API listening/,
  );
}

/** A raw connection that writes `head`, then `drip` one byte every `everyMs` until closed. Resolves when the server closes it. */
function slowClient(port: number, head: string, drip: string, everyMs: number) {
  const started = performance.now();
  const sock = net.connect(port, '127.0.0.1');
  let received = '';
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<{ ms: number; received: string }>((resolve) => {
    sock.on('data', (d) => (received += d.toString()));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (timer) clearInterval(timer);
      resolve({ ms: performance.now() - started, received });
    });
  });
  sock.on('connect', () => {
    sock.write(head);
    let i = 0;
    timer = setInterval(() => {
      if (!sock.destroyed) sock.write(drip[i++ % drip.length]);
    }, everyMs);
  });
  return { closed, destroy: () => sock.destroy() };
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

beforeAll(async () => {
  await ensureBuilt();
});

describe('slow clients are dropped in seconds', () => {
  let srv: Proc;
  const HEADERS = 1_000;
  const REQUEST = 2_000;
  beforeAll(async () => {
    srv = await startServer({ HEADERS_TIMEOUT_MS: String(HEADERS), REQUEST_TIMEOUT_MS: String(REQUEST) });
  });
  afterAll(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
  });

  test('headers sent one byte at a time: 408 and closed after HEADERS_TIMEOUT_MS; others served meanwhile', async () => {
    const slow = Array.from({ length: 5 }, () =>
      slowClient(srv.port, 'GET /v1/api HTTP/1.1\r\nHost: x\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa', 100),
    );
    const ping = await request('GET', `${srv.base}/v1/api`);
    expect(ping.status).toBe(200);
    expect(ping.ms).toBeLessThan(1_000);
    const results = await Promise.all(slow.map((s) => s.closed));
    for (const r of results) {
      expect(r.received).toMatch(/^HTTP\/1\.1 408/);
      expect(r.ms).toBeGreaterThanOrEqual(HEADERS * 0.9);
      expect(r.ms).toBeLessThan(HEADERS + 1_000 + SLACK_MS);
    }
  });

  test('a body sent one byte at a time: 408 and closed after REQUEST_TIMEOUT_MS', async () => {
    const head = 'POST /v1/api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":"';
    const slow = Array.from({ length: 5 }, () => slowClient(srv.port, head, 'b', 100));
    const results = await Promise.all(slow.map((s) => s.closed));
    for (const r of results) {
      expect(r.received).toMatch(/^HTTP\/1\.1 408/);
      expect(r.ms).toBeGreaterThanOrEqual(REQUEST * 0.9);
      expect(r.ms).toBeLessThan(REQUEST + 1_000 + SLACK_MS);
    }
    expect((await request('GET', `${srv.base}/v1/api`)).status).toBe(200);
  });
});

describe('one request cannot end the process', () => {
  let srv: Proc;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    srv?.child.kill('SIGTERM');
    await srv?.exited;
  });

  test('a query body nested 200,000 levels deep (anonymous, the first route a request meets): 400, and the server goes on', async () => {
    const depth = 200_000;
    const body = Buffer.from('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
    for (let i = 0; i < 2; i++) {
      const r = await request('POST', `${srv.base}/v1/api/query`, { body });
      expect(r.status).toBe(400);
      expect(r.text).toContain('nested too deeply'); // since a bound on any JSON body's depth (json-depth.ts), before parsing
    }
    expect((await request('POST', `${srv.base}/v1/api/query`, { body: { type: 'x' } })).status).toBe(200);
    expect(srv.child.exitCode).toBeNull();
    expect(srv.output()).not.toContain('could not build a key'); // not cached, and nothing to warn about
  });
});

describe('SIGTERM exits within SHUTDOWN_TIMEOUT_MS', () => {
  const SHUTDOWN = 3_000;

  test('nothing in flight: exit 0 at once', async () => {
    const srv = await startServer({ SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN) });
    expect((await request('GET', `${srv.base}/v1/api`)).status).toBe(200);
    const t0 = performance.now();
    srv.child.kill('SIGTERM');
    const { code, at } = await srv.exited;
    expect(code).toBe(0);
    expect(at - t0).toBeLessThan(1_000 + SLACK_MS);
    expect(srv.output()).toMatch(/"msg":"stopped"/);
  });

  test('a request body that never ends (REQUEST_TIMEOUT_MS far away)', async () => {
    const srv = await startServer({ SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN), REQUEST_TIMEOUT_MS: '600000' });
    const head = 'POST /v1/api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":"';
    const slow = slowClient(srv.port, head, 'b', 100);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = performance.now();
    srv.child.kill('SIGTERM');
    const { at } = await srv.exited;
    const ms = at - t0;
    // the request was given its drain time (2/3 of the timeout), and the process is gone in time
    expect(ms).toBeGreaterThanOrEqual(SHUTDOWN * (2 / 3) * 0.9);
    expect(ms).toBeLessThan(SHUTDOWN + SLACK_MS);
    await slow.closed;
  });

  test('a query the database never answers (standalone embedded database, SIGSTOPped)', async () => {
    const dbPort = await freePort();
    const db = await spawnNode(
      'dist/db/embedded/standalone.js',
      { EMBEDDED_MONGO_PORT: String(dbPort), EMBEDDED_MONGO_DBPATH: path.join(tmpDir(), 'db') },
      /embedded-mongo listening/,
    );
    const srv = await startServer({ SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN), EMBEDDED_MONGO_PORT: String(dbPort), CACHING: 'false' });
    try {
      expect((await request('POST', `${srv.base}/v1/api/query`, { body: { type: 'Nothing' } })).status).toBe(200);
      db.child.kill('SIGSTOP');
      const stuck = request('POST', `${srv.base}/v1/api/query`, { body: { type: 'Stuck' }, timeoutMs: 60_000 }).catch((e: Error) => e);
      await new Promise((r) => setTimeout(r, 500));
      const t0 = performance.now();
      srv.child.kill('SIGTERM');
      const { at } = await srv.exited;
      expect(at - t0).toBeLessThan(SHUTDOWN + SLACK_MS);
      await stuck;
    } finally {
      db.child.kill('SIGCONT');
      db.child.kill('SIGTERM');
      await db.exited;
    }
  });
});
