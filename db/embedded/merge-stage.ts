/**
 * The aggregation stages that write (the last stage of a pipeline), as mongod runs them.
 *
 * `$out` replaces its target collection with the results, all or nothing: the results are first
 * put in a staging collection with the target's options (its validator among them) and indexes,
 * so a document that breaks a unique index, the validator or the size limit fails the command and
 * leaves the target as it was; then the target's content is swapped for them. The target keeps its
 * indexes and options.
 *
 * `$merge` writes each result document into a target collection (the same one or another, in this
 * or another database):
 *
 * - `on` (default `_id`): the fields that identify the target document. Other fields than `_id`
 *   need an existing unique index on exactly those fields (51183). A result document whose `on`
 *   field is missing, null or an array is refused (51132); a missing `_id` is generated.
 * - `whenMatched`: `merge` (default; the result's top-level fields overwrite the target's),
 *   `replace`, `keepExisting`, `fail` (an insert, hence DuplicateKey 11000), or an update pipeline
 *   that sees the result document as `$$new` (or the variables of `let`).
 * - `whenNotMatched`: `insert` (default), `discard`, `fail` (13113).
 *
 * Changing a matched document's `_id` is refused (66). The target's validator checks every document
 * written (121), as for an insert or update. Writes done before a failure stay, as in mongod. Results
 * are deep copies, so merging into the collection being read is safe.
 *
 * Both honour the aggregate command's `bypassDocumentValidation`.
 */
import { ObjectId } from 'bson';
import { bsonTypeName, deepCopy, isPlainObject, runPipeline, valuesAtPath, type Doc } from '../../mql';
import { Collection } from './collection';
import type { CommandContext } from './command-context';
import { fail } from './errors';
import { Storage } from './storage';
import type { Slicer } from './slicer';
import { checkDocSize, idFirst, sameBson, storedForm } from './stored-doc';
import { validatorFor } from './validation';
import { viewOf } from './views';

type WhenMatched = 'merge' | 'replace' | 'keepExisting' | 'fail' | Doc[];
type WhenNotMatched = 'insert' | 'discard' | 'fail';

export interface MergeSpec {
  db: string;
  coll: string;
  on: string[];
  whenMatched: WhenMatched;
  whenNotMatched: WhenNotMatched;
  let?: Doc;
}

const FIELDS = new Set(['into', 'on', 'let', 'whenMatched', 'whenNotMatched', 'targetCollectionVersion']);

/** Parses a `$merge` argument (a collection name, or the full document form). */
export function parseMerge(arg: unknown, defaultDb: string): MergeSpec {
  if (typeof arg === 'string') return { db: defaultDb, coll: checkName(arg), on: ['_id'], whenMatched: 'merge', whenNotMatched: 'insert' };
  if (!isPlainObject(arg)) throw fail('Location51182', `$merge only supports a string or object argument, not ${bsonTypeName(arg)}`);
  for (const k of Object.keys(arg)) if (!FIELDS.has(k)) throw fail('IDLUnknownField', `BSON field '$merge.${k}' is an unknown field.`);
  let db = defaultDb;
  let coll: string;
  if (typeof arg.into === 'string') coll = checkName(arg.into);
  else if (isPlainObject(arg.into) && typeof arg.into.coll === 'string') {
    coll = checkName(arg.into.coll);
    if (arg.into.db !== undefined) {
      if (typeof arg.into.db !== 'string' || !arg.into.db)
        throw fail('InvalidNamespace', `Invalid $merge target database: ${String(arg.into.db)}`);
      db = arg.into.db;
    }
  } else throw fail('Location51178', `$merge 'into' field must be either a string or an object, but found ${bsonTypeName(arg.into)}`);
  let on = ['_id'];
  if (arg.on !== undefined) {
    const list = typeof arg.on === 'string' ? [arg.on] : arg.on;
    if (!Array.isArray(list) || list.length === 0 || !list.every((f) => typeof f === 'string' && f))
      throw fail('Location51186', "$merge 'on' field must be either a string or an array of strings");
    on = [...new Set(list as string[])];
  }
  let whenMatched: WhenMatched = 'merge';
  const wm = arg.whenMatched;
  if (Array.isArray(wm)) whenMatched = wm as Doc[];
  else if (wm !== undefined) {
    if (wm !== 'merge' && wm !== 'replace' && wm !== 'keepExisting' && wm !== 'fail')
      throw fail('BadValue', `Enumeration value '${String(wm)}' for field '$merge.whenMatched' is not a valid value.`);
    whenMatched = wm;
  }
  let whenNotMatched: WhenNotMatched = 'insert';
  const wn = arg.whenNotMatched;
  if (wn !== undefined) {
    if (wn !== 'insert' && wn !== 'discard' && wn !== 'fail')
      throw fail('BadValue', `Enumeration value '${String(wn)}' for field '$merge.whenNotMatched' is not a valid value.`);
    whenNotMatched = wn;
  }
  if (arg.let !== undefined && !isPlainObject(arg.let))
    throw fail('TypeMismatch', "BSON field '$merge.let' is the wrong type, expected type 'object'");
  if (arg.let !== undefined && !Array.isArray(wm))
    throw fail('Location51199', "Cannot use 'let' variables with 'whenMatched: " + String(wm ?? 'merge') + "' mode");
  return { db, coll, on, whenMatched, whenNotMatched, ...(isPlainObject(arg.let) ? { let: arg.let } : {}) };
}

function checkName(name: string): string {
  if (!name || name.startsWith('system.') || name.includes('$') || name.includes('\0'))
    throw fail('InvalidNamespace', `Invalid $merge target collection name: '${name}'`);
  return name;
}

/** The one value of a field of `on` in a result document, or the refusal mongod answers. */
function onValue(doc: Doc, field: string): unknown {
  const vals = valuesAtPath(doc, field.split('.'));
  const v = vals.length === 1 ? vals[0] : undefined;
  if (v === undefined || v === null || Array.isArray(v))
    throw fail('Location51132', "$merge write error: 'on' field cannot be missing, null, undefined or an array");
  return v;
}

/** Replaces `$$name` / `$$name.path` strings by the literal value of that variable. */
function bindVariables(v: unknown, vars: Doc): unknown {
  if (typeof v === 'string' && v.startsWith('$$')) {
    const [name, ...path] = v.slice(2).split('.');
    if (!(name in vars)) return v;
    const found = path.length ? valuesAtPath(vars[name], path) : [vars[name]];
    return { $literal: found.length === 1 ? found[0] : found.length === 0 ? null : found };
  }
  if (Array.isArray(v)) return v.map((x) => bindVariables(x, vars));
  if (isPlainObject(v)) {
    if ('$literal' in v) return v;
    const out: Doc = {};
    for (const [k, x] of Object.entries(v)) out[k] = bindVariables(x, vars);
    return out;
  }
  return v;
}

function updated(existing: Doc, result: Doc, spec: MergeSpec): Doc {
  const w = spec.whenMatched;
  let next: Doc;
  if (w === 'replace') next = { ...result };
  else if (w === 'merge') next = { ...existing, ...result };
  else {
    let vars: Doc = { new: result };
    if (spec.let) vars = { ...vars, ...(runPipeline([deepCopy(result)], [{ $replaceWith: spec.let }])[0] ?? {}) };
    const pipeline = (w as Doc[]).map((s) => bindVariables(s, vars) as Doc);
    next = runPipeline([deepCopy(existing)], pipeline)[0] ?? {};
  }
  if (next._id === undefined) next._id = existing._id;
  else if (!sameBson({ v: next._id }, { v: existing._id }))
    throw fail('ImmutableField', '$merge failed to update the matching document, did you attempt to modify the _id field?');
  return idFirst(next);
}

/** A view cannot be written to (166), by either stage. */
function refuseView(storage: Storage, db: string, coll: string): void {
  if (viewOf(storage, db, coll)) throw fail('CommandNotSupportedOnView', `Namespace ${db}.${coll} is a view, not a collection`);
}

/** `$out`: replaces the target collection's documents with the results, or changes nothing (see above). */
export function applyOut(storage: Storage, results: Doc[], target: { db: string; coll: string }, cmd: Doc, ctx: CommandContext): void {
  if (target.coll.startsWith('system.')) throw fail('Location17385', `Can't $out to special collection: ${target.coll}`);
  refuseView(storage, target.db, target.coll);
  const existing = storage.getCollection(target.db, target.coll);
  const options = existing?.options ?? {};
  // staging: outside the catalog and never journaled (a storage of its own, without a journal)
  const staging = new Collection(new Storage(), target.db, target.coll, options);
  const indexes = existing?.indexes.slice(1).map((i) => deepCopy(i)) ?? [];
  for (const i of indexes) staging.createIndex(i, false);
  const validator = validatorFor(staging, cmd, ctx);
  for (const r of results) {
    const d = storedForm(r);
    checkDocSize(d);
    validator.check(d);
    staging.insert(d); // DuplicateKey on a repeated _id or a unique index
  }
  // every document passed: swap the target's content (no await from here on: nothing runs in
  // between), journaled as one change, so a crash in the middle leaves the target as it was
  storage.atomically(() => {
    storage.dropCollection(target.db, target.coll);
    const out = storage.collection(target.db, target.coll, options);
    for (const i of indexes) out.createIndex(deepCopy(i));
    for (const d of staging.docs.values()) out.insert(d);
  });
}

/** `$merge`: writes the pipeline's results into the target collection. */
export async function applyMerge(
  storage: Storage,
  results: Doc[],
  spec: MergeSpec,
  slicer: Slicer,
  cmd: Doc,
  ctx: CommandContext,
): Promise<void> {
  refuseView(storage, spec.db, spec.coll);
  const onId = spec.on.length === 1 && spec.on[0] === '_id';
  if (!onId) {
    const target = storage.getCollection(spec.db, spec.coll);
    const wanted = [...spec.on].sort().join('\0');
    const ok = target?.indexes.some(
      (i) => (i.name === '_id_' || i.unique === true) && !i.partialFilterExpression && Object.keys(i.key).sort().join('\0') === wanted,
    );
    if (!ok) throw fail('Location51183', 'Cannot find index to verify that join fields will be unique');
  }
  for (const r of results) {
    let doc = r;
    if (onId && doc._id === undefined) doc = { _id: new ObjectId(), ...doc };
    const key: Doc = {};
    for (const f of spec.on) key[f] = onValue(doc, f);
    const coll = storage.getCollection(spec.db, spec.coll);
    const existing = !coll
      ? undefined
      : onId
        ? coll.getById(key._id)
        : coll.match(Object.fromEntries(spec.on.map((f) => [f, { $eq: key[f] }])), 1).docs[0];
    if (!existing || spec.whenMatched === 'fail') {
      if (existing || spec.whenNotMatched === 'insert') {
        const d = storedForm(doc);
        checkDocSize(d);
        const into = storage.collection(spec.db, spec.coll);
        validatorFor(into, cmd, ctx).check(d);
        into.insert(d); // whenMatched 'fail': DuplicateKey from here
      } else if (spec.whenNotMatched === 'fail') {
        throw fail(
          'Location13113',
          '$merge could not find a matching document in the target collection for at least one document in the source collection',
        );
      }
    } else if (spec.whenMatched !== 'keepExisting') {
      const next = updated(existing, doc, spec);
      if (!sameBson(existing, next)) {
        checkDocSize(next);
        validatorFor(coll, cmd, ctx).check(next, existing);
        coll!.replace(existing, next);
      }
    }
    if (slicer.due()) await slicer.pause();
  }
}
