/** Client mistakes answer 4xx JSON (never a 500), and failed writes still tell the cache what was visible. */
import request from 'supertest';
import { failNthCall, headWithBody as headWithBodyOf, startHarness, type Harness } from './helpers';
import type { ObjectChange } from '../../types/contracts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

const headWithBody = (path: string, body: unknown) => headWithBodyOf(h, path, body);

const IIIF3 = 'http://iiif.io/api/presentation/3/context.json';

describe('bulkUpdate identifiers', () => {
  test('under an aliasing context the item is named by `id` (as checked), even when `@id` is not a string', async () => {
    const a = await h.create({ v: 1 });
    const r = await h.authed('put', '/v1/api/bulkUpdate').send([{ '@context': IIIF3, id: a['@id'], '@id': 7, v: 2 }]);
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(1);
    expect(r.body[0].__rerum.history.previous).toBe(a['@id']);
  });
});

describe('query filters that would run JavaScript on the database', () => {
  const filters = [
    { $where: 'function () { return true }' },
    { $expr: { $function: { body: 'function () { return true }', args: [], lang: 'js' } } },
    { $or: [{ a: 1 }, { $expr: { $gt: [{ $accumulator: { init: 'function () {}' } }, 0] } }] },
  ];
  test.each(filters)('POST and HEAD /query: 400 naming the operator, %j', async (filter) => {
    const op = JSON.stringify(filter).match(/\$(where|function|accumulator)/)![0];
    const post = await request(h.srv.app).post('/v1/api/query').send(filter);
    expect(post.status).toBe(400);
    expect(post.body.message).toContain(`${op} (server-side JavaScript) is not allowed`);
    const head = await headWithBody('/v1/api/query', filter);
    expect(head.status).toBe(400);
    expect((await headWithBody('/v1/api/query', { a: 1 })).status).not.toBe(400); // the same request shape is fine without the operator
  });
});

describe('limit and skip', () => {
  test('HEAD /query describes the same page as POST (limit and skip apply)', async () => {
    const tag = `head-page-${Date.now()}`;
    for (let i = 0; i < 3; i++) await h.create({ tag, i, pad: 'x'.repeat(50) });
    for (const qs of ['limit=1', 'limit=2&skip=1', '']) {
      const post = await request(h.srv.app).post(`/v1/api/query?${qs}`).send({ tag });
      const head = await headWithBody(`/v1/api/query?${qs}`, { tag });
      expect(head.status).toBe(200);
      expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(post.body)));
    }
  });
  test.each(['limit=99999999999999999999', 'skip=1e20', 'limit=9007199254740992', 'skip=99999999999999999999'])(
    'huge values are capped, never a database error: %s',
    async (qs) => {
      const q = await request(h.srv.app).post(`/v1/api/query?${qs}`).send({ a: 1 });
      expect(q.status).toBe(200);
      const s = await request(h.srv.app).post(`/v1/api/search?${qs}`).send({ searchText: 'x' });
      expect(s.status).toBe(200);
    },
  );
});

describe('a write that fails part-way still invalidates what was visible', () => {
  const touched = (spy: jest.SpyInstance) =>
    (spy.mock.calls as ObjectChange[][][]).flatMap(([changes]) => changes.flatMap((c) => [c.before?._id, c.after?._id]));

  test('bulkUpdate: the versions made before the failure', async () => {
    const a = await h.create({ n: 'a' });
    const b = await h.create({ n: 'b' });
    const link = failNthCall(h.srv.collection, 'findOneAndUpdate', 2, 'second link fails');
    const inv = jest.spyOn(h.srv.deps.cache, 'invalidate');
    try {
      const r = await h.authed('put', '/v1/api/bulkUpdate').send([
        { '@id': a['@id'], n: 'a2' },
        { '@id': b['@id'], n: 'b2' },
      ]);
      expect(r.status).toBe(500);
      expect(touched(inv)).toContain(h.seg(a));
      expect(touched(inv).filter((id) => id && id !== h.seg(a)).length).toBeGreaterThan(0); // the removed version
    } finally {
      link.mockRestore();
      inv.mockRestore();
    }
  });

  test('update: the version that was briefly in the database, and its parent', async () => {
    const a = await h.create({ n: 'a' });
    const coll = h.srv.collection;
    const link = jest.spyOn(coll, 'findOneAndUpdate').mockRejectedValueOnce(new Error('link fails') as never);
    const inv = jest.spyOn(h.srv.deps.cache, 'invalidate');
    const before = await h.count();
    try {
      const r = await h.authed('put', '/v1/api/update').send({ '@id': a['@id'], n: 'a2' });
      expect(r.status).toBe(500);
      const ids = touched(inv);
      expect(ids).toContain(h.seg(a));
      expect(new Set(ids.filter((id) => id && id !== h.seg(a))).size).toBe(1); // the version: inserted, then removed
    } finally {
      link.mockRestore();
      inv.mockRestore();
    }
    expect(await h.count()).toBe(before);
  });

  test('bulkCreate: the objects inserted before the failure', async () => {
    const taken = (await h.create({ n: 'taken' }))['@id'].split('/').pop();
    const fresh = 'abcdefabcdefabcdefabcdef';
    const inv = jest.spyOn(h.srv.deps.cache, 'invalidate');
    try {
      const r = await h.authed('post', '/v1/api/bulkCreate').send([
        { _id: fresh, n: 1 },
        { _id: taken, n: 2 },
      ]);
      expect(r.status).toBe(409);
      expect(touched(inv)).toContain(fresh);
    } finally {
      inv.mockRestore();
    }
    expect(await h.stored(fresh)).toBeNull();
  });

  test('delete: the healed neighbours whose stored state changed (or may have), when a later replacement fails', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const c = await h.update({ '@id': b['@id'], v: 'c' });
    const rep = failNthCall(h.srv.collection, 'findOneAndUpdate', 2, 'second replacement fails');
    const inv = jest.spyOn(h.srv.deps.cache, 'invalidate');
    try {
      const r = await h.authed('delete', `/v1/api/delete/${h.seg(b)}`);
      expect(r.status).toBe(500);
      // c was mended and put back, a's step failed (it may have landed); b was never written to
      expect(new Set(touched(inv))).toEqual(new Set([h.seg(a), h.seg(c)]));
    } finally {
      rep.mockRestore();
      inv.mockRestore();
    }
    expect((await h.stored(b['@id']))!.__deleted).toBeUndefined();
  });
});
