/**
 * A small runner of MongoDB's CRUD specification tests (Unified Test Format, the JSON files of
 * github.com/mongodb/specifications source/crud/tests/unified/) through the real `mongodb` driver.
 * Development tool, not part of test:all: the spec files are not in this repository (fetch them by
 * hand). It downloads nothing.
 *
 *   npm run db:spec -- --specs DIR [--uri mongodb://...] [--grep TEXT] [--verbose]
 *
 * Without --uri it starts the embedded database (in memory, in this process; TEST_MONGO=memory-server
 * picks a real mongod through mongodb-memory-server instead, as the tests do). Prints each file's
 * tests as pass / FAIL (with the first mismatch) / skip (with why), then the totals.
 *
 * Covered: entities client (observeEvents, ignoreCommandMonitoringEvents, uriOptions, serverApi), database and
 * collection (with read/write concern and read preference options); initialData; the collection
 * and database operations of the CRUD tests; expectResult; expectError (isError, isClientError,
 * errorCode, errorCodeName, errorContains, errorLabelsContain/Omit, errorResponse, expectResult);
 * expectEvents for command events; outcome; runOnRequirements (minServerVersion,
 * maxServerVersion, topologies, serverless); $$exists, $$type, $$unsetOrMatches,
 * $$matchesEntity, $$lte. Tests that need a fail point, sessions, client-level bulkWrite or
 * other parts of the format are reported as skipped, with the reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EJSON } from 'bson';
import {
  MongoClient,
  MongoServerError,
  type Collection,
  type CommandFailedEvent,
  type CommandStartedEvent,
  type CommandSucceededEvent,
  type Db,
  type Document,
} from 'mongodb';
import { selectDatabase } from '../db/select';

type Doc = Record<string, unknown>;

class Skip extends Error {
  readonly skip = true;
}
class Mismatch extends Error {
  readonly mismatch = true;
}

// ---------- arguments ----------

interface Args {
  specs: string;
  uri?: string;
  grep?: string;
  verbose: boolean;
}

function parseArgs(argv: string[]): Args {
  const out: Args = { specs: '', verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--specs') out.specs = argv[++i] ?? '';
    else if (a === '--uri') out.uri = argv[++i];
    else if (a === '--grep') out.grep = argv[++i];
    else if (a === '--verbose' || a === '-v') out.verbose = true;
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run db:spec -- --specs DIR [--uri mongodb://...] [--grep TEXT] [--verbose]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!out.specs) throw new Error('--specs DIR is required (the JSON files of source/crud/tests/unified)');
  return out;
}

// ---------- server description and requirements ----------

interface ServerInfo {
  version: number[];
  topology: 'single' | 'replicaset' | 'sharded';
}

function versionParts(v: string): number[] {
  return v.split('.').map((p) => Number.parseInt(p, 10) || 0);
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

async function describeServer(uri: string): Promise<ServerInfo> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    await client.connect();
    const admin = client.db('admin');
    const build = await admin.command({ buildInfo: 1 });
    const hello = await admin.command({ hello: 1 });
    const topology = hello.msg === 'isdbgrid' ? 'sharded' : hello.setName ? 'replicaset' : 'single';
    return { version: versionParts(String(build.version)), topology };
  } finally {
    await client.close();
  }
}

/** Why none of the requirements is met, or undefined when one is (or there are none). */
function unmet(reqs: Doc[] | undefined, server: ServerInfo): string | undefined {
  if (!reqs || reqs.length === 0) return undefined;
  const reasons: string[] = [];
  for (const r of reqs) {
    const why: string[] = [];
    if (typeof r.minServerVersion === 'string' && compareVersions(server.version, versionParts(r.minServerVersion)) < 0)
      why.push(`server < ${r.minServerVersion}`);
    if (typeof r.maxServerVersion === 'string' && compareVersions(server.version, versionParts(r.maxServerVersion)) > 0)
      why.push(`server > ${r.maxServerVersion}`);
    if (
      Array.isArray(r.topologies) &&
      !r.topologies.includes(server.topology) &&
      !(server.topology === 'sharded' && r.topologies.includes('sharded-replicaset'))
    )
      why.push(`topology not in ${r.topologies.join('/')}`);
    if (r.serverless === 'require') why.push('serverless only');
    if (r.auth === true) why.push('needs auth');
    if (r.csfle) why.push('needs csfle');
    if (r.serverParameters) why.push('needs server parameters');
    if (why.length === 0) return undefined;
    reasons.push(why.join(', '));
  }
  return reasons.join(' | ');
}

// ---------- matching ----------

const isDoc = (v: unknown): v is Doc => v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype;
const bsontype = (v: unknown): string | undefined =>
  v !== null && typeof v === 'object' ? (v as { _bsontype?: string })._bsontype : undefined;

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const t = bsontype(v);
  if (t === 'Long' || t === 'Int32' || t === 'Double') return Number(String(v));
  return undefined;
}

const show = (v: unknown): string => {
  try {
    const s = EJSON.stringify(v as Document, { relaxed: true });
    return s.length > 300 ? s.slice(0, 300) + '…' : s;
  } catch {
    return String(v);
  }
};

function typeMatches(v: unknown, t: string): boolean {
  const n = asNumber(v);
  const bt = bsontype(v);
  switch (t) {
    case 'int':
      return bt === 'Int32' || (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= 2147483647);
    case 'long':
      return bt === 'Long' || (typeof v === 'number' && Number.isInteger(v));
    case 'double':
      return bt === 'Double' || typeof v === 'number';
    case 'number':
      return n !== undefined || bt === 'Decimal128';
    case 'decimal':
      return bt === 'Decimal128';
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'object':
      return isDoc(v);
    case 'array':
      return Array.isArray(v);
    case 'objectId':
      return bt === 'ObjectId';
    case 'date':
      return v instanceof Date;
    case 'binData':
      return bt === 'Binary';
    case 'timestamp':
      return bt === 'Timestamp';
    case 'regex':
      return v instanceof RegExp || bt === 'BSONRegExp';
  }
  return false;
}

/** The single `$$operator` of an expected value, if it is one. */
function specialOp(v: unknown): [string, unknown] | undefined {
  if (!isDoc(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0].startsWith('$$')) return [keys[0], v[keys[0]]];
  return undefined;
}

/**
 * Throws a Mismatch naming the path where `actual` does not match `expected`, by the unified
 * format's rules: root-level documents may have extra fields, nested ones may not; numbers compare
 * by value across int/long/double.
 */
function match(expected: unknown, actual: unknown, where: string, root: boolean, entities: Map<string, unknown>): void {
  if (actual instanceof Map) actual = Object.fromEntries(actual); // the driver sends sort specs as Maps
  // ...and options such as readConcern as class instances: compare their own fields.
  if (actual !== null && typeof actual === 'object' && !Array.isArray(actual) && !isDoc(actual) && !bsontype(actual))
    if (!(actual instanceof Date) && !(actual instanceof RegExp) && !(actual instanceof Uint8Array)) actual = { ...actual };
  const op = specialOp(expected);
  if (op) {
    const [name, arg] = op;
    switch (name) {
      case '$$unsetOrMatches':
        if (actual === undefined) return;
        return match(arg, actual, where, root, entities);
      case '$$type': {
        const types = Array.isArray(arg) ? (arg as string[]) : [String(arg)];
        if (!types.some((t) => typeMatches(actual, t))) throw new Mismatch(`${where}: ${show(actual)} is not of type ${types.join('/')}`);
        return;
      }
      case '$$matchesEntity':
        return match(entities.get(String(arg)), actual, where, root, entities);
      case '$$lte': {
        const a = asNumber(actual);
        if (a === undefined || a > Number(arg)) throw new Mismatch(`${where}: ${show(actual)} is not <= ${String(arg)}`);
        return;
      }
      case '$$exists':
        throw new Mismatch(`${where}: $$exists outside a document`);
      default:
        throw new Skip(`operator ${name} not supported by this runner`);
    }
  }
  const en = asNumber(expected);
  if (en !== undefined) {
    const an = asNumber(actual);
    if (an === undefined || !(an === en || (Number.isNaN(an) && Number.isNaN(en))))
      throw new Mismatch(`${where}: expected ${show(expected)}, got ${show(actual)}`);
    return;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) throw new Mismatch(`${where}: expected an array, got ${show(actual)}`);
    if (actual.length !== expected.length)
      throw new Mismatch(`${where}: expected ${expected.length} elements, got ${actual.length}: ${show(actual)}`);
    expected.forEach((e, i) => match(e, actual[i], `${where}[${i}]`, root, entities));
    return;
  }
  if (isDoc(expected)) {
    if (!isDoc(actual)) throw new Mismatch(`${where}: expected a document, got ${show(actual)}`);
    for (const [k, ev] of Object.entries(expected)) {
      const sub = specialOp(ev);
      const has = Object.prototype.hasOwnProperty.call(actual, k) && actual[k] !== undefined;
      if (sub && sub[0] === '$$exists') {
        if (has !== Boolean(sub[1])) throw new Mismatch(`${where}.${k}: expected ${sub[1] ? 'present' : 'absent'}, got ${show(actual[k])}`);
        continue;
      }
      if (sub && sub[0] === '$$unsetOrMatches' && !has) continue;
      if (!has) throw new Mismatch(`${where}.${k}: missing (expected ${show(ev)})`);
      match(ev, actual[k], `${where}.${k}`, false, entities);
    }
    if (!root) {
      const extra = Object.keys(actual).filter((k) => actual[k] !== undefined && !(k in expected));
      if (extra.length) throw new Mismatch(`${where}: unexpected field(s) ${extra.join(', ')} in ${show(actual)}`);
    }
    return;
  }
  if (expected instanceof Date) {
    if (!(actual instanceof Date) || actual.getTime() !== expected.getTime())
      throw new Mismatch(`${where}: expected ${show(expected)}, got ${show(actual)}`);
    return;
  }
  if (bsontype(expected)) {
    if (bsontype(actual) !== bsontype(expected) || show(actual) !== show(expected))
      throw new Mismatch(`${where}: expected ${show(expected)}, got ${show(actual)}`);
    return;
  }
  if (expected !== actual) throw new Mismatch(`${where}: expected ${show(expected)}, got ${show(actual)}`);
}

// ---------- entities ----------

interface ObservedEvent {
  kind: 'commandStartedEvent' | 'commandSucceededEvent' | 'commandFailedEvent';
  commandName: string;
  databaseName?: string;
  command?: Doc;
  reply?: Doc;
}

interface ClientEntity {
  client: MongoClient;
  events: ObservedEvent[];
}

const SENSITIVE = new Set([
  'authenticate',
  'saslstart',
  'saslcontinue',
  'getnonce',
  'createuser',
  'updateuser',
  'copydbgetnonce',
  'copydbsaslstart',
  'copydb',
  'hello',
  'ismaster',
]);

async function createEntities(list: Doc[], uri: string, entities: Map<string, unknown>, clients: Map<string, ClientEntity>): Promise<void> {
  for (const item of list) {
    const [kind] = Object.keys(item);
    const spec = item[kind] as Doc;
    const id = String(spec.id);
    if (kind === 'client') {
      const uriOptions = (spec.uriOptions as Doc | undefined) ?? {};
      const api = spec.serverApi as { version: string; strict?: boolean; deprecationErrors?: boolean } | undefined;
      const client = new MongoClient(uri, {
        monitorCommands: true,
        serverSelectionTimeoutMS: 5000,
        ...(uriOptions as object),
        ...(api ? { serverApi: { version: api.version as '1', strict: api.strict, deprecationErrors: api.deprecationErrors } } : {}),
      });
      const observe = new Set((spec.observeEvents as string[] | undefined) ?? []);
      const ignore = new Set((spec.ignoreCommandMonitoringEvents as string[] | undefined) ?? []);
      const entity: ClientEntity = { client, events: [] };
      const keep = (name: string): boolean => !ignore.has(name) && !SENSITIVE.has(name.toLowerCase()) && name !== 'configureFailPoint';
      if (observe.has('commandStartedEvent'))
        client.on('commandStarted', (e: CommandStartedEvent) => {
          if (keep(e.commandName))
            entity.events.push({
              kind: 'commandStartedEvent',
              commandName: e.commandName,
              databaseName: e.databaseName,
              command: e.command,
            });
        });
      if (observe.has('commandSucceededEvent'))
        client.on('commandSucceeded', (e: CommandSucceededEvent) => {
          if (keep(e.commandName)) entity.events.push({ kind: 'commandSucceededEvent', commandName: e.commandName, reply: e.reply as Doc });
        });
      if (observe.has('commandFailedEvent'))
        client.on('commandFailed', (e: CommandFailedEvent) => {
          if (keep(e.commandName)) entity.events.push({ kind: 'commandFailedEvent', commandName: e.commandName });
        });
      await client.connect();
      entities.set(id, client);
      clients.set(id, entity);
    } else if (kind === 'database') {
      const client = entities.get(String(spec.client)) as MongoClient;
      entities.set(id, client.db(String(spec.databaseName), (spec.databaseOptions as object | undefined) ?? {}));
    } else if (kind === 'collection') {
      const db = entities.get(String(spec.database)) as Db;
      entities.set(id, db.collection(String(spec.collectionName), (spec.collectionOptions as object | undefined) ?? {}));
    } else throw new Skip(`entity ${kind} not supported by this runner`);
  }
}

// ---------- operations ----------

function options(args: Doc, drop: string[]): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(args)) if (!drop.includes(k)) out[k] = v;
  if (typeof out.returnDocument === 'string') out.returnDocument = out.returnDocument.toLowerCase();
  return out;
}

function bulkResult(r: unknown): Doc {
  const b = r as Doc;
  return {
    deletedCount: b.deletedCount,
    insertedCount: b.insertedCount,
    insertedIds: b.insertedIds,
    matchedCount: b.matchedCount,
    modifiedCount: b.modifiedCount,
    upsertedCount: b.upsertedCount,
    upsertedIds: b.upsertedIds,
  };
}

function updateResult(r: Doc): Doc {
  const out: Doc = { matchedCount: r.matchedCount, modifiedCount: r.modifiedCount, upsertedCount: r.upsertedCount };
  if (r.upsertedId !== null && r.upsertedId !== undefined) out.upsertedId = r.upsertedId;
  return out;
}

async function runOperation(op: Doc, entities: Map<string, unknown>): Promise<unknown> {
  const name = String(op.name);
  const object = String(op.object);
  const args = (op.arguments as Doc | undefined) ?? {};
  if (object === 'testRunner') throw new Skip(`testRunner.${name} not supported by this runner`);
  if ('session' in args) throw new Skip('sessions not supported by this runner');
  const target = entities.get(object);
  if (!target) throw new Skip(`no entity ${object}`);
  const coll = target as Collection<Document>;
  const db = target as Db;
  const o = (...drop: string[]): Doc => options(args, drop);
  switch (name) {
    case 'insertOne':
      return { insertedId: (await coll.insertOne(args.document as Document, o('document'))).insertedId };
    case 'insertMany':
      return { insertedIds: (await coll.insertMany(args.documents as Document[], o('documents'))).insertedIds };
    case 'deleteOne':
      return { deletedCount: (await coll.deleteOne(args.filter as Document, o('filter'))).deletedCount };
    case 'deleteMany':
      return { deletedCount: (await coll.deleteMany(args.filter as Document, o('filter'))).deletedCount };
    case 'updateOne':
      return updateResult(
        (await coll.updateOne(args.filter as Document, args.update as Document, o('filter', 'update'))) as unknown as Doc,
      );
    case 'updateMany':
      return updateResult(
        (await coll.updateMany(args.filter as Document, args.update as Document, o('filter', 'update'))) as unknown as Doc,
      );
    case 'replaceOne':
      return updateResult(
        (await coll.replaceOne(args.filter as Document, args.replacement as Document, o('filter', 'replacement'))) as unknown as Doc,
      );
    case 'findOneAndDelete':
      return await coll.findOneAndDelete(args.filter as Document, o('filter'));
    case 'findOneAndUpdate':
      return await coll.findOneAndUpdate(args.filter as Document, args.update as Document, o('filter', 'update'));
    case 'findOneAndReplace':
      return await coll.findOneAndReplace(args.filter as Document, args.replacement as Document, o('filter', 'replacement'));
    case 'find':
      return await coll.find((args.filter as Document) ?? {}, o('filter')).toArray();
    case 'findOne':
      return await coll.findOne((args.filter as Document) ?? {}, o('filter'));
    case 'aggregate':
      return await (target as Collection | Db).aggregate(args.pipeline as Document[], o('pipeline')).toArray();
    case 'distinct':
      return await coll.distinct(String(args.fieldName), (args.filter as Document) ?? {}, o('fieldName', 'filter'));
    case 'countDocuments':
      return await coll.countDocuments((args.filter as Document) ?? {}, o('filter'));
    case 'estimatedDocumentCount':
      return await coll.estimatedDocumentCount(o());
    case 'count':
      return await coll.count((args.filter as Document) ?? {}, o('filter'));
    case 'bulkWrite':
      return bulkResult(await coll.bulkWrite(args.requests as never, o('requests')));
    case 'createCollection':
      await db.createCollection(String(args.collection), o('collection'));
      return undefined;
    case 'dropCollection':
      return await db.dropCollection(String(args.collection), o('collection'));
    case 'modifyCollection':
      return await db.command({ collMod: args.collection, ...o('collection') });
    case 'createIndex':
      return await coll.createIndex(args.keys as Document, o('keys'));
    case 'listCollections':
      return await db.listCollections((args.filter as Document) ?? {}, o('filter')).toArray();
    case 'runCommand':
      return await db.command(args.command as Document, o('command', 'commandName'));
  }
  throw new Skip(`operation ${name} not supported by this runner`);
}

function checkError(expected: Doc, err: unknown, entities: Map<string, unknown>): void {
  const e = err as MongoServerError & { result?: unknown; errorResponse?: Doc; errorLabels?: string[] };
  if (expected.isClientError === true && e instanceof MongoServerError)
    throw new Mismatch(`expected a client error, got server error ${e.code} ${e.message}`);
  if (expected.isClientError === false && !(e instanceof MongoServerError))
    throw new Mismatch(`expected a server error, got client error ${(err as Error)?.message ?? String(err)}`);
  if (expected.errorCode !== undefined && e.code !== expected.errorCode)
    throw new Mismatch(`expected error code ${String(expected.errorCode)}, got ${String(e.code)} (${e.message})`);
  if (expected.errorCodeName !== undefined && e.codeName !== expected.errorCodeName)
    throw new Mismatch(`expected codeName ${String(expected.errorCodeName)}, got ${String(e.codeName)} (${e.message})`);
  if (typeof expected.errorContains === 'string' && !String(e.message).toLowerCase().includes(expected.errorContains.toLowerCase()))
    throw new Mismatch(`expected an error containing "${expected.errorContains}", got "${e.message}"`);
  for (const l of (expected.errorLabelsContain as string[] | undefined) ?? [])
    if (!e.errorLabels?.includes(l)) throw new Mismatch(`expected error label ${l}`);
  for (const l of (expected.errorLabelsOmit as string[] | undefined) ?? [])
    if (e.errorLabels?.includes(l)) throw new Mismatch(`unexpected error label ${l}`);
  if (expected.errorResponse !== undefined) match(expected.errorResponse, e.errorResponse, 'errorResponse', true, entities);
  if (expected.expectResult !== undefined)
    match(expected.expectResult, e.result ? bulkResult(e.result) : undefined, 'error result', true, entities);
  if (expected.writeErrors !== undefined || expected.writeConcernErrors !== undefined)
    throw new Skip('writeErrors maps (client bulkWrite) not supported');
}

// ---------- one test ----------

async function setUpData(uri: string, initialData: Doc[] | undefined): Promise<void> {
  if (!initialData?.length) return;
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    for (const d of initialData) {
      const db = client.db(String(d.databaseName));
      const name = String(d.collectionName);
      await db.dropCollection(name, { writeConcern: { w: 'majority' } }).catch(() => undefined);
      const docs = (d.documents as Document[] | undefined) ?? [];
      if (docs.length) await db.collection(name).insertMany(docs, { writeConcern: { w: 'majority' } });
      else await db.createCollection(name, { writeConcern: { w: 'majority' }, ...((d.createOptions as object | undefined) ?? {}) });
    }
  } finally {
    await client.close();
  }
}

async function checkOutcome(uri: string, outcome: Doc[] | undefined, entities: Map<string, unknown>): Promise<void> {
  if (!outcome?.length) return;
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  try {
    for (const o of outcome) {
      const docs = await client
        .db(String(o.databaseName))
        .collection(String(o.collectionName))
        .find({}, { sort: { _id: 1 }, readConcern: { level: 'local' } })
        .toArray();
      match(o.documents, docs, `outcome ${String(o.collectionName)}`, false, entities);
    }
  } finally {
    await client.close();
  }
}

function checkEvents(expectEvents: Doc[] | undefined, clients: Map<string, ClientEntity>, entities: Map<string, unknown>): void {
  for (const group of expectEvents ?? []) {
    const eventType = (group.eventType as string | undefined) ?? 'command';
    if (eventType !== 'command') throw new Skip(`${eventType} events not supported by this runner`);
    const c = clients.get(String(group.client));
    if (!c) throw new Mismatch(`expectEvents names unknown client ${String(group.client)}`);
    const expected = (group.events as Doc[]) ?? [];
    const actual = c.events;
    const ignoreExtra = group.ignoreExtraEvents === true;
    if (ignoreExtra ? actual.length < expected.length : actual.length !== expected.length)
      throw new Mismatch(
        `events of ${String(group.client)}: expected ${expected.length}, got ${actual.length} (${actual.map((e) => e.commandName).join(', ')})`,
      );
    expected.forEach((ev, i) => {
      const [kind] = Object.keys(ev);
      const spec = (ev[kind] as Doc) ?? {};
      const a = actual[i];
      const where = `event ${i} (${a.kind} ${a.commandName})`;
      if (a.kind !== kind) throw new Mismatch(`${where}: expected ${kind}`);
      if (spec.commandName !== undefined && spec.commandName !== a.commandName)
        throw new Mismatch(`${where}: expected commandName ${String(spec.commandName)}`);
      if (spec.databaseName !== undefined && spec.databaseName !== a.databaseName)
        throw new Mismatch(`${where}: expected databaseName ${String(spec.databaseName)}`);
      if (spec.command !== undefined) match(spec.command, a.command, `${where}.command`, true, entities);
      if (spec.reply !== undefined) match(spec.reply, a.reply, `${where}.reply`, true, entities);
    });
  }
}

async function runTest(file: Doc, test: Doc, uri: string): Promise<void> {
  const entities = new Map<string, unknown>();
  const clients = new Map<string, ClientEntity>();
  try {
    await setUpData(uri, file.initialData as Doc[] | undefined);
    await createEntities((file.createEntities as Doc[] | undefined) ?? [], uri, entities, clients);
    for (const op of (test.operations as Doc[]) ?? []) {
      let result: unknown;
      let error: unknown;
      let failed = false;
      try {
        result = await runOperation(op, entities);
      } catch (e) {
        if (e instanceof Skip) throw e;
        failed = true;
        error = e;
      }
      const label = `${String(op.object)}.${String(op.name)}`;
      if (op.expectError) {
        if (!failed) throw new Mismatch(`${label}: expected an error, got ${show(result)}`);
        try {
          checkError(op.expectError as Doc, error, entities);
        } catch (e) {
          if (e instanceof Mismatch) throw new Mismatch(`${label}: ${e.message}`);
          throw e;
        }
        continue;
      }
      if (failed) {
        const m = error as { code?: unknown; message?: string };
        throw new Mismatch(`${label}: unexpected error ${m.code !== undefined ? `${String(m.code)} ` : ''}${m.message ?? String(error)}`);
      }
      if (op.expectResult !== undefined) match(op.expectResult, result, `${label} result`, true, entities);
      if (typeof op.saveResultAsEntity === 'string') entities.set(op.saveResultAsEntity, result);
    }
    checkEvents(test.expectEvents as Doc[] | undefined, clients, entities);
    await checkOutcome(uri, test.outcome as Doc[] | undefined, entities);
  } finally {
    for (const c of clients.values()) await c.client.close().catch(() => undefined);
  }
}

/**
 * Tests whose expectation the Node.js driver itself does not meet, whatever the server (checked in
 * the driver's source): reported as skipped with the reason, not as the server's failures.
 */
const DRIVER_DIFFERS: [RegExp, RegExp, string][] = [
  [
    /^create-null-ids\.json$/,
    /_id with type null via (insertOne|insertMany|bulkWrite)/,
    'the Node.js driver replaces a null _id by an ObjectId',
  ],
  [
    /^bypassDocumentValidation\.json$/,
    /^(Aggregate with \$out|BulkWrite|FindOneAndReplace|FindOneAndUpdate|InsertMany) passes bypassDocumentValidation: false/,
    'the Node.js driver sends bypassDocumentValidation only when true',
  ],
];

/** What a test needs that this runner (or the driver) does not do, found before running it. */
function unsupported(fileName: string, test: Doc): string | undefined {
  for (const [f, t, why] of DRIVER_DIFFERS) if (f.test(fileName) && t.test(String(test.description))) return why;
  for (const op of (test.operations as Doc[]) ?? []) {
    if (op.object === 'testRunner') return `needs testRunner.${String(op.name)}`;
    if (op.name === 'clientBulkWrite') return 'needs client bulkWrite';
  }
  return undefined;
}

// ---------- main ----------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = path.resolve(args.specs);
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  if (files.length === 0) throw new Error(`no .json spec files in ${dir}`);
  // Without --uri: the test database of db/select.ts, the embedded one unless TEST_MONGO says otherwise.
  if (!args.uri) process.env.TEST_MONGO ??= 'embedded';
  const embedded = args.uri ? undefined : await selectDatabase({ purpose: 'test' });
  const uri = args.uri ?? embedded!.uri;
  const totals = { pass: 0, fail: 0, skip: 0, notApplicable: 0 };
  try {
    const server = await describeServer(uri);
    process.stdout.write(`server ${server.version.join('.')} (${server.topology}) at ${embedded ? `${embedded.kind}, in memory` : uri}\n`);
    for (const f of files) {
      const file = EJSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'), { relaxed: true }) as Doc;
      const tests = (file.tests as Doc[]) ?? [];
      const fileUnmet = unmet(file.runOnRequirements as Doc[] | undefined, server);
      const lines: string[] = [];
      const counts = { pass: 0, fail: 0, skip: 0, notApplicable: 0 };
      for (const test of tests) {
        const desc = String(test.description);
        if (args.grep && !`${f} ${desc}`.toLowerCase().includes(args.grep.toLowerCase())) continue;
        const why = fileUnmet ?? unmet(test.runOnRequirements as Doc[] | undefined, server);
        if (why) {
          counts.notApplicable++;
          if (args.verbose) lines.push(`  n/a   ${desc} (${why})`);
          continue;
        }
        const skipWhy = typeof test.skipReason === 'string' ? test.skipReason : unsupported(f, test);
        if (skipWhy) {
          counts.skip++;
          lines.push(`  skip  ${desc} (${skipWhy})`);
          continue;
        }
        try {
          await runTest(file, test, uri);
          counts.pass++;
          lines.push(`  pass  ${desc}`);
        } catch (e) {
          if (e instanceof Skip) {
            counts.skip++;
            lines.push(`  skip  ${desc} (${e.message})`);
          } else {
            counts.fail++;
            lines.push(
              `  FAIL  ${desc}\n          ${e instanceof Mismatch ? e.message : `runner error: ${(e as Error)?.stack ?? String(e)}`}`,
            );
          }
        }
      }
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += counts[k];
      if (counts.pass + counts.fail + counts.skip === 0 && !args.verbose) continue;
      const summary = `${counts.pass} pass, ${counts.fail} fail, ${counts.skip} skip, ${counts.notApplicable} n/a`;
      process.stdout.write(`${counts.fail ? 'FAIL' : 'ok  '} ${f}: ${summary}\n${lines.join('\n')}${lines.length ? '\n' : ''}`);
    }
  } finally {
    await embedded?.stop();
  }
  process.stdout.write(
    `\ntotal: ${totals.pass} pass, ${totals.fail} fail (of ${totals.pass + totals.fail} run), ${totals.skip} skipped, ${totals.notApplicable} not applicable\n`,
  );
  process.exitCode = totals.fail ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`crud-spec: ${(e as Error)?.message ?? String(e)}\n`);
  process.exit(2);
});
