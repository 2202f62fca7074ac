/**
 * Input rules as the reference (rerum_server_nodejs main): empty objects on create and bulkCreate,
 * `?limit`/`?skip` parsing and caps, strict Content-Type, body size limits, and HEAD /query without
 * a body. Over the real app and database; every refusal checks that nothing was written.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

describe('empty JSON objects', () => {
  test('POST /create with {} (or only ignored keys) is 400 "Detected empty JSON object", nothing written', async () => {
    const before = await h.count();
    for (const body of [{}, { __rerum: { generatedBy: 'x' } }, { '@id': 'http://x/y' }]) {
      const r = await h.authed('post', '/v1/api/create').send(body);
      expect(r.status).toBe(400);
      expect(r.body.message).toBe('Detected empty JSON object.  You must provide at least one property in the /create request body JSON.');
    }
    expect(await h.count()).toBe(before);
    // One kept key is enough (an @context alone is content).
    expect((await h.authed('post', '/v1/api/create').send({ '@context': 'http://example.org/ctx' })).status).toBe(201);
  });

  test('bulkCreate with an empty item is 400 for the whole request, nothing written', async () => {
    const before = await h.count();
    for (const body of [[{}], [{ a: 1 }, {}], [{ a: 1 }, { __rerum: {} }]]) {
      const r = await h.authed('post', '/v1/api/bulkCreate').send(body);
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(/^Detected empty JSON object/);
    }
    expect(await h.count()).toBe(before);
  });
});

describe("?limit and ?skip (the reference's getPagination)", () => {
  const tag = `pg-${Date.now()}`;
  beforeAll(async () => {
    for (let chunk = 0; chunk < 6; chunk++) {
      const r = await h.authed('post', '/v1/api/bulkCreate').send(Array.from({ length: 100 }, (_, i) => ({ tag, i: chunk * 100 + i })));
      expect(r.status).toBe(201);
    }
  });
  const page = async (qs: string) => {
    const r = await request(h.srv.app).post(`/v1/api/query?${qs}`).send({ tag });
    expect(r.status).toBe(200);
    return r.body as Obj[];
  };

  test('default limit 100; at most 500', async () => {
    expect(await page('')).toHaveLength(100);
    expect(await page('limit=500')).toHaveLength(500);
    expect(await page('limit=501')).toHaveLength(500);
    expect(await page('limit=99999999999999999999')).toHaveLength(500);
  });

  test('limit=0, negative, non-numeric fall back to the default; a leading number is read (parseInt)', async () => {
    for (const qs of ['limit=0', 'limit=-1', 'limit=abc', 'limit=']) expect(await page(qs)).toHaveLength(100);
    expect(await page('limit=1e3')).toHaveLength(1);
    expect(await page('limit=7abc')).toHaveLength(7);
    expect(await page('limit=2.9')).toHaveLength(2);
  });

  test('skip: bad values fall back to 0; a leading number is read; skip applies', async () => {
    const first = (await page('limit=3')).map((o) => o.i);
    for (const qs of ['skip=-2', 'skip=x', 'skip=0']) expect((await page(`limit=3&${qs}`)).map((o) => o.i)).toEqual(first);
    const all = (await page('limit=10')).map((o) => o.i);
    expect((await page('limit=3&skip=2.5')).map((o) => o.i)).toEqual(all.slice(2, 5));
    expect(await page('limit=3&skip=1e20')).toHaveLength(3); // parseInt('1e20') is 1
  });

  test('search takes the same rules', async () => {
    const r = await request(h.srv.app).post('/v1/api/search?limit=abc&skip=-1').send({ searchText: 'anything' });
    expect(r.status).toBe(200);
  });
});

describe('Content-Type as strict as the reference', () => {
  const bad = [
    'application/json;',
    'application/json; text/plain',
    'application/json, text/plain',
    'application/json text/plain',
    'text/plain; application/json',
    'application/json; charset=utf-8, text/plain',
    'application/json; a=b text/plain;',
  ];
  test.each(bad)('%s → 415 on query, create and search; nothing written', async (ct) => {
    const before = await h.count();
    const q = await request(h.srv.app).post('/v1/api/query').set('Content-Type', ct).send('{"a":1}');
    expect(q.status).toBe(415);
    // The JSON parser may refuse a charset it cannot read first (also 415, as in the reference).
    expect(q.body.message).toMatch(/^Multiple Content-Type values are not allowed\. Provide exactly one Content-Type header\.$|charset/);
    const c = await h.authed('post', '/v1/api/create').set('Content-Type', ct).send('{"a":1}');
    expect(c.status).toBe(415);
    const s = await request(h.srv.app).post('/v1/api/search').set('Content-Type', ct).send('{"searchText":"word"}');
    expect(s.status).toBe(415);
    expect(await h.count()).toBe(before);
  });

  test('one type with proper parameters (quoted values may hold spaces and commas) is accepted', async () => {
    for (const ct of [
      'application/json; charset=utf-8',
      'application/ld+json;profile="http://www.w3.org/ns/anno.jsonld, x y"',
      'APPLICATION/JSON',
    ]) {
      const q = await request(h.srv.app).post('/v1/api/query').set('Content-Type', ct).send('{"a":1}');
      expect(q.status).toBe(200);
    }
  });

  test('missing Content-Type and a wrong one are 415', async () => {
    const q = await request(h.srv.app).post('/v1/api/query').set('Content-Type', '').send('{"a":1}');
    expect(q.status).toBe(415);
    expect((await request(h.srv.app).post('/v1/api/query').set('Content-Type', 'text/html').send('{"a":1}')).status).toBe(415);
  });
});

describe('body size limits as the reference (JSON 5 MB, text 4 KB)', () => {
  test('JSON: just under 5 MiB is taken, just over is 413 and nothing is written', async () => {
    const before = await h.count();
    const over = JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024) });
    const r = await h.authed('post', '/v1/api/create').set('Content-Type', 'application/json').send(over);
    expect(r.status).toBe(413);
    expect(await h.count()).toBe(before);
    const under = JSON.stringify({ pad: 'x'.repeat(5 * 1024 * 1024 - 100) });
    expect((await h.authed('post', '/v1/api/create').set('Content-Type', 'application/json').send(under)).status).toBe(201);
  });

  test('text/plain: 4 KiB is taken, one byte more is 413', async () => {
    const ok = await request(h.srv.app).post('/v1/api/search').set('Content-Type', 'text/plain').send('a'.repeat(4096));
    expect(ok.status).toBe(200);
    const big = await request(h.srv.app).post('/v1/api/search').set('Content-Type', 'text/plain').send('a'.repeat(4097));
    expect(big.status).toBe(413);
  });
});

describe('HEAD /v1/api/query without a body', () => {
  /** A HEAD over a real socket, optionally with a JSON body (browsers cannot send one). */
  async function head(path: string, body?: unknown): Promise<http.IncomingMessage> {
    const server = h.srv.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: http.OutgoingHttpHeaders = payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {};
      return await new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: (server.address() as AddressInfo).port, path, method: 'HEAD', headers },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  }

  test('no body and {} match everything: 200 with the Content-Length of the first page', async () => {
    await h.create({ any: 1 });
    const all = await h.srv.collection
      .find({ __deleted: { $exists: false } })
      .limit(100)
      .toArray();
    expect(all.length).toBeGreaterThan(0);
    for (const body of [undefined, {}]) {
      const r = await head('/v1/api/query?limit=2', body);
      expect(r.statusCode).toBe(200);
      const post = await request(h.srv.app)
        .post('/v1/api/query?limit=2')
        .send({ '@id': { $exists: true } });
      expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(post.body)));
    }
  });

  test('404 when nothing matches (an empty database)', async () => {
    const empty = await startHarness();
    try {
      const server = empty.srv.app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const status = await new Promise<number>((resolve, reject) => {
        http
          .request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/v1/api/query', method: 'HEAD' }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject)
          .end();
      });
      await new Promise((r) => server.close(r));
      expect(status).toBe(404);
    } finally {
      await empty.srv.close();
    }
  });
});
