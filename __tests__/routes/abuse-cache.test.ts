/**
 * Cache poisoning: anonymous clients fill the read cache with hostile query filters (catastrophic
 * regular expressions, many clauses) that every later write must check. A write's invalidation must
 * stay bounded in time however the cache was filled, and still drop what it makes stale.
 */
import request from 'supertest';
import { startHarness, type Harness } from './helpers';

let h: Harness;
const FILTERS = 1000;
beforeAll(async () => {
  h = await startHarness({ caching: true, env: { CACHE_MAX_ENTRIES: '20000' } });
});
afterAll(async () => {
  await h?.srv.close();
});

const query = (body: unknown) =>
  request(h.srv.app).post('/v1/api/query').set('Content-Type', 'application/json').send(JSON.stringify(body));

/**
 * Hostile filters, all candidates for any write that sets `label` (the index files them under it):
 * even ones a backtracking regex alone, odd ones that regex plus a 100-branch `$or`.
 */
const hostile = (i: number) =>
  i % 2 === 0
    ? { label: { $regex: '^(a+)+$' }, n: { $ne: i } }
    : { label: { $regex: '^(a+)+$' }, $or: [{ n: { $ne: i } }, ...Array.from({ length: 100 }, (_, j) => ({ [`f${j}`]: { $ne: j } }))] };

test(`${FILTERS} poisoned cached filters: an innocent create stays fast and stale entries are still dropped`, async () => {
  await h.create({ label: 'seed' });
  for (let i = 0; i < FILTERS; i++) {
    const r = await query(hostile(i));
    expect(r.status).toBe(200);
  }
  expect((await query(hostile(7))).headers['x-cache']).toBe('HIT');
  const stats = (await request(h.srv.app).get('/v1/api/cache/stats')).body;
  expect(stats.entries).toBeGreaterThanOrEqual(FILTERS);

  // The write that used to stall: the value (28 `a`s and a `!`), on which JavaScript's
  // backtracking engine spends seconds per cached filter.
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t = Date.now();
    await h.create({ label: `${'a'.repeat(28)}!`, n: -1, k });
    times.push(Date.now() - t);
  }
  console.log(`create with ${FILTERS} hostile cached filters: ${times.join(', ')} ms`);
  expect(Math.max(...times)).toBeLessThan(500);

  // A matching write still drops the entries it makes stale.
  const fresh = await h.create({ label: 'aaaa', n: -2 });
  const after = await query(hostile(7));
  expect(after.headers['x-cache']).toBe('MISS');
  expect(after.body.map((o: { '@id': string }) => o['@id'])).toContain(fresh['@id']);
}, 180_000);
