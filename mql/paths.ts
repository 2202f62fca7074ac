/**
 * Dotted paths as mongod walks them. At an array on the way, the walk continues into each element
 * that is a document (never into an element that is itself an array), and a numeric component also
 * selects the element at that index. At the end of the path an array counts both as a whole and
 * through each of its elements (one level), for the operators that compare single values.
 *
 *   {'a.b': 1} matches {a: [{b: 1}]} and {a: {b: [1]}}, but not {a: [[{b: 1}]]} nor {a: [[1], 3]}.
 */
import { bsonType, isPlainObject, type Doc } from './values';

const isIndex = (key: string): boolean => /^\d+$/.test(key);

/** A walked-into subdocument: plain objects only (Dates, ObjectIds, … have no fields). */
const isWalkable = (v: unknown): v is Doc =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !bsonType(v);

/** All values reached by a dotted path (terminal arrays not expanded); used by indexes, sort and distinct. */
export function valuesAtPath(doc: unknown, path: string[], i = 0, out: unknown[] = []): unknown[] {
  if (i === path.length) {
    out.push(doc);
    return out;
  }
  if (Array.isArray(doc)) {
    const key = path[i];
    if (isIndex(key)) {
      const idx = Number(key);
      if (idx < doc.length) valuesAtPath(doc[idx], path, i + 1, out);
    }
    for (const el of doc) if (isWalkable(el)) valuesAtPath(el, path, i, out);
    return out;
  }
  if (isWalkable(doc)) {
    if (Object.prototype.hasOwnProperty.call(doc, path[i])) valuesAtPath(doc[path[i]], path, i + 1, out);
  }
  return out;
}

/** What a path yields for matching: a value, or MISSING where a document lacks the field. */
export const MISSING: unique symbol = Symbol('missing');
export type PathValue = unknown | typeof MISSING;

/**
 * The values a filter condition on `path` is tested against, as mongod's matcher iterates them:
 * each value reached; for a terminal array (when `expandArrays`), its elements too; MISSING for a
 * document on the way that lacks the next field (so `{'a.b': null}` matches `{a: [{c: 1}]}`), or
 * when nothing at all is reached.
 */
export function matchValues(doc: unknown, path: string, expandArrays = true): PathValue[] {
  const parts = path.split('.');
  const out: PathValue[] = [];
  const walk = (cur: unknown, i: number): void => {
    if (i === parts.length) {
      out.push(cur);
      if (expandArrays && Array.isArray(cur)) for (const e of cur) out.push(e);
      return;
    }
    const key = parts[i];
    if (Array.isArray(cur)) {
      if (isIndex(key) && Number(key) < cur.length) walk(cur[Number(key)], i + 1);
      for (const el of cur) if (isWalkable(el)) walk(el, i);
      return;
    }
    if (isWalkable(cur) && Object.prototype.hasOwnProperty.call(cur, key) && cur[key] !== undefined) walk(cur[key], i + 1);
    else if (isPlainObject(cur) || i === 0) out.push(MISSING);
  };
  walk(doc, 0);
  if (out.length === 0) out.push(MISSING);
  return out;
}
