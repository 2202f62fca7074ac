/**
 * Rules for a document about to be stored: _id first, no `$`-prefixed field names inside _id,
 * mongod's nesting depth and BSON size limits; and byte-identical comparison (an update that changes no byte stores nothing).
 */
import { BSON, calculateObjectSize, ObjectId } from 'bson';
import { isPlainObject, type Doc } from '../../mql';
import { fail } from './errors';
import { MAX_BSON_OBJECT_SIZE } from './wire-protocol';

/** Byte-identical BSON (field order and numeric types included). */
export function sameBson(a: Doc, b: Doc): boolean {
  return Buffer.compare(BSON.serialize(a), BSON.serialize(b)) === 0;
}

export function idFirst(doc: Doc): Doc {
  if (Object.keys(doc)[0] === '_id') return doc;
  const { _id, ...rest } = doc;
  return { _id, ...rest };
}

/** A new document as stored: _id first, an ObjectId generated when it has none; an array _id is refused (BadValue). */
export function storedForm(doc: Doc): Doc {
  if (Array.isArray(doc._id)) throw fail('BadValue', "can't use an array for _id");
  return idFirst(doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc);
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

/** The first `$`-prefixed field name inside a subdocument (or array of them) of _id, if any. */
function dollarField(v: unknown): string | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      const f = dollarField(x);
      if (f) return f;
    }
  } else if (isPlainObject(v)) {
    for (const k in v) {
      if (k.startsWith('$')) return k;
      const f = dollarField(v[k]);
      if (f) return f;
    }
  }
  return undefined;
}

/** mongod's storage rules for a whole document: _id without `$`-prefixed fields (52), depth (15), size. */
export function checkDocSize(doc: Doc): void {
  const dollar = dollarField(doc._id);
  if (dollar) throw fail('DollarPrefixedFieldName', `_id fields may not contain '$'-prefixed fields: ${dollar} is not valid for storage.`);
  if (tooDeep(doc, 0)) throw fail('Overflow', `Document exceeds the maximum nesting depth of ${MAX_STORED_DEPTH} levels`);
  const size = calculateObjectSize(doc);
  if (size > MAX_BSON_OBJECT_SIZE) {
    throw fail('BSONObjectTooLarge', `object to insert too large. size in bytes: ${size}, max size: ${MAX_BSON_OBJECT_SIZE}`);
  }
}
