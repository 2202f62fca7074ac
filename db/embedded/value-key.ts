/**
 * The canonical string of a BSON value: equal values (1, 1.0 and Long 1 included) give equal
 * strings. Documents are stored under the value key of their _id, and index tables key on it.
 */
import { EJSON, type ObjectId } from 'bson';
import { bsonType as bsonTypeOf, type Doc } from './mingo-boundary';

/** Canonical string for an _id (or index key component): equal BSON values ⇒ equal strings. */
export function valueKey(v: unknown): string {
  if (typeof v === 'string') return 's' + v;
  if (typeof v === 'number') return 'n' + (Object.is(v, -0) ? 0 : v);
  if (v === null || v === undefined) return 'z';
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (v instanceof Date) return 'd' + v.getTime();
  const t = bsonTypeOf(v);
  if (t === 'ObjectId') return 'o' + (v as ObjectId).toHexString();
  if (t === 'Long' || t === 'Int32' || t === 'Double') return 'n' + String(v);
  return 'x' + EJSON.stringify(v as Doc, { relaxed: false });
}
