import { Decimal128, Long, type Document } from 'mongodb';
import { compileFilter as mongoMatcher } from '../../mql';
import { CacheIndex, preparePlan } from '../../cache/invalidation';
import { compileFilter, tooCostlyToTest } from '../../cache/matcher';
import { indexTerms, PRESENT, QueryIndex, valuesAtPath, canonicalValue } from '../../cache/query-index';
import { EntryStore } from '../../cache/store';
import { representation } from '../../middleware/representation';
import { testDb } from '../support/mongo';

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCALARS: unknown[] = [1, 2, 3, 'x', 'y', true, false, null, 0, Decimal128.fromString('2.0'), Long.fromNumber(3)];
const FIELDS = ['a', 'b', 'c', 'a.b', 'a.c', 'd.e', 'tags', 'a.0', 'n.m.k'];

function gen(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const scalar = () => pick(SCALARS);
  const value = (depth = 0): unknown => {
    const k = r();
    if (depth < 2 && k < 0.15) return [scalar(), scalar()];
    if (depth < 2 && k < 0.25) return { b: scalar() };
    if (depth < 2 && k < 0.3) return [{ b: scalar(), c: scalar() }, { b: scalar() }];
    return scalar();
  };
  const cond = (depth: number): unknown => {
    const k = r();
    if (k < 0.3) return value();
    if (k < 0.4) return { $eq: value() };
    if (k < 0.52) return { $in: [scalar(), scalar(), ...(r() < 0.3 ? [[1, 2]] : [])] };
    if (k < 0.58) return { $ne: scalar() };
    if (k < 0.64) return { $gt: pick([0, 1, 2]) };
    if (k < 0.7) return { $exists: r() < 0.5 };
    if (k < 0.75) return { $all: [scalar()] };
    if (k < 0.8) return { $nin: [scalar()] };
    if (k < 0.85) return { $regex: pick(['x', '^y', '.']) };
    if (k < 0.9 && depth < 2) return { $elemMatch: { b: scalar() } };
    if (k < 0.93) return { $size: pick([0, 1, 2]) };
    if (k < 0.95) return pick<unknown>([{ $lt: pick([1, 'y']) }, { $lte: null }, { $gte: null }, { $gt: null }, { $lt: 2, $ne: 1 }]);
    if (k < 0.97)
      return pick<unknown>([
        { $type: pick(['string', 'number', 'array', 'null', 'bool', 'object']) },
        { $type: ['null', 'string'] },
        { $mod: [2, 0] },
      ]);
    if (k < 0.98) return { $regex: 'x', $options: 'i' };
    return { $eq: value(), $in: [scalar()] };
  };
  const filter = (depth = 0): Record<string, unknown> => {
    const f: Record<string, unknown> = {};
    const n = 1 + Math.floor(r() * 3);
    for (let i = 0; i < n; i++) {
      const k = r();
      if (depth < 2 && k < 0.15) f.$or = [filter(depth + 1), filter(depth + 1)];
      else if (depth < 2 && k < 0.22) f.$and = [filter(depth + 1), filter(depth + 1)];
      else if (depth < 2 && k < 0.26) f.$nor = [filter(depth + 1)];
      else f[pick(FIELDS)] = cond(depth);
    }
    return f;
  };
  const doc = (): Record<string, unknown> => {
    const d: Record<string, unknown> = { _id: 'x' + Math.floor(r() * 1e9) };
    for (const f of ['a', 'b', 'c', 'tags']) if (r() < 0.7) d[f] = value();
    if (r() < 0.5) d.d = { e: value() };
    if (r() < 0.3) d.d = [{ e: scalar() }, { e: value() }];
    if (r() < 0.3) d.n = { m: [{ k: scalar() }, { k: [scalar()] }] };
    return d;
  };
  return { filter, doc };
}

describe('query index', () => {
  test('terms: equalities, $in, $or of equalities, AND picks one conjunct, the rest always-test', () => {
    expect(indexTerms({ type: 'Annotation' })).toEqual([{ path: 'type', value: 's:Annotation' }]);
    expect(indexTerms({ a: { $in: [1, 'x'] } })?.map((t) => t.value)).toEqual(['n:1', 's:x']);
    expect(indexTerms({ $or: [{ a: 1 }, { 'b.c': 'z' }] })).toEqual([
      { path: 'a', value: 'n:1' },
      { path: 'b.c', value: 's:z' },
    ]);
    expect(indexTerms({ a: { $gt: 1 }, b: 2 })).toEqual([{ path: 'b', value: 'n:2' }]);
    expect(indexTerms({ a: null })).toBeUndefined();
    expect(indexTerms({ a: { $in: [1, null] } })).toBeUndefined();
    expect(indexTerms({ $or: [{ a: 1 }, { b: { $ne: 1 } }] })).toBeUndefined();
    expect(indexTerms({ a: { $ne: 1 } })).toBeUndefined();
    expect(indexTerms({ $where: 'true' })).toBeUndefined();
  });

  test('presence terms: $exists: true, ranges, $regex, $size… index their path; value terms win over them', () => {
    for (const cond of [
      { $exists: true },
      { $gt: 1 },
      { $lt: 'm' },
      { $regex: '^A', $options: 'i' },
      { $size: 0 },
      { $mod: [2, 0] },
      { $elemMatch: { b: 1 } },
      { $type: 'string' },
    ]) {
      expect(indexTerms({ a: cond })).toEqual([{ path: 'a', value: PRESENT }]);
    }
    for (const cond of [{ $exists: false }, { $gte: null }, { $lte: null }, { $type: 'null' }, { $nin: [1] }, { $not: { $gt: 1 } }]) {
      expect(indexTerms({ a: cond })).toBeUndefined();
    }
    expect(indexTerms({ a: { $gt: 1 }, b: 2 })).toEqual([{ path: 'b', value: 'n:2' }]);
    expect(indexTerms({ $or: [{ a: 1 }, { b: { $gt: 1 } }] })).toEqual([
      { path: 'a', value: 'n:1' },
      { path: 'b', value: PRESENT },
    ]);
    const idx = new QueryIndex();
    idx.add('range', { 'target.@id': { $regex: '^http' } });
    idx.add('exists', { 'body.value': { $exists: true } });
    idx.add('absent', { 'body.value': { $exists: false } });
    expect(idx.alwaysTestSize).toBe(1);
    expect([...idx.candidates({ target: { '@id': 'x' } })].sort()).toEqual(['absent', 'range']);
    expect([...idx.candidates({ body: [{ value: null }] })].sort()).toEqual(['absent', 'exists']);
    expect([...idx.candidates({ type: 'Other' })]).toEqual(['absent']);
  });

  test('cost: non-equality filters on unrelated paths are not tested, and equality entries add no tests', () => {
    const idx = new QueryIndex();
    for (let i = 0; i < 5000; i++) idx.add(`eq${i}`, { type: 'Annotation', target: `http://example.org/canvas/${i}` });
    for (let i = 0; i < 500; i++) idx.add(`rx${i}`, { [`label${i % 5}`]: { $regex: `^${i}` } });
    for (let i = 0; i < 500; i++) idx.add(`in${i}`, { motivation: { $in: [`m${i}`, `n${i}`] } });
    for (let i = 0; i < 50; i++) idx.add(`ne${i}`, { label: { $ne: `x${i}` } }); // truly unindexable
    expect(idx.alwaysTestSize).toBe(50);
    const c = idx.candidates({ type: 'Annotation', target: 'http://example.org/canvas/7', motivation: 'n3', label1: 'z' });
    // filed under target once the type bucket is the busier one (only the first went under type),
    // the 100 label1 regexes, motivation n3 and the 50 unindexable ones
    expect(c.size).toBe(2 + 100 + 1 + 50);
    expect(c.has('eq0') && c.has('eq7') && c.has('rx1') && c.has('in3') && c.has('ne0')).toBe(true);
    // no label*: no regex is tested; another canvas: still only eq0 + eq8
    expect(idx.candidates({ type: 'Annotation', target: 'http://example.org/canvas/8' }).size).toBe(2 + 50);
  });

  test('document values: arrays, arrays of sub-documents, nested dotted paths, numeric components', () => {
    const d = { a: [1, 2], s: [{ b: 'x' }, { b: ['y'] }], n: { m: { k: 3 } }, t: [[5]] };
    expect(valuesAtPath(d, 'a')).toEqual(new Set([canonicalValue([1, 2]), 'n:1', 'n:2']));
    const sb = valuesAtPath(d, 's.b');
    for (const v of ['s:x', canonicalValue(['y']), 's:y']) expect(sb.has(v)).toBe(true);
    expect(sb.has(canonicalValue(['x', ['y']]))).toBe(false); // mongod does not compare values collected across elements
    expect(valuesAtPath(d, 'n.m.k')).toEqual(new Set(['n:3']));
    expect(valuesAtPath(d, 'missing').size).toBe(0);
    expect(valuesAtPath(d, 'a.1').has('n:2')).toBe(true);
    // a terminal array counts whole and through its elements, one level: [[5]] holds [5], not 5
    expect(valuesAtPath(d, 't')).toEqual(new Set([canonicalValue([[5]]), canonicalValue([5])]));
  });

  test('a matching document finds its filter through the index (array, sub-document, $in, $or cases)', () => {
    const idx = new QueryIndex();
    idx.add('f1', { a: 1 });
    idx.add('f2', { 'a.b': 'x' });
    idx.add('f3', { tags: { $in: ['p', 'q'] } });
    idx.add('f4', { $or: [{ type: 'T' }, { kind: 'K' }] });
    idx.add('f5', { a: { $ne: 0 } });
    idx.add('unrelated', { type: 'Other' });
    expect(idx.alwaysTestSize).toBe(1);
    expect([...idx.candidates({ a: [1, 2] })].sort()).toEqual(['f1', 'f5']);
    expect([...idx.candidates({ a: [{ b: 'z' }, { b: 'x' }] })].sort()).toEqual(['f2', 'f5']);
    expect([...idx.candidates({ tags: ['q'] })].sort()).toEqual(['f3', 'f5']);
    expect([...idx.candidates({ kind: 'K' })].sort()).toEqual(['f4', 'f5']);
    idx.remove('f5');
    expect([...idx.candidates({ type: 'Nope' })]).toEqual([]);
  });

  test('property: indexed invalidation drops exactly what brute-force matching (mingo, as the database matches) over all entries drops', () => {
    const seed = Number(process.env.CACHE_PROPERTY_SEED ?? 20260124);
    const rounds = Number(process.env.CACHE_PROPERTY_ROUNDS ?? 25);
    const { filter, doc } = gen(seed);
    for (let round = 0; round < rounds; round++) {
      const store = new EntryStore({ maxEntries: 100000, maxBytes: 1e12, ttlSeconds: 0 });
      const index = new CacheIndex(store, Infinity); // exactness, not the time budget, is under test
      const filters = new Map<string, Record<string, unknown>>();
      const compiled = new Map<string, ((d: Record<string, unknown>) => boolean) | undefined>();
      for (let i = 0; i < 150; i++) {
        const f = filter();
        const key = `q${i}`;
        filters.set(key, f);
        let q: ((d: Record<string, unknown>) => boolean) | undefined;
        try {
          q = mongoMatcher(f);
        } catch {
          q = undefined;
        }
        compiled.set(key, q);
        store.set(key, 'query', representation(200, '[]', {}));
        index.track(key, { kind: 'query', filter: f, compiled: compileFilter(f) });
      }
      for (let j = 0; j < 30; j++) {
        const docs = [doc(), doc()];
        const plan = preparePlan({ all: false, docs });
        const indexed = [...index.affectedKeys(plan)].sort();
        const brute = [...compiled.entries()]
          .filter(([, q]) =>
            docs.some((d) => {
              if (!q) return true; // mingo rejects the filter: the cache must drop it
              try {
                return q(d);
              } catch {
                return true;
              }
            }),
          )
          .map(([k]) => k)
          .sort();
        // A filter too costly to test (cache/matcher.ts) is dropped untested by any write that reaches it.
        const unexpected = indexed.filter((k) => !brute.includes(k) && !tooCostlyToTest(filters.get(k)));
        if (unexpected.length > 0 || brute.some((k) => !indexed.includes(k))) {
          const missing = brute.filter((k) => !indexed.includes(k));
          const extra = unexpected;
          throw new Error(
            `mismatch: ${JSON.stringify({ missing: missing.map((k) => filters.get(k)), extra: extra.map((k) => filters.get(k)), docs })}`,
          );
        }
      }
      store.close();
    }
  });

  test('cost: a write tests only candidates, not every cached query', () => {
    const idx = new QueryIndex();
    for (let i = 0; i < 10000; i++)
      idx.add(`q${i}`, { 'target.@id': `http://example.org/canvas/${i}`, type: 'Annotation', motivation: { $ne: 'x' } });
    const d = { type: 'Annotation', target: { '@id': 'http://example.org/canvas/42' } };
    // each filter is indexed under its most selective single term: equality on target.@id or type
    const c = idx.candidates(d);
    expect(c.has('q42')).toBe(true);
    expect(c.size).toBeLessThanOrEqual(2); // q42, and q0 (filed under type: the buckets were empty then)
    const idx2 = new QueryIndex();
    for (let i = 0; i < 10000; i++) idx2.add(`q${i}`, { 'target.@id': `http://example.org/canvas/${i}` });
    expect([...idx2.candidates(d)]).toEqual(['q42']);
  });
});

describe('the cache matcher agrees with the database', () => {
  test('numbers of every kind, nested arrays and $elemMatch: the matcher selects what the database finds', async () => {
    const t = await testDb('matcher_agrees');
    try {
      const c = t.db.collection('docs');
      await c.insertMany([
        { _id: 'int', v: 10 },
        { _id: 'long', v: Long.fromNumber(10) },
        { _id: 'bigLong', v: Long.fromString('9007199254740993') },
        { _id: 'dec', v: Decimal128.fromString('10.0') },
        { _id: 'decSmall', v: Decimal128.fromString('2.5') },
        { _id: 'double', v: 10.5 },
        { _id: 'nested', a: [[1], 3] },
        { _id: 'docs', a: [{ b: 1 }, { b: 2 }] },
        { _id: 'scalars', a: [1, 2] },
      ] as unknown as Document[]);
      // The documents as the cache sees them: read back through the driver with the app's options.
      const docs = await c.find({}).toArray();
      const cases: Array<[Record<string, unknown>, string[]]> = [
        [{ v: 10 }, ['dec', 'int', 'long']],
        [{ v: { $gt: 10 } }, ['bigLong', 'double']],
        [{ v: { $gte: 2, $lt: 10 } }, ['decSmall']],
        [{ v: { $in: [2.5, 10.5] } }, ['decSmall', 'double']],
        [{ v: { $ne: 10 } }, ['bigLong', 'decSmall', 'docs', 'double', 'nested', 'scalars']],
        [{ 'a.b': 1 }, ['docs']],
        [{ a: { $elemMatch: { b: 2 } } }, ['docs']],
        [{ a: 1 }, ['scalars']],
      ];
      for (const [filter, expected] of cases) {
        const found = (await c.find(filter).toArray()).map((d) => String(d._id)).sort();
        const cached = docs
          .filter((d) => compileFilter(filter).test(d))
          .map((d) => String(d._id))
          .sort();
        expect({ filter, database: found, cacheMatcher: cached }).toEqual({ filter, database: expected, cacheMatcher: expected });
      }
    } finally {
      await t.close();
    }
  });
});
