/**
 * CRUD commands: insert, find, getMore, killCursors, update, delete, findAndModify, count and
 * distinct. Those that may scan or write many documents run in time slices (slicer.ts) and honour
 * maxTimeMS. Write commands report per-statement failures in `writeErrors` with ok: 1, as mongod.
 */
import {
  compareBson,
  compileFilter,
  deepCopy,
  isPlainObject,
  letValues,
  sortDocs,
  stringCompare,
  valuesAtPath,
  withVariables,
  type Doc,
} from '../../mql';
import { checkStatements, collationOf, collName, deadlineOf, num, optDoc, refuseExprWithCollation, str } from './args';
import { Codes, CommandError, fail } from './errors';
import { Slicer } from './slicer';
import type { Storage } from './storage';
import type { Collection } from './collection';
import type { Handler } from './command-context';
import { checkHint } from './planner';
import { checkDocSize, storedForm } from './stored-doc';
import { buildProjector } from './text-score';
import { applyUpdate, buildUpsert, refuseUpdateWithCollation, updateKind, updateVariables } from './update-engine';
import { validatorFor } from './validation';
import { valueKey } from './value-key';

/**
 * For a document found by a sliced scan: the version stored NOW if it still matches `q`, else
 * undefined. The scan (or earlier updates of a multi-update) may have paused, letting other
 * connections replace or delete documents, or drop the collection, meanwhile.
 */
function revalidator(storage: Storage, coll: Collection | undefined, q: Doc, collation?: Doc): (found: Doc) => Doc | undefined {
  let test: ((d: Doc) => boolean) | undefined;
  const retest = !('$text' in q);
  return (found) => {
    if (!coll || storage.getCollection(coll.dbName, coll.name) !== coll) return undefined;
    const cur = coll.getById(found._id);
    if (!cur) return undefined;
    if (cur !== found && retest && !(test ??= compileFilter(q, collation))(cur)) return undefined;
    return cur;
  };
}

/** A command's `let` values (letValues: expressions evaluated once), or undefined without one. */
function commandVariables(cmd: Doc): Doc | undefined {
  return isPlainObject(cmd.let) ? letValues(cmd.let) : undefined;
}

/**
 * A write statement's filter with the command's `let` values visible to its `$expr` as $$name, and
 * its collation (refused with $expr, which mingo compares binary, as on find).
 */
function statementFilter(given: Doc | undefined, variables: Doc | undefined, collation: Doc | undefined): Doc {
  const q = given ?? {};
  refuseExprWithCollation(q, collation);
  return variables ? withVariables(q, variables) : q;
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

export const insert: Handler = async (cmd, db, seq, ctx) => {
  const { storage } = ctx;
  const name = collName(cmd, 'insert');
  const docs = statements(cmd, seq, 'documents');
  let n = 0;
  const writeErrors = await eachStatement(cmd, docs, new Slicer(deadlineOf(cmd)), (d) => {
    const coll = storage.collection(db, name); // again per statement: a pause may have let a drop in
    if (!isPlainObject(d)) throw fail('TypeMismatch', 'document must be an object');
    d = storedForm(d);
    checkDocSize(d);
    validatorFor(coll, cmd, ctx).check(d);
    coll.insert(d);
    n++;
  });
  return writeReply({ n }, writeErrors);
};

export const find: Handler = async (cmd, db, _seq, { storage, cursors }) => {
  const name = collName(cmd, 'find');
  const ns = `${db}.${name}`;
  const given = optDoc(cmd.filter, 'filter');
  // `let` variables, seen by the filter's $expr as $$name
  const filter = given && isPlainObject(cmd.let) ? withVariables(given, letValues(cmd.let)) : given;
  const collation = collationOf(cmd);
  refuseExprWithCollation(filter, collation);
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
  const { docs: matched, scores } = await coll.matchSliced(filter, !sorted && limit ? skip + limit : Infinity, slicer, collation);
  let docs = matched;
  if (sorted) docs = sortDocs(docs, sort, scores ? (d) => scores.get(d) ?? 0 : undefined, stringCompare(collation));
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

export const getMore: Handler = (cmd, _db, _seq, { cursors }) => {
  const r = cursors.getMore(cmd.getMore, num(cmd.batchSize));
  if (!r) throw fail('CursorNotFound', `cursor id ${String(cmd.getMore)} not found`);
  return r;
};

export const killCursors: Handler = (cmd, _db, _seq, { cursors }) => {
  const ids = Array.isArray(cmd.cursors) ? cmd.cursors : [];
  const { killed, notFound } = cursors.kill(ids);
  return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
};

export const update: Handler = async (cmd, db, seq, ctx) => {
  const { storage } = ctx;
  const name = collName(cmd, 'update');
  const stmts = statements(cmd, seq, 'updates');
  checkStatements('update', stmts);
  let n = 0;
  let nModified = 0;
  const upserted: Doc[] = [];
  const slicer = new Slicer(deadlineOf(cmd));
  const lets = commandVariables(cmd);
  const writeErrors = await eachStatement(cmd, stmts, slicer, async (s, i) => {
    const collation = collationOf(s);
    const q = statementFilter(optDoc(s.q, 'q'), lets, collation);
    const kind = updateKind(s.u);
    const arrayFilters = s.arrayFilters as Doc[] | undefined;
    if (kind === 'replacement' && s.multi) throw fail('FailedToParse', 'multi update is not supported for replacement-style update');
    const variables = updateVariables(kind, lets, s.c);
    refuseUpdateWithCollation(s.u, kind, arrayFilters, q, collation);
    const coll = storage.getCollection(db, name);
    checkHint(coll, s.hint);
    const sort = isPlainObject(s.sort) ? s.sort : undefined;
    let matched = coll ? (await coll.matchSliced(q, s.multi || sort ? Infinity : 1, slicer, collation)).docs : [];
    if (sort) matched = sortDocs(matched, sort, undefined, stringCompare(collation));
    if (!s.multi) matched = matched.slice(0, 1);
    const current = revalidator(storage, coll, q, collation);
    let seen = 0;
    for (const found of matched) {
      const doc = current(found);
      if (!doc) continue;
      seen++;
      const next = applyUpdate(doc, s.u, kind, arrayFilters, false, q, variables);
      n++;
      if (next) {
        checkDocSize(next);
        validatorFor(coll, cmd, ctx).check(next, doc);
        coll!.replace(doc, next);
        nModified++;
      }
      if (slicer.due()) await slicer.pause();
    }
    if (seen === 0 && s.upsert) {
      const doc = buildUpsert(q, s.u, kind, arrayFilters, variables);
      checkDocSize(doc);
      const target = storage.collection(db, name);
      validatorFor(target, cmd, ctx).check(doc);
      target.insert(doc);
      n++;
      upserted.push({ index: i, _id: doc._id });
    }
  });
  return writeReply(upserted.length ? { n, nModified, upserted } : { n, nModified }, writeErrors);
};

export const del: Handler = async (cmd, db, seq, { storage }) => {
  const name = collName(cmd, 'delete');
  const stmts = statements(cmd, seq, 'deletes');
  checkStatements('delete', stmts);
  let n = 0;
  const slicer = new Slicer(deadlineOf(cmd));
  const lets = commandVariables(cmd);
  const writeErrors = await eachStatement(cmd, stmts, slicer, async (s) => {
    const collation = collationOf(s);
    const q = statementFilter(optDoc(s.q, 'q'), lets, collation);
    const coll = storage.getCollection(db, name);
    checkHint(coll, s.hint);
    if (!coll) return;
    const matched = (await coll.matchSliced(q, Number(s.limit) === 1 ? 1 : Infinity, slicer, collation)).docs;
    const current = revalidator(storage, coll, q, collation);
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

export const findAndModify: Handler = (cmd, db, _seq, ctx) => {
  const { storage } = ctx;
  const name = str(cmd.findAndModify ?? cmd.findandmodify, 'collection name');
  const collation = collationOf(cmd);
  const variables = commandVariables(cmd);
  const query = statementFilter(optDoc(cmd.query, 'query'), variables, collation);
  const sort = optDoc(cmd.sort, 'sort');
  const fields = optDoc(cmd.fields, 'fields');
  const project = buildProjector(fields);
  const out = (d: Doc | null): Doc | null => (d && project ? project(d) : d);
  const coll = storage.getCollection(db, name);
  checkHint(coll, cmd.hint);
  const sorted = !!sort && Object.keys(sort).length > 0;
  if (cmd.remove) {
    if (cmd.update !== undefined) throw fail('FailedToParse', 'Cannot specify both an update and remove=true');
  } else if (cmd.update === undefined) throw fail('FailedToParse', 'Either an update or remove=true must be specified');
  const kind = cmd.remove ? undefined : updateKind(cmd.update);
  const arrayFilters = cmd.arrayFilters as Doc[] | undefined;
  if (kind) refuseUpdateWithCollation(cmd.update, kind, arrayFilters, query, collation);
  let matched = coll ? coll.match(query, sorted ? Infinity : 1, collation).docs : [];
  if (sorted) matched = sortDocs(matched, sort, undefined, stringCompare(collation));
  const doc = matched[0];
  if (!kind) {
    if (doc) coll!.remove(doc);
    return { lastErrorObject: { n: doc ? 1 : 0 }, value: out(doc ?? null), ok: 1 };
  }
  if (doc) {
    const next = applyUpdate(doc, cmd.update, kind, arrayFilters, false, query, variables);
    if (next) {
      checkDocSize(next);
      validatorFor(coll, cmd, ctx).check(next, doc);
      coll!.replace(doc, next);
    }
    return { lastErrorObject: { n: 1, updatedExisting: true }, value: out(cmd.new ? (next ?? doc) : doc), ok: 1 };
  }
  if (cmd.upsert) {
    const created = buildUpsert(query, cmd.update, kind, arrayFilters, variables);
    checkDocSize(created);
    const target = storage.collection(db, name);
    validatorFor(target, cmd, ctx).check(created);
    target.insert(created);
    return {
      lastErrorObject: { n: 1, updatedExisting: false, upserted: created._id },
      value: cmd.new ? out(created) : null,
      ok: 1,
    };
  }
  return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
};

export const count: Handler = async (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'count');
  const coll = storage.getCollection(db, name);
  const query = optDoc(cmd.query, 'query');
  const collation = collationOf(cmd);
  refuseExprWithCollation(query, collation);
  checkHint(coll, cmd.hint);
  const skip = num(cmd.skip) ?? 0;
  const limit = Math.abs(num(cmd.limit) ?? 0);
  const slicer = new Slicer(deadlineOf(cmd));
  let n = coll
    ? query && Object.keys(query).length
      ? (await coll.matchSliced(query, limit ? skip + limit : Infinity, slicer, collation)).docs.length
      : coll.docs.size
    : 0;
  n = Math.max(0, n - skip);
  if (limit) n = Math.min(n, limit);
  return { n, ok: 1 };
};

export const distinct: Handler = async (cmd, db, _seq, { storage }) => {
  const slicer = new Slicer(deadlineOf(cmd));
  const name = collName(cmd, 'distinct');
  const key = str(cmd.key, 'key');
  const coll = storage.getCollection(db, name);
  checkHint(coll, cmd.hint);
  const values: unknown[] = [];
  const seen = new Set<string>();
  const query = optDoc(cmd.query, 'query');
  const collation = collationOf(cmd);
  refuseExprWithCollation(query, collation);
  if (coll) {
    for (const d of (await coll.matchSliced(query, Infinity, slicer, collation)).docs) {
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
  const strings = stringCompare(collation);
  if (!strings) {
    values.sort(compareBson);
    return { values, ok: 1 };
  }
  // With a collation, values equal under it are one value (the first met is kept).
  const ordered = values.map((v, i) => ({ v, i })).sort((a, b) => compareBson(a.v, b.v, strings) || a.i - b.i);
  const kept = ordered.filter((x, j) => j === 0 || compareBson(ordered[j - 1].v, x.v, strings) !== 0).map((x) => x.v);
  return { values: kept, ok: 1 };
};
