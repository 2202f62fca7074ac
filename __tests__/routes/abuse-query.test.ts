/**
 * Query admission (controllers/admission.ts) and linear-time regular expressions
 * (mql/regex.ts): no anonymous query can hold the database for seconds. Each hostile
 * query is refused with a 400 naming the limit, or answered in bounded time; normal queries still work.
 */
import { MongoServerError } from 'mongodb';
import request from 'supertest';
import { startHarness, type Harness } from './helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  await h.create({ label: `${'a'.repeat(28)}!`, kind: 'redos-victim' });
  await h.create({ label: 'Hello World', kind: 'plain', n: 5 });
});
afterAll(async () => {
  await h?.srv.close();
});

const query = (body: unknown, method: 'post' | 'head' = 'post') =>
  request(h.srv.app)[method]('/v1/api/query').set('Content-Type', 'application/json').send(JSON.stringify(body));

const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t = Date.now();
  const r = await f();
  return [r, Date.now() - t];
};

test('catastrophic-backtracking regex over a 29-character value answers in well under a second', async () => {
  const [r, ms] = await timed(() => query({ label: { $regex: '^(a+)+$' } }));
  expect(r.status).toBe(200);
  expect(r.body).toEqual([]);
  expect(ms).toBeLessThan(1000);
  const [r2, ms2] = await timed(() =>
    query({ kind: 'redos-victim', $or: [{ label: { $regex: '^(a|aa)+$' } }, { label: { $not: { $regex: '^(a+)+b' } } }] }),
  );
  expect(r2.status).toBe(200);
  expect(r2.body).toHaveLength(1);
  expect(ms2).toBeLessThan(1000);
}, 120_000);

test('$regexMatch in $expr runs on the same engine', async () => {
  const [r, ms] = await timed(() => query({ $expr: { $regexMatch: { input: '$label', regex: '^(a+)+$' } } }));
  expect(r.status).toBe(200);
  expect(ms).toBeLessThan(1000);
}, 120_000);

test('regular expressions still match as MongoDB: options i, m, s; anchors; classes', async () => {
  expect((await query({ label: { $regex: '^hello', $options: 'i' } })).body).toHaveLength(1);
  expect((await query({ label: { $regex: 'world$' } })).body).toHaveLength(0);
  expect((await query({ label: { $regex: '\\bWorld$' } })).body).toHaveLength(1);
  expect((await query({ label: { $regex: '^a{28}!$' } })).body).toHaveLength(1);
});

test('a pattern RE2 cannot run (backreference, lookahead) is 400 naming the reason', async () => {
  for (const pattern of ['(a)\\1', '^(?=a)a']) {
    const r = await query({ label: { $regex: pattern } });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/Regular expression is invalid/);
  }
});

test.each([
  ['$expr $range of 10^6', { $expr: { $gt: [{ $size: { $range: [0, 1_000_000] } }, 0] } }, /\$range/],
  ['$reduce', { $expr: { $reduce: { input: [1, 2], initialValue: 0, in: 1 } } }, /\$reduce/],
  ['$map', { $expr: { $map: { input: [1], in: 1 } } }, /\$map/],
  ['$where', { $where: 'sleep(100)' }, /\$where/],
  // 2,001 clauses as well as a list of 2,000: the clauses are counted off the body's bytes, before its lists are walked
  [
    '$or with 2,000 branches',
    { $or: Array.from({ length: 2000 }, (_, i) => ({ label: `x${i}` })) },
    /more than 500 clauses.*QUERY_MAX_CLAUSES/,
  ],
  ['$nin with 5,000 values', { label: { $nin: Array.from({ length: 5000 }, (_, i) => `v${i}`) } }, /QUERY_MAX_LIST/],
  [
    '$and of 600 clauses in 6 lists',
    { $and: Array.from({ length: 6 }, (_, j) => Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${j}_${i}`, i]))) },
    /more than 500 clauses.*QUERY_MAX_CLAUSES/,
  ],
  ['40-deep $and', JSON.parse(`${'{"$and":['.repeat(40)}{"a":1}${']}'.repeat(40)}`), /nested too deeply.*QUERY_MAX_DEPTH/],
  // BSON field names cannot hold NUL: the driver cannot even send it (was a 500)
  ['a property name with NUL', { $or: [{ kind: 'plain' }, { 'la\u0000bel': 1 }] }, /NUL character/],
])(
  '%s → 400 naming the limit, quickly',
  async (_name, filter, named) => {
    const [r, ms] = await timed(() => query(filter));
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(named);
    expect(ms).toBeLessThan(1000);
    const head = await query(filter, 'head');
    expect(head.status).toBe(400);
  },
  120_000,
);

test('the limits are settings: a larger QUERY_MAX_LIST admits a longer list', async () => {
  const wide = await startHarness({ env: { QUERY_MAX_LIST: '3000', QUERY_MAX_CLAUSES: '5000' } });
  try {
    const r = await request(wide.srv.app)
      .post('/v1/api/query')
      .send({ $or: Array.from({ length: 2000 }, (_, i) => ({ label: `x${i}` })) });
    expect(r.status).toBe(200);
  } finally {
    await wide.srv.close();
  }
});

test('every client query carries maxTimeMS; a query stopped by it is 503 naming QUERY_MAX_TIME_MS', async () => {
  const find = jest.spyOn(h.srv.collection, 'find');
  try {
    expect((await query({ kind: 'plain' })).body).toHaveLength(1);
    expect(find.mock.calls.at(-1)?.[1]).toMatchObject({ maxTimeMS: h.srv.config.queryMaxTimeMs });
    await request(h.srv.app).post('/v1/api/search').set('Content-Type', 'text/plain').send('hello');
    expect(find.mock.calls.at(-1)?.[1]).toMatchObject({ maxTimeMS: h.srv.config.queryMaxTimeMs });

    // The database's own answer when the time runs out (MaxTimeMSExpired), through the real driver error type.
    find.mockImplementationOnce(() => {
      throw new MongoServerError({ ok: 0, code: 50, codeName: 'MaxTimeMSExpired', errmsg: 'operation exceeded time limit' });
    });
    const r = await query({ kind: 'plain' });
    expect(r.status).toBe(503);
    expect(r.body.message).toMatch(/longer than 5000 ms.*QUERY_MAX_TIME_MS/);
  } finally {
    find.mockRestore();
  }
});

test('search text over SEARCH_MAX_CHARS is 413, quickly', async () => {
  const [r, ms] = await timed(() =>
    request(h.srv.app)
      .post('/v1/api/search')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ searchText: 'word '.repeat(200_000) })),
  );
  expect(r.status).toBe(413);
  expect(r.body.message).toMatch(/SEARCH_MAX_CHARS/);
  expect(ms).toBeLessThan(1000);
  expect((await request(h.srv.app).post('/v1/api/search').set('Content-Type', 'text/plain').send('Hello')).status).toBe(200);
}, 60_000);
