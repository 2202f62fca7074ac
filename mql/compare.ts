/**
 * The BSON total order, as mongod compares and sorts values: MinKey < null < numbers < strings <
 * objects < arrays < binData < ObjectId < bool < date < timestamp < regex < MaxKey; numbers of all
 * four kinds compare by value (numbers.ts). Sorting an array field uses its smallest element
 * ascending and its largest descending; an empty array sorts before null.
 */
import type { StringCompare } from './collation';
import { compareNumbers } from './numbers';
import { valuesAtPath } from './paths';
import { bsonType, type Doc } from './values';

const EMPTY_ARRAY = Symbol('emptyArray');

/** The position of a value's type in the BSON order (numbers share one rank, as do strings and symbols). */
export function typeRank(v: unknown): number {
  if (v === EMPTY_ARRAY) return 1.5;
  if (v === undefined || v === null) return 2;
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return 3;
    case 'string':
      return 4;
    case 'boolean':
      return 9;
  }
  if (Array.isArray(v)) return 6;
  if (v instanceof Date) return 10;
  if (v instanceof RegExp) return 12;
  switch (bsonType(v)) {
    case 'MinKey':
      return 1;
    case 'Long':
    case 'Double':
    case 'Int32':
    case 'Decimal128':
      return 3;
    case 'BSONSymbol':
      return 4;
    case 'Binary':
      return 7;
    case 'ObjectId':
      return 8;
    case 'Timestamp':
      return 11;
    case 'BSONRegExp':
      return 12;
    case 'MaxKey':
      return 13;
  }
  return 5; // object
}

const cmpPrim = <T>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Total order over BSON values, as mongod compares them. `strings` compares strings (a collation,
 * collation.ts); binary by default. Field names are compared binary either way.
 */
export function compareBson(a: unknown, b: unknown, strings?: StringCompare): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1:
    case 1.5:
    case 2:
    case 13:
      return 0;
    case 3:
      return compareNumbers(a, b);
    case 4:
      return strings ? Math.sign(strings(String(a), String(b))) : cmpPrim(String(a), String(b));
    case 5: {
      const ka = Object.keys(a as Doc);
      const kb = Object.keys(b as Doc);
      for (let i = 0; i < Math.min(ka.length, kb.length); i++) {
        const va = (a as Doc)[ka[i]];
        const vb = (b as Doc)[kb[i]];
        const t = cmpPrim(typeRank(va), typeRank(vb));
        if (t) return t;
        const k = cmpPrim(ka[i], kb[i]);
        if (k) return k;
        const c = compareBson(va, vb, strings);
        if (c) return c;
      }
      return cmpPrim(ka.length, kb.length);
    }
    case 6: {
      const xa = a as unknown[];
      const xb = b as unknown[];
      for (let i = 0; i < Math.min(xa.length, xb.length); i++) {
        const c = compareBson(xa[i], xb[i], strings);
        if (c) return c;
      }
      return cmpPrim(xa.length, xb.length);
    }
    case 7: {
      const ba = a as { buffer: Uint8Array; sub_type: number };
      const bb = b as { buffer: Uint8Array; sub_type: number };
      return (
        cmpPrim(ba.buffer.length, bb.buffer.length) ||
        cmpPrim(ba.sub_type, bb.sub_type) ||
        Buffer.compare(Buffer.from(ba.buffer), Buffer.from(bb.buffer))
      );
    }
    case 8:
      return cmpPrim(String(a), String(b)); // hex of 12 bytes orders like the bytes
    case 9:
      return cmpPrim(Number(a), Number(b));
    case 10:
      return cmpPrim((a as Date).getTime(), (b as Date).getTime());
    case 11:
      return cmpPrim((a as { toNumber(): number }).toNumber(), (b as { toNumber(): number }).toNumber());
    case 12: {
      const sa = a as { source: string; flags?: string; pattern?: string; options?: string };
      const sb = b as { source: string; flags?: string; pattern?: string; options?: string };
      return (
        cmpPrim(sa.source ?? sa.pattern, sb.source ?? sb.pattern) || cmpPrim(sa.flags ?? sa.options ?? '', sb.flags ?? sb.options ?? '')
      );
    }
  }
  return 0;
}

/** The value a document sorts by for one key and direction. */
export function sortKey(doc: unknown, path: string, dir: number, strings?: StringCompare): unknown {
  const vals = valuesAtPath(doc, path.split('.'));
  const flat: unknown[] = [];
  for (const v of vals) {
    if (Array.isArray(v)) {
      if (v.length === 0) flat.push(EMPTY_ARRAY);
      else flat.push(...v);
    } else flat.push(v);
  }
  if (flat.length === 0) return null;
  let best = flat[0];
  for (let i = 1; i < flat.length; i++) {
    const c = compareBson(flat[i], best, strings);
    if (dir < 0 ? c > 0 : c < 0) best = flat[i];
  }
  return best;
}

export type SortSpec = Record<string, unknown>;
export type ScoreOf = (doc: Doc) => number;

/**
 * Stable sort by a mongod sort spec; `{$meta: 'textScore'}` keys use scoreOf (descending); strings
 * by `strings` (a collation) when given.
 */
export function sortDocs<T extends Doc>(docs: T[], spec: SortSpec, scoreOf?: ScoreOf, strings?: StringCompare): T[] {
  const keys = Object.entries(spec).map(([path, d]) => {
    if (d !== null && typeof d === 'object' && (d as Doc).$meta === 'textScore') return { path, dir: -1, meta: true };
    const n = typeof d === 'number' ? d : Number(d);
    if (n !== 1 && n !== -1)
      throw Object.assign(new Error(`$sort key ordering must be 1 (for ascending) or -1 (for descending)`), { code: 15975 });
    return { path, dir: n, meta: false };
  });
  if (keys.length === 0) return docs;
  const decorated = docs.map((doc, i) => ({
    doc,
    i,
    k: keys.map((k) => (k.meta ? (scoreOf ? scoreOf(doc) : 0) : k.path === '$natural' ? i : sortKey(doc, k.path, k.dir, strings))),
  }));
  decorated.sort((x, y) => {
    for (let j = 0; j < keys.length; j++) {
      const c = compareBson(x.k[j], y.k[j], strings);
      if (c) return keys[j].dir * c;
    }
    return x.i - y.i;
  });
  return decorated.map((d) => d.doc);
}
