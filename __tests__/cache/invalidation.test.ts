/**
 * Each write type drops exactly the entries it makes stale and keeps the unrelated ones.
 * Entries are filled the way the middleware fills them (key info + serialized body).
 */
import { planFromChanges } from '../../cache/invalidation';
import { idKey, queryKey, searchKey } from '../../cache/keys';
import type { KeyInfo } from '../../cache/kinds';
import { WorkerCache } from '../../cache/worker-cache';
import type { ObjectChange } from '../../types/contracts';
import type { RerumDocument } from '../../types/rerum';
import { createChange, deleteChange, doc, hexId, overwriteChange, releaseChange, updateChanges } from './support/fixtures';

const H = { 'content-type': 'application/json; charset=utf-8' };
const strip = (d: RerumDocument) => {
  const { _id, ...rest } = d;
  void _id;
  return rest;
};

function setup() {
  const cache = new WorkerCache({ cacheMaxEntries: 10000, cacheMaxBytes: 1e9, cacheTtlSeconds: 0 });
  const put = (info: KeyInfo, body: unknown) => {
    const ok = cache.fill(cache.beginRead(0), 0, info, JSON.stringify(body), H);
    if (!ok) throw new Error('fill refused');
  };
  const putId = (d: RerumDocument) => {
    const seg = d._id;
    put({ kind: 'id', key: idKey('id', seg), segment: seg }, strip(d));
  };
  const putTree = (kind: 'history' | 'since', seg: string, docs: RerumDocument[]) =>
    put({ kind, key: idKey(kind, seg), segment: seg }, docs.map(strip));
  const putQuery = (filter: Record<string, unknown>, result: RerumDocument[] = []) =>
    put({ kind: 'query', key: queryKey(filter, undefined, undefined), filter }, result.map(strip));
  const putSearch = (text: string, kind: 'search' | 'searchPhrase' = 'search') =>
    put({ kind, key: searchKey(kind, { searchText: text }, undefined, undefined) }, []);
  const keys = () => new Set([...cache.store.entriesByRecency()].map((e) => e.entry.key));
  const write = (changes: ObjectChange[]) => cache.apply(planFromChanges(changes));
  return { cache, putId, putTree, putQuery, putSearch, keys, write };
}

describe('invalidation per write type', () => {
  // A version tree: root A → B (leaf), plus an unrelated object U.
  function world() {
    const s = setup();
    const A0 = doc(hexId(), { type: 'Annotation', body: { value: 'v0' }, target: 'http://example.org/canvas/1' });
    const { next: B, prevAfter: A } = updateChanges(A0, {
      type: 'Annotation',
      body: { value: 'v1' },
      target: 'http://example.org/canvas/1',
    });
    const U = doc(hexId(), { type: 'Person', name: 'Ada' });
    s.putId(A);
    s.putId(B);
    s.putId(U);
    s.putTree('history', B._id, [A]);
    s.putTree('since', A._id, [B]);
    s.putTree('since', B._id, []);
    s.putTree('history', U._id, []);
    s.putQuery({ type: 'Annotation' }, [A, B]);
    s.putQuery({ 'body.value': 'v1' }, [B]);
    s.putQuery({ target: 'http://example.org/canvas/1', '__rerum.history.next': { $size: 0 } }, [B]);
    s.putQuery({ type: 'Person' }, [U]);
    s.putQuery({ name: { $regex: '^A' } }, [U]); // always-test bucket, does not match annotations
    s.putQuery({ type: 'Nothing' }, []);
    s.putSearch('ada');
    return { ...s, A, B, U };
  }

  test('create drops matching queries and searches only', () => {
    const w = world();
    const N = doc(hexId(), { type: 'Annotation', body: { value: 'new' } });
    w.write(createChange(N));
    const k = w.keys();
    expect(k.has(queryKey({ type: 'Annotation' }, undefined, undefined))).toBe(false);
    expect(k.has(searchKey('search', { searchText: 'ada' }, undefined, undefined))).toBe(false);
    for (const kept of [
      idKey('id', w.A._id),
      idKey('id', w.B._id),
      idKey('id', w.U._id),
      idKey('history', w.B._id),
      idKey('since', w.A._id),
      idKey('since', w.B._id),
    ])
      expect(k.has(kept)).toBe(true);
    expect(k.has(queryKey({ 'body.value': 'v1' }, undefined, undefined))).toBe(true);
    expect(k.has(queryKey({ type: 'Person' }, undefined, undefined))).toBe(true);
    expect(k.has(queryKey({ name: { $regex: '^A' } }, undefined, undefined))).toBe(true);
    expect(k.has(queryKey({ type: 'Nothing' }, undefined, undefined))).toBe(true);
  });

  test('update drops the previous version, the whole tree history/since and queries matching old or new', () => {
    const w = world();
    const { changes, next: C } = updateChanges(w.B, { type: 'Annotation', body: { value: 'v2' }, target: 'http://example.org/canvas/1' });
    w.write(changes);
    const k = w.keys();
    expect(k.has(idKey('id', w.B._id))).toBe(false); // B gained a next
    expect(k.has(idKey('id', C._id))).toBe(false);
    expect(k.has(idKey('id', w.A._id))).toBe(true); // A itself did not change
    expect(k.has(idKey('history', w.B._id))).toBe(false);
    expect(k.has(idKey('since', w.A._id))).toBe(false); // found through the tree prime
    expect(k.has(idKey('since', w.B._id))).toBe(false);
    expect(k.has(queryKey({ 'body.value': 'v1' }, undefined, undefined))).toBe(false); // matched the old B
    expect(k.has(queryKey({ target: 'http://example.org/canvas/1', '__rerum.history.next': { $size: 0 } }, undefined, undefined))).toBe(
      false,
    );
    expect(k.has(queryKey({ type: 'Annotation' }, undefined, undefined))).toBe(false);
    expect(k.has(idKey('id', w.U._id))).toBe(true);
    expect(k.has(idKey('history', w.U._id))).toBe(true);
    expect(k.has(queryKey({ type: 'Person' }, undefined, undefined))).toBe(true);
    expect(k.has(queryKey({ type: 'Nothing' }, undefined, undefined))).toBe(true);
  });

  test('overwrite drops the object, its tree and queries matching old or new content', () => {
    const w = world();
    const { changes } = overwriteChange(w.U, { type: 'Person', name: 'Grace' });
    w.write(changes);
    const k = w.keys();
    expect(k.has(idKey('id', w.U._id))).toBe(false);
    expect(k.has(idKey('history', w.U._id))).toBe(false);
    expect(k.has(queryKey({ type: 'Person' }, undefined, undefined))).toBe(false);
    expect(k.has(queryKey({ name: { $regex: '^A' } }, undefined, undefined))).toBe(false); // old Ada matched
    expect(k.has(idKey('id', w.A._id))).toBe(true);
    expect(k.has(idKey('since', w.A._id))).toBe(true);
    expect(k.has(queryKey({ type: 'Annotation' }, undefined, undefined))).toBe(true);
  });

  test('delete (soft) drops the object, its tree and queries that matched it', () => {
    const w = world();
    const { changes } = deleteChange(w.B, [w.A, w.B]);
    w.write(changes);
    const k = w.keys();
    expect(k.has(idKey('id', w.B._id))).toBe(false);
    expect(k.has(idKey('id', w.A._id))).toBe(false); // A's history.next no longer lists B
    expect(k.has(idKey('since', w.A._id))).toBe(false);
    expect(k.has(idKey('history', w.B._id))).toBe(false);
    expect(k.has(queryKey({ type: 'Annotation' }, undefined, undefined))).toBe(false);
    expect(k.has(idKey('id', w.U._id))).toBe(true);
    expect(k.has(queryKey({ type: 'Person' }, undefined, undefined))).toBe(true);
  });

  test('release drops the object, its tree, and queries on it (also metadata-only queries)', () => {
    const w = world();
    w.putQuery({ '__rerum.isReleased': { $ne: '' } }, []);
    const { changes } = releaseChange(w.A, [w.A, w.B]);
    w.write(changes);
    const k = w.keys();
    expect(k.has(idKey('id', w.A._id))).toBe(false);
    expect(k.has(idKey('since', w.A._id))).toBe(false);
    expect(k.has(queryKey({ '__rerum.isReleased': { $ne: '' } }, undefined, undefined))).toBe(false);
    expect(k.has(idKey('id', w.B._id))).toBe(false); // its releases.previous now names A
    expect(k.has(idKey('id', w.U._id))).toBe(true);
    expect(k.has(queryKey({ type: 'Person' }, undefined, undefined))).toBe(true);
  });

  test('bulk create with many documents drops each matching query once', () => {
    const w = world();
    const docs = [doc(hexId(), { type: 'Person', name: 'Zed' }), doc(hexId(), { type: 'Place' })];
    const dropped = w.write(docs.flatMap(createChange));
    const k = w.keys();
    expect(k.has(queryKey({ type: 'Person' }, undefined, undefined))).toBe(false);
    expect(k.has(queryKey({ type: 'Annotation' }, undefined, undefined))).toBe(true);
    expect(k.has(searchKey('search', { searchText: 'ada' }, undefined, undefined))).toBe(true); // no searchable text
    expect(dropped).toBe(1); // the Person query
  });

  test('a change with neither before nor after drops everything', () => {
    const w = world();
    w.write([{ before: null, after: null }]);
    expect(w.keys().size).toBe(0);
  });
});

describe('search entries: dropped only by writes with a value at a searchable path', () => {
  const SEARCHES: Array<[string, 'search' | 'searchPhrase']> = [
    ['ada', 'search'],
    ['lovelace notes', 'searchPhrase'],
  ];
  function world() {
    const s = setup();
    const P = doc(hexId(), { type: 'Person', name: 'Ada', label: { en: ['Ada Lovelace'] } }); // no searchable path
    const A = doc(hexId(), {
      type: 'Annotation',
      body: { type: 'TextualBody', value: 'old words' },
      target: 'http://example.org/canvas/1',
    });
    const U = doc(hexId(), { type: 'Place', name: 'Untouched' });
    s.putId(P);
    s.putId(A);
    s.putId(U);
    for (const [t, kind] of SEARCHES) s.putSearch(t, kind);
    const searchKeys = SEARCHES.map(([t, kind]) => searchKey(kind, { searchText: t }, undefined, undefined));
    const searchesKept = () => searchKeys.every((k) => s.keys().has(k));
    const searchesGone = () => searchKeys.every((k) => !s.keys().has(k));
    return { ...s, P, A, U, searchesKept, searchesGone };
  }

  test('create, update, overwrite, delete and release of a document without searchable text keep them', () => {
    const steps: Array<(w: ReturnType<typeof world>) => ObjectChange[]> = [
      () => createChange(doc(hexId(), { type: 'Place', name: 'Paris', bodyValue: null })),
      (w) => updateChanges(w.P, { type: 'Person', name: 'Ada L.' }).changes,
      (w) => overwriteChange(w.P, { type: 'Person', name: 'Grace' }).changes,
      (w) => deleteChange(w.P).changes,
      (w) => releaseChange(w.P).changes,
    ];
    for (const step of steps) {
      const w = world();
      w.write(step(w));
      expect([steps.indexOf(step), w.searchesKept(), w.keys().has(idKey('id', w.A._id))]).toEqual([steps.indexOf(step), true, true]);
    }
  });

  test('create, update, overwrite, delete and release of a document with searchable text drop them', () => {
    const steps: Array<(w: ReturnType<typeof world>) => ObjectChange[]> = [
      () => createChange(doc(hexId(), { type: 'Annotation', bodyValue: 'anything at all' })),
      (w) => updateChanges(w.A, { type: 'Annotation', target: 'http://example.org/canvas/2' }).changes, // old version had text
      (w) => overwriteChange(w.P, { type: 'Person', name: 'Ada', body: { value: 'now with text' } }).changes, // new version has text
      (w) => deleteChange(w.A).changes,
      (w) => releaseChange(w.A).changes,
      // IIIF Presentation 2.1 and nested Presentation 3 shapes, arrays at every level
      () => createChange(doc(hexId(), { '@type': 'oa:Annotation', resource: { '@type': 'cnt:ContentAsText', 'cnt:chars': 'x' } })),
      () =>
        createChange(
          doc(hexId(), {
            type: 'Manifest',
            sequences: [{ canvases: [{ otherContent: [{ resources: [{ resource: { chars: 'y' } }] }] }] }],
          }),
        ),
      () => createChange(doc(hexId(), { type: 'Canvas', items: [{ annotations: [{ items: [{ body: [{ value: 'z' }] }] }] }] })),
    ];
    for (const step of steps) {
      const w = world();
      w.write(step(w));
      expect([steps.indexOf(step), w.searchesGone(), w.keys().has(idKey('id', w.U._id))]).toEqual([steps.indexOf(step), true, true]);
    }
  });

  test('an in-flight search read does not fill after a write with searchable text, and does after one without', () => {
    const w = world();
    const info = { kind: 'search' as const, key: searchKey('search', { searchText: 'later' }, undefined, undefined) };
    let token = w.cache.beginRead(0);
    w.write(createChange(doc(hexId(), { type: 'Place', name: 'Rome' })));
    expect(w.cache.fill(token, 0, info, '[]', H)).toBe(true);
    token = w.cache.beginRead(0);
    w.write(createChange(doc(hexId(), { type: 'Annotation', bodyValue: 'later' })));
    expect(w.cache.fill(token, 0, info, '[]', H)).toBe(false);
  });
});

describe('stale fill (unit level)', () => {
  test('a read that started before an invalidation touching it cannot fill; unrelated reads can', () => {
    const { cache } = setup();
    const d = doc(hexId(), { type: 'T' });
    const other = doc(hexId(), { type: 'O' });
    const tokenBefore = cache.beginRead(0);
    cache.apply(planFromChanges(overwriteChange(d, { type: 'T2' }).changes));
    expect(cache.fill(tokenBefore, 0, { kind: 'id', key: idKey('id', d._id), segment: d._id }, '{}', H)).toBe(false);
    expect(cache.fill(tokenBefore, 0, { kind: 'id', key: idKey('id', other._id), segment: other._id }, '{}', H)).toBe(true);
    expect(cache.fill(tokenBefore, 0, { kind: 'query', key: queryKey({ type: 'T' }, 1, 0), filter: { type: 'T' } }, '[]', H)).toBe(false);
    expect(cache.fill(tokenBefore, 0, { kind: 'query', key: queryKey({ type: 'Z' }, 1, 0), filter: { type: 'Z' } }, '[]', H)).toBe(true);
    // a read that starts after the write fills normally
    expect(cache.fill(cache.beginRead(0), 0, { kind: 'id', key: idKey('id', d._id), segment: d._id }, '{}', H)).toBe(true);
    // a lease epoch change (lapse) refuses
    expect(cache.fill(cache.beginRead(0), 1, { kind: 'id', key: 'id:zzz', segment: 'zzz' }, '{}', H)).toBe(false);
  });
});
