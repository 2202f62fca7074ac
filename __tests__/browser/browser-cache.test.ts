/**
 * A real browser's HTTP cache in front of the real app: headless Chromium (Debian's `chromium`,
 * installed by .ci/run) driven with puppeteer-core loads a page that uses plain `fetch()` as RERUM
 * browser applications do — read → write (each kind) → read, same-origin and cross-origin — and
 * every second read must be fresh. An unchanged re-read must have reached the server and been
 * answered 304 (the browser revalidates instead of serving its copy blindly). A read after another
 * client's write (not the page's) must be fresh too.
 *
 * The app listens on 127.0.0.1; the same-origin page is served by the same listener, the
 * cross-origin page by a second one on `localhost` (another origin).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { createTestServer, type TestServer } from '../support/app';

const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

type Seen = { method: string; path: string; status: number };
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON bodies, read by deep property access

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>rerum browser cache test</title></head><body>test page</body></html>';

let srv: TestServer;
let api: http.Server;
let other: http.Server;
let apiBase: string;
let otherBase: string;
let browser: Browser;
let token: string;
const seen: Seen[] = [];

function listen(server: http.Server, host: string): Promise<number> {
  return new Promise((resolve) => server.listen(0, host, () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  if (!CHROMIUM) throw new Error('Chromium is not installed: `apt-get install chromium` (bash .ci/run does it), or set CHROMIUM_PATH');
  srv = await createTestServer({ caching: true });
  token = await srv.token();
  api = http.createServer((req, res) => {
    if (req.url === '/__page') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(PAGE);
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    res.on('finish', () => seen.push({ method: req.method ?? '', path, status: res.statusCode }));
    srv.app(req, res);
  });
  other = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(PAGE);
  });
  apiBase = `http://127.0.0.1:${await listen(api, '127.0.0.1')}`;
  otherBase = `http://localhost:${await listen(other, '127.0.0.1')}`;
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => api?.close(r));
  await new Promise((r) => other?.close(r));
  await srv?.close();
});

/** In the page: one plain fetch(); status, body (JSON or null) and the headers a script can read. */
async function pageFetch(page: Page, url: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) {
  return page.evaluate(
    async (u, i) => {
      const r = await fetch(u, {
        method: i.method ?? 'GET',
        headers: i.headers,
        body: i.body === undefined ? undefined : JSON.stringify(i.body),
      });
      const text = await r.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = text;
      }
      return { status: r.status, body: body as Obj, etag: r.headers.get('etag'), cov: r.headers.get('current-overwritten-version') };
    },
    url,
    init as { method?: string; headers?: Record<string, string>; body?: unknown },
  );
}

const segOf = (o: Obj) => String(o['@id']).split('/').pop()!;

/** Every write kind, done by the page, with what the second read of `target` must show. */
function scenario(page: Page) {
  const authJson = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const write = (method: string, path: string, body?: unknown) => pageFetch(page, `${apiBase}${path}`, { method, headers: authJson, body });
  const read = (o: Obj) => pageFetch(page, `${apiBase}/v1/id/${segOf(o)}`);
  const create = async (body: Obj) => {
    const r = await write('POST', '/v1/api/create', body);
    expect(r.status).toBe(201);
    return r.body as Obj;
  };
  return { write, read, create };
}

async function runAllWriteKinds(page: Page, label: string) {
  const { write, read, create } = scenario(page);
  const serverStatuses = (o: Obj) => seen.filter((s) => s.method === 'GET' && s.path === `/v1/id/${segOf(o)}`).map((s) => s.status);

  const a = await create({ type: 'BrowserTest', label, v: 1 });
  expect((await read(a)).body.v).toBe(1);

  // overwrite → the re-read shows the new content and the new version header
  const ow = await write('PUT', '/v1/api/overwrite', { '@id': a['@id'], type: 'BrowserTest', label, v: 'over' });
  expect(ow.status).toBe(200);
  const r3 = await read(a);
  expect(r3.body.v).toBe('over');
  expect(r3.cov).toBe(ow.body.__rerum.isOverwritten);
  // …and a second overwrite that echoes it back is accepted (no stale 409)
  const ow2 = await write('PUT', '/v1/api/overwrite', {
    '@id': a['@id'],
    type: 'BrowserTest',
    label,
    v: 'over2',
    __rerum: { isOverwritten: r3.cov },
  });
  expect(ow2.status).toBe(200);
  expect((await read(a)).body.v).toBe('over2');

  // update, patch, set, unset → the parent's history.next grows each time
  let next = 0;
  for (const [method, path, body] of [
    ['PUT', '/v1/api/update', { v: 'u' }],
    ['PATCH', '/v1/api/patch', { v: 'p' }],
    ['PATCH', '/v1/api/set', { extra: 1 }],
    ['PATCH', '/v1/api/unset', { label: null }],
  ] as const) {
    await read(a);
    const w = await write(method, path, { '@id': a['@id'], ...body });
    expect([path, w.status]).toEqual([path, 200]);
    next++;
    const again = await read(a);
    expect([path, again.body.__rerum.history.next.length]).toEqual([path, next]);
  }

  // release → isReleased on the re-read
  const b = await create({ type: 'BrowserTest', label, v: 'to release' });
  expect((await read(b)).body.__rerum.isReleased).toBe('');
  expect((await write('PATCH', `/v1/api/release/${segOf(b)}`)).status).toBe(200);
  expect((await read(b)).body.__rerum.isReleased).not.toBe('');

  // delete → the re-read is 404, not the old body
  const c = await create({ type: 'BrowserTest', label, v: 'to delete' });
  expect((await read(c)).status).toBe(200);
  expect((await write('DELETE', `/v1/api/delete/${segOf(c)}`)).status).toBe(204);
  expect((await read(c)).status).toBe(404);

  // another client's write (not through this browser) → fresh on the next read
  const d = await create({ type: 'BrowserTest', label, v: 1 });
  expect((await read(d)).body.v).toBe(1);
  const res = await fetch(`${apiBase}/v1/api/overwrite`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ '@id': d['@id'], v: 2 }),
  });
  expect(res.status).toBe(200);
  expect((await read(d)).body.v).toBe(2);

  // unchanged re-read: the browser asks, the server answers 304, the page sees the same object
  const e = await create({ type: 'BrowserTest', label, v: 1 });
  const r1 = await read(e);
  const r2 = await read(e);
  expect([r1.status, r2.status]).toEqual([200, 200]);
  expect(r2.body).toEqual(r1.body);
  expect(r2.etag).toBe(r1.etag); // readable cross-origin too
  expect(serverStatuses(e)).toEqual([200, 304]);
}

test('same origin: every read after a write is fresh; an unchanged re-read is a 304 from the server', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${apiBase}/__page`);
    await runAllWriteKinds(page, 'same-origin');
  } finally {
    await page.close();
  }
}, 60_000);

test('cross origin: the same, with preflights, and ETag / Current-Overwritten-Version readable', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${otherBase}/`);
    await runAllWriteKinds(page, 'cross-origin');
  } finally {
    await page.close();
  }
}, 60_000);
