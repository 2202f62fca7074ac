/**
 * The update engine: what kind an update is (operators, replacement or pipeline), applying it to
 * one document (mongod's checks first: conflicting paths, $inc/$mul type checks and exact 64-bit
 * $inc), and building the document an upsert inserts from the query's equality fields.
 */
import { ObjectId } from 'bson';
import { applyModifiers, arithmetic, bsonTypeName, deepCopy, isNumeric, isPlainObject, runPipeline, type Doc } from '../../mql';
import { fail } from './errors';
import { isOperatorObject } from './planner';
import { idFirst, sameBson } from './stored-doc';
import { valueKey } from './value-key';

export type UpdateKind = 'operator' | 'replacement' | 'pipeline';

export function updateKind(u: unknown): UpdateKind {
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

/** Returns the new document, or undefined when nothing changed. */
export function applyUpdate(
  doc: Doc,
  u: unknown,
  kind: UpdateKind,
  arrayFilters: Doc[] | undefined,
  isInsert: boolean,
  query?: Doc,
  variables?: Doc,
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
    let out = runPipeline([deepCopy(doc)], u as Doc[], undefined, variables)[0];
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
    if (Object.keys(mods).length) changed = applyModifiers(copy, mods, arrayFilters, condition);
    if (isInsert && setOnInsert && Object.keys(setOnInsert).length) {
      changed = changed.concat(applyModifiers(copy, { $set: setOnInsert }));
    }
  } catch (e) {
    const msg = (e as Error).message;
    if (/immutable field '_id'/.test(msg)) throw fail('ImmutableField', msg);
    throw /Unknown update operator/.test(msg) ? fail('FailedToParse', msg) : fail('BadValue', msg);
  }
  if (!isInsert && changed.length === 0) return undefined;
  return copy;
}

/**
 * The variables a pipeline update sees: the command's `let` values and the statement's constants
 * (`c`, taken as they are, not evaluated). Constants are for pipeline updates only, as in mongod
 * (51198).
 */
export function updateVariables(kind: UpdateKind, lets: Doc | undefined, constants: unknown): Doc | undefined {
  if (constants === undefined || constants === null) return lets;
  if (kind !== 'pipeline') throw fail('Location51198', 'Constant values may only be specified for pipeline updates');
  return { ...lets, ...(constants as Doc) };
}

const STRING_COMPARING_MODIFIERS = ['$addToSet', '$pull', '$pullAll', '$min', '$max'];
/** Expression operators that compare values (with a collation, mongod compares their strings by it). */
const COMPARING_EXPRESSIONS = new Set([
  '$eq',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$cmp',
  '$in',
  '$indexOfArray',
  '$min',
  '$max',
  '$setEquals',
  '$setIntersection',
  '$setUnion',
  '$setDifference',
  '$setIsSubset',
  '$sortArray',
  '$maxN',
  '$minN',
]);

function containsString(v: unknown): boolean {
  if (typeof v === 'string') return true;
  if (Array.isArray(v)) return v.some(containsString);
  return isPlainObject(v) && Object.values(v).some(containsString);
}

function containsKey(v: unknown, keys: Set<string>): string | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const k = containsKey(x, keys);
      if (k) return k;
    }
  } else if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (keys.has(k)) return k;
      const found = containsKey(x, keys);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * With a collation, mongod also compares strings by it inside an update: $addToSet, $pull,
 * $pullAll, $min, $max, $push's $sort, arrayFilters, the positional `$` (the query's match) and
 * comparing expressions of a pipeline update. mingo's update operators compare binary, so such an
 * update is refused (115) instead of being applied differently; the filter itself is matched with
 * the collation.
 */
export function refuseUpdateWithCollation(
  u: unknown,
  kind: UpdateKind,
  arrayFilters: Doc[] | undefined,
  query: Doc | undefined,
  collation: Doc | undefined,
): void {
  if (!collation || kind === 'replacement') return;
  const refuse = (what: string): never => {
    throw fail(
      'CommandNotSupported',
      `${what} with a collation is not supported by the embedded server (it matches the filter by the collation but would compare binary there); use MongoDB for it`,
    );
  };
  if (kind === 'pipeline') {
    const op = containsKey(u, COMPARING_EXPRESSIONS);
    if (op) refuse(`${op} in a pipeline update`);
    return;
  }
  const mods = u as Doc;
  for (const op of STRING_COMPARING_MODIFIERS) if (op in mods && containsString(mods[op])) refuse(op);
  if (isPlainObject(mods.$push) && Object.values(mods.$push).some((v) => isPlainObject(v) && '$sort' in v)) refuse('$push with $sort');
  if (arrayFilters?.length && containsString(arrayFilters)) refuse('arrayFilters');
  const positional = Object.values(mods).some((m) => isPlainObject(m) && Object.keys(m).some((k) => /\.\$(\.|$)/.test(k)));
  if (positional && containsString(query)) refuse("the positional '$' operator");
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
 * $inc/$mul as mongod: a non-numeric argument or target (null included) is TypeMismatch (14); the
 * result follows mongod's numeric promotion (mql arithmetic: int32 overflowing into a long, long
 * with double a double, anything with a Decimal128 a Decimal128; a long overflow is refused). For
 * plain paths the result is computed here and applied as a $set; positional paths stay with mingo.
 */
function checkArithmetic(doc: Doc, mods: Doc): void {
  for (const op of ['$inc', '$mul'] as const) {
    const spec = mods[op];
    if (!isPlainObject(spec)) continue;
    for (const [path, by] of Object.entries(spec)) {
      if (!isNumeric(by)) {
        throw fail(
          'TypeMismatch',
          `Cannot ${op === '$inc' ? 'increment' : 'multiply'} with non-numeric argument: {${path}: ${JSON.stringify(by)}}`,
        );
      }
      if (path.includes('$')) continue;
      const at = lookup(doc, path);
      if (at.found && !isNumeric(at.value)) {
        throw fail(
          'TypeMismatch',
          `Cannot apply ${op} to a value of non-numeric type. {_id: ${JSON.stringify(String(doc._id))}} has the field '${path.split('.').pop()}' of non-numeric type ${bsonTypeName(at.value)}`,
        );
      }
      const result = arithmetic(op === '$inc' ? 'add' : 'mul', at.found ? at.value : 0, by);
      if (result === undefined) {
        throw fail(
          'BadValue',
          `Failed to apply ${op} operations to current value (${String(at.value)}) for document {_id: ${JSON.stringify(String(doc._id))}}`,
        );
      }
      mods.$set = { ...((mods.$set as Doc | undefined) ?? {}), [path]: result };
      const rest = { ...(mods[op] as Doc) };
      delete rest[path];
      if (Object.keys(rest).length) mods[op] = rest;
      else delete mods[op];
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

export function buildUpsert(q: Doc | undefined, u: unknown, kind: UpdateKind, arrayFilters: Doc[] | undefined, variables?: Doc): Doc {
  const seed = upsertSeed(q);
  let doc: Doc;
  if (kind === 'replacement') {
    doc = { ...(u as Doc) }; // used once, like applyUpdate's replacement
    if (doc._id === undefined && seed._id !== undefined) doc._id = seed._id;
  } else {
    doc = applyUpdate(seed, u, kind, arrayFilters, true, undefined, variables) ?? seed;
  }
  if (doc._id === undefined) doc._id = new ObjectId();
  return idFirst(doc);
}
