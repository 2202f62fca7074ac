/**
 * Values as MongoDB sees them: plain documents versus BSON value classes, BSON type names, and the
 * deep copy the embedded database hands out (stored data is never shared with a caller).
 */

/** A document (or any JSON-like object) with string keys. */
export type Doc = Record<string, unknown>;

type BsonLike = { _bsontype?: string };
/** The `_bsontype` of a bson value class instance (ObjectId, Long, Decimal128, …), else undefined. */
export const bsonType = (v: unknown): string | undefined => (v !== null && typeof v === 'object' ? (v as BsonLike)._bsontype : undefined);

/**
 * A plain object: `{}` literal, JSON.parse output or a decoded BSON document; not an array, Date,
 * RegExp or bson value class (ObjectId, Long, …). The one test for "is this a document" everywhere.
 */
export function isPlainObject(v: unknown): v is Doc {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/**
 * Sets a field on a document being built. A field named `__proto__` (JSON.parse and BSON decoding
 * make it an own field, as MongoDB stores it) must be defined: assigning it would set the object's
 * prototype instead, and the field would be gone.
 */
export function setField(out: Doc, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  else out[k] = v;
}

/** Deep copy of plain objects/arrays/Dates; bson value classes are immutable and shared. */
export function deepCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(deepCopy) as unknown as T;
  if (v instanceof Date) return new Date(v.getTime()) as unknown as T;
  if (isPlainObject(v)) {
    const out: Doc = {};
    for (const k of Object.keys(v)) setField(out, k, deepCopy(v[k]));
    return out as T;
  }
  return v;
}

/** BSON type aliases by number, as `$type` accepts them. */
export const TYPE_ALIASES: Record<string, string> = {
  1: 'double',
  2: 'string',
  3: 'object',
  4: 'array',
  5: 'binData',
  6: 'undefined',
  7: 'objectId',
  8: 'bool',
  9: 'date',
  10: 'null',
  11: 'regex',
  13: 'javascript',
  16: 'int',
  17: 'timestamp',
  18: 'long',
  19: 'decimal',
  [-1]: 'minKey',
  127: 'maxKey',
};

/** The BSON type name (`$type` spelling) of a decoded value. A JS integer in int32 range is 'int'. */
export function bsonTypeName(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? 'int' : 'double';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'date';
  if (v instanceof RegExp) return 'regex';
  switch (bsonType(v)) {
    case 'ObjectId':
      return 'objectId';
    case 'Long':
      return 'long';
    case 'Decimal128':
      return 'decimal';
    case 'Double':
      return 'double';
    case 'Int32':
      return 'int';
    case 'Binary':
      return 'binData';
    case 'Timestamp':
      return 'timestamp';
    case 'MinKey':
      return 'minKey';
    case 'MaxKey':
      return 'maxKey';
    case 'Code':
      return 'javascript';
    case 'BSONRegExp':
      return 'regex';
    case 'BSONSymbol':
      return 'symbol';
  }
  return 'object';
}
