/**
 * `npm run token` and the server agree on the issuer whatever settings `npm start` was given: the
 * real server (server.ts, embedded database, local issuer) started with another PORT than the
 * default, then the real token script run WITHOUT that PORT — its token is accepted. And a token
 * the server cannot accept (signed for another DATA_DIR) is refused with a message naming what the
 * server expects and the fix.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
let outDir = '';
let tmp = '';
let server: ChildProcess | undefined;
let port = 0;
let serverLog = '';

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

/** Only what a user's shell would have: no test database, no RERUM settings. */
const baseEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn' });

function mintToken(dataDir: string, agent: string): { token: string; stderr: string } {
  // as `npm run token -- --agent <agent>` with DATA_DIR set and NO PORT (the default would be 3001)
  const r = spawnSync(process.execPath, [path.join(outDir, 'scripts', 'token.js'), '--agent', agent], {
    cwd: tmp,
    env: { ...baseEnv(), DATA_DIR: dataDir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`token script failed (${r.status}): ${r.stderr}`);
  return { token: r.stdout.trim().split(/\s+/).pop() ?? '', stderr: r.stderr };
}

/** One HTTP request on its own connection (node:http, nothing kept open). */
function request(
  method: string,
  urlPath: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function create(token: string): Promise<{ status: number; body: { message?: string } }> {
  const r = await request(
    'POST',
    '/v1/api/create',
    { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    '{"type":"TokenScriptTest"}',
  );
  return { status: r.status, body: JSON.parse(r.text) as { message?: string } };
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rerum-token-test-'));
  // compile the server and the token script as `npm run build` would, into a private directory
  // inside the project (so that their dependencies resolve from node_modules)
  outDir = path.join(ROOT, 'node_modules', '.cache', `token-script-test-${process.pid}`);
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...['--outDir', outDir, '--rootDir', ROOT, '--module', 'commonjs', '--target', 'es2022', '--moduleResolution', 'node'],
      ...['--esModuleInterop', '--skipLibCheck', '--strict', '--resolveJsonModule', '--types', 'node'],
      path.join(ROOT, 'server.ts'),
      path.join(ROOT, 'scripts', 'token.ts'),
    ],
    { cwd: ROOT, stdio: 'pipe' },
  );
  port = await freePort();
  // as `PORT=<port> npm start` (the server's cwd holds no .env: tmp)
  server = spawn(process.execPath, [path.join(outDir, 'server.js')], {
    cwd: tmp,
    env: { ...baseEnv(), PORT: String(port), DATA_DIR: path.join(tmp, 'data') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (d: Buffer) => (serverLog += d.toString()));
  server.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`server exited: ${serverLog}`);
    const up = await request('GET', '/health').then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`server did not start: ${serverLog}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}, 180_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server?.once('exit', r));
    server.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (server.exitCode === null) server.kill('SIGKILL');
    server.stdout?.destroy();
    server.stderr?.destroy();
  }
  for (const dir of [tmp, outDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('PORT=<other> npm start, then npm run token without PORT: the token is accepted', async () => {
  const agent = `http://localhost:${port}/v1/id/token-script-agent`;
  const { token, stderr } = mintToken(path.join(tmp, 'data'), agent);
  const r = await create(token);
  expect(r).toMatchObject({ status: 201 });
  expect(stderr).toContain(`issuer http://localhost:${port}/`);
  // the script's own settings (no PORT) would have given the default port: it says the server's win
  expect(stderr).toContain('the settings here would give issuer http://localhost:3001/');
});

test('a token signed for another DATA_DIR is refused, naming what this server expects and the fix', async () => {
  const { token } = mintToken(path.join(tmp, 'other-data'), 'http://localhost/v1/id/someone');
  const r = await create(token);
  expect(r.status).toBe(401);
  expect(r.body.message).toContain(`local issuer "http://localhost:${port}/"`);
  expect(r.body.message).toContain(path.join(tmp, 'data', 'issuer-key.json'));
  expect(r.body.message).toContain('npm run token');
});
