/** With the read cache on: tree-changing writes drop cached reads of every document they touched. */
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ caching: true });
});
afterAll(async () => {
  await h?.srv.close();
});

const warm = async (url: string) => {
  await h.get(url);
  expect((await h.get(url)).headers['x-cache']).toBe('HIT');
};

test('delete of a middle version: cached reads of its neighbours are dropped and answer the new tree', async () => {
  const a = await h.create({ v: 'a' });
  const b = await h.update({ '@id': a['@id'], v: 'b' });
  const c = await h.update({ '@id': b['@id'], v: 'c' });
  for (const u of [`/v1/id/${h.seg(a)}`, `/v1/id/${h.seg(c)}`, `/v1/history/${h.seg(c)}`, `/v1/since/${h.seg(a)}`]) await warm(u);
  expect((await h.authed('delete', `/v1/api/delete/${h.seg(b)}`)).status).toBe(204);
  const ra = await h.get(`/v1/id/${h.seg(a)}`);
  expect(ra.headers['x-cache']).toBe('MISS');
  expect(ra.body.__rerum.history.next).toEqual([c['@id']]);
  const rc = await h.get(`/v1/id/${h.seg(c)}`);
  expect(rc.body.__rerum.history.previous).toBe(a['@id']);
  expect((await h.get(`/v1/history/${h.seg(c)}`)).body.map((o: Obj) => o.v)).toEqual(['a']);
  expect((await h.get(`/v1/since/${h.seg(a)}`)).body.map((o: Obj) => o.v)).toEqual(['c']);
  expect((await h.get(`/v1/id/${h.seg(b)}`)).status).toBe(404);
});

test('release: cached ancestors and descendants are dropped', async () => {
  const a = await h.create({ v: 'a' });
  const b = await h.update({ '@id': a['@id'], v: 'b' });
  const c = await h.update({ '@id': b['@id'], v: 'c' });
  await warm(`/v1/id/${h.seg(a)}`);
  await warm(`/v1/id/${h.seg(c)}`);
  expect((await h.authed('patch', `/v1/api/release/${h.seg(b)}`)).status).toBe(200);
  expect((await h.get(`/v1/id/${h.seg(a)}`)).body.__rerum.releases.next).toEqual([b['@id']]);
  expect((await h.get(`/v1/id/${h.seg(c)}`)).body.__rerum.releases.previous).toBe(b['@id']);
});

test('update: the cached parent shows its new next', async () => {
  const a = await h.create({ v: 'a' });
  await warm(`/v1/id/${h.seg(a)}`);
  const b = await h.update({ '@id': a['@id'], v: 'b' });
  expect((await h.get(`/v1/id/${h.seg(a)}`)).body.__rerum.history.next).toEqual([b['@id']]);
});
