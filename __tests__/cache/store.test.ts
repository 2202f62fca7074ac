import { EntryStore, entryBytes } from '../../cache/store';
import { representation } from '../../middleware/representation';

const H = { 'content-type': 'application/json; charset=utf-8' };
const rep = (body: string, headers: Record<string, string> = H) => representation(200, body, headers);
const text = (e: { rep: { body: Buffer } } | undefined) => e?.rep.body.toString('utf8');

describe('entry store', () => {
  test('evicts the least recently used entry when the entry count is exceeded', () => {
    const removed: string[] = [];
    const s = new EntryStore({ maxEntries: 3, maxBytes: 1e9, ttlSeconds: 0, onRemove: (e) => removed.push(e.key) });
    s.set('a', 'id', rep('"a"'));
    s.set('b', 'id', rep('"b"'));
    s.set('c', 'id', rep('"c"'));
    expect(text(s.get('a'))).toBe('"a"'); // a is now most recent
    s.set('d', 'id', rep('"d"'));
    expect(s.has('b')).toBe(false);
    expect(s.has('a') && s.has('c') && s.has('d')).toBe(true);
    expect(s.entries).toBe(3);
    expect(s.counters.evictions).toBe(1);
    expect(removed).toEqual(['b']);
    s.close();
  });

  test('evicts by total bytes and refuses an entry larger than the limit', () => {
    const body = 'x'.repeat(400);
    const one = entryBytes('k1', rep(body));
    expect(one).toBe(2 + 400 + 64 + rep(body).headers.reduce((n, [k, v]) => n + k.length + v.length, 0));
    const s = new EntryStore({ maxEntries: 100, maxBytes: one * 2 + 10, ttlSeconds: 0 });
    s.set('k1', 'query', rep(body));
    s.set('k2', 'query', rep(body));
    expect(s.entries).toBe(2);
    s.set('k3', 'query', rep(body));
    expect(s.has('k1')).toBe(false);
    expect(s.entries).toBe(2);
    expect(s.bytes).toBeLessThanOrEqual(one * 2 + 10);
    expect(s.set('huge', 'query', rep('y'.repeat(one * 3)))).toBeUndefined();
    expect(s.has('huge')).toBe(false);
    s.close();
  });

  test('entries expire after the TTL and leave the byte count and the index', () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    try {
      const removed: string[] = [];
      const s = new EntryStore({ maxEntries: 10, maxBytes: 1e9, ttlSeconds: 2, onRemove: (e) => removed.push(e.key) });
      s.set('a', 'id', rep('"a"'));
      jest.setSystemTime(Date.now() + 1500);
      expect(s.get('a')).toBeDefined();
      jest.setSystemTime(Date.now() + 1000);
      expect(s.get('a')).toBeUndefined();
      expect(removed).toEqual(['a']);
      expect(s.bytes).toBe(0);
      expect(s.entries).toBe(0);
      expect(s.counters.expirations).toBe(1);
      s.close();
    } finally {
      jest.useRealTimers();
    }
  });

  test('stored entries are frozen', () => {
    const s = new EntryStore({ maxEntries: 10, maxBytes: 1e9, ttlSeconds: 0 });
    const e = s.set('a', 'id', rep('{"x":1}'))!;
    expect(Object.isFrozen(e)).toBe(true);
    expect(Object.isFrozen(e.rep)).toBe(true);
    expect(Object.isFrozen(e.rep.headers)).toBe(true);
    expect(() => {
      (e as unknown as { rep: unknown }).rep = 'changed';
    }).toThrow();
    expect(text(s.get('a'))).toBe('{"x":1}');
    s.close();
  });

  test('counts hits, misses, sets and invalidations; clear empties', () => {
    const s = new EntryStore({ maxEntries: 10, maxBytes: 1e9, ttlSeconds: 0 });
    s.set('a', 'id', rep('1'));
    s.get('a');
    s.get('zz');
    expect(s.invalidate('a')).toBe(true);
    expect(s.invalidate('a')).toBe(false);
    s.set('b', 'id', rep('2'));
    expect(s.clear()).toBe(1);
    expect(s.counters).toMatchObject({ hits: 1, misses: 1, sets: 2, invalidations: 1 });
    expect(s.bytes).toBe(0);
    s.close();
  });
});
