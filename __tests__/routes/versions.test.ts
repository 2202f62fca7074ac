/** update (and import), patch, set, unset, bulkUpdate, history, since; write failures leave nothing behind. */
import request from 'supertest';
import { ObjectStore } from '../../db/objects';
import {
  DEFAULT_AGENT,
  OTHER_AGENT,
  expectNoUnderscoreId,
  expectRerum,
  failNthCall,
  readBeforeChange,
  startHarness,
  type Harness,
  type Obj,
} from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

describe('PUT /v1/api/update', () => {
  test('a new version: 200, Location, full __rerum; the original links to it', async () => {
    const a = await h.create({ type: 'U', v: 1 });
    const r = await h.authed('put', '/v1/api/update', h.otherToken).send({ '@id': a['@id'], type: 'U', v: 2 });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    const b = r.body.new_obj_state;
    expect(r.headers.location).toBe(b['@id']);
    expect(b['@id']).not.toBe(a['@id']);
    expect(b).toMatchObject({ type: 'U', v: 2 });
    expectRerum(b.__rerum, { generatedBy: OTHER_AGENT, prime: a['@id'], previous: a['@id'] });
    expectNoUnderscoreId(r.body);
    const a2 = (await h.get(`/v1/id/${h.seg(a)}`)).body;
    expect(a2.__rerum.history).toEqual({ prime: 'root', previous: '', next: [b['@id']] });
    expect(a2.v).toBe(1);
  });

  test('a non-RERUM @id is imported as a new root that remembers it', async () => {
    const r = await h.authed('put', '/v1/api/update').send({ '@id': 'http://elsewhere.example/thing/1', label: 'imported' });
    expect(r.status).toBe(200);
    const o = r.body.new_obj_state;
    expect(o['@id'].startsWith(h.prefix)).toBe(true);
    expectRerum(o.__rerum, { generatedBy: DEFAULT_AGENT, prime: 'root', previous: 'http://elsewhere.example/thing/1' });
  });

  test('400 without @id, 404 unknown, 403 deleted; nothing written', async () => {
    const a = await h.create({ v: 1 });
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(a)}`)).status).toBe(204);
    const before = await h.count();
    expect((await h.authed('put', '/v1/api/update').send({ v: 2 })).status).toBe(400);
    expect((await h.authed('put', '/v1/api/update').send({ '@id': `${h.prefix}000000000000000000000000` })).status).toBe(404);
    const del = await h.authed('put', '/v1/api/update').send({ '@id': a['@id'], v: 2 });
    expect(del.status).toBe(403);
    expect((await request(h.srv.app).put('/v1/api/update').send({ '@id': a['@id'] })).status).toBe(401);
    expect(await h.count()).toBe(before);
    const g = await h.get('/v1/api/update');
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe('PUT, OPTIONS');
  });

  test('if linking the parent fails, the new version is removed and the answer is a JSON 500', async () => {
    const a = await h.create({ v: 1 });
    const before = await h.count();
    const coll = h.srv.collection;
    const spy = jest.spyOn(coll, 'findOneAndUpdate').mockImplementation((() => Promise.reject(new Error('link failed'))) as never);
    try {
      const r = await h.authed('put', '/v1/api/update').send({ '@id': a['@id'], v: 2 });
      expect(r.status).toBe(500);
      expect(r.headers['content-type']).toMatch(/json/);
      expect(r.body).toMatchObject({ status: 500 });
    } finally {
      spy.mockRestore();
    }
    expect(await h.count()).toBe(before);
    expect(await coll.countDocuments({ '__rerum.history.previous': a['@id'] })).toBe(0);
    expect((await h.stored(a['@id']))!.__rerum.history.next).toEqual([]);
  });
});

describe('PATCH /v1/api/patch, /set, /unset', () => {
  test('patch changes existing keys, null removes, unknown keys ignored', async () => {
    const a = await h.create({ keep: 1, change: 'x', drop: true });
    const r = await h.authed('patch', '/v1/api/patch').send({ '@id': a['@id'], change: 'y', drop: null, novel: 1 });
    expect(r.status).toBe(200);
    const b = r.body.new_obj_state;
    expect(b).toMatchObject({ keep: 1, change: 'y' });
    expect(b).not.toHaveProperty('drop');
    expect(b).not.toHaveProperty('novel');
    expect(r.headers.location).toBe(b['@id']);
    expectRerum(b.__rerum, { generatedBy: DEFAULT_AGENT, prime: a['@id'], previous: a['@id'] });
  });

  test('set adds keys; unset removes keys; versions chain', async () => {
    const a = await h.create({ keep: 1, gone: 2 });
    const s = await h.authed('patch', '/v1/api/set').send({ '@id': a['@id'], keep: 9, added: 'yes' });
    expect(s.status).toBe(200);
    const b = s.body.new_obj_state;
    expect(b).toMatchObject({ keep: 1, added: 'yes', gone: 2 });
    const u = await h.authed('patch', '/v1/api/unset').send({ '@id': b['@id'], gone: null, keep: 5 });
    expect(u.status).toBe(200);
    const c = u.body.new_obj_state;
    expect(c).toMatchObject({ keep: 1, added: 'yes' });
    expect(c).not.toHaveProperty('gone');
    expectRerum(c.__rerum, { generatedBy: DEFAULT_AGENT, prime: a['@id'], previous: b['@id'] });
  });

  test('no effective change: 200 with the object, nothing written', async () => {
    const a = await h.create({ keep: 1 });
    const before = await h.count();
    for (const [route, body] of [
      ['patch', { novel: 1 }],
      ['set', { keep: 2 }],
      ['unset', { keep: 2, absent: null }],
    ] as const) {
      const r = await h.authed('patch', `/v1/api/${route}`).send({ '@id': a['@id'], ...body });
      expect(r.status).toBe(200);
      expect(r.body.new_obj_state['@id']).toBe(a['@id']);
    }
    expect(await h.count()).toBe(before);
  });

  test('POST with X-HTTP-Method-Override: PATCH works; plain POST is 405', async () => {
    const a = await h.create({ keep: 1 });
    const ok = await h.authed('post', '/v1/api/set').set('X-HTTP-Method-Override', 'PATCH').send({ '@id': a['@id'], more: 1 });
    expect(ok.status).toBe(200);
    expect(ok.body.more).toBe(1);
    const before = await h.count();
    const no = await h.authed('post', '/v1/api/patch').send({ '@id': a['@id'], keep: 2 });
    expect(no.status).toBe(405);
    expect(no.headers.allow).toBe('PATCH, OPTIONS');
    expect((await h.authed('put', '/v1/api/unset').send({})).status).toBe(405);
    expect(await h.count()).toBe(before);
  });

  test('501 for an object not in RERUM, 403 for deleted, 400 without @id', async () => {
    const a = await h.create({ keep: 1 });
    await h.authed('delete', `/v1/api/delete/${h.seg(a)}`);
    const before = await h.count();
    expect((await h.authed('patch', '/v1/api/patch').send({ '@id': `${h.prefix}000000000000000000000000`, keep: 2 })).status).toBe(501);
    expect((await h.authed('patch', '/v1/api/set').send({ '@id': a['@id'], x: 2 })).status).toBe(403);
    expect((await h.authed('patch', '/v1/api/unset').send({ x: null })).status).toBe(400);
    expect(await h.count()).toBe(before);
  });
});

describe('PUT /v1/api/bulkUpdate', () => {
  test('a version per item; the same object twice makes a branch; unknown items skipped', async () => {
    const a = await h.create({ n: 'a' });
    const b = await h.create({ n: 'b' });
    const r = await h.authed('put', '/v1/api/bulkUpdate').send([
      { '@id': a['@id'], n: 'a2' },
      { '@id': b['@id'], n: 'b2' },
      { '@id': a['@id'], n: 'a3' },
      { '@id': 'http://elsewhere.example/x', n: 'skip' },
      { '@id': `${h.prefix}000000000000000000000000`, n: 'skip' },
    ]);
    expect(r.status).toBe(200);
    expect(r.body.map((o: Obj) => o.n)).toEqual(['a2', 'b2', 'a3']);
    expectNoUnderscoreId(r.body);
    for (const o of r.body) expect(r.headers.link).toContain(o['@id']);
    const aNow = (await h.get(`/v1/id/${h.seg(a)}`)).body;
    expect(aNow.__rerum.history.next).toEqual([r.body[0]['@id'], r.body[2]['@id']]);
    expectRerum(r.body[2].__rerum, { generatedBy: DEFAULT_AGENT, prime: a['@id'], previous: a['@id'] });
  });

  test('400s write nothing', async () => {
    const before = await h.count();
    for (const body of [[], [{ n: 1 }], [null], { '@id': 'x' }]) {
      expect((await h.authed('put', '/v1/api/bulkUpdate').send(body as object)).status).toBe(400);
    }
    expect(await h.count()).toBe(before);
  });

  test('a failure part-way removes the versions already made', async () => {
    const a = await h.create({ n: 'a' });
    const b = await h.create({ n: 'b' });
    const before = await h.count();
    const spy = failNthCall(h.srv.collection, 'findOneAndUpdate', 2, 'second link fails');
    try {
      const r = await h.authed('put', '/v1/api/bulkUpdate').send([
        { '@id': a['@id'], n: 'a2' },
        { '@id': b['@id'], n: 'b2' },
      ]);
      expect(r.status).toBe(500);
    } finally {
      spy.mockRestore();
    }
    expect(await h.count()).toBe(before);
    expect((await h.stored(a['@id']))!.__rerum.history.next).toEqual([]);
    expect((await h.stored(b['@id']))!.__rerum.history.next).toEqual([]);
  });
});

describe('GET /v1/history/:id and /v1/since/:id', () => {
  test('a chain with a branch', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const c = await h.update({ '@id': b['@id'], v: 'c' });
    const d = await h.update({ '@id': b['@id'], v: 'd' });
    const hist = await h.get(`/v1/history/${h.seg(c)}`);
    expect(hist.status).toBe(200);
    expect(hist.headers['content-type']).toMatch(/^application\/ld\+json/);
    expect(hist.body.map((o: Obj) => o.v)).toEqual(['b', 'a']);
    for (const o of hist.body) expect(o.__rerum.history.prime).toBeDefined();
    expectNoUnderscoreId(hist.body);
    expect((await h.get(`/v1/history/${h.seg(a)}`)).body).toEqual([]);
    const since = await h.get(`/v1/since/${h.seg(a)}`);
    expect(since.body.map((o: Obj) => o.v)).toEqual(['b', 'c', 'd']);
    expect((await h.get(`/v1/since/${h.seg(d)}`)).body).toEqual([]);
    expect((await h.get('/v1/history/000000000000000000000000')).status).toBe(404);
    expect((await h.get('/v1/since/000000000000000000000000')).status).toBe(404);
    const p = await h.authed('post', `/v1/since/${h.seg(a)}`).send({});
    expect(p.status).toBe(405);
    expect(p.headers.allow).toBe('GET, HEAD, OPTIONS');
  });
});

describe('a parent deleted by another request between the read and the link', () => {
  // The stale read is what a request that read just before a concurrent DELETE holds.
  const readBeforeDelete = () => readBeforeChange(h, (o) => h.authed('delete', `/v1/api/delete/${h.seg(o)}`));

  test('update and patch answer as if the delete came first (403); nothing is stored', async () => {
    for (const [method, url] of [
      ['put', '/v1/api/update'],
      ['patch', '/v1/api/patch'],
    ] as const) {
      const { o: a, stale: live } = await readBeforeDelete();
      const before = await h.count();
      const spy = jest.spyOn(ObjectStore.prototype, 'findBySegment').mockResolvedValueOnce(live);
      try {
        const r = await h.authed(method, url).send({ '@id': a['@id'], v: 2 });
        expect([r.status, r.body.message]).toEqual([403, 'The object you are trying to update is deleted.']);
        expect(spy).toHaveBeenCalledTimes(2);
      } finally {
        spy.mockRestore();
      }
      expect(await h.count()).toBe(before);
      expect(await h.srv.collection.countDocuments({ '__rerum.history.previous': a['@id'] })).toBe(0);
    }
  });

  test('bulkUpdate skips the deleted object, as it would have if the delete came first', async () => {
    const { o: a, stale: live } = await readBeforeDelete();
    const b = await h.create({ v: 1 });
    const before = await h.count();
    const stale = new Map([
      [h.seg(a), live],
      [h.seg(b), (await h.stored(b['@id']))!],
    ]);
    const spy = jest.spyOn(ObjectStore.prototype, 'findBySegments').mockResolvedValueOnce(stale);
    try {
      const r = await h.authed('put', '/v1/api/bulkUpdate').send([
        { '@id': a['@id'], v: 2 },
        { '@id': b['@id'], v: 2 },
      ]);
      expect(r.status).toBe(200);
      expect(r.body.map((o: Obj) => o.__rerum.history.previous)).toEqual([b['@id']]);
    } finally {
      spy.mockRestore();
    }
    expect(await h.count()).toBe(before + 1);
    expect(await h.srv.collection.countDocuments({ '__rerum.history.previous': a['@id'] })).toBe(0);
  });
});
