/**
 * The read cache under concurrent writes, over a real socket: after every write is acknowledged,
 * each cached read must answer what the database holds (the oracle is a driver read of the same
 * filter), and an alias of a cached URL must answer what the uncached server answers.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
let server: Server;
let base: string;

beforeAll(async () => {
  h = await startHarness({ caching: true });
  server = h.srv.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await h?.srv.close();
});

const send = (method: string, path: string, body?: unknown, authed = false) =>
  fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...(authed ? { Authorization: `Bearer ${h.token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

/** POST /v1/api/query: the `@id`s it answers, and whether the cache answered. */
async function query(filter: Obj): Promise<{ ids: string[]; cache: string | null }> {
  const r = await send('POST', '/v1/api/query', filter);
  expect(r.status).toBe(200);
  return { ids: ((await r.json()) as Obj[]).map((o) => o['@id']).sort(), cache: r.headers.get('x-cache') };
}

/** What the database holds for the same filter (live objects only, as the query route). */
async function truth(filter: Obj): Promise<string[]> {
  const docs = await h.srv.collection.find({ $and: [filter, { __deleted: { $exists: false } }] } as never).toArray();
  return docs.map((d) => String(d['@id'])).sort();
}

/** Cache the filter's current answer (MISS then HIT). */
async function warm(filter: Obj): Promise<void> {
  await query(filter);
  expect((await query(filter)).cache).toBe('HIT');
}

async function create(body: Obj): Promise<Obj> {
  const r = await send('POST', '/v1/api/create', body, true);
  expect(r.status).toBe(201);
  return ((await r.json()) as Obj).new_obj_state;
}

describe('concurrent writes on one object leave no cached query stale', () => {
  test('two updates at the same moment: a query only the combined parent matches', async () => {
    const stale: string[] = [];
    for (let trial = 0; trial < 12; trial++) {
      const p = await create({ trial, kind: 'pair' });
      const both = { '@id': p['@id'], '__rerum.history.next': { $size: 2 } };
      const one = { '@id': p['@id'], '__rerum.history.next': { $size: 1 } };
      await warm(both);
      await warm(one);
      const answers = await Promise.all([0, 1].map((n) => send('PUT', '/v1/api/update', { '@id': p['@id'], n }, true)));
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      for (const f of [both, one]) {
        const got = (await query(f)).ids;
        const want = await truth(f);
        if (JSON.stringify(got) !== JSON.stringify(want))
          stale.push(`trial ${trial} ${JSON.stringify(f)}: got ${got.length}, stored ${want.length}`);
      }
    }
    expect(stale).toEqual([]);
  });

  test('an overwrite racing an update', async () => {
    const stale: string[] = [];
    for (let trial = 0; trial < 12; trial++) {
      const p = await create({ trial, v: 'old' });
      const filters = [
        { '@id': p['@id'], v: 'new', '__rerum.history.next': { $size: 1 } },
        { '@id': p['@id'], v: 'old', '__rerum.history.next': { $size: 1 } },
        { '@id': p['@id'], v: 'new', '__rerum.history.next': { $size: 0 } },
      ];
      for (const f of filters) await warm(f);
      await Promise.all([
        send('PUT', '/v1/api/overwrite', { '@id': p['@id'], v: 'new' }, true),
        send('PUT', '/v1/api/update', { '@id': p['@id'], n: 1 }, true),
      ]);
      for (const f of filters) {
        const got = (await query(f)).ids;
        const want = await truth(f);
        if (JSON.stringify(got) !== JSON.stringify(want))
          stale.push(`trial ${trial} ${JSON.stringify(f)}: got ${got.length}, stored ${want.length}`);
      }
    }
    expect(stale).toEqual([]);
  });

  test('bulkUpdate naming one object several times: no intermediate parent state is cached', async () => {
    const stale: string[] = [];
    for (let trial = 0; trial < 8; trial++) {
      const p = await create({ trial, kind: 'bulk' });
      // matches the parent with 1 to 4 next versions: every state between before and after. Each
      // read asks a new variant (`k`), so every one reads the database and may fill its own entry.
      const middle = (k: number) => ({
        '@id': p['@id'],
        '__rerum.history.next.0': { $exists: true },
        '__rerum.history.next.4': { $exists: false },
        k: { $ne: k },
      });
      let writing = true;
      let k = 0;
      const asked: number[] = [];
      const readers = [0, 1, 2].map(async () => {
        while (writing) {
          const mine = k++;
          asked.push(mine);
          await query(middle(mine));
        }
      });
      const items = [1, 2, 3, 4, 5].map((n) => ({ '@id': p['@id'], n }));
      const r = await send('PUT', '/v1/api/bulkUpdate', items, true);
      writing = false;
      await Promise.all(readers);
      expect(r.status).toBe(200);
      const want = await truth(middle(-1));
      for (const mine of asked) {
        const got = await query(middle(mine));
        if (got.cache === 'HIT' && JSON.stringify(got.ids) !== JSON.stringify(want))
          stale.push(`trial ${trial} read ${mine}: got ${got.ids.length}, stored ${want.length}`);
      }
    }
    expect(stale).toEqual([]);
  }, 90_000);
});

describe('an alias of a cached id is answered as the uncached server answers it', () => {
  const aliases = (s: string) => [`nope%2F${s}`, `${s}%23x`, `${s}%3Fx`, `${s}%20`, `%20${s}`, `${s}%09`];

  test.each(['id', 'history', 'since'])('/v1/%s/:id', async (route) => {
    const s = h.seg(await create({ route }));
    const path = `/v1/${route}/${s}`;
    await send('GET', path);
    expect((await send('GET', path)).headers.get('x-cache')).toBe('HIT');
    for (const alias of aliases(s)) {
      const r = await send('GET', `/v1/${route}/${alias}`);
      expect({ alias, status: r.status, cache: r.headers.get('x-cache') }).toEqual({
        alias,
        status: 404,
        cache: expect.not.stringMatching(/HIT/),
      });
    }
  });
});
