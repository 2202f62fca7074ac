/**
 * Slug squatting replay: agent B predicts the ids the server will generate next (from an id it has
 * seen) and claims them as Slugs before agent A creates. A's objects must still answer, at their own
 * `@id`, with A's content, and A must be able to overwrite them. A Slug in the generated-id format is
 * refused, and generated ids are not predictable from earlier ones.
 */
import { startHarness, DEFAULT_AGENT, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

/** The ids a plain ObjectId generator would hand out after `seen`: same process bytes, later counters and seconds. */
function predictedAfter(seen: string, counterOffsets: number[], secondsAhead: number[]): string[] {
  const ts = parseInt(seen.slice(0, 8), 16);
  const proc = seen.slice(8, 18);
  const counter = parseInt(seen.slice(18), 16);
  const out: string[] = [];
  for (const s of secondsAhead) {
    for (const c of counterOffsets) {
      out.push((ts + s).toString(16).padStart(8, '0') + proc + ((counter + c) % 0x1000000).toString(16).padStart(6, '0'));
    }
  }
  return out;
}

test("squatting replay: B claims predicted ids as Slugs; A's next 20 objects are still A's", async () => {
  const seen = h.seg(await h.create({ by: 'A', n: -1 }));
  // B's own 48 creates consume the next 48 counter values; A's first 8 creates would get the 8 after
  // them, in one of the next 6 seconds.
  const offsets = Array.from({ length: 8 }, (_, i) => 49 + i);
  const predicted = predictedAfter(seen, offsets, [0, 1, 2, 3, 4, 5]);
  const claims = [];
  for (const slug of predicted) {
    const r = await h.authed('post', '/v1/api/create', h.otherToken).set('Slug', slug).send({ by: 'B', squat: slug });
    claims.push(r.status);
  }
  expect(new Set(claims)).toEqual(new Set([400]));

  for (let n = 0; n < 20; n++) {
    const mine = await h.create({ by: 'A', n });
    const got = await h.get(`/v1/id/${h.seg(mine)}`);
    expect([got.status, got.body.by, got.body.n, got.body.__rerum.generatedBy]).toEqual([200, 'A', n, DEFAULT_AGENT]);
    const over = await h.authed('put', '/v1/api/overwrite').send({ '@id': mine['@id'], by: 'A', n, overwritten: true });
    expect(over.status).toBe(200);
  }
  // Nothing of B's was stored.
  expect(await h.srv.collection.countDocuments({ by: 'B' })).toBe(0);
});

test('a 24-hex Slug is 400 on create and on release; other Slugs still work', async () => {
  const r = await h.authed('post', '/v1/api/create').set('Slug', 'aaaaaaaaaaaaaaaaaaaaaaaa').send({ v: 1 });
  expect(r.status).toBe(400);
  expect(r.body.message).toMatch(/24 hexadecimal/);
  const ok = await h.authed('post', '/v1/api/create').set('Slug', 'my-slug-1').send({ v: 1 });
  expect(ok.status).toBe(201);
  const obj = await h.create({ v: 2 });
  const rel = await h.authed('patch', `/v1/api/release/${h.seg(obj)}`).set('Slug', 'ABCDEF0123456789abcdef01');
  expect(rel.status).toBe(400);
  expect((await h.get(`/v1/id/${h.seg(obj)}`)).body.__rerum.isReleased).toBe('');
});

test('generated ids: ObjectId form, creation-time prefix, no counter to predict', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(h.seg(await h.create({ i })));
  const bulk = await h.authed('post', '/v1/api/bulkCreate').send([{ a: 1 }, { a: 2 }, { a: 3 }]);
  ids.push(...bulk.body.map((o: { '@id': string }) => h.seg(o['@id'])));
  for (const id of ids) expect(id).toMatch(/^[0-9a-f]{24}$/);
  const now = Math.floor(Date.now() / 1000);
  for (const id of ids) expect(Math.abs(parseInt(id.slice(0, 8), 16) - now)).toBeLessThan(60);
  // A counter-based generator shares the middle bytes and steps the tail by one.
  const tails = ids.map((id) => parseInt(id.slice(18), 16));
  const steps = tails.slice(1).map((t, i) => t - tails[i]);
  expect(steps.filter((d) => d === 1).length).toBeLessThan(2);
  expect(new Set(ids.map((id) => id.slice(8, 18))).size).toBe(ids.length);
});
