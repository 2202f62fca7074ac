/**
 * db/batching.ts: which calls travel together, how many batches wait at once, and whose outcome each
 * call gets; db/page-batching.ts: which client queries may share a batch.
 */
import { Batcher, KeyedBatcher, type Settled } from '../../db/batching';
import { pageKey } from '../../db/page-batching';

/** A run that records each batch and answers when `release()` is called. */
function recorder() {
  const batches: number[][] = [];
  const pending: Array<() => void> = [];
  let open = 0;
  let maxOpen = 0;
  const run = (items: number[]): Promise<Settled<number>[]> => {
    batches.push(items);
    open++;
    maxOpen = Math.max(maxOpen, open);
    return new Promise((resolve) =>
      pending.push(() => {
        open--;
        resolve(items.map((i) => (i < 0 ? { ok: false, error: new Error(`refused ${i}`) } : { ok: true, value: i * 10 })));
      }),
    );
  };
  const releaseAll = async () => {
    // a freed slot sends the next batch on a later turn: wait two turns before looking again
    const turn = () => new Promise((r) => setImmediate(r));
    do {
      pending.splice(0).forEach((r) => r());
      await turn();
      await turn();
    } while (pending.length);
  };
  return { run, batches, releaseAll, maxOpen: () => maxOpen };
}

test('calls of one turn leave as one batch; each call gets its own outcome', async () => {
  const r = recorder();
  const b = new Batcher(r.run, { inFlight: 2, size: 10 });
  const calls = [1, 2, -3, 4].map((i) =>
    b.call(i).then(
      (v) => ({ v }),
      (e: Error) => ({ e: e.message }),
    ),
  );
  await new Promise((resolve) => setImmediate(resolve));
  expect(r.batches).toEqual([[1, 2, -3, 4]]);
  await r.releaseAll();
  expect(await Promise.all(calls)).toEqual([{ v: 10 }, { v: 20 }, { e: 'refused -3' }, { v: 40 }]);
});

test('no more than inFlight batches wait at once; later calls join the next batch, at most `size` each', async () => {
  const r = recorder();
  const b = new Batcher(r.run, { inFlight: 2, size: 3 });
  const first = [b.call(1)];
  await new Promise((resolve) => setImmediate(resolve));
  const second = [b.call(2)];
  await new Promise((resolve) => setImmediate(resolve));
  // both slots busy: these wait, then leave in batches of at most 3
  const rest = [3, 4, 5, 6, 7].map((i) => b.call(i));
  await new Promise((resolve) => setImmediate(resolve));
  expect(r.batches).toEqual([[1], [2]]);
  await r.releaseAll();
  expect(await Promise.all([...first, ...second, ...rest])).toEqual([10, 20, 30, 40, 50, 60, 70]);
  expect(r.batches).toEqual([[1], [2], [3, 4, 5], [6, 7]]);
  expect(r.maxOpen()).toBe(2);
});

test('a run that throws rejects every call of its batch, and later batches still go', async () => {
  let fail = true;
  const b = new Batcher<number, number>(
    async (items) => {
      if (fail) throw new Error('connection lost');
      return items.map((i) => ({ ok: true, value: i }));
    },
    { inFlight: 1, size: 10 },
  );
  const failed = await Promise.allSettled([b.call(1), b.call(2)]);
  expect(failed.map((f) => f.status)).toEqual(['rejected', 'rejected']);
  fail = false;
  expect(await b.call(3)).toBe(3);
});

test('a run that answers too few outcomes rejects the calls left without one (none is left waiting)', async () => {
  const b = new Batcher<number, number>(async (items) => items.slice(1).map((i) => ({ ok: true, value: i })), { inFlight: 1, size: 10 });
  const settled = await Promise.allSettled([b.call(1), b.call(2), b.call(3)]);
  expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
});

test('keyed: calls of one key share batches, calls of different keys never; an answered key is forgotten', async () => {
  const r = recorder();
  const k = new KeyedBatcher(r.run, { inFlight: 1, size: 10 });
  const calls = [k.call('a', 1), k.call('b', 2), k.call('a', 3), k.call('b', 4), k.call('c', 5)];
  await new Promise((resolve) => setImmediate(resolve));
  expect(r.batches).toEqual([[1, 3], [2, 4], [5]]);
  expect(k.size).toBe(3);
  await r.releaseAll();
  expect(await Promise.all(calls)).toEqual([10, 20, 30, 40, 50]);
  expect(k.size).toBe(0);
});

test('page keys: equality filters of one shape, skip, limit and time limit share a key; anything else reads alone', () => {
  const live = (f: object) => ({ $and: [f, { __deleted: { $exists: false } }] });
  const page = { skip: 0, limit: 100, maxTimeMS: 5000 };
  const key = (f: object, o: object = page) => pageKey(live(f), o);
  expect(key({ '@id': 'http://x/1' })).toBe(key({ '@id': 'http://x/2' }));
  expect(key({ target: { id: 'a' }, type: 'A' })).toBe(key({ target: { id: 'b' }, type: 'B' }));
  expect(key({ n: { $in: [1, 2] } })).toBe(key({ n: { $in: [3, 4] } }));
  // $exists by the truth of its value: 0 and false one plan, 1 and true the other
  expect(key({ '@id': { $exists: 0 } })).toBe(key({ '@id': { $exists: false } }));
  expect(key({ '@id': { $exists: 1 } })).toBe(key({ '@id': { $exists: true } }));
  const distinct = [
    key({ '@id': 'http://x/1' }),
    key({ '@id': 7 }),
    key({ '@id': 'http://x/1', type: 'A' }),
    key({ type: 'A', '@id': 'http://x/1' }),
    key({ '@id': { $exists: true } }),
    key({ '@id': { $exists: false } }),
    key({ n: { $in: [1, 2, 3] } }),
    key({ '@id': 'http://x/1' }, { ...page, skip: 1 }),
    key({ '@id': 'http://x/1' }, { ...page, limit: 10 }),
    key({ '@id': 'http://x/1' }, { skip: 0, limit: 100 }),
  ];
  expect(new Set(distinct).size).toBe(distinct.length);
  for (const f of [
    { n: { $gt: 1 } },
    { s: { $regex: 'a' } },
    { $or: [{ a: 1 }, { b: 2 }] },
    { $where: 'true' },
    { a: { $elemMatch: { b: 1 } } },
    { d: new Date(0) },
  ]) {
    expect(key(f)).toBeUndefined();
  }
  expect(pageKey(live({ a: 1 }), { ...page, projection: { a: 1 } })).toBeUndefined();
  expect(pageKey(live({ a: 1 }), { ...page, sort: { a: 1 } })).toBeUndefined();
});
