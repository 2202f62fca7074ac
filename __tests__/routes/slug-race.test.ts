/**
 * A Slug names one object, even when several clients claim it at once: concurrent creates and
 * releases naming one Slug give exactly one success, the rest 409 with the reference's message; the
 * database holds one document with that slug; /v1/id/{slug} answers the winner. Through the real
 * app over HTTP, the real driver and the test database. Several rounds, so a check-then-insert race
 * cannot slip through by luck of scheduling. And the start-up migration from the plain slug index
 * of earlier versions to the unique one (db/indexes.ts).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { ensureSlugIndex } from '../../db/indexes';
import type { RerumDocument } from '../../types/rerum';
import { createTestServer, testMongoUri, type TestServer } from '../support/app';
import { startHarness, type Harness, type Obj } from './helpers';

const TAKEN = 'The id provided already exists.  Please use a different _id or Slug.';
const N = 12;
const ROUNDS = 4;

let h: Harness;
let server: http.Server;
let base: string;
beforeAll(async () => {
  h = await startHarness();
  // One listening server for all requests (supertest on an app would start one per request).
  server = http.createServer(h.srv.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await h?.srv.close();
});

const freshSlug = (what: string) => `${what}-${randomBytes(6).toString('hex')}`;
const bearer = () => `Bearer ${h.token}`;
const create = (slug: string, body: Obj) =>
  request(base).post('/v1/api/create').set('Authorization', bearer()).set('Slug', slug).send(body);
const release = (seg: string, slug: string, how: 'header' | 'query') => {
  const t = request(base).patch(`/v1/api/release/${seg}${how === 'query' ? `?slug=${slug}` : ''}`);
  t.set('Authorization', bearer());
  return how === 'header' ? t.set('Slug', slug) : t;
};
const withSlug = (slug: string) => h.srv.collection.countDocuments({ '__rerum.slug': slug });

/** Exactly one answer is `ok`, every other one is the 409 of a taken id/Slug; the winner's body. */
function oneWinner(answers: { status: number; body: Obj; text: string }[], ok: number): Obj {
  const statuses = answers.map((a) => a.status).sort();
  expect(statuses).toEqual([ok, ...Array(answers.length - 1).fill(409)].sort());
  for (const a of answers.filter((x) => x.status === 409)) expect(a.body).toEqual({ status: 409, error: 'Conflict', message: TAKEN });
  return answers.find((a) => a.status === ok)!.body;
}

test(`${N} concurrent creates with one Slug: one 201, the rest 409; one document holds the slug (${ROUNDS} rounds)`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const slug = freshSlug('race-create');
    const before = await h.count();
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => create(slug, { round, i })));
    const won = oneWinner(answers, 201);
    expect(won.__rerum.slug).toBe(slug);
    expect(await withSlug(slug)).toBe(1);
    expect(await h.count()).toBe(before + 1);
    const read = await request(base).get(`/v1/id/${slug}`);
    expect(read.status).toBe(200);
    expect(read.body['@id']).toBe(won['@id']);
    expect(read.body.i).toBe(won.i);
  }
});

test(`${N} concurrent releases naming one slug (header or ?slug=): one 200, the rest 409 and unreleased (${ROUNDS} rounds)`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const slug = freshSlug('race-release');
    const objs = await Promise.all(Array.from({ length: N }, (_, i) => h.create({ round, i })));
    const answers = await Promise.all(objs.map((o, i) => release(h.seg(o), slug, i % 2 ? 'query' : 'header')));
    const won = oneWinner(answers, 200);
    expect(won.__rerum.slug).toBe(slug);
    expect(won.__rerum.isReleased).not.toBe('');
    expect(await withSlug(slug)).toBe(1);
    for (const o of objs.filter((x) => x['@id'] !== won['@id'])) {
      const stored = await h.stored(o['@id']);
      expect(stored!.__rerum.isReleased).toBe('');
      expect(stored!.__rerum.slug).toBeUndefined();
    }
    const read = await request(base).get(`/v1/id/${slug}`);
    expect(read.status).toBe(200);
    expect(read.body['@id']).toBe(won['@id']);
  }
});

test(`creates and releases racing for one Slug: exactly one wins (${ROUNDS} rounds)`, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const slug = freshSlug('race-mixed');
    const objs = await Promise.all(Array.from({ length: N / 2 }, (_, i) => h.create({ round, i })));
    const answers = await Promise.all([
      ...objs.map((o) => release(h.seg(o), slug, 'header')),
      ...objs.map((_, i) => create(slug, { round, made: i })),
    ]);
    expect(answers.filter((a) => a.status === 200 || a.status === 201)).toHaveLength(1);
    for (const a of answers.filter((x) => x.status !== 200 && x.status !== 201)) {
      expect(a.status).toBe(409);
      expect(a.body.message).toBe(TAKEN);
    }
    expect(await withSlug(slug)).toBe(1);
    const won = answers.find((a) => a.status === 200 || a.status === 201)!.body;
    expect((await request(base).get(`/v1/id/${slug}`)).body['@id']).toBe(won['@id']);
  }
});

test('a release naming the slug of another object is 409 and changes nothing', async () => {
  const slug = freshSlug('owned');
  const owner = (await create(slug, { owner: true })).body;
  const other = await h.create({ other: true });
  const r = await release(h.seg(other), slug, 'query');
  expect(r.status).toBe(409);
  expect(r.body.message).toBe(TAKEN);
  expect((await h.stored(other['@id']))!.__rerum).toEqual(other.__rerum);
  expect(await withSlug(slug)).toBe(1);
  expect((await request(base).get(`/v1/id/${slug}`)).body['@id']).toBe(owner['@id']);
});

describe('start-up on a database an earlier version made (plain index rerum_slug)', () => {
  const slugIndexes = async (srv: TestServer) =>
    (await srv.collection.listIndexes().toArray())
      .filter((i) => Object.keys(i.key).join() === '__rerum.slug')
      .map((i) => ({ name: i.name, unique: i.unique ?? false, partialFilterExpression: i.partialFilterExpression }));
  const UNIQUE = { name: 'rerum_slug_unique', unique: true, partialFilterExpression: { '__rerum.slug': { $gt: '' } } };
  const LEGACY = { name: 'rerum_slug', unique: false, partialFilterExpression: undefined };

  /** A database as an earlier version left it: the plain slug index and `docs`. */
  async function earlierDatabase(docs: Obj[]): Promise<{ dbName: string; client: MongoClient }> {
    const dbName = `t${process.pid}_slugmig_${randomBytes(4).toString('hex')}`;
    const client = new MongoClient(testMongoUri());
    await client.connect();
    const c = client.db(dbName).collection<Obj>('alpha');
    await c.createIndex({ '__rerum.slug': 1 }, { name: 'rerum_slug' });
    if (docs.length) await c.insertMany(docs);
    return { dbName, client };
  }
  const doc = (_id: string, slug?: string | null) => ({
    _id,
    '@id': `http://rerum.test/v1/id/${_id}`,
    n: _id,
    __rerum: {
      ...(slug !== undefined ? { slug } : {}),
      generatedBy: 'x',
      isReleased: '',
      isOverwritten: '',
      history: { prime: 'root', previous: '', next: [] },
      releases: { previous: '', next: [], replaces: '' },
    },
  });
  const hex = (i: number) => i.toString(16).padStart(24, '0');
  async function start(dbName: string) {
    const lines: Obj[] = [];
    const srv = await createTestServer({
      env: { MONGODBNAME: dbName, MONGODBCOLLECTION: 'alpha', LOG_LEVEL: 'warn' },
      logStream: { write: (l: string) => void lines.push(JSON.parse(l) as Obj) },
    });
    return { srv, lines };
  }

  test('without duplicate slugs: the unique index replaces the plain one, no warning; the slugs read as before', async () => {
    const { dbName, client } = await earlierDatabase([
      doc(hex(1), 'kept-slug'),
      // the reference writes slug: null into every object made without a Slug
      doc(hex(2), null),
      doc(hex(3), null),
      doc(hex(4)),
      doc(hex(5)),
      // a tombstone keeps the deleted object's slug two levels down: not a holder
      { _id: hex(6), '@id': 'http://rerum.test/v1/id/' + hex(6), __deleted: { object: doc(hex(6), 'kept-slug'), deletor: 'x', time: 't' } },
    ]);
    const { srv, lines } = await start(dbName);
    try {
      expect(await slugIndexes(srv)).toEqual([UNIQUE]);
      expect(lines.filter((l) => l.level >= 40)).toEqual([]);
      const r = await request(srv.app).get('/v1/id/kept-slug');
      expect(r.status).toBe(200);
      expect(r.body.n).toBe(hex(1));
      const tok = await srv.token();
      const taken = await request(srv.app)
        .post('/v1/api/create')
        .set('Authorization', `Bearer ${tok}`)
        .set('Slug', 'kept-slug')
        .send({ a: 1 });
      expect(taken.status).toBe(409);
      const slug = freshSlug('after-migration');
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          request(srv.app).post('/v1/api/create').set('Authorization', `Bearer ${tok}`).set('Slug', slug).send({ a: 1 }),
        ),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    } finally {
      await srv.close();
      await client.close();
    }
  });

  test('with duplicate slugs: one warning naming them, the plain index kept, the server serves; migrated once they are resolved', async () => {
    const { dbName, client } = await earlierDatabase([
      doc(hex(1), 'dup-a'),
      doc(hex(2), 'dup-a'),
      doc(hex(3), 'dup-a'),
      doc(hex(4), 'dup-b'),
      doc(hex(5), 'dup-b'),
      doc(hex(6), 'single'),
      doc(hex(7), null),
      doc(hex(8), null),
    ]);
    const { srv, lines } = await start(dbName);
    let second: Awaited<ReturnType<typeof start>> | undefined;
    try {
      expect(await slugIndexes(srv)).toEqual([LEGACY]);
      const warnings = lines.filter((l) => l.level >= 40);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ level: 40, index: 'rerum_slug_unique', duplicateSlugs: 2 });
      expect(warnings[0].examples).toEqual([
        { slug: 'dup-a', documents: 3 },
        { slug: 'dup-b', documents: 2 },
      ]);
      expect(warnings[0].msg).toContain('2 slug(s) are held by more than one document ("dup-a" ×3, "dup-b" ×2)');
      expect(warnings[0].msg).toContain('rerum_slug is kept');
      // serving: reads by slug, a new Slug, a taken one refused
      expect((await request(srv.app).get('/v1/id/single')).body.n).toBe(hex(6));
      const tok = await srv.token();
      const post = (slug: string) =>
        request(srv.app).post('/v1/api/create').set('Authorization', `Bearer ${tok}`).set('Slug', slug).send({ a: 1 });
      expect((await post(freshSlug('still-serving'))).status).toBe(201);
      expect((await post('dup-a')).status).toBe(409);

      // resolved by hand, then a restart migrates
      const c = client.db(dbName).collection<Obj>('alpha');
      await c.updateMany({ _id: { $in: [hex(2), hex(3), hex(5)] } } as Obj, { $unset: { '__rerum.slug': '' } });
      second = await start(dbName);
      expect(await slugIndexes(second.srv)).toEqual([UNIQUE]);
      expect(second.lines.filter((l) => l.level >= 40)).toEqual([]);
    } finally {
      await srv.close();
      await second?.srv.close();
      await client.close();
    }
  });

  test('processes of one cluster migrating at once: all succeed, one unique index left', async () => {
    const { dbName, client } = await earlierDatabase([doc(hex(1), 'one'), doc(hex(2), null)]);
    try {
      const c = client.db(dbName).collection<RerumDocument>('alpha');
      expect(await Promise.all([ensureSlugIndex(c), ensureSlugIndex(c), ensureSlugIndex(c)])).toEqual([true, true, true]);
      const names = (await c.listIndexes().toArray()).map((i) => i.name);
      expect(names).toContain('rerum_slug_unique');
      expect(names).not.toContain('rerum_slug');
    } finally {
      await client.db(dbName).dropDatabase();
      await client.close();
    }
  });

  test('a new database gets the unique index only', async () => {
    expect(await slugIndexes(h.srv)).toEqual([UNIQUE]);
  });
});
