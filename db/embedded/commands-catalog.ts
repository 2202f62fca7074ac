/**
 * DDL and catalog commands: create, drop, renameCollection, dropDatabase, createIndexes,
 * dropIndexes, and the listings and counts of collections, indexes and databases.
 */
import { calculateObjectSize } from 'bson';
import { compileFilter, deepCopy, isPlainObject, type Doc } from '../../mql';
import { collName, num, optDoc, str } from './args';
import { CommandError, fail } from './errors';
import type { Collection } from './collection';
import type { IndexSpec } from './collection-indexes';
import type { Handler } from './command-context';
import { sameBson } from './stored-doc';
import { validationOptions } from './validation';
import { createView, viewOf, viewsIn } from './views';

function collectionInfo(c: Collection): Doc {
  return {
    name: c.name,
    type: 'collection',
    options: c.options,
    info: { readOnly: false },
    idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
  };
}

export const listCollections: Handler = (cmd, db, _seq, { storage, cursors }) => {
  const d = storage.dbs.get(db);
  let infos = d ? [...d.collections.values()].map(collectionInfo) : [];
  for (const v of viewsIn(storage, db))
    infos.push({ name: v.name, type: 'view', options: { viewOn: v.viewOn, pipeline: v.pipeline }, info: { readOnly: true } });
  const filter = optDoc(cmd.filter, 'filter');
  if (filter && Object.keys(filter).length) {
    const test = compileFilter(filter);
    infos = infos.filter(test);
  }
  if (cmd.nameOnly) infos = infos.map((i) => ({ name: i.name, type: i.type }));
  const batchSize = num(isPlainObject(cmd.cursor) ? cmd.cursor.batchSize : undefined);
  return cursors.open(`${db}.$cmd.listCollections`, infos, { batchSize });
};

export const listDatabases: Handler = (cmd, _db, _seq, { storage }) => {
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

export const create: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'create');
  if (cmd.viewOn !== undefined || cmd.pipeline !== undefined) return createView(storage, db, name, cmd.viewOn, cmd.pipeline);
  if (storage.getCollection(db, name) || viewOf(storage, db, name))
    throw fail('NamespaceExists', `Collection ${db}.${name} already exists.`);
  validationOptions(cmd, db, name);
  const options: Doc = {};
  for (const [k, v] of Object.entries(cmd))
    if (k !== 'create' && !k.startsWith('$') && k !== 'lsid' && k !== 'writeConcern') options[k] = v;
  storage.collection(db, name, options);
  return { ok: 1 };
};

/**
 * collMod of a collection (views: views.ts): `validator`, `validationLevel` and `validationAction`
 * (validation.ts enforces them); TTL and index changes are refused (115) rather than accepted and
 * not enforced.
 */
export const collMod: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'collMod');
  const coll = storage.getCollection(db, name);
  if (!coll) throw nsNotFound(db, name);
  const options = Object.keys(cmd).filter(
    (k) => k !== 'collMod' && !k.startsWith('$') && !COLLMOD_GENERIC.has(k) && !VALIDATION_OPTIONS.has(k),
  );
  if (options.length)
    throw fail(
      'CommandNotSupported',
      `collMod ${options.join(', ')} is not supported by the embedded server (validator, validationLevel and validationAction are)`,
    );
  const changes = validationOptions(cmd, db, name);
  if (Object.keys(changes).length) storage.setOptions(db, name, { ...coll.options, ...changes });
  return { ok: 1 };
};
const VALIDATION_OPTIONS = new Set(['validator', 'validationLevel', 'validationAction']);
const COLLMOD_GENERIC = new Set(['lsid', 'writeConcern', 'comment', 'maxTimeMS', 'apiVersion', 'apiStrict', 'apiDeprecationErrors']);

export const drop: Handler = (cmd, db, _seq, { storage }) => {
  const name = collName(cmd, 'drop');
  const c = storage.getCollection(db, name);
  const nIndexesWas = c?.indexes.length ?? 0;
  storage.dropCollection(db, name);
  return c ? { nIndexesWas, ns: `${db}.${name}`, ok: 1 } : { ok: 1 };
};

export const dropDatabase: Handler = (_cmd, db, _seq, { storage }) => {
  storage.dropDatabase(db);
  return { dropped: db, ok: 1 };
};

function nsNotFound(db: string, name: string): CommandError {
  return fail('NamespaceNotFound', `ns does not exist: ${db}.${name}`);
}

export const createIndexes: Handler = (cmd, db, _seq, { storage }) => {
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

export const listIndexes: Handler = (cmd, db, _seq, { storage, cursors }) => {
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

export const dropIndexes: Handler = (cmd, db, _seq, { storage }) => {
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
    const matching = coll.indexes.filter((x) => sameBson(x.key, which));
    if (!matching.length) throw fail('IndexNotFound', `can't find index with key: ${JSON.stringify(which)}`);
    if (matching.length > 1) {
      throw fail(
        'AmbiguousIndexKeyPattern',
        `${matching.length} indexes found for key: ${JSON.stringify(which)}, identify by name instead. Conflicting indexes: ${matching.map((x) => x.name).join(', ')}`,
      );
    }
    coll.dropIndex(matching[0].name);
  } else throw fail('TypeMismatch', 'invalid index specification');
  return { nIndexesWas, ok: 1 };
};

/** 'db.coll.with.dots' → ['db', 'coll.with.dots']. */
function splitNamespace(ns: string): [string, string] {
  const [db, ...rest] = ns.split('.');
  return [db, rest.join('.')];
}

export const renameCollection: Handler = (cmd, _db, _seq, { storage }) => {
  const from = str(cmd.renameCollection, 'renameCollection');
  const to = str(cmd.to, 'to');
  const [fdb, fname] = splitNamespace(from);
  const [tdb, tname] = splitNamespace(to);
  const src = storage.getCollection(fdb, fname);
  if (!src) throw fail('NamespaceNotFound', 'source namespace does not exist');
  // Without this, dropTarget would drop the source and the final drop would remove the copy.
  if (fdb === tdb && fname === tname) throw fail('IllegalOperation', "Can't rename a collection to itself");
  if (storage.getCollection(tdb, tname) && !cmd.dropTarget) throw fail('NamespaceExists', 'target namespace exists');
  // one journaled change: a crash in the middle leaves both collections as they were (mongod renames atomically)
  storage.atomically(() => {
    storage.dropCollection(tdb, tname);
    const dst = storage.collection(tdb, tname, src.options);
    for (const i of src.indexes.slice(1)) dst.createIndex(deepCopy(i));
    for (const d of src.docs.values()) dst.insert(d);
    storage.dropCollection(fdb, fname);
  });
  return { ok: 1 };
};

export const dbStats: Handler = (_cmd, db, _seq, { storage }) => {
  const d = storage.dbs.get(db);
  let objects = 0;
  let indexes = 0;
  for (const c of d?.collections.values() ?? []) {
    objects += c.docs.size;
    indexes += c.indexes.length;
  }
  return { db, collections: d?.collections.size ?? 0, views: 0, objects, dataSize: 0, storageSize: 0, indexes, indexSize: 0, ok: 1 };
};
