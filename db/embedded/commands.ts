/**
 * Command dispatch. Handlers work on the in-memory storage; those that may scan or write many
 * documents (find, count, distinct, aggregate, insert, update, delete) run in time slices
 * (slicer.ts) so that other connections are served meanwhile, and honour maxTimeMS. Any thrown error
 * becomes `{ok: 0, errmsg, code, codeName}` (CommandError carries code/codeName, mingo errors map
 * to BadValue). Write commands report per-statement failures in `writeErrors` with ok: 1, as mongod.
 */
import { BSON, calculateObjectSize, Long, ObjectId } from 'bson';
import { CursorManager } from './cursors';
import {
  bsonTypeName,
  compareBson,
  compileFilter,
  compileProjection,
  deepCopy,
  isPlainObject,
  mingoUpdate,
  runPipeline,
  sortDocs,
  valuesAtPath,
  type Doc,
} from './mingo-boundary';
import { checkCommandArgs, checkStatements, deadlineOf } from './args';
import { Slicer } from './slicer';
import { Codes, codeNameOf, CommandError, fail } from './errors';
import type { Storage } from './storage';
import type { Collection } from './collection';
import type { IndexSpec } from './collection-indexes';
import { checkHint, isOperatorObject } from './planner';
import { valueKey } from './value-key';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE } from './wire-protocol';

export const MAX_WIRE_VERSION = 21; // MongoDB 7.0; mongodb@7.x requires >= 9
export const SERVER_VERSION = '7.0.0';

export interface CommandContext {
  storage: Storage;
  cursors: CursorManager;
  connectionId: number;
}

type Handler = (cmd: Doc, db: string, seq: Record<string, Doc[]>, ctx: CommandContext) => Doc | Promise<Doc>;

const TEXT_SCORE_FIELD = '__embeddedTextScore';

function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v) throw fail('BadValue', `${what} must be a non-empty string`);
  return v;
}

function num(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = Number(typeof v === 'object' ? String(v) : v);
  return Number.isFinite(n) ? n : undefined;
}

function optDoc(v: unknown, what: string): Doc | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) throw fail('TypeMismatch', `${what} must be an object`);
  return v;
}

/** Byte-identical BSON (field order and numeric types included). */
function sameBson(a: Doc, b: Doc): boolean {
  return Buffer.compare(BSON.serialize(a), BSON.serialize(b)) === 0;
}

function isMetaTextScore(v: unknown): boolean {
  return isPlainObject(v) && v.$meta === 'textScore';
}

// ---------- projection with {$meta: 'textScore'} ----------

function buildProjector(projection: Doc | undefined, scores?: Map<Doc, number>): ((d: Doc) => Doc) | undefined {
  if (!projection) return undefined;
  const meta: string[] = [];
  const rest: Doc = {};
  for (const [k, v] of Object.entries(projection)) {
    if (isMetaTextScore(v)) meta.push(k);
    else rest[k] = v;
  }
  const base = compileProjection(rest);
  if (meta.length === 0) return base;
  return (d) => {
    const out = base ? base(d) : { ...d };
    for (const k of meta) out[k] = scores?.get(d) ?? 0;
    return out;
  };
}

// ---------- updates ----------

type UpdateKind = 'operator' | 'replacement' | 'pipeline';

function updateKind(u: unknown): UpdateKind {
  if (Array.isArray(u)) return 'pipeline';
  if (!isPlainObject(u)) throw fail('TypeMismatch', 'Update argument must be either an object or an array');
  const keys = Object.keys(u);
  const ops = keys.filter((k) => k.startsWith('$'));
  if (ops.length === 0) return 'replacement';
  if (ops.length !== keys.length) {
    const bad = keys.find((k) => !k.startsWith('$'));
    throw fail(
      'FailedToParse',
      `Unknown modifier: ${bad}. Expected a valid update modifier or pipeline-style update specified as an array`,
    );
  }
  return 'operator';
}

function idFirst(doc: Doc): Doc {
  if (Object.keys(doc)[0] === '_id') return doc;
  const { _id, ...rest } = doc;
  return { _id, ...rest };
}

/** Returns the new document, or undefined when nothing changed. */
function applyUpdate(
  doc: Doc,
  u: unknown,
  kind: UpdateKind,
  arrayFilters: Doc[] | undefined,
  isInsert: boolean,
  query?: Doc,
): Doc | undefined {
  if (kind === 'replacement') {
    const repl = u as Doc;
    if ('_id' in repl && valueKey(repl._id) !== valueKey(doc._id)) {
      throw fail(
        'ImmutableField',
        `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${String(repl._id)}`,
      );
    }
    // No deep copy: the replacement comes from this request's freshly decoded body and is used once
    // (replacement updates cannot be multi), so the stored document may share its subdocuments.
    const { _id: _ignored, ...rest } = repl;
    void _ignored;
    const next = doc._id === undefined ? rest : { _id: doc._id, ...rest };
    if (!isInsert && sameBson(doc, next)) return undefined;
    return next;
  }
  if (kind === 'pipeline') {
    let out = runPipeline([deepCopy(doc)], u as Doc[])[0];
    if (!out) throw fail('BadValue', 'pipeline update produced no document');
    if (out._id === undefined && doc._id !== undefined) out = { _id: doc._id, ...out }; // as mongod: _id is kept
    if (!isInsert && sameBson(doc, out)) return undefined;
    return out;
  }
  const mods = { ...(u as Doc) };
  const setOnInsert = mods.$setOnInsert as Doc | undefined;
  delete mods.$setOnInsert;
  checkConflicts(mods);
  checkArithmetic(doc, mods);
  const copy = deepCopy(doc);
  let changed: string[] = [];
  try {
    // The query is only needed to resolve the positional `$` operator.
    let condition: Doc | undefined;
    if (query && !isInsert && Object.values(mods).some((m) => isPlainObject(m) && Object.keys(m).some((k) => /\.\$(\.|$)/.test(k)))) {
      condition = { ...query };
      delete condition.$text;
    }
    if (Object.keys(mods).length) changed = mingoUpdate(copy, mods as never, arrayFilters, condition, { cloneMode: 'deep' });
    if (isInsert && setOnInsert && Object.keys(setOnInsert).length) {
      changed = changed.concat(mingoUpdate(copy, { $set: setOnInsert } as never, undefined, undefined, { cloneMode: 'deep' }));
    }
  } catch (e) {
    const msg = (e as Error).message;
    if (/immutable field '_id'/.test(msg)) throw fail('ImmutableField', msg);
    throw /Unknown update operator/.test(msg) ? fail('FailedToParse', msg) : fail('BadValue', msg);
  }
  if (!isInsert && changed.length === 0) return undefined;
  return copy;
}

/** Two operators (or two fields of one) naming the same path or a path and its prefix: 40. */
function checkConflicts(mods: Doc): void {
  const paths: string[] = [];
  for (const m of Object.values(mods)) if (isPlainObject(m)) paths.push(...Object.keys(m));
  for (let i = 0; i < paths.length; i++) {
    for (let j = i + 1; j < paths.length; j++) {
      const [a, b] = paths[i].length <= paths[j].length ? [paths[i], paths[j]] : [paths[j], paths[i]];
      if (a === b || b.startsWith(a + '.')) {
        throw fail('ConflictingUpdateOperators', `Updating the path '${b}' would create a conflict at '${a}'`);
      }
    }
  }
}

const NUMERIC = new Set(['int', 'long', 'double', 'decimal']);

/** The value at a plain dotted path (no positional operators), and whether the path exists. */
function lookup(doc: Doc, path: string): { found: boolean; value?: unknown } {
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (Array.isArray(cur) && /^\d+$/.test(part)) cur = cur[Number(part)];
    else if (isPlainObject(cur) && Object.prototype.hasOwnProperty.call(cur, part)) cur = cur[part];
    else return { found: false };
    if (cur === undefined) return { found: false };
  }
  return { found: true, value: cur };
}

/**
 * $inc/$mul as mongod: a non-numeric argument or target (null included) is TypeMismatch (14);
 * $inc on or by a 64-bit integer is exact 64-bit arithmetic (rewritten to a $set here).
 */
function checkArithmetic(doc: Doc, mods: Doc): void {
  for (const op of ['$inc', '$mul'] as const) {
    const spec = mods[op];
    if (!isPlainObject(spec)) continue;
    for (const [path, by] of Object.entries(spec)) {
      if (!NUMERIC.has(bsonTypeName(by))) {
        throw fail(
          'TypeMismatch',
          `Cannot ${op === '$inc' ? 'increment' : 'multiply'} with non-numeric argument: {${path}: ${JSON.stringify(by)}}`,
        );
      }
      if (path.includes('$')) continue;
      const at = lookup(doc, path);
      if (at.found && !NUMERIC.has(bsonTypeName(at.value))) {
        throw fail(
          'TypeMismatch',
          `Cannot apply ${op} to a value of non-numeric type. {_id: ${JSON.stringify(String(doc._id))}} has the field '${path.split('.').pop()}' of non-numeric type ${bsonTypeName(at.value)}`,
        );
      }
      const cur = at.found ? at.value : 0;
      const types = [bsonTypeName(cur), bsonTypeName(by)];
      if (op === '$inc' && types.includes('long') && !types.includes('decimal') && !types.includes('double')) {
        const sum = BigInt(String(cur)) + BigInt(String(by));
        mods.$set = { ...((mods.$set as Doc | undefined) ?? {}), [path]: Long.fromBigInt(sum) };
        const rest = { ...(mods.$inc as Doc) };
        delete rest[path];
        if (Object.keys(rest).length) mods.$inc = rest;
        else delete mods.$inc;
      }
    }
  }
}

function setPath(doc: Doc, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: Doc = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = cur[parts[i]];
    if (!isPlainObject(next)) cur[parts[i]] = {};
    cur = cur[parts[i]] as Doc;
  }
  cur[parts[parts.length - 1]] = deepCopy(value);
}

/** Equality fields of a query, as mongod seeds an upserted document. */
function upsertSeed(q: Doc | undefined, out: Doc = {}): Doc {
  for (const [k, v] of Object.entries(q ?? {})) {
    if (k === '$and' && Array.isArray(v)) {
      for (const sub of v) if (isPlainObject(sub)) upsertSeed(sub, out);
      continue;
    }
    if (k.startsWith('$')) continue;
    if (isOperatorObject(v)) {
      if ('$eq' in v) setPath(out, k, v.$eq);
      continue;
    }
    if (v instanceof RegExp) continue;
    setPath(out, k, v);
  }
  return out;
}

function buildUpsert(q: Doc | undefined, u: unknown, kind: UpdateKind, arrayFilters: Doc[] | undefined): Doc {
  const seed = upsertSeed(q);
  let doc: Doc;
  if (kind === 'replacement') {
    doc = { ...(u as Doc) }; // used once, like applyUpdate's replacement
    if (doc._id === undefined && seed._id !== undefined) doc._id = seed._id;
  } else {
    doc = applyUpdate(seed, u, kind, arrayFilters, true) ?? seed;
  }
  if (doc._id === undefined) doc._id = new ObjectId();
  return idFirst(doc);
}

/**
 * For a document found by a sliced scan: the version stored NOW if it still matches `q`, else
 * undefined. The scan (or earlier updates of a multi-update) may have paused, letting other
 * connections replace or delete documents, or drop the collection, meanwhile.
 */
function revalidator(storage: Storage, coll: Collection | undefined, q: Doc): (found: Doc) => Doc | undefined {
  let test: ((d: Doc) => boolean) | undefined;
  const retest = !('$text' in q);
  return (found) => {
    if (!coll || storage.getCollection(coll.dbName, coll.name) !== coll) return undefined;
    const cur = coll.getById(found._id);
    if (!cur) return undefined;
    if (cur !== found && retest && !(test ??= compileFilter(q))(cur)) return undefined;
    return cur;
  };
}

function writeError(index: number, e: unknown): Doc {
  if (e instanceof CommandError) return { index, code: e.code, errmsg: e.message, ...e.extra };
  return { index, code: Codes.BadValue, errmsg: (e as Error)?.message ?? String(e) };
}

/** A write command's statements: the command's own array, or its OP_MSG document sequence. */
function statements(cmd: Doc, seq: Record<string, Doc[]>, field: string): Doc[] {
  const v = cmd[field] ?? seq[field] ?? [];
  if (!Array.isArray(v)) throw fail('TypeMismatch', `${field} must be an array`);
  return v as Doc[];
}

/** Runs each statement; a failure becomes a writeError (reply still ok: 1) and ends an ordered batch. */
async function eachStatement(cmd: Doc, stmts: Doc[], slicer: Slicer, run: (s: Doc, i: number) => void | Promise<void>): Promise<Doc[]> {
  const ordered = cmd.ordered !== false;
  const writeErrors: Doc[] = [];
  for (let i = 0; i < stmts.length; i++) {
    try {
      // Between statements: let other connections in, and stop (as a write error) past maxTimeMS.
      if (slicer.due()) await slicer.pause();
      await run(stmts[i], i);
    } catch (e) {
      writeErrors.push(writeError(i, e));
      if (ordered || (e instanceof CommandError && e.code === Codes.MaxTimeMSExpired)) break;
    }
  }
  return writeErrors;
}

function writeReply(fields: Doc, writeErrors: Doc[]): Doc {
  return writeErrors.length ? { ...fields, writeErrors, ok: 1 } : { ...fields, ok: 1 };
}

/** Levels of subdocuments/arrays mongod stores (BSONDepth::getMaxDepthForUserStorage). */
const MAX_STORED_DEPTH = 100;

function tooDeep(v: unknown, depth: number): boolean {
  if (depth > MAX_STORED_DEPTH) return true;
  if (Array.isArray(v)) return v.some((x) => x !== null && typeof x === 'object' && tooDeep(x, depth + 1));
  if (isPlainObject(v)) {
    for (const k in v) {
      const x = v[k];
      if (x !== null && typeof x === 'object' && tooDeep(x, depth + 1)) return true;
    }
  }
  return false;
}

function checkDocSize(doc: Doc): void {
  if (tooDeep(doc, 0)) throw fail('Overflow', `Document exceeds the maximum nesting depth of ${MAX_STORED_DEPTH} levels`);
  const size = calculateObjectSize(doc);
  if (size > MAX_BSON_OBJECT_SIZE) {
    throw fail('BSONObjectTooLarge', `object to insert too large. size in bytes: ${size}, max size: ${MAX_BSON_OBJECT_SIZE}`);
  }
}

// ---------- handlers ----------

function hello(legacy: boolean): Handler {
  return (cmd, _db, _seq, ctx) => ({
    ...(cmd.helloOk ? { helloOk: true } : {}),
    ...(legacy ? { ismaster: true } : { isWritablePrimary: true }),
    // No topologyVersion: without it the driver polls hello every heartbeatFrequencyMS instead of
    // using the streaming (awaitable hello / exhaust) protocol, which this server does not implement.
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_SIZE,
    maxWriteBatchSize: 100000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: ctx.connectionId,
    minWireVersion: 0,
    maxWireVersion: MAX_WIRE_VERSION,
    readOnly: false,
    ok: 1,
  });
}

function collName(cmd: Doc, name: string): string {
  return str(cmd[name], `collection name (${name})`);
}

const insert: Handler = async (cmd, db, seq, { storage }) => {
  const name = collName(cmd, 'insert');
  const docs = statements(cmd, seq, 'documents');
  let n = 0;
  const writeErrors = await eachStatement(cmd, docs, new Slicer(deadlineOf(cmd)), (d) => {
    const coll = storage.collection(db, name); // again per statement: a pause may have let a drop in
    if (!isPlainObject(d)) throw fail('TypeMismatch', 'document must be an object');
    if (d._id === undefined) d = { _id: new ObjectId(), ...d };
    else if (Array.isArray(d._id)) throw fail('BadValue', "can't use an array for _id");
    else d = idFirst(d);
    checkDocSize(d);
    coll.insert(d);
    n++;
  });
  return writeReply({ n }, writeErrors);
};

const find: Handler = async (cmd, db, _seq, { storage, cursors }) => {
  const name = collName(cmd, 'find');
  const ns = `${db}.${name}`;
  const filter = optDoc(cmd.filter, 'filter');
  const sort = optDoc(cmd.sort, 'sort');
  const projection = optDoc(cmd.projection, 'projection');
  const skip = num(cmd.skip) ?? 0;
  let limit = num(cmd.limit) ?? 0;
  let singleBatch = cmd.singleBatch === true;
  if (limit < 0) {
    limit = -limit;
    singleBatch = true;
  }
  if (skip < 0) throw fail('Location51024', `BSON field 'skip' value must be >= 0, actual value '${skip}'`);
  const coll = storage.getCollection(db, name);
  if (!coll) {
    if (filter && '$text' in filter) throw fail('IndexNotFound', 'text index required for $text query');
    return cursors.open(ns, [], { singleBatch: true });
  }
  checkHint(coll, cmd.hint);
  const sorted = !!sort && Object.keys(sort).length > 0;
  // Unsorted: natural order, so matching can stop once skip + limit documents are found.
  const slicer = new Slicer(deadlineOf(cmd));
  const { docs: matched, scores } = await coll.matchSliced(filter, !sorted && limit ? skip + limit : Infinity, slicer);
  let docs = matched;
  if (sorted) docs = sortDocs(docs, sort, scores ? (d) => scores.get(d) ?? 0 : undefined);
  slicer.check();
  if (skip) docs = docs.slice(skip);
  if (limit) docs = docs.slice(0, limit);
  let batchSize = num(cmd.batchSize);
  if (limit && (batchSize === undefined || batchSize > limit)) batchSize = limit;
  return cursors.open(ns, docs, {
    batchSize,
    singleBatch: singleBatch || (limit > 0 && docs.length <= (batchSize ?? 101)),
    map: buildProjector(projection, scores),
  });
};

const getMore: Handler = (cmd, _db, _seq, { cursors }) => {
  const r = cursors.getMore(cmd.getMore, num(cmd.batchSize));
  if (!r) throw fail('CursorNotFound', `cursor id ${String(cmd.getMore)} not found`);
  return r;
};

const killCursors: Handler = (cmd, _db, _seq, { cursors }) => {
  const ids = Array.isArray(cmd.cursors) ? cmd.cursors : [];
  const { killed, notFound } = cursors.kill(ids);
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
};

const update: Handler = async (cmd, db, seq, { storage }) => {
  const name = collName(cmd, 'update');
  const stmts = statements(cmd, seq, 'updates');
  checkStatements('update', stmts);
  let n = 0;
  let nModified = 0;
  const upserted: Doc[] = [];
  const slicer = new Slicer(deadlineOf(cmd));
  const writeErrors = await eachStatement(cmd, stmts, slicer, async (s, i) => {
    const q = optDoc(s.q, 'q') ?? {};
    const kind = updateKind(s.u);
    const arrayFilters = s.arrayFilters as Doc[] | undefined;
    if (kind === 'replacement' && s.multi) throw fail('FailedToParse', 'multi update is not supported for replacement-style update');
    const coll = storage.getCollection(db, name);
    checkHint(coll, s.hint);
    const sort = isPlainObject(s.sort) ? s.sort : undefined;
    let matched = coll ? (await coll.matchSliced(q, s.multi || sort ? Infinity : 1, slicer)).docs : [];
    if (sort) matched = sortDocs(matched, sort);
    if (!s.multi) matched = matched.slice(0, 1);
    const current = revalidator(storage, coll, q);
    let seen = 0;
    for (const found of matched) {
      const doc = current(found);
      if (!doc) continue;
      seen++;
      const next = applyUpdate(doc, s.u, kind, arrayFilters, false, q);
      n++;
      if (next) {
        checkDocSize(next);
        coll!.replace(doc, next);
        nModified++;
      }
      if (slicer.due()) await slicer.pause();
    }
    if (seen === 0 && s.upsert) {
      const doc = buildUpsert(q, s.u, kind, arrayFilters);
      checkDocSize(doc);
      storage.collection(db, name).insert(doc);
      n++;
      upserted.push({ index: i, _id: doc._id });
    }
  });
  return writeReply(upserted.length ? { n, nModified, upserted } : { n, nModified }, writeErrors);
};

const del: Handler = async (cmd, db, seq, { storage }) => {
  const name = collName(cmd, 'delete');
  const stmts = statements(cmd, seq, 'deletes');
  checkStatements('delete', stmts);
  let n = 0;
  const slicer = new Slicer(deadlineOf(cmd));
  const writeErrors = await eachStatement(cmd, stmts, slicer, async (s) => {
    const coll = storage.getCollection(db, name);
    checkHint(coll, s.hint);
    if (!coll) return;
    const q = optDoc(s.q, 'q') ?? {};
    const matched = (await coll.matchSliced(q, Number(s.limit) === 1 ? 1 : Infinity, slicer)).docs;
    const current = revalidator(storage, coll, q);
    for (const found of matched) {
      const d = current(found);
      if (!d) continue;
      coll.remove(d);
      n++;
      if (slicer.due()) await slicer.pause();
    }
  });
  return writeReply({ n }, writeErrors);
};

const findAndModify: Handler = (cmd, db, _seq, { storage }) => {
  const name = str(cmd.findAndModify ?? cmd.findandmodify, 'collection name');
  const query = optDoc(cmd.query, 'query') ?? {};
  const sort = optDoc(cmd.sort, 'sort');
  const fields = optDoc(cmd.fields, 'fields');
  const project = buildProjector(fields);
  const out = (d: Doc | null): Doc | null => (d && project ? project(d) : d);
  const coll = storage.getCollection(db, name);
  checkHint(coll, cmd.hint);
  const sorted = !!sort && Object.keys(sort).length > 0;
  let matched = coll ? coll.match(query, sorted ? Infinity : 1).docs : [];
  if (sorted) matched = sortDocs(matched, sort);
  const doc = matched[0];
  if (cmd.remove) {
    if (cmd.update !== undefined) throw fail('FailedToParse', 'Cannot specify both an update and remove=true');
    if (doc) coll!.remove(doc);
    return { lastErrorObject: { n: doc ? 1 : 0 }, value: out(doc ?? null), ok: 1 };
  }
  if (cmd.update === undefined) throw fail('FailedToParse', 'Either an update or remove=true must be specified');
  const kind = updateKind(cmd.update);
  const arrayFilters = cmd.arrayFilters as Doc[] | undefined;
  if (doc) {
    const next = applyUpdate(doc, cmd.update, kind, arrayFilters, false, query);
    if (next) {
      checkDocSize(next);
      coll!.replace(doc, next);
    }
    return { lastErrorObject: { n: 1, updatedExisting: true }, value: out(cmd.new ? (next ?? doc) : doc), ok: 1 };
  }
  if (cmd.upsert) {
    const created = buildUpsert(query, cmd.update, kind, arrayFilters);
    checkDocSize(created);
    storage.collection(db, name).insert(created);
    return {
      lastErrorObject: { n: 1, updatedExisting: false, upserted: created._id },
      value: cmd.new ? out(created) : null,
      ok: 1,
    };
  }
  return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
};

const count: Handler = async (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'count');
  const coll = storage.getCollection(db, name);
  const query = optDoc(cmd.query, 'query');
  checkHint(coll, cmd.hint);
  const skip = num(cmd.skip) ?? 0;
  const limit = Math.abs(num(cmd.limit) ?? 0);
  const slicer = new Slicer(deadlineOf(cmd));
  let n = coll
    ? query && Object.keys(query).length
      ? (await coll.matchSliced(query, limit ? skip + limit : Infinity, slicer)).docs.length
      : coll.docs.size
    : 0;
  n = Math.max(0, n - skip);
  if (limit) n = Math.min(n, limit);
  return { n, ok: 1 };
};

function replaceMetaTextScore(v: unknown): unknown {
  if (isMetaTextScore(v)) return `$${TEXT_SCORE_FIELD}`;
  if (Array.isArray(v)) return v.map(replaceMetaTextScore);
  if (isPlainObject(v)) {
    const o: Doc = {};
    for (const [k, x] of Object.entries(v)) o[k] = replaceMetaTextScore(x);
    return o;
  }
  return v;
}

function rewriteStage(stage: Doc): Doc {
  const [op] = Object.keys(stage);
  if (op === '$sort' && isPlainObject(stage.$sort)) {
    const spec: Doc = {};
    for (const [k, v] of Object.entries(stage.$sort)) {
      if (isMetaTextScore(v)) spec[TEXT_SCORE_FIELD] = -1;
      else spec[k] = v;
    }
    return { $sort: spec };
  }
  if (op === '$match' && isPlainObject(stage.$match) && '$text' in stage.$match) {
    throw fail('Location17313', '$match with $text is only allowed as the first pipeline stage');
  }
  return replaceMetaTextScore(stage) as Doc;
}

const aggregate: Handler = async (cmd, db, _seq, { storage, cursors }) => {
  const slicer = new Slicer(deadlineOf(cmd));
  const pipeline = cmd.pipeline;
  if (!Array.isArray(pipeline)) throw fail('TypeMismatch', "'pipeline' option must be specified as an array");
  if (cmd.explain) throw fail('CommandNotSupported', 'explain is not supported by the embedded server');
  const collection = cmd.aggregate === 1 ? undefined : str(cmd.aggregate, 'aggregate');
  const ns = `${db}.${collection ?? '$cmd.aggregate'}`;
  let stages = pipeline as Doc[];
  let input: Doc[] = [];
  const coll = collection ? storage.getCollection(db, collection) : undefined;
  checkHint(coll, cmd.hint);
  let scores: Map<Doc, number> | undefined;
  if (collection) {
    const first = stages[0];
    if (first && isPlainObject(first.$match)) {
      if (!coll && '$text' in first.$match) throw fail('IndexNotFound', 'text index required for $text query');
      const r = coll ? await coll.matchSliced(first.$match, Infinity, slicer) : { docs: [] as Doc[], scores: undefined };
      input = r.docs;
      scores = r.scores;
      stages = stages.slice(1);
    } else if (coll) input = [...coll.docs.values()];
  }
  let outTarget: { db: string; coll: string } | undefined;
  const last = stages[stages.length - 1];
  if (last && '$out' in last) {
    const o = last.$out;
    if (typeof o === 'string' && o) outTarget = { db, coll: o };
    else if (isPlainObject(o) && typeof o.coll === 'string' && o.coll && (o.db === undefined || (typeof o.db === 'string' && o.db))) {
      outTarget = { db: (o.db as string | undefined) ?? db, coll: o.coll };
    } else throw fail('Location16990', `$out only supports a string or object argument, but found ${bsonTypeName(o)}`);
    stages = stages.slice(0, -1);
  }
  if (stages.some((s) => isPlainObject(s) && '$merge' in s))
    throw fail('CommandNotSupported', '$merge is not supported by the embedded server');
  const copies: Doc[] = [];
  for (const d of input) {
    const c = deepCopy(d);
    if (scores) c[TEXT_SCORE_FIELD] = scores.get(d) ?? 0;
    copies.push(c);
    if (slicer.due()) await slicer.pause();
  }
  const resolver = (name: string): Doc[] => {
    const c = storage.getCollection(db, name);
    return c ? [...c.docs.values()].map(deepCopy) : [];
  };
  let results = runPipeline(
    copies,
    stages.map((s) => (isPlainObject(s) ? rewriteStage(s) : s)),
    resolver,
  );
  slicer.check();
  if (scores) {
    results = results.map((r) => {
      if (r && TEXT_SCORE_FIELD in r) {
        const { [TEXT_SCORE_FIELD]: _s, ...rest } = r;
        void _s;
        return rest;
      }
      return r;
    });
  }
  if (outTarget) {
    storage.dropCollection(outTarget.db, outTarget.coll);
    const target = storage.collection(outTarget.db, outTarget.coll);
    for (const r of results) {
      const d = idFirst(r._id === undefined ? { _id: new ObjectId(), ...r } : r);
      checkDocSize(d);
      target.insert(d);
    }
    results = [];
  }
  const batchSize = num(isPlainObject(cmd.cursor) ? cmd.cursor.batchSize : undefined);
  return cursors.open(ns, results, { batchSize });
};

const distinct: Handler = async (cmd, db, _seq, { storage }) => {
  const slicer = new Slicer(deadlineOf(cmd));
  const name = collName(cmd, 'distinct');
  const key = str(cmd.key, 'key');
  const coll = storage.getCollection(db, name);
  checkHint(coll, cmd.hint);
  const values: unknown[] = [];
  const seen = new Set<string>();
  if (coll) {
    for (const d of (await coll.matchSliced(optDoc(cmd.query, 'query'), Infinity, slicer)).docs) {
      for (const v of valuesAtPath(d, key.split('.'))) {
        for (const x of Array.isArray(v) ? v : [v]) {
          if (x === undefined) continue;
          const k = valueKey(x);
          if (!seen.has(k)) {
            seen.add(k);
            values.push(deepCopy(x));
          }
        }
      }
    }
  }
  values.sort(compareBson);
  return { values, ok: 1 };
};

function collectionInfo(c: Collection): Doc {
  return {
    name: c.name,
    type: 'collection',
    options: c.options,
    info: { readOnly: false },
    idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
  };
}

const listCollections: Handler = (cmd, db, _seq, { storage, cursors }) => {
  const d = storage.dbs.get(db);
  let infos = d ? [...d.collections.values()].map(collectionInfo) : [];
  const filter = optDoc(cmd.filter, 'filter');
  if (filter && Object.keys(filter).length) {
    const test = compileFilter(filter);
    infos = infos.filter(test);
  }
  if (cmd.nameOnly) infos = infos.map((i) => ({ name: i.name, type: i.type }));
  const batchSize = num(isPlainObject(cmd.cursor) ? cmd.cursor.batchSize : undefined);
  return cursors.open(`${db}.$cmd.listCollections`, infos, { batchSize });
};

const listDatabases: Handler = (cmd, _db, _seq, { storage }) => {
  const databases = [...storage.dbs.values()]
    .filter((d) => d.collections.size > 0)
    .map((d) => {
      let size = 0;
      for (const c of d.collections.values()) for (const doc of c.docs.values()) size += calculateObjectSize(doc);
      return cmd.nameOnly ? { name: d.name } : { name: d.name, sizeOnDisk: size, empty: size === 0 };
    });
  const totalSize = databases.reduce((s, d) => s + Number((d as Doc).sizeOnDisk ?? 0), 0);
  return cmd.nameOnly ? { databases, ok: 1 } : { databases, totalSize, totalSizeMb: Math.floor(totalSize / 1048576), ok: 1 };
};

const create: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'create');
  if (cmd.viewOn) throw fail('CommandNotSupported', 'views are not supported by the embedded server');
  if (storage.getCollection(db, name)) throw fail('NamespaceExists', `Collection ${db}.${name} already exists.`);
  const options: Doc = {};
  for (const [k, v] of Object.entries(cmd))
    if (k !== 'create' && !k.startsWith('$') && k !== 'lsid' && k !== 'writeConcern') options[k] = v;
  storage.collection(db, name, options);
  return { ok: 1 };
};

const drop: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'drop');
  const c = storage.getCollection(db, name);
  const nIndexesWas = c?.indexes.length ?? 0;
  storage.dropCollection(db, name);
  return c ? { nIndexesWas, ns: `${db}.${name}`, ok: 1 } : { ok: 1 };
};

const dropDatabase: Handler = (_cmd, db, _seq, { storage }) => {
  storage.dropDatabase(db);
  return { dropped: db, ok: 1 };
};

function nsNotFound(db: string, name: string): CommandError {
  return fail('NamespaceNotFound', `ns does not exist: ${db}.${name}`);
}

const createIndexes: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'createIndexes');
  const specs = cmd.indexes;
  if (!Array.isArray(specs) || specs.length === 0) throw fail('BadValue', 'Must specify at least one index to create');
  const existed = !!storage.getCollection(db, name);
  const coll = storage.collection(db, name);
  const before = coll.indexes.length;
  let created = 0;
  for (const raw of specs as Doc[]) {
    if (!isPlainObject(raw) || !isPlainObject(raw.key) || Object.keys(raw.key).length === 0) {
      throw fail('FailedToParse', "The 'key' field is a required property of an index specification");
    }
    if (typeof raw.name !== 'string' || !raw.name)
      throw fail('FailedToParse', "The 'name' field is a required property of an index specification");
    const spec: IndexSpec = { v: 2, key: raw.key, name: raw.name };
    for (const [k, v] of Object.entries(raw)) if (k !== 'key' && k !== 'name' && k !== 'v' && k !== 'ns' && k !== 'background') spec[k] = v;
    if (Object.values(raw.key).includes('text')) {
      const weights: Doc = { ...((raw.weights as Doc | undefined) ?? {}) };
      for (const [k, v] of Object.entries(raw.key)) if (v === 'text' && weights[k] === undefined) weights[k] = 1;
      spec.weights = weights;
      spec.default_language = raw.default_language ?? 'english';
      spec.language_override = raw.language_override ?? 'language';
      spec.textIndexVersion = 3;
    }
    if (coll.createIndex(spec)) created++;
  }
  const out: Doc = { numIndexesBefore: before, numIndexesAfter: coll.indexes.length, createdCollectionAutomatically: !existed };
  if (!created) out.note = 'all indexes already exist';
  out.ok = 1;
  return out;
};

const listIndexes: Handler = (cmd, db, _seq, { storage, cursors }) => {
  const name = collName(cmd, 'listIndexes');
  const coll = storage.getCollection(db, name);
  if (!coll) throw nsNotFound(db, name);
  const batchSize = num(isPlainObject(cmd.cursor) ? cmd.cursor.batchSize : undefined);
  return cursors.open(
    `${db}.${name}`,
    coll.indexes.map((i) => deepCopy(i)),
    { batchSize },
  );
};

const dropIndexes: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'dropIndexes');
  const coll = storage.getCollection(db, name);
  if (!coll) throw nsNotFound(db, name);
  const nIndexesWas = coll.indexes.length;
  const which = cmd.index;
  if (which === '*') {
    for (const i of coll.indexes.slice(1)) coll.dropIndex(i.name);
  } else if (typeof which === 'string') {
    coll.dropIndex(which);
  } else if (Array.isArray(which)) {
    for (const n of which) coll.dropIndex(String(n));
  } else if (isPlainObject(which)) {
    const i = coll.indexes.find((x) => sameBson(x.key, which));
    if (!i) throw fail('IndexNotFound', `can't find index with key: ${JSON.stringify(which)}`);
    coll.dropIndex(i.name);
  } else throw fail('TypeMismatch', 'invalid index specification');
  return { nIndexesWas, ok: 1 };
};

/** 'db.coll.with.dots' → ['db', 'coll.with.dots']. */
function splitNamespace(ns: string): [string, string] {
  const [db, ...rest] = ns.split('.');
  return [db, rest.join('.')];
}

const renameCollection: Handler = (cmd, _db, _seq, { storage }) => {
  const from = str(cmd.renameCollection, 'renameCollection');
  const to = str(cmd.to, 'to');
  const [fdb, fname] = splitNamespace(from);
  const [tdb, tname] = splitNamespace(to);
  const src = storage.getCollection(fdb, fname);
  if (!src) throw fail('NamespaceNotFound', 'source namespace does not exist');
  // Without this, dropTarget would drop the source and the final drop would remove the copy.
  if (fdb === tdb && fname === tname) throw fail('IllegalOperation', "Can't rename a collection to itself");
  if (storage.getCollection(tdb, tname)) {
    if (!cmd.dropTarget) throw fail('NamespaceExists', 'target namespace exists');
    storage.dropCollection(tdb, tname);
  }
  const dst = storage.collection(tdb, tname, src.options);
  for (const i of src.indexes.slice(1)) dst.createIndex(deepCopy(i));
  for (const d of src.docs.values()) dst.insert(d);
  storage.dropCollection(fdb, fname);
  return { ok: 1 };
};

const dbStats: Handler = (_cmd, db, _seq, { storage }) => {
  const d = storage.dbs.get(db);
  let objects = 0;
  let indexes = 0;
  for (const c of d?.collections.values() ?? []) {
    objects += c.docs.size;
    indexes += c.indexes.length;
  }
  return { db, collections: d?.collections.size ?? 0, views: 0, objects, dataSize: 0, storageSize: 0, indexes, indexSize: 0, ok: 1 };
};

const ok: Handler = () => ({ ok: 1 });

const noTransactions: Handler = () => {
  throw fail('IllegalOperation', 'Transaction numbers are only allowed on a replica set member or mongos');
};

const HANDLERS: Record<string, Handler> = {
  hello: hello(false),
  ismaster: hello(true),
  ping: ok,
  buildinfo: () => ({
    version: SERVER_VERSION,
    gitVersion: 'embedded',
    versionArray: [7, 0, 0, 0],
    bits: 64,
    debug: false,
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    storageEngines: ['embedded'],
    modules: [],
    ok: 1,
  }),
  insert,
  find,
  getmore: getMore,
  killcursors: killCursors,
  update,
  delete: del,
  findandmodify: findAndModify,
  count,
  aggregate,
  distinct,
  createindexes: createIndexes,
  listindexes: listIndexes,
  dropindexes: dropIndexes,
  deleteindexes: dropIndexes,
  listcollections: listCollections,
  listdatabases: listDatabases,
  create,
  drop,
  dropdatabase: dropDatabase,
  renamecollection: renameCollection,
  endsessions: ok,
  killallsessions: ok,
  killsessions: ok,
  refreshsessions: ok,
  committransaction: noTransactions,
  aborttransaction: noTransactions,
  getparameter: () => ({ featureCompatibilityVersion: { version: '7.0' }, ok: 1 }),
  getlog: () => ({ totalLinesWritten: 0, log: [], ok: 1 }),
  connectionstatus: () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 }),
  whatsmyuri: () => ({ you: '127.0.0.1:0', ok: 1 }),
  hostinfo: () => ({ system: { hostname: 'embedded' }, os: {}, extra: {}, ok: 1 }),
  serverstatus: () => ({
    host: 'embedded',
    version: SERVER_VERSION,
    process: 'embedded-mongo',
    uptime: process.uptime(),
    localTime: new Date(),
    ok: 1,
  }),
  dbstats: dbStats,
  getcmdlineopts: () => ({ argv: [], parsed: {}, ok: 1 }),
  getfreemonitoringstatus: () => ({ state: 'disabled', ok: 1 }),
};

function errorReply(e: unknown): Doc {
  if (e instanceof CommandError) return { ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName, ...e.extra };
  const err = e as { message?: string; code?: unknown };
  const code = typeof err?.code === 'number' ? err.code : Codes.BadValue;
  return { ok: 0, errmsg: err?.message ?? String(e), code, codeName: codeNameOf(code) };
}

/** Runs one command document; never throws. */
export async function runCommand(body: Doc, seq: Record<string, Doc[]>, ctx: CommandContext, defaultDb = 'admin'): Promise<Doc> {
  const name = Object.keys(body)[0];
  if (!name) return errorReply(fail('CommandNotFound', 'no command specified'));
  const handler = HANDLERS[name.toLowerCase()];
  if (!handler) return errorReply(fail('CommandNotFound', `no such command: '${name}'`));
  const db = typeof body.$db === 'string' && body.$db ? body.$db : defaultDb;
  try {
    checkCommandArgs(name.toLowerCase(), body);
    return await handler(body, db, seq, ctx);
  } catch (e) {
    return errorReply(e);
  }
}
