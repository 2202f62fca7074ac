/**
 * MongoDB conformance: drives the real `mongodb` driver against MONGO_TEST_URI only, so it runs
 * unchanged against a real mongod (TEST_MONGO=uri TEST_MONGO_URI=mongodb://...).
 */
import {
  Decimal128,
  Long,
  MongoClient,
  MongoServerError,
  ObjectId,
  ServerApiVersion,
  UUID,
  type CollationOptions,
  type Collection,
  type Document,
} from 'mongodb';
import { testDb, type TestDb } from '../support/mongo';

let t: TestDb;
beforeAll(async () => {
  t = await testDb('conformance');
});
afterAll(async () => {
  await t?.close();
});

const coll = (name: string): Collection<Document> => t.db.collection(name);
/** The server's error code a command was refused with, or 'no error'. */
const codeOf = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => 'no error',
    (e: { code?: unknown }) => e.code,
  );

describe('CRUD', () => {
  test('insertOne assigns an ObjectId and findOne returns it', async () => {
    const c = coll('crud1');
    const r = await c.insertOne({ a: 1 });
    expect(r.insertedId).toBeInstanceOf(ObjectId);
    const d = await c.findOne({ _id: r.insertedId });
    expect(d).toEqual({ _id: r.insertedId, a: 1 });
  });

  test('string _id, insertMany, find by _id $in', async () => {
    const c = coll('crud2');
    await c.insertMany([
      { _id: 'x' as unknown as ObjectId, v: 1 },
      { _id: 'y' as unknown as ObjectId, v: 2 },
      { _id: 'z' as unknown as ObjectId, v: 3 },
    ]);
    const docs = await c
      .find({ _id: { $in: ['x', 'z'] } } as Document)
      .sort({ v: 1 })
      .toArray();
    expect(docs.map((d) => d.v)).toEqual([1, 3]);
    await expect(c.insertOne({ _id: 'x' as unknown as ObjectId })).rejects.toMatchObject({ code: 11000 });
  });

  test('returned documents are copies', async () => {
    const c = coll('crud3');
    await c.insertOne({ _id: 'k' as unknown as ObjectId, nested: { a: 1 }, arr: [1] });
    const d = (await c.findOne({ _id: 'k' } as Document))!;
    d.nested.a = 99;
    d.arr.push(2);
    expect(await c.findOne({ _id: 'k' } as Document)).toEqual({ _id: 'k', nested: { a: 1 }, arr: [1] });
  });

  test('cursor over several batches', async () => {
    const c = coll('batches');
    await c.insertMany(Array.from({ length: 10 }, (_, i) => ({ i })));
    const cursor = c.find({}).sort({ i: 1 }).batchSize(2);
    const seen: number[] = [];
    for await (const d of cursor) seen.push(d.i);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const agg = await c.aggregate([{ $sort: { i: -1 } }], { batchSize: 3 }).toArray();
    expect(agg.map((d) => d.i)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const early = c.find({}).batchSize(2);
    await early.next();
    await early.close();
  });

  test('sort / skip / limit (incl. negative limit)', async () => {
    const c = coll('batches');
    expect((await c.find({}).sort({ i: -1 }).skip(2).limit(3).toArray()).map((d) => d.i)).toEqual([7, 6, 5]);
    expect((await c.find({}).sort({ i: 1 }).limit(-4).toArray()).map((d) => d.i)).toEqual([0, 1, 2, 3]);
    expect(
      await c
        .find({}, { projection: { _id: 0, i: 1 } })
        .sort({ i: 1 })
        .limit(2)
        .toArray(),
    ).toEqual([{ i: 0 }, { i: 1 }]);
    expect(
      (
        await c
          .find({ i: { $lt: 3 } })
          .sort({ $natural: -1 })
          .toArray()
      ).map((d) => d.i),
    ).toEqual([2, 1, 0]);
  });
});

describe('filters', () => {
  let c: Collection<Document>;
  beforeAll(async () => {
    c = coll('filters');
    await c.insertMany([
      {
        name: 'a',
        n: 1,
        tags: ['x', 'y'],
        sub: { k: 'p', deep: { v: 1 } },
        '@id': 'http://e/1',
        items: [
          { q: 1, w: 'a' },
          { q: 5, w: 'b' },
        ],
        __rerum: { history: { prime: 'root' } },
      },
      {
        name: 'b',
        n: 2,
        tags: ['y'],
        sub: { k: 'q', deep: { v: 2 } },
        id: 'http://e/2',
        items: [{ q: 2, w: 'c' }],
        __rerum: { history: { prime: 'http://e/1' } },
      },
      { name: 'c', n: 3, tags: [], sub: { k: 'r' }, opt: null, items: [] },
      { name: 'd', n: 4.5, s: 'Hello World', mixed: 'str' },
      { name: 'e', n: -1, mixed: 7 },
    ]);
  });
  const names = async (f: Document, sort: Document = { name: 1 }): Promise<string[]> =>
    (await c.find(f).sort(sort).toArray()).map((d) => d.name);

  test('nested and dotted', async () => {
    expect(await names({ 'sub.k': 'q' })).toEqual(['b']);
    expect(await names({ 'sub.deep.v': { $gte: 1 } })).toEqual(['a', 'b']);
    expect(await names({ '__rerum.history.prime': 'root' })).toEqual(['a']);
    expect(await names({ 'items.q': 5 })).toEqual(['a']);
    expect(await names({ sub: { k: 'r' } })).toEqual(['c']);
  });
  test('$in/$nin/$or/$and/$ne/$gt', async () => {
    expect(await names({ name: { $in: ['a', 'c', 'zz'] } })).toEqual(['a', 'c']);
    expect(await names({ tags: { $in: ['x'] } })).toEqual(['a']);
    expect(await names({ name: { $nin: ['a', 'b', 'c'] } })).toEqual(['d', 'e']);
    expect(await names({ $or: [{ '@id': 'http://e/2' }, { id: 'http://e/2' }] })).toEqual(['b']);
    expect(await names({ $or: [{ '@id': 'http://e/1' }, { id: 'http://e/1' }] })).toEqual(['a']);
    expect(await names({ $and: [{ n: { $gt: 1 } }, { n: { $lt: 4 } }] })).toEqual(['b', 'c']);
    expect(await names({ n: { $ne: 1 } })).toEqual(['b', 'c', 'd', 'e']);
    expect(await names({ n: { $gt: 2 } })).toEqual(['c', 'd']);
  });
  test('$exists/$regex/$elemMatch/$size/$type', async () => {
    expect(await names({ opt: { $exists: true } })).toEqual(['c']);
    expect(await names({ opt: null })).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(await names({ s: { $exists: false } })).toEqual(['a', 'b', 'c', 'e']);
    expect(await names({ s: { $regex: '^hello', $options: 'i' } })).toEqual(['d']);
    expect(await names({ s: /World$/ })).toEqual(['d']);
    expect(await names({ items: { $elemMatch: { q: { $gt: 1 }, w: 'b' } } })).toEqual(['a']);
    expect(await names({ tags: { $size: 0 } })).toEqual(['c']);
    expect(await names({ tags: { $size: 2 } })).toEqual(['a']);
    expect(await names({ mixed: { $type: 'string' } })).toEqual(['d']);
    expect(await names({ mixed: { $type: 'number' } })).toEqual(['e']);
    expect(await names({ n: { $type: 'double' } })).toEqual(['d']);
  });
  test('sort by nested field', async () => {
    expect(await names({ 'sub.deep.v': { $exists: true } }, { 'sub.deep.v': -1 })).toEqual(['b', 'a']);
  });
});

describe('ObjectId and Date', () => {
  test('equality and ordering', async () => {
    const c = coll('oid');
    const ids = [
      new ObjectId('000000000000000000000001'),
      new ObjectId('000000000000000000000002'),
      new ObjectId('ffffffffffffffffffffff00'),
    ];
    await c.insertMany([
      { _id: ids[2], ref: ids[0], at: new Date('2024-03-01T00:00:00Z') },
      { _id: ids[0], ref: ids[1], at: new Date('2024-01-01T00:00:00Z') },
      { _id: ids[1], ref: ids[2], at: new Date('2024-02-01T00:00:00Z') },
    ]);
    expect((await c.findOne({ ref: new ObjectId(ids[1].toHexString()) }))?._id).toEqual(ids[0]);
    expect(await c.findOne({ ref: ids[1].toHexString() })).toBeNull();
    expect((await c.find({}).sort({ _id: -1 }).toArray()).map((d) => d._id.toHexString())).toEqual(
      ids.map((i) => i.toHexString()).reverse(),
    );
    expect(
      (
        await c
          .find({ _id: { $gt: ids[0] } })
          .sort({ _id: 1 })
          .toArray()
      ).map((d) => d._id),
    ).toEqual([ids[1], ids[2]]);
    expect((await c.findOne({ at: new Date('2024-02-01T00:00:00Z') }))?._id).toEqual(ids[1]);
    expect(
      (
        await c
          .find({ at: { $lt: new Date('2024-02-15T00:00:00Z') } })
          .sort({ at: 1 })
          .toArray()
      ).map((d) => d._id),
    ).toEqual([ids[0], ids[1]]);
    const d = await c.findOne({ _id: ids[2] });
    expect(d?.at).toBeInstanceOf(Date);
    expect(d?.ref).toBeInstanceOf(ObjectId);
  });
  test('mixed types sort in BSON order', async () => {
    const c = coll('mixed');
    await c.insertMany([
      { k: 'd', v: new Date(0) },
      { k: 'o', v: new ObjectId() },
      { k: 's', v: 'str' },
      { k: 'n', v: 5 },
      { k: 'b', v: true },
      { k: 'z', v: null },
      { k: 'x', v: { a: 1 } },
    ]);
    expect((await c.find({}).sort({ v: 1 }).toArray()).map((d) => d.k).join('')).toBe('znsxobd');
    expect((await c.aggregate([{ $sort: { v: -1 } }]).toArray()).map((d) => d.k).join('')).toBe('dboxsnz');
    expect((await c.find({ v: { $type: 'objectId' } }).toArray()).map((d) => d.k)).toEqual(['o']);
  });
});

describe('updates', () => {
  test('$set (dotted creates subdocs) / $unset / $inc / $push / $pull / $addToSet', async () => {
    const c = coll('upd');
    const { insertedId } = await c.insertOne({ a: 1, list: [1, 2, 3], set: ['x'] });
    const r = await c.updateOne({ _id: insertedId }, {
      $set: { 'x.y.z': 'deep', a: 2 },
      $inc: { count: 3 },
      $push: { list: 4 },
    } as Document);
    expect(r).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
    await c.updateOne({ _id: insertedId }, {
      $pull: { list: { $gte: 3 } },
      $addToSet: { set: { $each: ['x', 'y'] } },
      $unset: { a: '' },
    } as Document);
    expect(await c.findOne({ _id: insertedId }, { projection: { _id: 0 } })).toEqual({
      list: [1, 2],
      set: ['x', 'y'],
      x: { y: { z: 'deep' } },
      count: 3,
    });
    const same = await c.updateOne({ _id: insertedId }, { $set: { count: 3 } });
    expect(same).toMatchObject({ matchedCount: 1, modifiedCount: 0 });
  });
  test('updateMany, upsert, replaceOne', async () => {
    const c = coll('upd2');
    await c.insertMany([{ g: 1 }, { g: 1 }, { g: 2 }]);
    expect(await c.updateMany({ g: 1 }, { $set: { hit: true } })).toMatchObject({ matchedCount: 2, modifiedCount: 2 });
    const up = await c.updateOne({ key: 'new', 'sub.x': 1 }, { $set: { v: 1 }, $setOnInsert: { created: true } }, { upsert: true });
    expect(up.upsertedCount).toBe(1);
    expect(up.upsertedId).toBeInstanceOf(ObjectId);
    expect(await c.findOne({ _id: up.upsertedId! }, { projection: { _id: 0 } })).toEqual({
      key: 'new',
      sub: { x: 1 },
      v: 1,
      created: true,
    });
    const again = await c.updateOne({ key: 'new' }, { $set: { v: 2 }, $setOnInsert: { created: false } }, { upsert: true });
    expect(again).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
    const doc = (await c.findOne({ key: 'new' }))!;
    expect(doc.created).toBe(true);
    const rep = await c.replaceOne({ _id: doc._id }, { replaced: 1 });
    expect(rep).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
    expect(await c.findOne({ _id: doc._id })).toEqual({ _id: doc._id, replaced: 1 });
    await expect(c.updateOne({ _id: doc._id }, { $set: { _id: new ObjectId() } })).rejects.toBeInstanceOf(MongoServerError);
  });
  test('findOneAndUpdate / findOneAndDelete / deleteMany / counts', async () => {
    const c = coll('fam');
    await c.insertMany([
      { k: 1, v: 'a' },
      { k: 2, v: 'b' },
      { k: 3, v: 'c' },
    ]);
    const after = await c.findOneAndUpdate({ k: 2 }, { $set: { v: 'B' } }, { returnDocument: 'after' });
    expect(after?.v).toBe('B');
    const before = await c.findOneAndUpdate({ k: 3 }, { $set: { v: 'C' } }, { returnDocument: 'before' });
    expect(before?.v).toBe('c');
    const ups = await c.findOneAndUpdate({ k: 9 }, { $set: { v: 'z' } }, { upsert: true, returnDocument: 'after', projection: { _id: 0 } });
    expect(ups).toEqual({ k: 9, v: 'z' });
    const none = await c.findOneAndUpdate({ k: 100 }, { $set: { v: 'z' } });
    expect(none).toBeNull();
    const first = await c.findOneAndDelete({}, { sort: { k: -1 } });
    expect(first?.k).toBe(9);
    expect(await c.countDocuments({})).toBe(3);
    expect(await c.countDocuments({ k: { $gte: 2 } })).toBe(2);
    expect(await c.estimatedDocumentCount()).toBe(3);
    expect((await c.deleteMany({ k: { $lt: 3 } })).deletedCount).toBe(2);
    expect((await c.deleteOne({ k: 3 })).deletedCount).toBe(1);
    expect(await c.countDocuments()).toBe(0);
  });
  test('positional $, arrayFilters, $push with $each/$sort/$slice', async () => {
    const c = coll('arrays');
    const { insertedId } = await c.insertOne({
      items: [
        { q: 1, w: 'a' },
        { q: 5, w: 'b' },
      ],
      g: [1, 5, 9],
    });
    await c.updateOne({ _id: insertedId, 'items.q': 5 }, { $set: { 'items.$.w': 'X' } });
    await c.updateOne({ _id: insertedId }, { $set: { 'g.$[e]': 0 } }, { arrayFilters: [{ e: { $gt: 4 } }] });
    await c.updateOne({ _id: insertedId }, { $push: { g: { $each: [3, 2], $sort: 1, $slice: -3 } } } as Document);
    expect(await c.findOne({ _id: insertedId }, { projection: { _id: 0 } })).toEqual({
      items: [
        { q: 1, w: 'a' },
        { q: 5, w: 'X' },
      ],
      g: [1, 2, 3],
    });
  });
  test('distinct', async () => {
    const c = coll('dist');
    await c.insertMany([{ t: ['a', 'b'] }, { t: 'b' }, { t: 'c', x: 1 }, { u: 1 }]);
    expect((await c.distinct('t')).sort()).toEqual(['a', 'b', 'c']);
    expect(await c.distinct('t', { x: 1 })).toEqual(['c']);
  });
});

describe('server', () => {
  test('hello / ping / buildInfo', async () => {
    const admin = t.client.db('admin');
    expect(await admin.command({ ping: 1 })).toMatchObject({ ok: 1 });
    const hello = await admin.command({ hello: 1 });
    expect(hello).toMatchObject({ isWritablePrimary: true, ok: 1 });
    expect(hello.maxWireVersion).toBeGreaterThanOrEqual(9);
    expect((await admin.command({ buildInfo: 1 })).version).toMatch(/^\d+\.\d+/);
    await expect(admin.command({ noSuchCommandHere: 1 })).rejects.toMatchObject({ code: 59 });
  });
});

describe('indexes', () => {
  test('unique index violation is MongoServerError 11000', async () => {
    const c = coll('uniq');
    await c.createIndex({ email: 1 }, { unique: true });
    await c.insertOne({ email: 'a@x' });
    const err = await c.insertOne({ email: 'a@x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect((err as MongoServerError).code).toBe(11000);
    expect((err as MongoServerError).message).toMatch(/E11000 duplicate key error collection: .*uniq index: email_1 dup key/);
    await c.insertOne({ email: 'b@x' });
    await expect(c.updateOne({ email: 'b@x' }, { $set: { email: 'a@x' } })).rejects.toMatchObject({ code: 11000 });
    const bulk = await c.insertMany([{ email: 'c@x' }, { email: 'a@x' }, { email: 'd@x' }], { ordered: false }).catch((e: unknown) => e);
    expect((bulk as MongoServerError).code).toBe(11000);
    expect(await c.countDocuments()).toBe(4);
  });
  test('queries answer the same with secondary indexes, across updates and deletes', async () => {
    const c = coll('eqidx');
    await c.createIndex({ '@id': 1 });
    await c.createIndex({ id: 1 });
    await c.createIndex({ '__rerum.history.prime': 1 });
    await c.createIndex({ tags: 1, other: -1 });
    await c.insertMany([
      { n: 0, '@id': 'u0', tags: ['a', 'b'], __rerum: { history: { prime: 'root' } } },
      { n: 1, id: 'u1', tags: 'a', __rerum: { history: { prime: 'u0' } } },
      { n: 2, '@id': 'u2', tags: [], __rerum: { history: { prime: 'u0' } } },
      { n: 3, '@id': 'u3', id: 'u3', tags: ['c'], __rerum: [{ history: { prime: 'u0' } }] },
    ]);
    const ns = async (f: Document): Promise<number[]> => (await c.find(f).toArray()).map((d) => d.n).sort();
    expect(await ns({ '@id': 'u2' })).toEqual([2]);
    expect(await ns({ $or: [{ '@id': 'u1' }, { id: 'u1' }] })).toEqual([1]);
    expect(await ns({ $or: [{ '@id': 'u3' }, { id: 'u3' }] })).toEqual([3]);
    expect(await ns({ '@id': { $in: ['u0', 'u3', 'zz'] } })).toEqual([0, 3]);
    expect(await ns({ '__rerum.history.prime': 'u0' })).toEqual([1, 2, 3]);
    expect(await ns({ '__rerum.history.prime': 'u0', n: { $gt: 1 } })).toEqual([2, 3]);
    expect(await ns({ tags: 'a' })).toEqual([0, 1]);
    expect(await ns({ tags: ['a', 'b'] })).toEqual([0]);
    expect(await ns({ '@id': null })).toEqual([1]);
    await c.updateOne({ n: 1 }, { $set: { '@id': 'moved', tags: ['z'] } });
    expect(await ns({ '@id': 'moved' })).toEqual([1]);
    expect(await ns({ tags: 'a' })).toEqual([0]);
    await c.deleteOne({ '@id': 'u2' });
    expect(await ns({ '__rerum.history.prime': 'u0' })).toEqual([1, 3]);
    await c.dropIndex('tags_1_other_-1');
    expect(await ns({ tags: 'z' })).toEqual([1]);
  });
  test('indexes on one key pattern are told apart by unique, sparse and partial filter (mongod 5.0+)', async () => {
    const c = coll('signature');
    await c.insertMany([{ s: { x: 'a' } }, { s: { x: null } }, { s: { x: null } }, {}, {}]);
    await c.createIndex({ 's.x': 1 }, { name: 'plain' });
    await c.createIndex({ 's.x': 1 }, { name: 'uniq_partial', unique: true, partialFilterExpression: { 's.x': { $gt: '' } } });
    await c.createIndex({ 's.x': 1 }, { name: 'sparse', sparse: true });
    expect((await c.listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_', 'plain', 'uniq_partial', 'sparse']);
    // the same signature under another name; another signature under a taken name
    expect(await codeOf(c.createIndex({ 's.x': 1 }, { name: 'plain_again' }))).toBe(85);
    expect(await codeOf(c.createIndex({ 's.x': 1 }, { name: 'plain', unique: true }))).toBe(86);
    // a unique sparse index keeps nulls: two documents with s.x null collide
    expect(await codeOf(c.createIndex({ 's.x': 1 }, { name: 'uniq_sparse', unique: true, sparse: true }))).toBe(11000);
    // the partial one holds non-empty strings only
    await c.insertMany([{ s: { x: null } }, { s: { x: '' } }, { s: { x: '' } }, { s: { x: 5 } }, { s: { x: 5 } }]);
    const dup = await c.insertOne({ s: { x: 'a' } }).catch((e: MongoServerError) => e);
    expect(dup).toMatchObject({ code: 11000, keyPattern: { 's.x': 1 }, keyValue: { 's.x': 'a' } });
    expect((dup as MongoServerError).message).toMatch(/index: uniq_partial dup key/);
    await expect(c.updateOne({ 's.x': '' }, { $set: { 's.x': 'a' } })).rejects.toMatchObject({ code: 11000 });
    expect(await c.countDocuments({ 's.x': 'a' })).toBe(1);
    // dropping by a key pattern several indexes share is ambiguous; by name it is not
    expect(await codeOf(c.dropIndex({ 's.x': 1 } as unknown as string))).toBe(181);
    await c.dropIndex('plain');
    await c.dropIndex('sparse');
    expect((await c.listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_', 'uniq_partial']);
    expect(await c.countDocuments({ 's.x': 'a' })).toBe(1);
  });
  test('listIndexes / dropIndex / listCollections / drop', async () => {
    const c = coll('idx');
    await c.insertOne({ a: 1 });
    await c.createIndex({ a: 1, b: -1 }, { name: 'ab' });
    const idx = await c.listIndexes().toArray();
    expect(idx.map((i) => i.name).sort()).toEqual(['_id_', 'ab']);
    expect(idx.find((i) => i.name === 'ab')?.key).toEqual({ a: 1, b: -1 });
    await c.dropIndex('ab');
    expect((await c.listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_']);
    const names = (await t.db.listCollections({}, { nameOnly: true }).toArray()).map((x) => x.name);
    expect(names).toContain('idx');
    expect(await t.db.listCollections({ name: 'idx' }).toArray()).toHaveLength(1);
    expect(await c.drop()).toBe(true);
    expect(await t.db.listCollections({ name: 'idx' }).toArray()).toHaveLength(0);
    await t.db.createCollection('made');
    await expect(t.db.createCollection('made')).rejects.toMatchObject({ code: 48 });
  });
});

describe('aggregation', () => {
  test('$match/$group/$sort/$count/$addFields/$unwind/$lookup', async () => {
    const orders = coll('orders');
    const people = coll('people');
    await people.insertMany([
      { _id: 'p1' as unknown as ObjectId, name: 'Ann' },
      { _id: 'p2' as unknown as ObjectId, name: 'Bob' },
    ]);
    await orders.insertMany([
      { who: 'p1', amount: 5, items: ['a', 'b'] },
      { who: 'p1', amount: 7, items: ['c'] },
      { who: 'p2', amount: 1, items: [] },
    ]);
    const grouped = await orders
      .aggregate([{ $group: { _id: '$who', total: { $sum: '$amount' }, n: { $sum: 1 } } }, { $sort: { _id: 1 } }])
      .toArray();
    expect(grouped).toEqual([
      { _id: 'p1', total: 12, n: 2 },
      { _id: 'p2', total: 1, n: 1 },
    ]);
    expect(await orders.aggregate([{ $match: { amount: { $gt: 2 } } }, { $count: 'c' }]).toArray()).toEqual([{ c: 2 }]);
    const unwound = await orders.aggregate([{ $unwind: '$items' }, { $project: { _id: 0, items: 1 } }, { $sort: { items: 1 } }]).toArray();
    expect(unwound).toEqual([{ items: 'a' }, { items: 'b' }, { items: 'c' }]);
    const joined = await orders
      .aggregate([
        { $match: { amount: 7 } },
        { $lookup: { from: 'people', localField: 'who', foreignField: '_id', as: 'person' } },
        { $unwind: '$person' },
        { $addFields: { double: { $multiply: ['$amount', 2] } } },
        { $project: { _id: 0, name: '$person.name', double: 1 } },
      ])
      .toArray();
    expect(joined).toEqual([{ double: 14, name: 'Ann' }]);
    expect(await people.findOne({ _id: 'p1' } as Document)).toEqual({ _id: 'p1', name: 'Ann' });
  });

  test('$skip and $limit right after a leading $match apply in order, as a find skip and limit', async () => {
    const c = coll('match_bound');
    await c.insertMany(
      Array.from({ length: 12 }, (_, i) => ({ _id: `m${i}`, kind: i % 3 === 0 ? 'other' : 'same', n: i })) as unknown as Document[],
    );
    const ns = async (stages: Document[]) => (await c.aggregate([{ $match: { kind: 'same' } }, ...stages]).toArray()).map((d) => d.n);
    expect(await ns([{ $skip: 1 }, { $limit: 2 }])).toEqual([2, 4]);
    expect(await ns([{ $skip: 2 }, { $skip: 1 }, { $limit: 3 }, { $skip: 1 }])).toEqual([7, 8]);
    expect(await ns([{ $limit: 3 }, { $skip: 2 }])).toEqual([4]);
    expect(await ns([{ $limit: 2 }, { $limit: 5 }])).toEqual([1, 2]);
    expect(await ns([{ $project: { n: 1 } }, { $limit: 1 }])).toEqual([1]);
    expect((await ns([{ $skip: 6 }])).length).toBe(2);
  });

  test('$unionWith appends each sub-pipeline in its own order, skip and limit, and nests', async () => {
    const a = coll('union_a');
    const b = coll('union_b');
    await a.createIndex({ k: 1 });
    await a.insertMany([
      { _id: 'a1', k: 'x', n: 1 },
      { _id: 'a2', k: 'y', n: 2 },
      { _id: 'a3', k: 'x', n: 3 },
      { _id: 'a4', k: 'x', n: 4 },
    ] as unknown as Document[]);
    await b.insertMany([
      { _id: 'b1', n: 10 },
      { _id: 'b2', n: 20 },
    ] as unknown as Document[]);
    const tagged = (q: number, match: Document, skip: number, limit: number) => [
      { $match: match },
      { $skip: skip },
      { $limit: limit },
      { $replaceWith: { q: { $literal: q }, d: '$$ROOT' } },
    ];
    const out = await a
      .aggregate([
        ...tagged(0, { k: 'x' }, 1, 1),
        { $unionWith: { coll: 'union_a', pipeline: tagged(1, { $and: [{ k: 'x' }, { n: { $exists: true } }] }, 0, 5) } },
        { $unionWith: { coll: 'union_b', pipeline: [...tagged(2, { n: { $gt: 5 } }, 0, 9), { $unionWith: 'union_b' }] } },
        { $unionWith: { coll: 'union_missing', pipeline: tagged(3, { k: 'x' }, 0, 1) } },
      ])
      .toArray();
    expect(out).toEqual([
      { q: 0, d: { _id: 'a3', k: 'x', n: 3 } },
      { q: 1, d: { _id: 'a1', k: 'x', n: 1 } },
      { q: 1, d: { _id: 'a3', k: 'x', n: 3 } },
      { q: 1, d: { _id: 'a4', k: 'x', n: 4 } },
      { q: 2, d: { _id: 'b1', n: 10 } },
      { q: 2, d: { _id: 'b2', n: 20 } },
      { _id: 'b1', n: 10 },
      { _id: 'b2', n: 20 },
    ]);
    expect(
      await a.aggregate([{ $match: { n: 1 } }, { $project: { _id: 1 } }, { $unionWith: 'union_b' }, { $count: 'c' }]).toArray(),
    ).toEqual([{ c: 3 }]);
  });
});

describe('text search', () => {
  test('$text with a text index, textScore projection and sort', async () => {
    const c = coll('texts');
    await expect(c.find({ $text: { $search: 'x' } }).toArray()).rejects.toMatchObject({ code: 27 });
    await c.createIndex({ title: 'text', body: 'text' });
    await c.insertMany([
      { k: 1, title: 'Apple pie', body: 'An apple a day, apple apple' },
      { k: 2, title: 'Banana bread', body: 'no fruit called apple here? well, one apple' },
      { k: 3, title: 'Cherry', body: 'cherry tart' },
      { k: 4, title: 'Durian', body: 'king of fruit' },
    ]);
    await c.createIndex({ title: 'text', body: 'text' });
    const res = await c
      .find({ $text: { $search: 'apple' } }, { projection: { _id: 0, k: 1, score: { $meta: 'textScore' } } })
      .sort({ score: { $meta: 'textScore' } })
      .toArray();
    expect(res.map((d) => d.k)).toEqual([1, 2]);
    expect(res[0].score).toBeGreaterThan(res[1].score);
    const either = await c
      .find({ $text: { $search: 'cherry durian' } })
      .sort({ k: 1 })
      .toArray();
    expect(either.map((d) => d.k)).toEqual([3, 4]);
    const phrase = await c.find({ $text: { $search: '"king of fruit"' } }).toArray();
    expect(phrase.map((d) => d.k)).toEqual([4]);
    const agg = await c
      .aggregate([
        { $match: { $text: { $search: 'apple' } } },
        { $addFields: { score: { $meta: 'textScore' } } },
        { $sort: { score: -1 } },
        { $project: { _id: 0, k: 1 } },
      ])
      .toArray();
    expect(agg).toEqual([{ k: 1 }, { k: 2 }]);
  });
  test('wildcard text index covers nested strings', async () => {
    const c = coll('texts_wild');
    await c.createIndex({ '$**': 'text' });
    await c.insertMany([
      { k: 1, a: { b: ['needle in array'] } },
      { k: 2, other: 'hay' },
      { k: 3, deep: { x: { y: 'Needle' } } },
    ]);
    const res = await c
      .find({ $text: { $search: 'needle' } })
      .sort({ k: 1 })
      .toArray();
    expect(res.map((d) => d.k)).toEqual([1, 3]);
    expect(await c.countDocuments({ $text: { $search: 'hay' } })).toBe(1);
  });
});

describe('refusals (as a standalone mongod)', () => {
  test('transactions on a standalone: IllegalOperation (20); the aborted insert is not kept', async () => {
    const hello = await t.db.admin().command({ hello: 1 });
    if (hello.setName || hello.msg === 'isdbgrid') return; // replica sets and mongos support transactions
    const c = coll('txn');
    const session = t.client.startSession();
    try {
      session.startTransaction();
      const err = (await c.insertOne({ inTxn: true }, { session }).catch((e: unknown) => e)) as MongoServerError & {
        originalError?: MongoServerError;
      };
      expect(err).toBeInstanceOf(MongoServerError);
      // The driver re-wraps this refusal as "does not support retryable writes"; the server's answer is kept.
      const server = err.originalError ?? err;
      expect(server.code).toBe(20);
      expect(server.message).toMatch(/Transaction numbers are only allowed on a replica set member or mongos/);
      await session.abortTransaction().catch(() => undefined);
    } finally {
      await session.endSession();
    }
    expect(await c.countDocuments({ inTxn: true })).toBe(0);
    expect(
      await codeOf(t.db.command({ find: 'txn', txnNumber: 1, autocommit: false, startTransaction: true, lsid: { id: new UUID() } })),
    ).toBe(20);
  });

  test('wrong argument types: TypeMismatch (14)', async () => {
    await coll('args').insertOne({ a: 1 });
    expect(await codeOf(t.db.command({ find: 'args', limit: 'x' }))).toBe(14);
    expect(await codeOf(t.db.command({ find: 'args', filter: 5 }))).toBe(14);
    expect(await codeOf(t.db.command({ count: 'args', query: 'a' }))).toBe(14);
    expect(await codeOf(t.db.command({ distinct: 'args', key: 7 }))).toBe(14);
    expect(await codeOf(t.db.command({ aggregate: 'args', pipeline: {}, cursor: {} }))).toBe(14);
    expect(await codeOf(t.db.command({ find: 'args', maxTimeMS: 'soon' }))).toBe(14);
  });

  test('unknown command fields: 40415', async () => {
    expect(await codeOf(t.db.command({ find: 'args', filtr: {} }))).toBe(40415);
    expect(await codeOf(t.db.command({ count: 'args', bogus: 1 }))).toBe(40415);
    expect(await codeOf(t.db.command({ insert: 'args', documents: [{}], wat: true }))).toBe(40415);
    expect(await codeOf(t.db.command({ update: 'args', updates: [{ q: {}, u: { $set: { b: 1 } }, nope: 1 }] }))).toBe(40415);
  });

  test('a hint naming no index: BadValue (2)', async () => {
    const c = coll('hints');
    await c.createIndex({ k: 1 });
    await c.insertOne({ k: 1 });
    expect(await codeOf(c.find({}, { hint: 'no_such_index' }).toArray())).toBe(2);
    expect(await codeOf(c.find({}, { hint: { zz: 1 } }).toArray())).toBe(2);
    expect(await codeOf(c.countDocuments({}, { hint: 'no_such_index' }))).toBe(2);
    expect(await codeOf(c.aggregate([{ $match: {} }], { hint: { zz: 1 } }).toArray())).toBe(2);
    expect(await c.find({}, { hint: 'k_1' }).toArray()).toHaveLength(1);
    expect(await c.find({}, { hint: { k: 1 } }).toArray()).toHaveLength(1);
    expect(await c.find({}, { hint: { $natural: 1 } }).toArray()).toHaveLength(1);
  });

  test('$out with a non-string, non-object argument: 16990', async () => {
    expect(
      await codeOf(
        coll('args')
          .aggregate([{ $out: 5 } as Document])
          .toArray(),
      ),
    ).toBe(16990);
    expect(await t.db.listCollections({ name: 'undefined' }).toArray()).toHaveLength(0);
  });

  test('documents nested deeper than 100 levels are refused: Overflow (15)', async () => {
    const nest = (n: number): Document => {
      let d: Document = { leaf: 1 };
      for (let i = 0; i < n; i++) d = { a: d };
      return d;
    };
    const c = coll('deep');
    await c.insertOne({ _id: 'ok' as unknown as ObjectId, v: nest(50) });
    expect(await codeOf(c.insertOne({ _id: 'deep' as unknown as ObjectId, v: nest(150) }))).toBe(15);
    expect(await codeOf(c.updateOne({ _id: 'ok' } as Document, { $set: { w: nest(150) } }))).toBe(15);
    expect(await c.countDocuments()).toBe(1);
  });
});

describe('update semantics (MongoDB documented behaviour)', () => {
  test('$inc on a null or non-numeric field: TypeMismatch (14), document unchanged', async () => {
    const c = coll('incnull');
    await c.insertOne({ _id: 'n' as unknown as ObjectId, v: null, s: 'x' });
    expect(await codeOf(c.updateOne({ _id: 'n' } as Document, { $inc: { v: 1 } }))).toBe(14);
    expect(await codeOf(c.updateOne({ _id: 'n' } as Document, { $inc: { s: 1 } }))).toBe(14);
    expect(await c.findOne({ _id: 'n' } as Document)).toEqual({ _id: 'n', v: null, s: 'x' });
  });

  test('conflicting operators on one path: ConflictingUpdateOperators (40)', async () => {
    const c = coll('conflict');
    await c.insertOne({ _id: 'c' as unknown as ObjectId, a: { b: 1 } });
    expect(await codeOf(c.updateOne({ _id: 'c' } as Document, { $set: { a: 1 }, $unset: { a: '' } }))).toBe(40);
    expect(await codeOf(c.updateOne({ _id: 'c' } as Document, { $set: { 'a.b': 2 }, $unset: { a: '' } }))).toBe(40);
    expect(await c.findOne({ _id: 'c' } as Document)).toEqual({ _id: 'c', a: { b: 1 } });
  });

  test('a pipeline update whose $replaceRoot drops _id keeps the _id', async () => {
    const c = coll('pipeid');
    await c.insertOne({ _id: 'p' as unknown as ObjectId, old: 1 });
    await c.updateOne({ _id: 'p' } as Document, [{ $replaceRoot: { newRoot: { fresh: true } } }]);
    expect(await c.findOne({ _id: 'p' } as Document)).toEqual({ _id: 'p', fresh: true });
  });

  test('$pull conditions, arrayFilters and the positional $ match as queries do (numbers by value across types)', async () => {
    const c = coll('updmatch');
    await c.insertOne({ _id: 'm' as unknown as ObjectId, a: [1, 2, 3, 4], b: [1, 2, 3], c: [1, 2, 3] });
    await c.updateOne({ _id: 'm' } as Document, { $pull: { a: { $gte: Long.fromNumber(3) } } } as Document);
    await c.updateOne(
      { _id: 'm' } as Document,
      { $set: { 'b.$[e]': 0 } },
      { arrayFilters: [{ e: { $gt: Decimal128.fromString('1.5') } }] },
    );
    await c.updateOne({ _id: 'm', c: Long.fromNumber(2) } as Document, { $set: { 'c.$': 20 } });
    expect(await c.findOne({ _id: 'm' } as Document)).toEqual({ _id: 'm', a: [1, 2], b: [1, 0, 0], c: [1, 20, 3] });
  });

  test('$inc on a 64-bit integer (Long) and by a Long', async () => {
    const c = coll('inclong');
    await c.insertOne({ _id: 'l' as unknown as ObjectId, v: Long.fromNumber(5), w: 5 });
    await c.updateOne({ _id: 'l' } as Document, { $inc: { v: 1, w: Long.fromNumber(2) } });
    const d = await c.findOne({ _id: 'l' } as Document, { promoteLongs: false });
    expect(String(d?.v)).toBe('6');
    expect(d?.v).toBeInstanceOf(Long);
    expect(String(d?.w)).toBe('7');
    expect(d?.w).toBeInstanceOf(Long);
  });
});

describe('storage rules, $merge, sessions, views (MongoDB documented behaviour)', () => {
  test("an _id with a '$'-prefixed field is refused: DollarPrefixedFieldName (52)", async () => {
    const c = coll('dollarid');
    expect(await codeOf(c.insertOne({ _id: { $a: 1 } as unknown as ObjectId, x: 1 }))).toBe(52);
    expect(await codeOf(c.insertMany([{ _id: { ok: 1, $b: 2 } as unknown as ObjectId }]))).toBe(52);
    await c.insertOne({ _id: { 'a.b': 1, c: { d: 1 } } as unknown as ObjectId }); // dots are fine
    expect(await c.countDocuments()).toBe(1);
  });
});

describe('a field named __proto__ is a field like any other', () => {
  test('stored and returned as a field; matched, or missing, like any field', async () => {
    const c = coll('protoField');
    // JSON.parse (and BSON decoding) make it an own field; an object literal would set the prototype
    await c.insertMany([JSON.parse('{"_id": 1, "__proto__": {"x": 1}}') as Document, { _id: 2, a: 1 } as unknown as Document]);
    const one = await c.findOne({ _id: 1 } as Document);
    expect(Object.keys(one!)).toEqual(['_id', '__proto__']);
    expect(Object.getPrototypeOf(one)).toBe(Object.prototype);
    const ids = async (json: string) =>
      (
        await c
          .find(JSON.parse(json) as Document)
          .sort({ _id: 1 })
          .toArray()
      ).map((d) => d._id as unknown as number);
    expect(await ids('{"__proto__": {"x": 1}}')).toEqual([1]);
    expect(await ids('{"__proto__.x": 1}')).toEqual([1]);
    expect(await ids('{"__proto__": {"x": 2}}')).toEqual([]);
    expect(await ids('{"__proto__": null}')).toEqual([2]);
    expect(await ids('{"__proto__": {"$exists": false}}')).toEqual([2]);
    expect(await ids('{"a.__proto__": 1}')).toEqual([]);
    // with a command's let, whose $expr rewrite copies the filter
    const withLet = await c.find(JSON.parse('{"__proto__": {"x": 1}}') as Document, { let: { v: 1 } }).toArray();
    expect(withLet.map((d) => d._id as unknown as number)).toEqual([1]);
  });
});

describe('$merge (MongoDB documented behaviour)', () => {
  const byId = async (name: string): Promise<Document[]> => coll(name).find({}).sort({ _id: 1 }).toArray();
  const seed = async (): Promise<void> => {
    await coll('msrc').deleteMany({});
    await coll('msrc').insertMany([
      { _id: 1, a: 1 },
      { _id: 2, a: 2 },
    ] as unknown as Document[]);
    await coll('mdst').deleteMany({});
    await coll('mdst').insertOne({ _id: 1, a: 0, b: 'kept' } as unknown as Document);
  };
  const merge = (spec: unknown, pre: Document[] = []): Promise<Document[]> =>
    coll('msrc')
      .aggregate([...pre, { $merge: spec } as Document])
      .toArray();

  test('default (whenMatched merge, whenNotMatched insert) into another collection; the cursor is empty', async () => {
    await seed();
    expect(await merge('mdst')).toEqual([]);
    expect(await byId('mdst')).toEqual([
      { _id: 1, a: 1, b: 'kept' },
      { _id: 2, a: 2 },
    ]);
    await merge({ into: { db: t.db.databaseName, coll: 'mnew' } });
    expect(await byId('mnew')).toEqual([
      { _id: 1, a: 1 },
      { _id: 2, a: 2 },
    ]);
  });

  test('whenMatched replace / keepExisting, whenNotMatched discard', async () => {
    await seed();
    await merge({ into: 'mdst', whenMatched: 'replace', whenNotMatched: 'discard' });
    expect(await byId('mdst')).toEqual([{ _id: 1, a: 1 }]);
    await seed();
    await merge({ into: 'mdst', whenMatched: 'keepExisting' });
    expect(await byId('mdst')).toEqual([
      { _id: 1, a: 0, b: 'kept' },
      { _id: 2, a: 2 },
    ]);
  });

  test('whenMatched fail: DuplicateKey (11000); whenNotMatched fail: 13113; earlier writes stay', async () => {
    await seed();
    expect(await codeOf(merge({ into: 'mdst', whenMatched: 'fail' }, [{ $sort: { _id: -1 } }]))).toBe(11000);
    expect(await byId('mdst')).toEqual([
      { _id: 1, a: 0, b: 'kept' },
      { _id: 2, a: 2 },
    ]);
    await seed();
    expect(await codeOf(merge({ into: 'mdst', whenNotMatched: 'fail' }, [{ $sort: { _id: 1 } }]))).toBe(13113);
    expect(await byId('mdst')).toEqual([{ _id: 1, a: 1, b: 'kept' }]);
  });

  test('an update pipeline sees the result as $$new; merging into the collection being read', async () => {
    await seed();
    await merge({ into: 'mdst', whenMatched: [{ $set: { sum: { $add: ['$a', '$$new.a'] }, a: '$$new.a' } }], whenNotMatched: 'discard' });
    expect(await byId('mdst')).toEqual([{ _id: 1, a: 1, b: 'kept', sum: 1 }]);
    await merge('msrc', [{ $project: { twice: { $multiply: ['$a', 2] } } }]);
    expect(await byId('msrc')).toEqual([
      { _id: 1, a: 1, twice: 2 },
      { _id: 2, a: 2, twice: 4 },
    ]);
  });

  test("'on' other fields needs a unique index on them (51183); matched documents keep their _id", async () => {
    await seed();
    await coll('mkeyed').deleteMany({});
    await coll('mkeyed').insertOne({ _id: 'x', k: 2, old: true } as unknown as Document);
    const pre = [{ $project: { _id: 0, k: '$a', fresh: { $literal: true } } }];
    expect(await codeOf(merge({ into: 'mkeyed', on: 'k' }, pre))).toBe(51183);
    await coll('mkeyed').createIndex({ k: 1 }, { unique: true });
    await merge({ into: 'mkeyed', on: 'k' }, pre);
    const docs = await coll('mkeyed').find({}).sort({ k: 1 }).toArray();
    expect(docs[0]).toMatchObject({ k: 1, fresh: true });
    expect(docs[0]._id).toBeInstanceOf(ObjectId);
    expect(docs[1]).toEqual({ _id: 'x', k: 2, old: true, fresh: true });
  });
});

describe('$listLocalSessions (MongoDB documented behaviour)', () => {
  test('lists a session the server has seen, on admin with {aggregate: 1} only', async () => {
    const session = t.client.startSession();
    try {
      await coll('sessions').findOne({}, { session });
      const id = session.id!.id;
      const admin = t.client.db('admin');
      const mine = await admin.aggregate([{ $listLocalSessions: {} }, { $match: { '_id.id': id } }]).toArray();
      expect(mine).toHaveLength(1);
      expect(mine[0].lastUse).toBeInstanceOf(Date);
      expect(mine[0]._id.uid).toBeDefined();
      const all = await admin.aggregate([{ $listLocalSessions: { allUsers: true } }, { $match: { '_id.id': id } }]).toArray();
      expect(all).toHaveLength(1);
      await expect(
        coll('sessions')
          .aggregate([{ $listLocalSessions: {} }])
          .toArray(),
      ).rejects.toBeInstanceOf(MongoServerError);
    } finally {
      await session.endSession();
    }
  });
});

describe('Stable API (MongoDB documented behaviour)', () => {
  test('apiVersion "1" is accepted; apiStrict refuses what is outside Version 1; other declarations are refused', async () => {
    const strict = new MongoClient(process.env.MONGO_TEST_URI!, {
      serverSelectionTimeoutMS: 5000,
      serverApi: { version: ServerApiVersion.v1, strict: true, deprecationErrors: true },
    });
    await strict.connect();
    try {
      const c = strict.db(t.db.databaseName).collection('stableApi');
      await c.insertOne({ a: 1 });
      expect(await c.find({}, { projection: { _id: 0 } }).toArray()).toEqual([{ a: 1 }]);
      expect(await c.aggregate([{ $match: { a: 1 } }, { $project: { _id: 0 } }]).toArray()).toEqual([{ a: 1 }]);
      await expect(c.distinct('a')).rejects.toMatchObject({
        code: 323,
        codeName: 'APIStrictError',
        message: expect.stringContaining('command distinct is not in API Version 1'),
      });
      await expect(
        strict
          .db('admin')
          .aggregate([{ $listLocalSessions: {} }])
          .toArray(),
      ).rejects.toMatchObject({ code: 323 });
    } finally {
      await strict.close();
    }
    // without apiStrict the same commands run
    const loose = new MongoClient(process.env.MONGO_TEST_URI!, {
      serverSelectionTimeoutMS: 5000,
      serverApi: { version: ServerApiVersion.v1 },
    });
    await loose.connect();
    try {
      expect(await loose.db(t.db.databaseName).collection('stableApi').distinct('a')).toEqual([1]);
    } finally {
      await loose.close();
    }
    // declared by hand on a client without serverApi
    expect(await codeOf(t.db.command({ ping: 1, apiVersion: '2' }))).toBe(322);
    expect(await codeOf(t.db.command({ ping: 1, apiStrict: true }))).toBe(4886600);
    expect(await codeOf(t.db.command({ ping: 1, apiVersion: '1', apiStrict: true }))).toBe('no error');
  });
});

describe('views (MongoDB documented behaviour)', () => {
  test('a read-only view runs its pipeline for find, count, distinct and aggregate; writes are refused (166)', async () => {
    const src = coll('vsrc');
    await src.insertMany([
      { _id: 1, k: 'a', n: 1 },
      { _id: 2, k: 'b', n: 2 },
      { _id: 3, k: 'b', n: 3 },
    ] as unknown as Document[]);
    await t.db.createCollection('vbig', { viewOn: 'vsrc', pipeline: [{ $match: { n: { $gt: 1 } } }] });
    await t.db.createCollection('vbig2', { viewOn: 'vbig', pipeline: [{ $set: { twice: { $multiply: ['$n', 2] } } }] });
    const v = coll('vbig');
    expect(await v.find({}).sort({ _id: 1 }).toArray()).toEqual([
      { _id: 2, k: 'b', n: 2 },
      { _id: 3, k: 'b', n: 3 },
    ]);
    expect(await v.find({ n: 3 }, { projection: { _id: 0, k: 1 } }).toArray()).toEqual([{ k: 'b' }]);
    expect(await v.countDocuments()).toBe(2);
    expect(await v.estimatedDocumentCount()).toBe(2);
    expect(await v.distinct('k')).toEqual(['b']);
    expect(await v.aggregate([{ $group: { _id: null, s: { $sum: '$n' } } }]).toArray()).toEqual([{ _id: null, s: 5 }]);
    expect((await coll('vbig2').find({}).sort({ _id: -1 }).limit(1).toArray())[0]).toEqual({ _id: 3, k: 'b', n: 3, twice: 6 });
    await expect(v.insertOne({ n: 9 })).rejects.toMatchObject({ code: 166 });
    await expect(v.updateOne({}, { $set: { x: 1 } })).rejects.toMatchObject({ code: 166 });
    const listed = await t.db.listCollections({ name: 'vbig' }).toArray();
    expect(listed[0]).toMatchObject({ name: 'vbig', type: 'view', options: { viewOn: 'vsrc' } });
    await expect(t.db.createCollection('vbig', { viewOn: 'vsrc' })).rejects.toMatchObject({ code: 48 });
  });

  test('collMod changes a view; drop removes it and leaves its source', async () => {
    await t.db.createCollection('vsmall', { viewOn: 'vsrc', pipeline: [{ $match: { n: 1 } }] });
    expect(await coll('vsmall').countDocuments()).toBe(1);
    await t.db.command({ collMod: 'vsmall', viewOn: 'vsrc', pipeline: [{ $match: { n: { $lte: 2 } } }] });
    expect(await coll('vsmall').countDocuments()).toBe(2);
    expect(await coll('vsmall').drop()).toBe(true);
    expect(await t.db.listCollections({ name: 'vsmall' }).toArray()).toEqual([]);
    expect(await coll('vsrc').countDocuments()).toBe(3);
  });
});

describe('numbers across int32, int64, double and Decimal128 (MongoDB compares numeric types by value)', () => {
  const idsOf = async (c: Collection<Document>, f: Document, sort: Document = { _id: 1 }): Promise<unknown[]> =>
    (await c.find(f).sort(sort).toArray()).map((d) => d._id);

  test('equality, ranges, $in and sort order mix the numeric types', async () => {
    const c = coll('numkinds');
    await c.insertMany([
      { _id: 'i', v: 10 },
      { _id: 'l', v: Long.fromNumber(10) },
      { _id: 'd', v: 10.5 },
      { _id: 'm', v: Decimal128.fromString('10') },
      { _id: 'big', v: Long.fromString('9007199254740993') },
      { _id: 'n', v: Decimal128.fromString('-1.5') },
      { _id: 's', v: '10' },
    ] as unknown as Document[]);
    expect(await idsOf(c, { v: 10 })).toEqual(['i', 'l', 'm']);
    expect(await idsOf(c, { v: Long.fromNumber(10) })).toEqual(['i', 'l', 'm']);
    expect(await idsOf(c, { v: Decimal128.fromString('10.0') })).toEqual(['i', 'l', 'm']);
    expect(await idsOf(c, { v: { $gt: 10 } })).toEqual(['big', 'd']);
    expect(await idsOf(c, { v: { $gt: 9007199254740992 } })).toEqual(['big']); // no rounding through a double
    expect(await idsOf(c, { v: { $lt: Decimal128.fromString('10.25') } })).toEqual(['i', 'l', 'm', 'n']);
    expect(await idsOf(c, { v: { $lte: Long.fromNumber(10), $gte: -1.5 } })).toEqual(['i', 'l', 'm', 'n']);
    expect(await idsOf(c, { v: { $in: [Long.fromNumber(-2), 10.5, Decimal128.fromString('-1.50')] } })).toEqual(['d', 'n']);
    expect(await idsOf(c, { v: { $nin: [10] } })).toEqual(['big', 'd', 'n', 's']);
    expect(await idsOf(c, {}, { v: 1, _id: 1 })).toEqual(['n', 'i', 'l', 'm', 'd', 'big', 's']);
    expect(await idsOf(c, {}, { v: -1, _id: 1 })).toEqual(['s', 'big', 'd', 'i', 'l', 'm', 'n']);
  });

  test('an index and _id treat numerically equal values of different types as equal', async () => {
    const c = coll('numindex');
    await c.createIndex({ v: 1 });
    await c.insertMany([
      { _id: Decimal128.fromString('1.0'), v: Long.fromNumber(7) },
      { _id: 2, v: Decimal128.fromString('7.00') },
      { _id: 3, v: 7.5 },
    ] as unknown as Document[]);
    expect((await c.find({ v: 7 }).sort({ _id: 1 }).toArray()).map((d) => String(d._id))).toEqual(['1.0', '2']);
    expect(
      (
        await c
          .find({ v: { $in: [7, 8] } })
          .sort({ _id: 1 })
          .toArray()
      ).map((d) => String(d._id)),
    ).toEqual(['1.0', '2']);
    expect(String((await c.findOne({ _id: 1 } as Document))?._id)).toBe('1.0');
    expect(String((await c.findOne({ _id: Long.fromNumber(2) } as Document))?._id)).toBe('2');
    await expect(c.insertOne({ _id: 1 } as unknown as Document)).rejects.toMatchObject({ code: 11000 });
  });

  test('$sum and $avg add Longs, doubles and Decimal128s (non-numbers ignored)', async () => {
    const c = coll('numsums');
    await c.insertMany([
      { g: 'long', v: Long.fromNumber(5) },
      { g: 'long', v: Long.fromString('4000000000') },
      { g: 'mixed', v: Long.fromNumber(1) },
      { g: 'mixed', v: 2.5 },
      { g: 'mixed', v: 'x' },
      { g: 'dec', v: Decimal128.fromString('0.1') },
      { g: 'dec', v: Decimal128.fromString('0.2') },
    ]);
    const out = await c
      .aggregate([{ $group: { _id: '$g', s: { $sum: '$v' }, a: { $avg: '$v' } } }, { $sort: { _id: 1 } }], { promoteLongs: false })
      .toArray();
    expect(out.map((d) => [d._id, d.s?._bsontype ?? typeof d.s, String(d.s), d.a?._bsontype ?? typeof d.a, String(d.a)])).toEqual([
      ['dec', 'Decimal128', '0.3', 'Decimal128', '0.15'],
      ['long', 'Long', '4000000005', 'number', '2000000002.5'],
      ['mixed', 'number', '3.5', 'number', '1.75'],
    ]);
  });

  test('$inc on Decimal128, on a Long by a double, and past the int32 range', async () => {
    const c = coll('numinc');
    await c.insertOne({ _id: 'x', d: Decimal128.fromString('1.5'), l: Long.fromNumber(5), i: 2147483647 } as unknown as Document);
    await c.updateOne({ _id: 'x' } as Document, { $inc: { d: Decimal128.fromString('0.25'), l: 0.5, i: 1 } });
    const d = await c.findOne({ _id: 'x' } as Document, { promoteLongs: false });
    expect(d?.d).toBeInstanceOf(Decimal128);
    expect(String(d?.d)).toBe('1.75'); // decimal + decimal: a decimal
    expect(d?.l).toBe(5.5); // long + double: a double
    expect(d?.i).toBeInstanceOf(Long); // an int32 that overflows becomes a long
    expect(String(d?.i)).toBe('2147483648');
    expect(await c.countDocuments({ d: Decimal128.fromString('1.75'), l: 5.5, i: 2147483648 })).toBe(1);
  });
});

describe('array paths (MongoDB documented behaviour)', () => {
  test('a dotted path walks arrays of documents, not nested arrays; $elemMatch with fields needs document elements', async () => {
    const c = coll('arrpaths');
    await c.insertMany([
      { _id: 'nested', a: [[1], 3] },
      { _id: 'docs', a: [{ b: 1 }, { b: 2 }] },
      { _id: 'deep', a: [[{ b: 1 }]] },
      { _id: 'scalars', a: [1, 2] },
      { _id: 'sub', a: { b: [1, 5] } },
    ] as unknown as Document[]);
    const ids = async (f: Document) => (await c.find(f).sort({ _id: 1 }).toArray()).map((d) => d._id);
    expect(await ids({ 'a.b': 1 })).toEqual(['docs', 'sub']);
    expect(await ids({ 'a.b': { $gt: 1 } })).toEqual(['docs', 'sub']);
    expect(await ids({ a: { $elemMatch: { b: 2 } } })).toEqual(['docs']);
    expect(await ids({ a: { $elemMatch: { $gte: 2 } } })).toEqual(['nested', 'scalars']);
    expect(await ids({ a: 1 })).toEqual(['scalars']); // an element of [[1], 3] is [1], not 1
    expect(await ids({ a: [1] })).toEqual(['nested']);
    expect(await ids({ 'a.0': [1] })).toEqual(['nested']);
  });
});

describe('let variables (MongoDB documented behaviour)', () => {
  test("find and aggregate see a command's let values as $$name; values are expressions evaluated once", async () => {
    const c = coll('letvars');
    await c.insertMany([
      { _id: 1, s: 'a', n: 1 },
      { _id: 2, s: 'b', n: 5 },
    ] as unknown as Document[]);
    const found = await c.find({ $expr: { $eq: ['$s', '$$want'] } }, { let: { want: 'b' } }).toArray();
    expect(found.map((d) => d._id)).toEqual([2]);
    const agg = await c
      .aggregate([{ $match: { $expr: { $gt: ['$n', '$$min'] } } }, { $project: { _id: 1, scaled: { $multiply: ['$n', '$$factor'] } } }], {
        let: { min: 2, factor: { $add: [1, 1] } },
      })
      .toArray();
    expect(agg).toEqual([{ _id: 2, scaled: 10 }]);
  });

  test('update, replace and pipeline updates see the command let in the filter and in pipeline stages; upserts too', async () => {
    const c = coll('letupdate');
    await c.insertMany([
      { _id: 1, n: 1 },
      { _id: 2, n: 5 },
      { _id: 3, n: 8 },
    ] as unknown as Document[]);
    const one = await c.updateOne({ $expr: { $eq: ['$_id', '$$id'] } }, [{ $set: { x: '$$x' } }], { let: { id: 1, x: 'foo' } });
    expect([one.matchedCount, one.modifiedCount]).toEqual([1, 1]);
    const many = await c.updateMany({ $expr: { $gt: ['$n', '$$min'] } }, { $set: { big: true } }, { let: { min: { $add: [2, 2] } } });
    expect([many.matchedCount, many.modifiedCount]).toEqual([2, 2]);
    const repl = await c.replaceOne({ $expr: { $eq: ['$n', '$$n'] } }, { n: 8, replaced: true }, { let: { n: 8 } });
    expect(repl.modifiedCount).toBe(1);
    const up = await c.updateOne({ _id: 9 } as Document, [{ $set: { made: '$$v' } }], { upsert: true, let: { v: 'by upsert' } });
    expect(up.upsertedId).toBe(9);
    expect(await c.find({}).sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, n: 1, x: 'foo' },
      { _id: 2, n: 5, big: true },
      { _id: 3, n: 8, replaced: true },
      { _id: 9, made: 'by upsert' },
    ]);
  });

  test("an update statement's constants (c) are seen by its pipeline; on a non-pipeline update they are refused (51198)", async () => {
    const c = coll('letconst');
    await c.insertMany([{ _id: 1 }, { _id: 2 }] as unknown as Document[]);
    const r = await t.db.command({
      update: 'letconst',
      updates: [{ q: { $expr: { $eq: ['$_id', '$$which'] } }, u: [{ $set: { v: '$$k', w: '$$which' } }], c: { k: 7 } }],
      let: { which: 2 },
    });
    expect([r.n, r.nModified]).toEqual([1, 1]);
    expect(await c.findOne({ _id: 2 } as Document)).toEqual({ _id: 2, v: 7, w: 2 });
    const bad = await t.db.command({ update: 'letconst', updates: [{ q: {}, u: { $set: { z: 1 } }, c: { k: 1 } }] });
    expect(bad.writeErrors?.[0]?.code).toBe(51198);
    expect(await c.countDocuments({ z: 1 })).toBe(0);
  });

  test('delete, findAndModify and bulkWrite see the command let', async () => {
    const c = coll('letdelete');
    await c.insertMany([1, 2, 3, 4, 5, 6].map((i) => ({ _id: i, n: i })) as unknown as Document[]);
    expect((await c.deleteOne({ $expr: { $eq: ['$n', '$$n'] } }, { let: { n: 1 } })).deletedCount).toBe(1);
    expect((await c.deleteMany({ $expr: { $gte: ['$n', '$$from'] } }, { let: { from: 6 } })).deletedCount).toBe(1);
    const before = await c.findOneAndUpdate({ $expr: { $eq: ['$n', '$$n'] } }, [{ $set: { tag: '$$tag' } }], {
      let: { n: 2, tag: 'two' },
      returnDocument: 'after',
    });
    expect(before).toEqual({ _id: 2, n: 2, tag: 'two' });
    const replaced = await c.findOneAndReplace({ $expr: { $eq: ['$n', '$$n'] } }, { n: 30 }, { let: { n: 3 }, returnDocument: 'after' });
    expect(replaced).toEqual({ _id: 3, n: 30 });
    expect(await c.findOneAndDelete({ $expr: { $eq: ['$n', '$$n'] } }, { let: { n: 30 } })).toEqual({ _id: 3, n: 30 });
    const bulk = await c.bulkWrite(
      [
        { updateOne: { filter: { $expr: { $eq: ['$_id', '$$a'] } }, update: [{ $set: { b: '$$b' } }] } },
        { deleteOne: { filter: { $expr: { $eq: ['$_id', '$$gone'] } } } },
      ],
      { let: { a: 4, b: 'bee', gone: 5 } },
    );
    expect([bulk.modifiedCount, bulk.deletedCount]).toEqual([1, 1]);
    expect(await c.find({}).sort({ _id: 1 }).toArray()).toEqual([
      { _id: 2, n: 2, tag: 'two' },
      { _id: 4, n: 4, b: 'bee' },
    ]);
  });
});

describe('collation (MongoDB documented behaviour)', () => {
  test('strength 1 ignores case and diacritics, strength 2 only case: find, sort, count, distinct, aggregate', async () => {
    const c = coll('collation');
    await c.insertMany([
      { _id: 1, s: 'cafe' },
      { _id: 2, s: 'Café' },
      { _id: 3, s: 'CAFE' },
      { _id: 4, s: 'b' },
      { _id: 5, s: 'café' },
    ] as unknown as Document[]);
    const base = { locale: 'en', strength: 1 };
    const accents = { locale: 'fr', strength: 2 };
    const ids = async (f: Document, collation: CollationOptions, sort: Document = { _id: 1 }) =>
      (await c.find(f, { collation }).sort(sort).toArray()).map((d) => d._id);
    expect(await ids({ s: 'cafe' }, base)).toEqual([1, 2, 3, 5]);
    expect(await ids({ s: 'cafe' }, accents)).toEqual([1, 3]);
    expect(await ids({ s: 'CAFÉ' }, accents)).toEqual([2, 5]);
    expect(await ids({ s: { $in: ['B', 'x'] } }, base)).toEqual([4]);
    expect(await ids({ s: { $gt: 'BZ' } }, base)).toEqual([1, 2, 3, 5]);
    expect(await ids({}, base, { s: 1, _id: 1 })).toEqual([4, 1, 2, 3, 5]);
    expect(await ids({ s: 'cafe' }, { locale: 'simple' })).toEqual([1]);
    expect(await c.countDocuments({ s: 'CaFe' }, { collation: base })).toBe(4);
    expect(await c.distinct('s', {}, { collation: base })).toHaveLength(2);
    expect(await c.distinct('s', {}, { collation: accents })).toHaveLength(3);
    const agg = await c.aggregate([{ $match: { s: 'CAFE' } }, { $sort: { _id: -1 } }], { collation: accents }).toArray();
    expect(agg.map((d) => d._id)).toEqual([3, 1]);
  });

  test('update, replace, delete and bulkWrite match their filter by the collation', async () => {
    const c = coll('collationwrite');
    const seed = [
      { _id: 1, s: 'cafe' },
      { _id: 2, s: 'Café' },
      { _id: 3, s: 'CAFE' },
      { _id: 4, s: 'b' },
    ] as unknown as Document[];
    await c.insertMany(seed);
    const base = { locale: 'en', strength: 1 };
    const accents = { locale: 'en', strength: 2 };
    expect((await c.updateMany({ s: 'CAFÉ' }, { $set: { hit: 1 } }, { collation: base })).modifiedCount).toBe(3);
    expect((await c.updateOne({ s: 'CAFE' }, { $set: { first: true } }, { collation: accents })).modifiedCount).toBe(1);
    expect(await c.countDocuments({ first: true })).toBe(1);
    expect((await c.findOne({ first: true }))?._id).toBe(1);
    expect((await c.replaceOne({ s: 'café' }, { s: 'café', replaced: true }, { collation: accents })).modifiedCount).toBe(1);
    expect(await c.findOne({ _id: 2 } as Document)).toEqual({ _id: 2, s: 'café', replaced: true });
    // a matching document under the collation: no upsert
    const up = await c.updateOne({ s: 'B' }, { $set: { up: 1 } }, { upsert: true, collation: base });
    expect([up.matchedCount, up.upsertedCount]).toEqual([1, 0]);
    expect((await c.deleteOne({ s: 'CAFE' }, { collation: accents })).deletedCount).toBe(1);
    expect((await c.deleteMany({ s: 'Cafe' }, { collation: { locale: 'simple' } })).deletedCount).toBe(0);
    const bulk = await c.bulkWrite([
      { updateMany: { filter: { s: 'B' }, update: { $set: { bulk: 1 } }, collation: base } },
      { deleteMany: { filter: { s: 'CAFE' }, collation: base } },
    ]);
    expect([bulk.modifiedCount, bulk.deletedCount]).toEqual([1, 2]);
    expect(await c.find({}).toArray()).toEqual([{ _id: 4, s: 'b', up: 1, bulk: 1 }]);
  });

  test('findAndModify matches and sorts by the collation', async () => {
    const c = coll('collationfam');
    await c.insertMany([
      { _id: 1, s: 'B' },
      { _id: 2, s: 'a' },
      { _id: 3, s: 'A' },
    ] as unknown as Document[]);
    const en = { locale: 'en' };
    // binary order puts 'A' and 'B' before 'a'; the English collation 'a' and 'A' before 'B'
    expect((await c.findOneAndUpdate({}, { $set: { t: 1 } }, { sort: { s: 1 }, collation: en }))?._id).toBe(2);
    expect((await c.findOneAndUpdate({}, { $set: { t: 2 } }, { sort: { s: -1 }, collation: en }))?._id).toBe(1);
    const after = await c.findOneAndReplace({ s: 'b' }, { s: 'b' }, { collation: { locale: 'en', strength: 2 }, returnDocument: 'after' });
    expect(after).toEqual({ _id: 1, s: 'b' });
    expect(await c.findOneAndDelete({ s: 'a' }, { sort: { _id: -1 }, collation: { locale: 'en', strength: 1 } })).toEqual({
      _id: 3,
      s: 'A',
    });
    expect(await c.findOneAndDelete({ s: 'A' }, { collation: { locale: 'simple' } })).toBeNull();
    expect(await c.find({}).sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, s: 'b' },
      { _id: 2, s: 'a', t: 1 },
    ]);
  });
});

describe('schema validation with query operators (MongoDB documented behaviour)', () => {
  const errorOf = (p: Promise<unknown>): Promise<{ code?: unknown; errInfo?: Document } | string> =>
    p.then(
      () => 'no error',
      (e: { code?: unknown; errInfo?: Document }) => e,
    );

  test('a validator refuses invalid inserts, updates, replacements and upserts with DocumentValidationFailure (121) and errInfo', async () => {
    await t.db.createCollection('validated', { validator: { x: { $type: 'string' } } });
    const c = coll('validated');
    await c.insertOne({ _id: 1, x: 'ok' } as unknown as Document);
    const inserted = await errorOf(c.insertOne({ _id: 2, x: 5 } as unknown as Document));
    expect(inserted).toMatchObject({ code: 121, errInfo: { failingDocumentId: 2 } });
    expect(typeof (inserted as { errInfo: Document }).errInfo.details).toBe('object');
    expect(await errorOf(c.updateOne({ _id: 1 } as Document, { $set: { x: 1 } }))).toMatchObject({ code: 121 });
    expect(await errorOf(c.replaceOne({ _id: 1 } as Document, { y: 1 }))).toMatchObject({ code: 121 });
    expect(await errorOf(c.updateOne({ _id: 3 } as Document, { $set: { x: 3 } }, { upsert: true }))).toMatchObject({ code: 121 });
    const fam = await errorOf(c.findOneAndUpdate({ _id: 1 } as Document, { $set: { x: 1 } }));
    expect(fam).toMatchObject({ code: 121, errInfo: { failingDocumentId: 1 } });
    // an ordered batch stops at the invalid document; what came before it stays
    const many = await errorOf(c.insertMany([{ _id: 4, x: 'a' }, { _id: 5 }, { _id: 6, x: 'c' }] as unknown as Document[]));
    expect(many).toMatchObject({ code: 121 });
    expect(await c.find({}).sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, x: 'ok' },
      { _id: 4, x: 'a' },
    ]);
    // valid writes pass; bypassDocumentValidation skips the check; deletes are never checked
    expect((await c.updateOne({ _id: 1 } as Document, { $set: { x: 'fine', y: 2 } })).modifiedCount).toBe(1);
    await c.insertOne({ _id: 7, x: 7 } as unknown as Document, { bypassDocumentValidation: true });
    expect((await c.updateOne({ _id: 7 } as Document, { $set: { x: 8 } }, { bypassDocumentValidation: true })).modifiedCount).toBe(1);
    expect((await c.deleteOne({ _id: 7 } as Document)).deletedCount).toBe(1);
    const info = await t.db.listCollections({ name: 'validated' }, { nameOnly: false }).next();
    expect(info?.options?.validator).toEqual({ x: { $type: 'string' } });
  });

  test('collMod sets a validator; validationLevel moderate spares documents already invalid; validationAction warn lets writes through', async () => {
    const c = coll('modded');
    await c.insertMany([
      { _id: 1, n: 5 },
      { _id: 2, n: -1 },
    ] as unknown as Document[]);
    await t.db.command({ collMod: 'modded', validator: { n: { $gte: 0 } } });
    expect(await errorOf(c.updateOne({ _id: 2 } as Document, { $set: { n: -2 } }))).toMatchObject({ code: 121 });
    await t.db.command({ collMod: 'modded', validationLevel: 'moderate' });
    expect((await c.updateOne({ _id: 2 } as Document, { $set: { n: -2 } })).modifiedCount).toBe(1); // was invalid already
    expect(await errorOf(c.updateOne({ _id: 1 } as Document, { $set: { n: -5 } }))).toMatchObject({ code: 121 }); // was valid
    expect(await errorOf(c.insertOne({ _id: 3, n: -3 } as unknown as Document))).toMatchObject({ code: 121 });
    await t.db.command({ collMod: 'modded', validationAction: 'warn' });
    await c.insertOne({ _id: 3, n: -3 } as unknown as Document);
    await t.db.command({ collMod: 'modded', validationAction: 'error', validationLevel: 'off' });
    await c.insertOne({ _id: 4, n: -4 } as unknown as Document);
    expect(await c.countDocuments({ n: { $lt: 0 } })).toBe(3);
    const info = await t.db.listCollections({ name: 'modded' }, { nameOnly: false }).next();
    expect(info?.options).toMatchObject({ validator: { n: { $gte: 0 } }, validationLevel: 'off', validationAction: 'error' });
  });

  test('$out keeps the target’s indexes and validator, and changes nothing when a result is refused (11000, 121)', async () => {
    await t.db.createCollection('outDst', { validator: { x: { $type: 'string' } } });
    const dst = coll('outDst');
    await dst.createIndex({ u: 1 }, { unique: true });
    await dst.insertOne({ _id: 1, x: 'old', u: 1 } as unknown as Document);
    const src = coll('outSrc');
    const out = (docs: Document[], options: { bypassDocumentValidation?: boolean } = {}) =>
      src
        .deleteMany({})
        .then(() => src.insertMany(docs))
        .then(() => src.aggregate([{ $sort: { _id: 1 } }, { $out: 'outDst' }], options).toArray());
    const content = () => dst.find({}).sort({ _id: 1 }).toArray();
    await out([
      { _id: 10, x: 'a', u: 1 },
      { _id: 11, x: 'b', u: 2 },
    ] as unknown as Document[]);
    expect(await content()).toEqual([
      { _id: 10, x: 'a', u: 1 },
      { _id: 11, x: 'b', u: 2 },
    ]);
    const indexes = await dst.listIndexes().toArray();
    expect(indexes.find((i) => i.name === 'u_1')).toMatchObject({ key: { u: 1 }, unique: true });
    const info = await t.db.listCollections({ name: 'outDst' }, { nameOnly: false }).next();
    expect(info?.options?.validator).toEqual({ x: { $type: 'string' } });
    // a unique index broken by the results, then a document the validator refuses: the target stays as it was
    const dup = await errorOf(
      out([
        { _id: 20, x: 'c', u: 5 },
        { _id: 21, x: 'd', u: 5 },
      ] as unknown as Document[]),
    );
    expect(dup).toMatchObject({ code: 11000 });
    const invalid = await errorOf(
      out([
        { _id: 30, x: 'e', u: 6 },
        { _id: 31, x: 7, u: 7 },
      ] as unknown as Document[]),
    );
    expect(invalid).toMatchObject({ code: 121 });
    expect(await content()).toEqual([
      { _id: 10, x: 'a', u: 1 },
      { _id: 11, x: 'b', u: 2 },
    ]);
    // bypassDocumentValidation lets it through
    await out([{ _id: 40, x: 8, u: 8 }] as unknown as Document[], { bypassDocumentValidation: true });
    expect(await content()).toEqual([{ _id: 40, x: 8, u: 8 }]);
  });

  test('$out and $merge refuse a view as target (166), $out a system collection (17385) and an array _id (2)', async () => {
    const src = coll('outViewSrc');
    await src.insertMany([{ _id: 1, a: 1 }] as unknown as Document[]);
    await t.db.createCollection('outView', { viewOn: 'outViewSrc', pipeline: [] });
    expect(await codeOf(src.aggregate([{ $out: 'outView' }]).toArray())).toBe(166);
    expect(await codeOf(src.aggregate([{ $merge: { into: 'outView' } }]).toArray())).toBe(166);
    expect(await codeOf(src.aggregate([{ $out: 'system.outx' }]).toArray())).toBe(17385);
    expect(await codeOf(src.aggregate([{ $project: { _id: [1, 2] } }, { $out: 'outArrayId' }]).toArray())).toBe(2);
    const names = (await t.db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
    expect(names.filter((n) => ['outView', 'system.outx', 'outArrayId'].includes(n))).toEqual(['outView']);
    expect(await coll('outView').find({}).toArray()).toEqual([{ _id: 1, a: 1 }]);
  });

  test('$merge checks the target’s validator on inserts and on merged documents (121), unless bypassDocumentValidation', async () => {
    await t.db.createCollection('mergeDst', { validator: { x: { $type: 'string' } } });
    const dst = coll('mergeDst');
    await dst.insertOne({ _id: 1, x: 'a' } as unknown as Document);
    const src = coll('mergeSrc');
    const merge = (docs: Document[], options: { bypassDocumentValidation?: boolean } = {}) =>
      src
        .deleteMany({})
        .then(() => src.insertMany(docs))
        .then(() => src.aggregate([{ $merge: { into: 'mergeDst' } }], options).toArray());
    expect(await errorOf(merge([{ _id: 1, x: 5 }] as unknown as Document[]))).toMatchObject({ code: 121 });
    expect(await errorOf(merge([{ _id: 2, x: 6 }] as unknown as Document[]))).toMatchObject({ code: 121 });
    expect(await dst.find({}).toArray()).toEqual([{ _id: 1, x: 'a' }]);
    await merge([{ _id: 1, y: 1 }] as unknown as Document[]); // still valid once merged
    await merge([{ _id: 2, x: 9 }] as unknown as Document[], { bypassDocumentValidation: true });
    expect(await dst.find({}).sort({ _id: 1 }).toArray()).toEqual([
      { _id: 1, x: 'a', y: 1 },
      { _id: 2, x: 9 },
    ]);
  });
});
