/**
 * Database round trips per write route, counted with the driver's command monitoring on the app's own
 * client: the usual case of each route must not silently grow. Insert-then-link order and the
 * findOneAnd* pre-images are kept (`insert` before `findAndModify`).
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { CommandStartedEvent } from 'mongodb';
import { ObjectStore } from '../../db/objects';
import * as ids from '../../rerum/ids';
import { startHarness, type Harness, type Obj } from './helpers';

let h: Harness;
const commands: string[] = [];
beforeAll(async () => {
  h = await startHarness({ monitorCommands: true });
  h.srv.client.on('commandStarted', (e: CommandStartedEvent) => {
    if (e.databaseName === h.srv.config.mongoDbName) commands.push(e.commandName);
  });
});
afterAll(async () => {
  await h?.srv.close();
});
afterEach(() => jest.restoreAllMocks());

/** The commands `fn` sent, in order. */
async function trips(fn: () => Promise<unknown>): Promise<string[]> {
  commands.length = 0;
  await fn();
  return [...commands];
}
const expectStatus = async (t: Promise<{ status: number; text: string }>, status: number) => {
  const r = await t;
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${r.text}`);
  return r;
};

test('create: one insert (no lookup first); with a Slug, one lookup of the Slug', async () => {
  expect(await trips(() => expectStatus(h.authed('post', '/v1/api/create').send({ a: 1 }), 201))).toEqual(['insert']);
  expect(await trips(() => expectStatus(h.authed('post', '/v1/api/create').set('Slug', `slug-${Date.now()}`).send({ a: 1 }), 201))).toEqual(
    ['find', 'insert'],
  );
});

test('create: a drawn id that is taken is drawn again; a client _id that is taken is 409 at once', async () => {
  const taken = await h.create({ a: 'first' });
  const takenId = h.seg(taken);
  const real = ids.newId;
  let first = true;
  jest.spyOn(ids, 'newId').mockImplementation(() => {
    if (first) {
      first = false;
      return takenId;
    }
    return real();
  });
  let body: Obj = {};
  expect(
    await trips(async () => {
      body = (await expectStatus(h.authed('post', '/v1/api/create').send({ a: 'second' }), 201)).text as unknown as Obj;
    }),
  ).toEqual(['insert', 'insert']);
  const made = JSON.parse(body as unknown as string) as Obj;
  expect(h.seg(made)).not.toBe(takenId);
  expect((await h.stored(takenId))?.a).toBe('first');
  expect((await h.stored(made['@id']))?.a).toBe('second');
  jest.restoreAllMocks();
  expect(await trips(() => expectStatus(h.authed('post', '/v1/api/create').send({ _id: takenId, a: 'third' }), 409))).toEqual(['insert']);
});

test('a Slug the unique index finds taken (the lookup missed it, as when two requests race): 409 at once, no id drawn again', async () => {
  const slug = `raced-${Date.now()}`;
  await expectStatus(h.authed('post', '/v1/api/create').set('Slug', slug).send({ a: 1 }), 201);
  const b = await h.create({ b: 1 });
  // the Slug lookup answers "free", as it does for every request of a race that reads before any writes
  jest.spyOn(ObjectStore.prototype, 'exists').mockResolvedValue(false);
  const created = await trips(() => expectStatus(h.authed('post', '/v1/api/create').set('Slug', slug).send({ a: 2 }), 409));
  expect(created).toEqual(['insert']);
  expect(await trips(() => expectStatus(h.authed('patch', `/v1/api/release/${h.seg(b)}`).set('Slug', slug), 409))).toEqual([
    'find',
    'findAndModify',
  ]);
  expect((await h.stored(b['@id']))?.__rerum.isReleased).toBe('');
  expect(await h.srv.collection.countDocuments({ '__rerum.slug': slug })).toBe(1);
});

test('bulkCreate: one insert for all items', async () => {
  expect(await trips(() => expectStatus(h.authed('post', '/v1/api/bulkCreate').send([{ a: 1 }, { a: 2 }, { a: 3 }]), 201))).toEqual([
    'insert',
  ]);
});

test('update, patch, set, unset: read the original, insert the version, link it (pre-image)', async () => {
  const a = await h.create({ v: 1, gone: true });
  const expected = ['find', 'insert', 'findAndModify'];
  expect(await trips(() => expectStatus(h.authed('put', '/v1/api/update').send({ '@id': a['@id'], v: 2 }), 200))).toEqual(expected);
  expect(await trips(() => expectStatus(h.authed('patch', '/v1/api/patch').send({ '@id': a['@id'], v: 3 }), 200))).toEqual(expected);
  expect(await trips(() => expectStatus(h.authed('patch', '/v1/api/set').send({ '@id': a['@id'], w: 1 }), 200))).toEqual(expected);
  expect(await trips(() => expectStatus(h.authed('patch', '/v1/api/unset').send({ '@id': a['@id'], gone: null }), 200))).toEqual(expected);
});

test('bulkUpdate: one read for all originals, one insert, one link per parent', async () => {
  const [a, b] = [await h.create({ v: 1 }), await h.create({ v: 1 })];
  const items = [
    { '@id': a['@id'], v: 2 },
    { '@id': b['@id'], v: 2 },
    { '@id': a['@id'], v: 3 },
  ];
  expect(await trips(() => expectStatus(h.authed('put', '/v1/api/bulkUpdate').send(items), 200))).toEqual([
    'find',
    'insert',
    'findAndModify',
    'findAndModify',
  ]);
});

test('overwrite: read, then one conditional replace', async () => {
  const a = await h.create({ v: 1 });
  expect(await trips(() => expectStatus(h.authed('put', '/v1/api/overwrite').send({ '@id': a['@id'], v: 2 }), 200))).toEqual([
    'find',
    'findAndModify',
  ]);
});

test('delete and release of an object without versions: read, then one write (no tree query)', async () => {
  const a = await h.create({ v: 1 });
  expect(await trips(() => expectStatus(h.authed('delete', `/v1/api/delete/${h.seg(a)}`), 204))).toEqual(['find', 'findAndModify']);
  const b = await h.create({ v: 1 });
  expect(await trips(() => expectStatus(h.authed('patch', `/v1/api/release/${h.seg(b)}`), 200))).toEqual(['find', 'findAndModify']);
});

test('delete and release in a tree: read, the tree in one query, one write per changed document', async () => {
  const a = await h.create({ v: 1 });
  const b = await h.update({ '@id': a['@id'], v: 2 });
  const c = await h.update({ '@id': b['@id'], v: 3 });
  // deleting b: c takes over b's previous, a lists c instead of b, b becomes a tombstone
  expect(await trips(() => expectStatus(h.authed('delete', `/v1/api/delete/${h.seg(b)}`), 204))).toEqual([
    'find',
    'find',
    'findAndModify',
    'findAndModify',
    'findAndModify',
  ]);
  expect((await h.stored(c['@id']))?.__rerum.history.previous).toBe(a['@id']);
  // releasing c: a's releases.next lists c, c is stamped
  expect(await trips(() => expectStatus(h.authed('patch', `/v1/api/release/${h.seg(c)}`), 200))).toEqual([
    'find',
    'find',
    'findAndModify',
    'findAndModify',
  ]);
});

describe('requests waiting at once share round trips (db/batching.ts)', () => {
  // The requests are pipelined on one connection: the server reads them together, so their lookups
  // and inserts wait together for the first free slot, however loaded the machine (the last body
  // read may come a turn later: a few batches, not one per request).
  const N = 24;
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer(h.srv.app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** One request as HTTP/1.1 text. */
  const raw = (method: string, url: string, body?: Obj, headers: Record<string, string> = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    const lines = [`${method} ${url} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(text)}`);
    return `${lines.join('\r\n')}\r\n\r\n${text}`;
  };
  const create = (body: Obj, headers: Record<string, string> = {}) =>
    raw('POST', '/v1/api/create', body, { Authorization: `Bearer ${h.token}`, ...headers });

  /** Send all requests at once on one connection; their answers (status, JSON body) in order. */
  async function pipelined(requests: string[]): Promise<{ status: number; body: Obj }[]> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(requests.join(''));
    const out: { status: number; body: Obj }[] = [];
    let buf = Buffer.alloc(0);
    for await (const chunk of socket) {
      buf = Buffer.concat([buf, chunk as Buffer]);
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) break;
        out.push({ status: Number(head.split(' ')[1]), body: JSON.parse(buf.subarray(end + 4, end + 4 + length).toString('utf8')) as Obj });
        buf = buf.subarray(end + 4 + length);
      }
      if (out.length === requests.length) break;
    }
    socket.destroy();
    return out;
  }
  const count = (names: string[], name: string) => names.filter((n) => n === name).length;

  test('uncached reads at once: a few lookups for all, each answered with its own object', async () => {
    const bulk = h.authed('post', '/v1/api/bulkCreate').send(Array.from({ length: N }, (_, i) => ({ n: i })));
    const made = JSON.parse((await expectStatus(bulk, 201)).text) as Obj[];
    let answers: { status: number; body: Obj }[] = [];
    const sent = await trips(async () => {
      answers = await pipelined(made.map((o) => raw('GET', `/v1/id/${h.seg(o)}`)));
    });
    expect(answers.map((a) => a.status)).toEqual(made.map(() => 200));
    expect(answers.map((a) => a.body.n)).toEqual(made.map((_, i) => i));
    expect(answers.map((a) => a.body['@id'])).toEqual(made.map((o) => o['@id']));
    expect(count(sent, 'find')).toBeLessThanOrEqual(N / 4);
  });

  test('creates at once: a few inserts for all, every object stored once under its own id', async () => {
    const before = await h.count();
    let answers: { status: number; body: Obj }[] = [];
    const sent = await trips(async () => {
      answers = await pipelined(Array.from({ length: N }, (_, i) => create({ c: i })));
    });
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
    const made = answers.map((a) => a.body.new_obj_state as Obj);
    expect(made.map((o) => o.c)).toEqual(made.map((_, i) => i));
    expect(new Set(made.map((o) => o['@id'])).size).toBe(N);
    for (const o of made) expect((await h.stored(o['@id']))?.c).toBe(o.c);
    expect(await h.count()).toBe(before + N);
    expect(count(sent, 'insert')).toBeLessThanOrEqual(N / 4);
  });

  describe('client queries at once', () => {
    const run = `q${Date.now()}`;
    const groupSize = (i: number) => i % 4; // 0 to 3 objects per group
    const query = (group: string, body: Obj = { grp: group }) => raw('POST', '/v1/api/query?limit=2&skip=1', body);
    /** Each group's page as the query's own find reads it (limit 2, skip 1, live objects only). */
    const ownPage = async (group: string) =>
      (
        await h.srv.collection.find({ $and: [{ grp: group }, { __deleted: { $exists: false } }] } as never, { skip: 1, limit: 2 }).toArray()
      ).map((d) => d['@id'] as string);
    let groups: string[] = [];
    beforeAll(async () => {
      groups = Array.from({ length: N }, (_, i) => `${run}-${i}`);
      const objects = groups.flatMap((g, i) => Array.from({ length: groupSize(i) }, (_, k) => ({ grp: g, k })));
      const made = JSON.parse((await expectStatus(h.authed('post', '/v1/api/bulkCreate').send(objects), 201)).text) as Obj[];
      // one group loses its middle object: a page must leave deleted objects out
      const gone = made.find((o) => o.grp === groups[3] && o.k === 1)!;
      await expectStatus(h.authed('delete', `/v1/api/delete/${h.seg(gone)}`), 204);
    });

    test('equality queries of one shape: a few commands for all, each page exactly its own find', async () => {
      let answers: { status: number; body: Obj }[] = [];
      const sent = await trips(async () => {
        answers = await pipelined(groups.map((g) => query(g)));
      });
      expect(answers.map((a) => a.status)).toEqual(groups.map(() => 200));
      const pages = answers.map((a) => (a.body as unknown as Obj[]).map((o) => o['@id']));
      expect(pages).toEqual(await Promise.all(groups.map(ownPage)));
      expect(pages.map((p) => p.length)).toEqual(groups.map((_, i) => (i === 3 ? 1 : [0, 0, 1, 2][groupSize(i)])));
      expect(count(sent, 'find') + count(sent, 'aggregate')).toBeLessThanOrEqual(N / 4);
    });

    test('queries with other operators are not combined; a batch that fails is read again page by page', async () => {
      const failing = jest.spyOn(h.srv.collection, 'aggregate').mockImplementationOnce((() => ({
        toArray: () => Promise.reject(new Error('the batch was lost')),
      })) as never);
      const ranged = groups.map((g) => query(g, { grp: g, k: { $gte: 0 } }));
      const equal = groups.map((g) => query(g, { grp: g, '__rerum.isOverwritten': '' }));
      let answers: { status: number; body: Obj }[] = [];
      const sent = await trips(async () => {
        answers = await pipelined(groups.flatMap((_, i) => [ranged[i], equal[i]]));
      });
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      const pages = answers.map((a) => (a.body as unknown as Obj[]).map((o) => o['@id']));
      const own = await Promise.all(groups.map(ownPage));
      expect(pages).toEqual(own.flatMap((p) => [p, p]));
      expect(failing).toHaveBeenCalled();
      // every ranged query is its own find
      expect(count(sent, 'find')).toBeGreaterThanOrEqual(N);
    });
  });

  test('creates at once that clash (one _id twice, one Slug twice): one of each pair 409, every other stored', async () => {
    const before = await h.count();
    const taken = h.seg(await h.create({ probe: 1 }));
    const id = taken.slice(0, -1) + (taken.endsWith('0') ? '1' : '0');
    const slug = `batched-${Date.now()}`;
    const answers = await pipelined([
      ...Array.from({ length: N - 4 }, (_, i) => create({ c: i })),
      create({ _id: id, twin: 1 }),
      create({ _id: id, twin: 2 }),
      create({ s: 1 }, { Slug: slug }),
      create({ s: 2 }, { Slug: slug }),
    ]);
    const statuses = answers.map((a) => a.status);
    expect(statuses.slice(0, N - 4)).toEqual(statuses.slice(0, N - 4).map(() => 201));
    expect(statuses.slice(N - 4, N - 2).sort()).toEqual([201, 409]);
    expect(statuses.slice(N - 2).sort()).toEqual([201, 409]);
    expect(await h.count()).toBe(before + 1 + N - 2);
    expect(await h.srv.collection.countDocuments({ '__rerum.slug': slug })).toBe(1);
    expect(await h.srv.collection.countDocuments({ _id: id } as never)).toBe(1);
  });
});
