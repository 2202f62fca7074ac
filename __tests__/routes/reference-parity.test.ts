/**
 * Points where an audit against the reference server (rerum_server_nodejs) found this server
 * answering differently without a reason; each test pins the reference's behaviour. Every refusal
 * also checks that nothing was written.
 */
import request from 'supertest';
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

const IIIF3 = 'http://iiif.io/api/presentation/3/context.json';

describe('bulk bodies (one shared check for bulkCreate and bulkUpdate)', () => {
  test("bulkCreate: an empty or null @id is no declared id (as the reference); the stored @id is RERUM's", async () => {
    const before = await h.count();
    const r = await h.authed('post', '/v1/api/bulkCreate').send([
      { '@id': '', a: 1 },
      { '@id': null, a: 2 },
      { id: 'kept-as-content', a: 3 },
    ]);
    expect(r.status).toBe(201);
    expect(r.body).toHaveLength(3);
    for (const o of r.body as Obj[]) expect(o['@id'].startsWith(h.prefix)).toBe(true);
    expect(r.body[2].id).toBe('kept-as-content');
    expect(await h.count()).toBe(before + 3);
  });

  test('bulkCreate: `id` under an id-aliasing context is a declared id → 400, nothing written', async () => {
    const before = await h.count();
    const r = await h.authed('post', '/v1/api/bulkCreate').send([{ a: 1 }, { '@context': IIIF3, id: 'https://example.org/x' }]);
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ status: 400, error: 'Bad Request' });
    expect(r.body.message).toContain('/bulkCreate');
    expect(await h.count()).toBe(before);
  });

  test('bulkUpdate: each item needs @id (or id under an aliasing context) as a non-empty string; else 400, nothing written', async () => {
    const a = await h.create({ v: 1 });
    const before = await h.count();
    const bad: unknown[][] = [
      [{ '@id': a['@id'], v: 2 }, { '@id': '' }],
      [
        { '@id': a['@id'], v: 2 },
        { id: a['@id'], v: 3 },
      ],
      [{ '@id': a['@id'], v: 2 }, { '@id': 5 }],
      [{ '@id': a['@id'], v: 2 }, null],
      [],
    ];
    for (const body of bad) {
      const r = await h.authed('put', '/v1/api/bulkUpdate').send(body);
      expect(r.status).toBe(400);
      if (body.length) expect(r.body.message).toContain('/bulkUpdate');
    }
    expect(await h.count()).toBe(before);
    const ok = await h.authed('put', '/v1/api/bulkUpdate').send([{ '@context': IIIF3, id: a['@id'], v: 4 }]);
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(1);
    expect(ok.body[0].v).toBe(4);
    expect(ok.body[0].__rerum.history.previous).toBe(a['@id']);
    expect(await h.count()).toBe(before + 1);
  });
});

describe('Slug', () => {
  test('an empty Slug header is no slug (as the reference), not a 400', async () => {
    const r = await h.authed('post', '/v1/api/create').set('Slug', '').send({ s: 1 });
    expect(r.status).toBe(201);
    expect(r.body.__rerum).not.toHaveProperty('slug');
    const rel = await h.authed('patch', `/v1/api/release/${h.seg(r.body)}`).set('Slug', '');
    expect(rel.status).toBe(200);
    expect(rel.body.__rerum).not.toHaveProperty('slug');
  });
});

describe('POST with X-HTTP-Method-Override', () => {
  test("the reference's order: no token → 401 before the override check; with a token, no override → 405", async () => {
    const a = await h.create({ keep: 1 });
    const before = await h.count();
    const anon = await request(h.srv.app).post('/v1/api/patch').send({ '@id': a['@id'], keep: 2 });
    expect(anon.status).toBe(401);
    const noOverride = await h.authed('post', '/v1/api/unset').send({ '@id': a['@id'], keep: null });
    expect(noOverride.status).toBe(405);
    expect(noOverride.headers.allow).toBe('PATCH, OPTIONS');
    expect(await h.count()).toBe(before);
  });
});

describe('compatibility names', () => {
  test('getByProperties and batch_create also work without `.action` (the reference rewrites both)', async () => {
    const q = await request(h.srv.app).post('/v1/api/getByProperties?limit=5').send({ a: 1 });
    expect(q.status).toBe(200);
    expect(Array.isArray(q.body)).toBe(true);
    const b = await h.authed('post', '/v1/api/batch_create').send([{ a: 1 }]);
    expect(b.status).toBe(201);
  });
});

describe('query bodies', () => {
  test('a body that is not a JSON object is 400; a bad limit or skip falls back to the default (as the reference)', async () => {
    for (const body of ['[1]', '"text"', '3', 'null']) {
      const r = await request(h.srv.app).post('/v1/api/query').set('Content-Type', 'application/json').send(body);
      expect(r.status).toBe(400);
    }
    for (const qs of ['limit=-1', 'limit=abc', 'skip=1.5', 'skip=-2']) {
      const r = await request(h.srv.app).post(`/v1/api/query?${qs}`).send({ a: 1 });
      expect(r.status).toBe(200);
    }
  });
});
