/** create, bulkCreate, id, query, API index, static files, 405s, compatibility redirects. */
import request from 'supertest';
import { DEFAULT_AGENT, expectNoUnderscoreId, expectRerum, startHarness, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

describe('POST /v1/api/create', () => {
  test('201, Location, headers, body and new_obj_state with full __rerum', async () => {
    const r = await h.authed('post', '/v1/api/create').send({ type: 'Thing', label: 'one', '@id': 'forged', __rerum: { forged: 1 } });
    expect(r.status).toBe(201);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers.link).toBe('<http://www.w3.org/ns/ldp#Resource>; rel="type"');
    const id = r.body['@id'];
    expect(id).toMatch(new RegExp(`^${h.prefix}[0-9a-f]{24}$`));
    expect(r.headers.location).toBe(id);
    expect(r.body).toMatchObject({ type: 'Thing', label: 'one' });
    const { new_obj_state: state, ...rest } = r.body;
    expect(state).toEqual(rest);
    expectRerum(r.body.__rerum, { generatedBy: DEFAULT_AGENT, prime: 'root', previous: '' });
    expectNoUnderscoreId(r.body);
    const stored = await h.stored(id);
    expect(stored!._id).toBe(h.seg(id));
    expect(Object.keys(stored!).filter((k) => k !== '_id')).toEqual(['@id', 'type', 'label', '__rerum']);
  });

  test('JSON-LD objects: @context first, ld+json Content-Type; IIIF 3 gets id not @id', async () => {
    const ld = await h.authed('post', '/v1/api/create').send({ '@context': 'http://example.org/ctx', type: 'Canvas' });
    expect(ld.status).toBe(201);
    expect(ld.headers['content-type']).toMatch(/^application\/ld\+json; ?charset=utf-8; ?profile="http:\/\/www.w3.org\/ns\/anno.jsonld"/);
    expect(Object.keys(ld.body).slice(0, 2)).toEqual(['@context', '@id']);
    expect(ld.headers.link).toContain('anno.jsonld');

    const iiif = await h
      .authed('post', '/v1/api/create')
      .send({ '@context': 'http://iiif.io/api/presentation/3/context.json', type: 'Manifest', id: 'http://forged/1' });
    expect(iiif.status).toBe(201);
    expect(Object.keys(iiif.body).slice(0, 2)).toEqual(['@context', 'id']);
    expect(iiif.body.id).toMatch(new RegExp(`^${h.prefix}[0-9a-f]{24}$`));
    expect(iiif.body).not.toHaveProperty('@id');
    expect(iiif.headers.location).toBe(iiif.body.id);
    const got = await h.get(`/v1/id/${h.seg(iiif.body.id)}`);
    expect(got.body.id).toBe(iiif.body.id);
    expect(got.body).not.toHaveProperty('@id');
  });

  test('Slug header: readable by slug; a taken slug is 409 and nothing is written', async () => {
    const slug = `slug-${Date.now()}`;
    const r = await h.authed('post', '/v1/api/create').set('Slug', slug).send({ n: 1 });
    expect(r.status).toBe(201);
    expect(r.body.__rerum.slug).toBe(slug);
    const bySlug = await h.get(`/v1/id/${slug}`);
    expect(bySlug.status).toBe(200);
    expect(bySlug.body['@id']).toBe(r.body['@id']);
    const before = await h.count();
    const again = await h.authed('post', '/v1/api/create').set('Slug', slug).send({ n: 2 });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ status: 409 });
    expect(await h.count()).toBe(before);
  });

  test('a client _id (24 hex) is used as the id; a taken one is 409', async () => {
    const hex = 'abcdefabcdefabcdefabcdef';
    const r = await h.authed('post', '/v1/api/create').send({ _id: hex, n: 1 });
    expect(r.status).toBe(201);
    expect(r.body['@id']).toBe(h.prefix + hex);
    expectNoUnderscoreId(r.body);
    const before = await h.count();
    expect((await h.authed('post', '/v1/api/create').send({ _id: hex, n: 2 })).status).toBe(409);
    expect(await h.count()).toBe(before);
    const other = await h.authed('post', '/v1/api/create').send({ _id: 'not-hex', n: 3 });
    expect(h.seg(other.body)).not.toBe('not-hex');
  });

  test('bad input writes nothing: no token 401, wrong Content-Type 415, array 400, malformed JSON 400', async () => {
    const before = await h.count();
    expect((await request(h.srv.app).post('/v1/api/create').send({ a: 1 })).status).toBe(401);
    const other = await h.authed('post', '/v1/api/create').set('Content-Type', 'text/plain').send('a=1');
    expect(other.status).toBe(415);
    expect((await h.authed('post', '/v1/api/create').send([{ a: 1 }])).status).toBe(400);
    const bad = await h.authed('post', '/v1/api/create').set('Content-Type', 'application/json').send('{"a":');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/json/);
    expect(await h.count()).toBe(before);
  });

  test('405 with Allow for other methods; OPTIONS lists them', async () => {
    const r = await h.get('/v1/api/create');
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST, OPTIONS');
    expect(r.body).toMatchObject({ status: 405 });
    const put = await h.authed('put', '/v1/api/create').send({});
    expect(put.status).toBe(405);
    const opt = await request(h.srv.app).options('/v1/api/create');
    expect(opt.status).toBe(204);
    expect(opt.headers.allow).toBe('POST, OPTIONS');
  });
});

describe('POST /v1/api/bulkCreate', () => {
  test('201 with every object, Link headers', async () => {
    const r = await h.authed('post', '/v1/api/bulkCreate').send([{ b: 1 }, { b: 2 }]);
    expect(r.status).toBe(201);
    expect(r.body).toHaveLength(2);
    expectNoUnderscoreId(r.body);
    for (const o of r.body) {
      expectRerum(o.__rerum, { generatedBy: DEFAULT_AGENT, prime: 'root', previous: '' });
      expect(r.headers.link).toContain(o['@id']);
      expect((await h.get(`/v1/id/${h.seg(o)}`)).status).toBe(200);
    }
  });

  test('400s write nothing: empty array, items with @id, non-objects, object body', async () => {
    const before = await h.count();
    for (const body of [[], [{ a: 1 }, { '@id': 'x' }], [1], [[{}]], { a: 1 }]) {
      const r = await h.authed('post', '/v1/api/bulkCreate').send(body as object);
      expect(r.status).toBe(400);
    }
    expect(await h.count()).toBe(before);
    expect((await h.get('/v1/api/bulkCreate')).headers.allow).toBe('POST, OPTIONS');
  });
});

describe('GET /v1/id/:id', () => {
  test('200 with headers; HEAD; 404; 405', async () => {
    const a = await h.create({ type: 'Read', n: 1 });
    const r = await h.get(`/v1/id/${h.seg(a)}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual(a);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache'); // see the README's Compatibility section
    expect(r.headers['last-modified']).toBeUndefined();
    expect(r.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(r.headers['current-overwritten-version']).toBe('');
    expect(r.headers.location).toBe(a['@id']);
    expectNoUnderscoreId(r.body);
    const head = await request(h.srv.app).head(`/v1/id/${h.seg(a)}`);
    expect(head.status).toBe(200);
    expect(head.text ?? '').toBe('');
    const missing = await h.get('/v1/id/000000000000000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ status: 404 });
    const post = await h.authed('post', `/v1/id/${h.seg(a)}`).send({});
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD, OPTIONS');
  });
});

describe('POST /v1/api/query', () => {
  test('matches, limit/skip, no _id, LD list headers', async () => {
    const tag = `q${Date.now()}`;
    for (let i = 0; i < 5; i++) await h.create({ tag, i });
    const all = await request(h.srv.app).post('/v1/api/query').send({ tag });
    expect(all.status).toBe(200);
    expect(all.body).toHaveLength(5);
    expect(all.headers['content-type']).toMatch(/^application\/ld\+json/);
    expect(all.headers.link).toContain('rel="http://www.w3.org/ns/json-ld#context"');
    expectNoUnderscoreId(all.body);
    const page = await request(h.srv.app).post('/v1/api/query?limit=2&skip=1').send({ tag });
    expect(page.body.map((o: { i: number }) => o.i)).toEqual([1, 2]);
    const ops = await request(h.srv.app)
      .post('/v1/api/query')
      .send({ tag, i: { $gte: 3 } });
    expect(ops.body).toHaveLength(2);
  });

  test('400 for empty body; 415; 405', async () => {
    expect((await request(h.srv.app).post('/v1/api/query').send({})).status).toBe(400);
    expect((await request(h.srv.app).post('/v1/api/query').set('Content-Type', 'text/plain').send('a')).status).toBe(415);
    const g = await h.get('/v1/api/query');
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe('POST, HEAD, OPTIONS');
  });

  test('deleted objects are left out', async () => {
    const tag = `qd${Date.now()}`;
    const a = await h.create({ tag });
    await h.create({ tag });
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(a)}`)).status).toBe(204);
    const r = await request(h.srv.app).post('/v1/api/query').send({ tag });
    expect(r.body).toHaveLength(1);
    const byId = await request(h.srv.app).post('/v1/api/query').send({ '@id': a['@id'] });
    expect(byId.body).toEqual([]);
  });
});

describe('index, static, compatibility', () => {
  test('GET /v1/api lists the endpoints', async () => {
    const r = await h.get('/v1/api');
    expect(r.status).toBe(200);
    expect(r.body.message).toMatch(/Welcome to v1/);
    expect(Object.keys(r.body.endpoints)).toEqual(expect.arrayContaining(['/create', '/update', '/query', '/delete']));
  });
  test('context.json and the API page; /v1 redirects to it', async () => {
    const ctx = await h.get('/v1/context.json');
    expect(ctx.status).toBe(200);
    expect(ctx.body['@context'].__rerum).toBe('rerum_v1:__rerum');
    const page = await h.get('/v1/API.html');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const root = await h.get('/v1/');
    expect(root.status).toBe(200);
    expect(root.headers['content-type']).toMatch(/text\/html/);
  });
  test("old .action names are answered as today's routes (rewritten, as the reference)", async () => {
    const r = await h.authed('post', '/v1/api/create.action').send({ a: 1 });
    expect(r.status).toBe(201);
    expect((await h.get('/v1/api/nonsense.action')).status).toBe(404);
  });
});
