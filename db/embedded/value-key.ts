/**
 * The canonical string of a BSON value: equal values (1, 1.0, Long 1 and Decimal128 1.0
 * included) give equal strings, unequal values different ones. Documents are stored under the value key of their _id, and index tables key on it.
 */
import { EJSON, type ObjectId } from 'bson';
import { bsonType as bsonTypeOf, isNumeric, numericKey, type Doc } from '../../mql';

/** Canonical string for an _id (or index key component): equal BSON values ⇒ equal strings. */
export function valueKey(v: unknown): string {
  if (typeof v === 'string') return 's' + v;
  if (typeof v === 'number') return 'n' + numericKey(v);
  if (v === null || v === undefined) return 'z';
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (v instanceof Date) return 'd' + v.getTime();
  const t = bsonTypeOf(v);
  if (t === 'ObjectId') return 'o' + (v as ObjectId).toHexString();
  if (isNumeric(v)) return 'n' + numericKey(v); // Long, Int32, Double, Decimal128: by numeric value
  return 'x' + EJSON.stringify(v as Doc, { relaxed: false });
}
