/**
 * The cache inside the real app (createTestServer({caching: true})): every write route drops what
 * it makes stale — and keeps unrelated entries — as seen through X-Cache on the read routes.
 */
import { Router } from 'express';
import request from 'supertest';
import { createApp } from '../../app';
import { createTestServer, type TestServer } from '../support/app';

type Obj = Record<string, unknown> & { '@id': string };

describe('cache over HTTP (real app)', () => {
  let srv: TestServer;
  let token: string;
  let adminToken: string;
  const ADMIN = 'http://rerum.test/v1/id/agent-cache-admin';
  const seg = (o: Obj) => o['@id'].split('/').pop()!;
  const objOf = (body: unknown): Obj => {
    const b = body as Record<string, unknown>;
    return (b?.new_obj_state as Obj | undefined) ?? (b as Obj);
  };
  const get = (url: string) => request(srv.app).get(url);
  const query = (filter: unknown) =>
    request(srv.app)
      .post('/v1/api/query')
      .send(filter as object);
  const auth = (r: request.Test) => r.set('Authorization', `Bearer ${token}`);
  const create = async (body: Record<string, unknown>) => {
    const r = await auth(request(srv.app).post('/v1/api/create')).send(body);
    expect(r.status).toBe(201);
    return objOf(r.body);
  };
  const cached = async (url: string) => {
    await get(url);
    return (await get(url)).headers['x-cache'];
  };
  const cachedQuery = async (f: unknown) => {
    await query(f);
    return (await query(f)).headers['x-cache'];
  };

  beforeAll(async () => {
    srv = await createTestServer({ caching: true, env: { CACHE_ADMIN_AGENT: ADMIN } });
    token = await srv.token();
    adminToken = await srv.token(ADMIN);
  });
  afterAll(async () => {
    await srv?.close();
  });

  test('reads are cached: MISS then HIT, X-Worker present, HEAD from the GET entry', async () => {
    const a = await create({ type: 'HttpCacheTest', tag: 'read' });
    const r1 = await get(`/v1/id/${seg(a)}`);
    const r2 = await get(`/v1/id/${seg(a)}`);
    expect([r1.headers['x-cache'], r2.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(r2.body).toEqual(r1.body);
    expect(r2.headers['x-worker']).toBeDefined();
    expect((await request(srv.app).head(`/v1/id/${seg(a)}`)).headers['x-cache']).toBe('HIT');
  });

  test('each write drops what it makes stale and keeps unrelated entries', async () => {
    const tag = `w${Date.now()}`;
    const u = await create({ type: 'HttpCacheUnrelated', tag: `${tag}-u` });
    const a = await create({ type: 'HttpCacheTest', tag });
    const unrelated = async () => {
      expect((await get(`/v1/id/${seg(u)}`)).headers['x-cache']).toBe('HIT');
      expect((await query({ tag: `${tag}-u` })).headers['x-cache']).toBe('HIT');
    };
    expect(await cached(`/v1/id/${seg(u)}`)).toBe('HIT');
    expect(await cachedQuery({ tag: `${tag}-u` })).toBe('HIT');

    // create: a query matching the new object is dropped
    expect(await cachedQuery({ type: 'HttpCacheTest', tag })).toBe('HIT');
    const b = await create({ type: 'HttpCacheTest', tag });
    const q = await query({ type: 'HttpCacheTest', tag });
    expect(q.headers['x-cache']).toBe('MISS');
    expect(q.body).toHaveLength(2);
    await unrelated();

    // update: new version; the old id, the query and the tree's history/since are dropped
    expect(await cached(`/v1/id/${seg(a)}`)).toBe('HIT');
    expect(await cached(`/v1/since/${seg(a)}`)).toBe('HIT');
    expect(await cachedQuery({ tag })).toBe('HIT');
    const up = await auth(request(srv.app).put('/v1/api/update')).send({ '@id': a['@id'], type: 'HttpCacheTest', tag, v: 2 });
    expect(up.status).toBeLessThan(300);
    const a2 = objOf(up.body);
    expect((await get(`/v1/id/${seg(a)}`)).headers['x-cache']).toBe('MISS');
    const since = await get(`/v1/since/${seg(a)}`);
    expect(since.headers['x-cache']).toBe('MISS');
    expect(JSON.stringify(since.body)).toContain(seg(a2));
    expect((await query({ tag })).headers['x-cache']).toBe('MISS');
    await unrelated();

    // history of the new version, then a further update drops it (same tree)
    expect(await cached(`/v1/history/${seg(a2)}`)).toBe('HIT');
    const up2 = await auth(request(srv.app).put('/v1/api/update')).send({ '@id': a2['@id'], type: 'HttpCacheTest', tag, v: 3 });
    expect(up2.status).toBeLessThan(300);
    expect((await get(`/v1/history/${seg(a2)}`)).headers['x-cache']).toBe('MISS');

    // overwrite: same id, new content
    expect(await cached(`/v1/id/${seg(b)}`)).toBe('HIT');
    const ow = await auth(request(srv.app).put('/v1/api/overwrite')).send({ '@id': b['@id'], type: 'HttpCacheTest', tag, v: 'over' });
    expect(ow.status).toBe(200);
    const gb = await get(`/v1/id/${seg(b)}`);
    expect(gb.headers['x-cache']).toBe('MISS');
    expect(gb.body.v).toBe('over');
    await unrelated();

    // patch / set / unset, each on the newest version (each makes a new version)
    let newest = b['@id'];
    for (const [route, body] of [
      ['patch', { v: 'patched' }],
      ['set', { extra: 1 }],
      ['unset', { extra: null }],
    ] as const) {
      expect(await cachedQuery({ tag, type: 'HttpCacheTest' })).toBe('HIT');
      const r = await auth(request(srv.app).patch(`/v1/api/${route}`)).send({ '@id': newest, ...body });
      expect(r.status).toBeLessThan(300);
      newest = objOf(r.body)['@id'];
      expect((await query({ tag, type: 'HttpCacheTest' })).headers['x-cache']).toBe('MISS');
    }
    await unrelated();

    // delete: the id entry and matching queries are dropped
    expect(await cached(`/v1/id/${seg(u)}`)).toBe('HIT');
    const del = await auth(request(srv.app).delete(`/v1/api/delete/${seg(u)}`));
    expect(del.status).toBeLessThan(300);
    expect((await get(`/v1/id/${seg(u)}`)).status).not.toBe(200);
    const qd = await query({ tag: `${tag}-u` });
    expect(qd.headers['x-cache']).toBe('MISS');
    expect(qd.body).toEqual([]);
  });

  test('stats and clear through the router (details and clear: the admin agent only)', async () => {
    const s = await get('/v1/api/cache/stats?details=true').set('Authorization', `Bearer ${adminToken}`);
    expect(s.status).toBe(200);
    expect(s.body.enabled).toBe(true);
    expect(s.body.entries).toBeGreaterThan(0);
    expect(Array.isArray(s.body.workers[0].details)).toBe(true);
    expect((await request(srv.app).post('/v1/api/cache/clear')).status).toBe(401);
    expect((await auth(request(srv.app).post('/v1/api/cache/clear'))).status).toBe(403);
    const c = await request(srv.app).post('/v1/api/cache/clear').set('Authorization', `Bearer ${adminToken}`);
    expect(c.status).toBe(200);
    expect((await get('/v1/api/cache/stats')).body.entries).toBe(0);
  });

  test('a filter naming a field __proto__ has an entry of its own, and answers as MongoDB does (the field is missing)', async () => {
    const a = await create({ type: 'ProtoKeyTest' });
    // JSON.parse makes "__proto__" an own field, as the server's body parser does
    const send = (json: string) => request(srv.app).post('/v1/api/query').set('Content-Type', 'application/json').send(json);
    const narrowed = '{"type": "ProtoKeyTest", "__proto__": {"x": 1}}';
    const plain = '{"type": "ProtoKeyTest"}';
    const missing = '{"type": "ProtoKeyTest", "__proto__": null}';
    for (const round of ['MISS', 'HIT']) {
      const n = await send(narrowed);
      expect([n.headers['x-cache'], n.body]).toEqual([round, []]);
      const p = await send(plain);
      expect([p.headers['x-cache'], (p.body as Obj[]).map((o) => o['@id'])]).toEqual([round, [a['@id']]]);
      const m = await send(missing);
      expect([m.headers['x-cache'], (m.body as Obj[]).map((o) => o['@id'])]).toEqual([round, [a['@id']]]);
    }
  });

  test("GET /v1/id and POST /v1/api/query HITs are answered before the routing, with the route's answer and refusals", async () => {
    // the same deps, with a look at what reaches the app's routing (the auth router is mounted after the body parsers)
    const routed: string[] = [];
    const look = Router();
    look.use((req, _res, next) => {
      routed.push(`${req.method} ${req.originalUrl}`);
      next();
    });
    const app = createApp({ ...srv.deps, auth: { ...srv.deps.auth, router: look } });
    const a = await create({ type: 'EarlyHitTest', n: 1 });
    const filter = { type: 'EarlyHitTest', n: 1 };
    const q = (url = '/v1/api/query') => request(app).post(url).send(filter);

    const miss = await q();
    const hit = await q();
    expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(hit.text).toBe(miss.text);
    for (const h of ['content-type', 'etag', 'link', 'cache-control', 'content-length', 'access-control-allow-origin'])
      expect([h, hit.headers[h]]).toEqual([h, miss.headers[h]]);
    expect((await request(app).get(`/v1/id/${seg(a)}`)).headers['x-cache']).toBe('MISS');
    expect((await request(app).get(`/v1/id/${seg(a)}`)).headers['x-cache']).toBe('HIT');
    expect(routed).toEqual(['POST /v1/api/query', `GET /v1/id/${seg(a)}`]); // the two MISSes only

    // what the route would refuse is refused, though the body's answer is cached
    routed.length = 0;
    const asText = await request(app).post('/v1/api/query').set('Content-Type', 'text/plain').send(JSON.stringify(filter));
    expect(asText.status).toBe(415);
    const smuggled = await request(app)
      .post('/v1/api/query')
      .set('Content-Type', 'application/json, text/plain')
      .send(JSON.stringify(filter));
    expect(smuggled.status).toBe(415);
    const broken = await request(app).post('/v1/api/query').set('Content-Type', 'application/json').send('{"type": ');
    expect(broken.status).toBe(400);
    expect((await request(app).post('/v1/api/query').send([filter])).status).toBe(400);
    // another page is another entry; an alias takes the route
    expect((await q('/v1/api/query?limit=1')).headers['x-cache']).toBe('MISS');
    expect((await q('/v1/api/query?limit=1')).headers['x-cache']).toBe('HIT');
    expect((await q('/v1/api/getByProperties')).headers['x-cache']).toBe('HIT');
    // text, smuggled type, array: the route answers; broken JSON: the parser's error goes to the error handler
    expect(routed.filter((r) => r.startsWith('POST'))).toEqual([
      'POST /v1/api/query',
      'POST /v1/api/query',
      'POST /v1/api/query',
      'POST /v1/api/query?limit=1',
      'POST /v1/api/getByProperties',
    ]);
  });
});
