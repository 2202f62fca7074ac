/** overwrite, release, delete: ownership, released/deleted refusals, and the trees after chains of them. */
import request from 'supertest';
import { ObjectStore } from '../../db/objects';
import { DEFAULT_AGENT, expectNoUnderscoreId, failNthCall, readBeforeChange, startHarness, type Harness, type Obj } from './helpers';

const BOT = 'http://rerum.test/v1/id/the-bot';
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { BOT_AGENT: BOT } });
});
afterAll(async () => {
  await h?.srv.close();
});

const read = async (o: Obj | string) => (await h.get(`/v1/id/${h.seg(o)}`)).body;
const hist = async (o: Obj) => (await read(o)).__rerum.history;
const rel = async (o: Obj) => (await read(o)).__rerum.releases;

describe('PUT /v1/api/overwrite', () => {
  test('replaces in place: same @id, history kept, isOverwritten stamped, header set', async () => {
    const a = await h.create({ v: 1, gone: true });
    const b = await h.update({ '@id': a['@id'], v: 2 });
    const r = await h.authed('put', '/v1/api/overwrite').send({ '@id': a['@id'], v: 'over' });
    expect(r.status).toBe(200);
    const o = r.body.new_obj_state;
    expect(o['@id']).toBe(a['@id']);
    expect(r.headers.location).toBe(a['@id']);
    expect(o.v).toBe('over');
    expect(o).not.toHaveProperty('gone');
    expect(o.__rerum.isOverwritten).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$/);
    expect(r.headers['current-overwritten-version']).toBe(o.__rerum.isOverwritten);
    expect(o.__rerum.history).toEqual({ prime: 'root', previous: '', next: [b['@id']] });
    expect(o.__rerum.createdAt).toBe(a.__rerum.createdAt);
    expectNoUnderscoreId(r.body);
    const got = await h.get(`/v1/id/${h.seg(a)}`);
    expect(got.body.v).toBe('over');
    expect(got.headers['current-overwritten-version']).toBe(o.__rerum.isOverwritten);
  });

  test('version check: a stale If-Overwritten-Version (or body __rerum.isOverwritten) is 409 with the current version', async () => {
    const a = await h.create({ v: 1 });
    const first = await h.authed('put', '/v1/api/overwrite').set('If-Overwritten-Version', '').send({ '@id': a['@id'], v: 2 });
    expect(first.status).toBe(200);
    const stamp = first.body.__rerum.isOverwritten;
    const stale = await h.authed('put', '/v1/api/overwrite').set('If-Overwritten-Version', '').send({ '@id': a['@id'], v: 3 });
    expect(stale.status).toBe(409);
    expect(stale.body.currentVersion).toMatchObject({ '@id': a['@id'], v: 2 });
    expectNoUnderscoreId(stale.body);
    const staleBody = await h.authed('put', '/v1/api/overwrite').send({ '@id': a['@id'], v: 3, __rerum: { isOverwritten: 'old' } });
    expect(staleBody.status).toBe(409);
    expect((await read(a)).v).toBe(2);
    const ok = await h.authed('put', '/v1/api/overwrite').set('If-Overwritten-Version', stamp).send({ '@id': a['@id'], v: 4 });
    expect(ok.status).toBe(200);
  });

  test('refusals write nothing: 401 other agent, 403 released, 403 deleted, 404, 400', async () => {
    const mine = await h.create({ v: 1 });
    const released = await h.create({ v: 1 });
    await h.authed('patch', `/v1/api/release/${h.seg(released)}`);
    const deleted = await h.create({ v: 1 });
    await h.authed('delete', `/v1/api/delete/${h.seg(deleted)}`);
    const snapshot = JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray());
    expect((await h.authed('put', '/v1/api/overwrite', h.otherToken).send({ '@id': mine['@id'], v: 2 })).status).toBe(401);
    expect((await h.authed('put', '/v1/api/overwrite').send({ '@id': released['@id'], v: 2 })).status).toBe(403);
    expect((await h.authed('put', '/v1/api/overwrite').send({ '@id': deleted['@id'], v: 2 })).status).toBe(403);
    expect((await h.authed('put', '/v1/api/overwrite').send({ '@id': `${h.prefix}000000000000000000000000` })).status).toBe(404);
    expect((await h.authed('put', '/v1/api/overwrite').send({ v: 2 })).status).toBe(400);
    expect(JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray())).toBe(snapshot);
    const post = await h.authed('post', '/v1/api/overwrite').send({});
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('PUT, OPTIONS');
  });

  test('BOT_AGENT has no ownership privilege (the reference compares the agent with generatedBy only)', async () => {
    const a = await h.create({ v: 1 });
    const botToken = await h.srv.token(BOT);
    const before = JSON.stringify(await h.stored(a['@id']));
    for (const [method, url, body] of [
      ['put', '/v1/api/overwrite', { '@id': a['@id'], v: 'bot' }],
      ['patch', `/v1/api/release/${h.seg(a)}`, undefined],
      ['delete', `/v1/api/delete/${h.seg(a)}`, undefined],
    ] as const) {
      const r = await h.authed(method, url, botToken).send(body);
      expect(r.status).toBe(401);
      expect(r.body.message).toMatch(/not the generating agent/);
    }
    expect(JSON.stringify(await h.stored(a['@id']))).toBe(before);
    // The bot's own objects are its to change; an expired bot token is refused like any other.
    const mine = await h.create({ v: 1 }, botToken);
    expect((await h.authed('put', '/v1/api/overwrite', botToken).send({ '@id': mine['@id'], v: 2 })).status).toBe(200);
    const expired = await h.srv.token(BOT, {}, -60);
    expect((await h.authed('put', '/v1/api/overwrite', expired).send({ '@id': mine['@id'], v: 3 })).status).toBe(401);
  });
});

describe('PATCH /v1/api/release/:id', () => {
  test('release stamps isReleased, sets slug, updates the releases tree both ways', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const c = await h.update({ '@id': b['@id'], v: 'c' });
    const slug = `rel-${Date.now()}`;
    const r = await h.authed('patch', `/v1/api/release/${h.seg(b)}`).set('Slug', slug);
    expect(r.status).toBe(200);
    expect(r.headers.location).toBe(b['@id']);
    const rb = r.body.new_obj_state;
    expect(rb.__rerum.isReleased).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(rb.__rerum.slug).toBe(slug);
    expect(rb.__rerum.releases).toEqual({ previous: '', next: [], replaces: '' });
    expectNoUnderscoreId(r.body);
    expect((await h.get(`/v1/id/${slug}`)).body['@id']).toBe(b['@id']);
    expect(await rel(c)).toEqual({ previous: b['@id'], next: [], replaces: '' });
    expect(await rel(a)).toEqual({ previous: '', next: [b['@id']], replaces: '' });

    // a new version of a released object knows its release; releasing it replaces b
    const d = await h.update({ '@id': b['@id'], v: 'd' });
    expect(d.__rerum.releases.previous).toBe(b['@id']);
    const rd = await h.authed('patch', `/v1/api/release/${h.seg(d)}`);
    expect(rd.status).toBe(200);
    expect(rd.body.__rerum.releases).toEqual({ previous: b['@id'], next: [], replaces: b['@id'] });
    expect((await rel(b)).next).toEqual([d['@id']]);
    expect((await rel(a)).next).toEqual([b['@id'], d['@id']]);
  });

  test('refusals: already released 403, other agent 401, deleted 403, unknown 404, taken slug 409', async () => {
    const a = await h.create({ v: 1 });
    expect((await h.authed('patch', `/v1/api/release/${h.seg(a)}`, h.otherToken)).status).toBe(401);
    expect((await h.authed('patch', `/v1/api/release/${h.seg(a)}`)).status).toBe(200);
    expect((await h.authed('patch', `/v1/api/release/${h.seg(a)}`)).status).toBe(403);
    const gone = await h.create({ v: 1 });
    await h.authed('delete', `/v1/api/delete/${h.seg(gone)}`);
    expect((await h.authed('patch', `/v1/api/release/${h.seg(gone)}`)).status).toBe(403);
    expect((await h.authed('patch', '/v1/api/release/000000000000000000000000')).status).toBe(404);
    const b = await h.create({ v: 1 });
    const slugged = await h.authed('post', '/v1/api/create').set('Slug', `taken-${Date.now()}`).send({ v: 1 });
    const taken = await h.authed('patch', `/v1/api/release/${h.seg(b)}`).set('Slug', slugged.body.__rerum.slug);
    expect(taken.status).toBe(409);
    // Another object's _id is not a usable Slug either (24 hex: the generated-id form).
    expect((await h.authed('patch', `/v1/api/release/${h.seg(b)}`).set('Slug', h.seg(a))).status).toBe(400);
    expect((await read(b)).__rerum.isReleased).toBe('');
    expect((await request(h.srv.app).patch(`/v1/api/release/${h.seg(b)}`)).status).toBe(401);
    const g = await h.get(`/v1/api/release/${h.seg(b)}`);
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe('PATCH, OPTIONS');
  });
});

describe('DELETE /v1/api/delete/:id', () => {
  test('deleting a middle version re-links its previous and next; tombstone stored; reads 404', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const c = await h.update({ '@id': b['@id'], v: 'c' });
    const r = await h.authed('delete', `/v1/api/delete/${h.seg(b)}`);
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect(await hist(a)).toEqual({ prime: 'root', previous: '', next: [c['@id']] });
    expect(await hist(c)).toEqual({ prime: a['@id'], previous: a['@id'], next: [] });
    const stored = (await h.stored(b['@id'])) as unknown as Obj;
    expect(Object.keys(stored).sort()).toEqual(['@id', '__deleted', '_id']);
    expect(stored.__deleted).toMatchObject({ deletor: DEFAULT_AGENT, object: { '@id': b['@id'], v: 'b' } });
    expect(stored.__deleted.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$/);
    expect(stored.__deleted.object).not.toHaveProperty('_id');
    expect((await h.get(`/v1/id/${h.seg(b)}`)).status).toBe(404);
    expect((await h.get(`/v1/history/${h.seg(c)}`)).body.map((o: Obj) => o.v)).toEqual(['a']);
    expect((await h.get(`/v1/since/${h.seg(a)}`)).body.map((o: Obj) => o.v)).toEqual(['c']);
    expect((await h.get(`/v1/history/${h.seg(b)}`)).body).toEqual([]);
  });

  test('deleting the prime makes each next version a root of its own tree', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const c = await h.update({ '@id': b['@id'], v: 'c' });
    const d = await h.update({ '@id': a['@id'], v: 'd' });
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(a)}`)).status).toBe(204);
    expect(await hist(b)).toEqual({ prime: 'root', previous: '', next: [c['@id']] });
    expect(await hist(c)).toEqual({ prime: b['@id'], previous: b['@id'], next: [] });
    expect(await hist(d)).toEqual({ prime: 'root', previous: '', next: [] });
    expect((await h.get(`/v1/history/${h.seg(c)}`)).body.map((o: Obj) => o.v)).toEqual(['b']);
    expect((await h.get(`/v1/since/${h.seg(b)}`)).body.map((o: Obj) => o.v)).toEqual(['c']);
    // and the new tree keeps working
    const e = await h.update({ '@id': c['@id'], v: 'e' });
    expect(e.__rerum.history.prime).toBe(b['@id']);
  });

  test('deleting the newest version unlinks it; delete by body @id works too', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const r = await h.authed('delete', '/v1/api/delete').send({ '@id': b['@id'] });
    expect(r.status).toBe(204);
    expect(await hist(a)).toEqual({ prime: 'root', previous: '', next: [] });
  });

  test('refusals write nothing: other agent 401, released 403, already deleted 403, unknown 404', async () => {
    const a = await h.create({ v: 1 });
    const released = await h.create({ v: 1 });
    await h.authed('patch', `/v1/api/release/${h.seg(released)}`);
    const gone = await h.create({ v: 1 });
    await h.authed('delete', `/v1/api/delete/${h.seg(gone)}`);
    const snapshot = JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray());
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(a)}`, h.otherToken)).status).toBe(401);
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(released)}`)).status).toBe(403);
    expect((await h.authed('delete', `/v1/api/delete/${h.seg(gone)}`)).status).toBe(403);
    expect((await h.authed('delete', '/v1/api/delete/000000000000000000000000')).status).toBe(404);
    expect((await request(h.srv.app).delete(`/v1/api/delete/${h.seg(a)}`)).status).toBe(401);
    expect(JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray())).toBe(snapshot);
    const g = await h.get(`/v1/api/delete/${h.seg(a)}`);
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe('DELETE, OPTIONS');
  });

  test('if a tree write fails, the ones already made are undone (JSON 500, tree intact)', async () => {
    const a = await h.create({ v: 'a' });
    const b = await h.update({ '@id': a['@id'], v: 'b' });
    const c = await h.update({ '@id': b['@id'], v: 'c' });
    const snapshot = JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray());
    const spy = failNthCall(h.srv.collection, 'findOneAndUpdate', 2, 'write failed');
    try {
      const r = await h.authed('delete', `/v1/api/delete/${h.seg(b)}`);
      expect(r.status).toBe(500);
      expect(r.body).toMatchObject({ status: 500 });
    } finally {
      spy.mockRestore();
    }
    expect(JSON.stringify(await h.srv.collection.find({}).sort({ _id: 1 }).toArray())).toBe(snapshot);
    expect((await h.get(`/v1/id/${h.seg(c)}`)).status).toBe(200);
  });
});

describe('concurrent writes', () => {
  test('two overwrites expecting the same version: one wins, the other is 409', async () => {
    const a = await h.create({ v: 0 });
    const send = (v: number) => h.authed('put', '/v1/api/overwrite').set('If-Overwritten-Version', '').send({ '@id': a['@id'], v });
    const results = await Promise.all([send(1), send(2), send(3)]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(2);
    const winner = results.find((r) => r.status === 200)!;
    expect((await read(a)).v).toBe(winner.body.v);
  });

  test('concurrent updates of one version all link into its history.next', async () => {
    const a = await h.create({ v: 0 });
    const results = await Promise.all([1, 2, 3, 4].map((v) => h.authed('put', '/v1/api/update').send({ '@id': a['@id'], v })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const next = (await hist(a)).next;
    expect([...next].sort()).toEqual(results.map((r) => r.body['@id']).sort());
  });
});

describe('a write that loses a race answers as if it came second', () => {
  const del = (o: Obj) => h.authed('delete', `/v1/api/delete/${h.seg(o)}`);
  const release = (o: Obj) => h.authed('patch', `/v1/api/release/${h.seg(o)}`);
  /** `lose`'s answer for an object it read just before `win` changed it (the stale read served once). */
  const losing = async (win: (o: Obj) => request.Test, lose: (o: Obj) => request.Test) => {
    const { o, stale } = await readBeforeChange(h, win);
    const spy = jest.spyOn(ObjectStore.prototype, 'findBySegment').mockResolvedValueOnce(stale);
    try {
      return { o, r: await lose(o) };
    } finally {
      spy.mockRestore();
    }
  };

  test('overwrite after a concurrent delete: 403 deleted, the tombstone stays', async () => {
    const { o, r } = await losing(del, (x) => h.authed('put', '/v1/api/overwrite').send({ '@id': x['@id'], v: 2 }));
    expect([r.status, r.body.message]).toEqual([403, 'The object you are trying to overwrite is deleted.']);
    expect(await h.stored(o['@id'])).toHaveProperty('__deleted');
  });

  test('delete of a version whose next version another delete removed between its two reads: 204, the tree mended', async () => {
    const a = await h.create({ v: 0 });
    const b = (await h.authed('put', '/v1/api/update').send({ '@id': a['@id'], v: 1 })).body as Obj;
    const c = (await h.authed('put', '/v1/api/update').send({ '@id': b['@id'], v: 2 })).body as Obj;
    const staleB = (await h.stored(b['@id']))!; // history.next = [c]
    expect((await del(c)).status).toBe(204); // mends b: next = []
    const spy = jest.spyOn(ObjectStore.prototype, 'findBySegment').mockResolvedValueOnce(staleB);
    try {
      // b as read names c as its next, but the tree no longer holds c: it looked broken (500 before)
      expect((await del(b)).status).toBe(204);
    } finally {
      spy.mockRestore();
    }
    expect(await h.stored(b['@id'])).toHaveProperty('__deleted');
    expect((await h.stored(a['@id']))?.__rerum.history.next).toEqual([]);
  });

  test('release after a concurrent release: 403 already released; delete after it: 403 released', async () => {
    const first = await losing(release, release);
    expect([first.r.status, first.r.body.message]).toEqual([403, 'The object you are trying to release is already released.']);
    const second = await losing(release, del);
    expect([second.r.status, second.r.body.message]).toEqual([
      403,
      'The object you are trying to delete is released. Fork to make changes.',
    ]);
    expect((await h.stored(second.o['@id']))?.__rerum.isReleased).not.toBe('');
  });
});
