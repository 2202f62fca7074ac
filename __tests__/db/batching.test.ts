/** db/batching.ts: which calls travel together, how many batches wait at once, and whose outcome each call gets. */
import { Batcher, type Settled } from '../../db/batching';

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
