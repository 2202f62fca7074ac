import type { Request } from 'express';
import {
  canonicalFilter,
  gogRequestKey,
  MAX_KEYED_PROPERTIES,
  queryKey,
  queryRequestKey,
  searchKey,
  searchRequestKey,
  stableStringify,
} from '../../cache/keys';
import { keyForRequest } from '../../cache/kinds';
import { idSegmentsOf, treeSegmentsOf } from '../../cache/kinds';
import { toResponse } from '../../rerum/document';
import { deleteChange, doc, ID_PREFIX, versionOf } from './support/fixtures';

function req(method: string, params: Record<string, string>, body?: unknown, query: Record<string, string> = {}, path = '/'): Request {
  return { method, params, body, query, path } as unknown as Request;
}

describe('cache key scheme', () => {
  test('id, history and since keys use the id path segment', () => {
    expect(keyForRequest('id', req('GET', { id: 'abc123' }))?.key).toBe('id:abc123');
    expect(keyForRequest('history', req('GET', { _id: 'abc123' }))?.key).toBe('history:abc123');
    expect(keyForRequest('since', req('HEAD', { _id: 'abc123' }))?.key).toBe('since:abc123');
    expect(keyForRequest('id', req('POST', { id: 'abc' }))).toBeUndefined();
  });

  test("an id that is not a plain segment gets no key (never another id's entry)", () => {
    for (const alias of ['nope/S', 'S#x', 'S?x', 'S ', ' S', 'S\t', 'a%2Fb', '']) {
      expect(keyForRequest('id', req('GET', { _id: alias }))).toBeUndefined();
    }
  });

  test('query key: filter with order-free keys sorted, plus limit and skip', () => {
    const a = keyForRequest('query', req('POST', {}, { type: 'Annotation', creator: 'u1' }, { limit: '10', skip: '0' }))!;
    const b = keyForRequest('query', req('POST', {}, { creator: 'u1', type: 'Annotation' }, { skip: '0', limit: '10' }))!;
    expect(a.key).toBe(b.key);
    expect(a.key).toBe('query:{"filter":{"creator":"u1","type":"Annotation"},"limit":10,"skip":0}');
    const c = keyForRequest('query', req('POST', {}, { type: 'Annotation', creator: 'u1' }, { limit: '11' }))!;
    expect(c.key).not.toBe(a.key);
    expect(queryKey({ a: 1 }, undefined, undefined)).toBe('query:{"filter":{"a":1},"limit":null,"skip":null}');
  });

  test('operator documents and $or branches are sorted, literal sub-documents keep their order', () => {
    expect(canonicalFilter({ b: { $lt: 5, $gt: 1 }, a: 1, $or: [{ y: 1, x: 2 }] })).toEqual({
      $or: [{ x: 2, y: 1 }],
      a: 1,
      b: { $gt: 1, $lt: 5 },
    });
    expect(JSON.stringify(canonicalFilter({ $or: [{ y: 1, x: 2 }] }))).toBe('{"$or":[{"x":2,"y":1}]}');
    // {a: {c, b}} and {a: {b, c}} are different MongoDB queries (embedded-document equality is ordered)
    expect(queryKey({ a: { c: 1, b: 2 } }, undefined, undefined)).not.toBe(queryKey({ a: { b: 2, c: 1 } }, undefined, undefined));
    // a field named __proto__ (an own field after JSON.parse) is part of the key, at any depth
    const parsed = (json: string) => JSON.parse(json) as unknown;
    expect(queryKey(parsed('{"a": 1, "__proto__": {"x": 1}}'), undefined, undefined)).not.toBe(queryKey({ a: 1 }, undefined, undefined));
    expect(queryKey(parsed('{"a": {"$elemMatch": {"__proto__": 1}}}'), undefined, undefined)).not.toBe(
      queryKey({ a: { $elemMatch: {} } }, undefined, undefined),
    );
    expect(searchKey('search', parsed('{"searchText": "x", "options": {"__proto__": 1}}'), undefined, undefined)).not.toBe(
      searchKey('search', { searchText: 'x', options: {} }, undefined, undefined),
    );
  });

  test('search keys cover body, options and pagination', () => {
    const a = keyForRequest('search', req('POST', {}, { searchText: 'x', options: { b: 1, a: 2 } }, { limit: '5' }))!;
    expect(a.key).toBe('search:{"body":{"options":{"a":2,"b":1},"searchText":"x"},"limit":5,"skip":null}');
    expect(keyForRequest('searchPhrase', req('POST', {}, 'medieval manuscript'))!.key).toBe(
      searchKey('searchPhrase', 'medieval manuscript', undefined, undefined),
    );
    expect(a.key.startsWith('search:')).toBe(true);
  });

  test('stableStringify sorts keys at every level', () => {
    expect(stableStringify({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });

  test('id and tree segments of stored documents, tombstones and the objects a history answer lists', () => {
    const d = doc('aaa', { type: 'T' }, 'a-slug');
    expect(idSegmentsOf(d)).toEqual(['aaa', 'a-slug']);
    expect(idSegmentsOf(toResponse(d, ID_PREFIX))).toEqual(['aaa', 'a-slug']); // no _id: its @id's segment
    expect(idSegmentsOf(deleteChange(d).after)).toEqual(['aaa', 'a-slug']); // the slug is under __deleted.object
    const child = versionOf(d, {});
    expect(treeSegmentsOf(child)).toEqual(['aaa', child._id]);
    expect(treeSegmentsOf(toResponse(child, ID_PREFIX))).toEqual(['aaa', child._id]);
    expect(treeSegmentsOf(d)).toEqual(['aaa', 'a-slug']);
  });

  test('a body nested too deeply to write out gets no key (not cached), instead of an error', () => {
    const depth = 100_000;
    const body = JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth)) as unknown;
    const req = { method: 'POST', body, query: {}, baseUrl: '/gog', path: '/glossesInManuscript' } as unknown as Request;
    expect(queryRequestKey(req)).toBeUndefined();
    expect(searchRequestKey('search', req)).toBeUndefined();
    expect(gogRequestKey(req)).toBeUndefined();
    expect(queryRequestKey({ ...req, body: { a: 1 } } as unknown as Request)?.key).toBe(queryKey({ a: 1 }, undefined, undefined));
  });

  test('a body with more object properties than MAX_KEYED_PROPERTIES gets no key; one at the bound does', () => {
    const wide = (n: number) => ({ $or: [{ x: Object.fromEntries(Array.from({ length: n - 2 }, (_, i) => [`k${i}`, i])) }] });
    const at = { method: 'POST', body: wide(MAX_KEYED_PROPERTIES), query: {}, baseUrl: '/gog', path: '/glossesInManuscript' };
    const over = { ...at, body: wide(MAX_KEYED_PROPERTIES + 1) };
    expect(queryRequestKey(at as unknown as Request)?.key).toBe(queryKey(at.body, undefined, undefined));
    for (const make of [queryRequestKey, (r: Request) => searchRequestKey('search', r), gogRequestKey])
      expect(make(over as unknown as Request)).toBeUndefined();
  });
});
