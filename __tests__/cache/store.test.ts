import { EntryStore, entryBytes } from '../../cache/store';

const H = { 'content-type': 'application/json; charset=utf-8' };

describe('entry store', () => {
  test('evicts the least recently used entry when the entry count is exceeded', () => {
    const removed: string[] = [];
    const s = new EntryStore({ maxEntries: 3, maxBytes: 1e9, ttlSeconds: 0, onRemove: (e) => removed.push(e.key) });
    s.set('a', 'id', 200, '"a"', H);
    s.set('b', 'id', 200, '"b"', H);
    s.set('c', 'id', 200, '"c"', H);
    expect(s.get('a')?.body).toBe('"a"'); // a is now most recent
    s.set('d', 'id', 200, '"d"', H);
    expect(s.has('b')).toBe(false);
    expect(s.has('a') && s.has('c') && s.has('d')).toBe(true);
    expect(s.entries).toBe(3);
    expect(s.counters.evictions).toBe(1);
    expect(removed).toEqual(['b']);
    s.close();
  });

  test('evicts by total bytes and refuses an entry larger than the limit', () => {
    const body = 'x'.repeat(400);
    const one = entryBytes('k1', body, H);
    const s = new EntryStore({ maxEntries: 100, maxBytes: one * 2 + 10, ttlSeconds: 0 });
    s.set('k1', 'query', 200, body, H);
    s.set('k2', 'query', 200, body, H);
    expect(s.entries).toBe(2);
    s.set('k3', 'query', 200, body, H);
    expect(s.has('k1')).toBe(false);
    expect(s.entries).toBe(2);
    expect(s.bytes).toBeLessThanOrEqual(one * 2 + 10);
    expect(s.set('huge', 'query', 200, 'y'.repeat(one * 3), H)).toBeUndefined();
    expect(s.has('huge')).toBe(false);
    s.close();
  });

  test('entries expire after the TTL and leave the byte count and the index', () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    try {
      const removed: string[] = [];
      const s = new EntryStore({ maxEntries: 10, maxBytes: 1e9, ttlSeconds: 2, onRemove: (e) => removed.push(e.key) });
      s.set('a', 'id', 200, '"a"', H);
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
    const e = s.set('a', 'id', 200, '{"x":1}', { ...H })!;
    expect(Object.isFrozen(e)).toBe(true);
    expect(Object.isFrozen(e.headers)).toBe(true);
    expect(() => {
      (e as { body: string }).body = 'changed';
    }).toThrow();
    expect(s.get('a')!.body).toBe('{"x":1}');
    s.close();
  });

  test('counts hits, misses, sets and invalidations; clear empties', () => {
    const s = new EntryStore({ maxEntries: 10, maxBytes: 1e9, ttlSeconds: 0 });
    s.set('a', 'id', 200, '1', H);
    s.get('a');
    s.get('zz');
    expect(s.invalidate('a')).toBe(true);
    expect(s.invalidate('a')).toBe(false);
    s.set('b', 'id', 200, '2', H);
    expect(s.clear()).toBe(1);
    expect(s.counters).toMatchObject({ hits: 1, misses: 1, sets: 2, invalidations: 1 });
    expect(s.bytes).toBe(0);
    s.close();
  });
});
