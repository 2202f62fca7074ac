/**
 * Where mingo differs observably from mongod, and how we bridge it.
 *
 * - Equality of ObjectId/Date: mingo's isEqual compares same-constructor objects with a
 *   custom toString (ObjectId → hex) and Dates by time value, which matches mongod. No fix needed,
 *   but the conformance suite pins it.
 * - Sort order: mingo ranks unknown types (ObjectId, Long, Decimal128, Binary, Timestamp…) after
 *   everything else and compares arrays as sorted sets. mongod uses the BSON type order
 *   (MinKey < null < numbers < strings < objects < arrays < binData < ObjectId < bool < date <
 *   timestamp < regex < MaxKey), ascending sorts use an array's smallest element and descending its
 *   largest. We replace mingo's `$sort` pipeline operator with `bsonSort`, and find() sorts with
 *   the same comparator.
 * - `$type`: mingo knows neither `objectId` nor `binData`/`timestamp`/`decimal`/`long` as BSON
 *   types; we replace the `$type` query operator.
 * - Copies: documents handed to mingo are either stored documents that mingo only reads (match,
 *   projection) or our own deep copies (update, aggregate), so mingo never mutates stored data.
 */
import { Aggregator, Context, Query } from 'mingo';
import { $regex, $regexFind, $regexFindAll, $regexMatch } from './linear-regex';

/* tsconfig uses moduleResolution "node", which ignores package "exports" subpaths; load at runtime. */
interface Iterator {
  transform(f: (items: unknown[]) => unknown): Iterator;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Lazy } = require('mingo/lazy') as { Lazy: (src: unknown[]) => Iterator };
type Options = NonNullable<ConstructorParameters<typeof Query>[1]>;

export type Doc = Record<string, unknown>;

type BsonLike = { _bsontype?: string };
/** The `_bsontype` of a bson value class instance (ObjectId, Long, …), else undefined. */
export const bsonType = (v: unknown): string | undefined => (v !== null && typeof v === 'object' ? (v as BsonLike)._bsontype : undefined);

export function isPlainObject(v: unknown): v is Doc {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** Deep copy of plain objects/arrays/Dates; bson value classes are immutable and shared. */
export function deepCopy<T>(v: T): T {
  if (Array.isArray(v)) return v.map(deepCopy) as unknown as T;
  if (v instanceof Date) return new Date(v.getTime()) as unknown as T;
  if (isPlainObject(v)) {
    const out: Doc = {};
    for (const k of Object.keys(v)) out[k] = deepCopy(v[k]);
    return out as T;
  }
  return v;
}

// ---------- BSON type order & comparison ----------

const EMPTY_ARRAY = Symbol('emptyArray');

function typeRank(v: unknown): number {
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

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const t = bsonType(v);
  if (t === 'Long' || t === 'Timestamp') return (v as { toNumber(): number }).toNumber();
  if (t === 'Double' || t === 'Int32') return (v as { valueOf(): number }).valueOf();
  if (t === 'Decimal128') return parseFloat(String(v));
  return NaN;
}

const cmpPrim = <T>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);

/** Total order over BSON values, as mongod compares them. */
export function compareBson(a: unknown, b: unknown): number {
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 1:
    case 1.5:
    case 2:
    case 13:
      return 0;
    case 3: {
      const x = toNumber(a);
      const y = toNumber(b);
      if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : -1; // NaN sorts first among numbers
      if (Number.isNaN(y)) return 1;
      return cmpPrim(x, y);
    }
    case 4:
      return cmpPrim(String(a), String(b));
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
        const c = compareBson(va, vb);
        if (c) return c;
      }
      return cmpPrim(ka.length, kb.length);
    }
    case 6: {
      const xa = a as unknown[];
      const xb = b as unknown[];
      for (let i = 0; i < Math.min(xa.length, xb.length); i++) {
        const c = compareBson(xa[i], xb[i]);
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
      return cmpPrim(toNumber(a), toNumber(b));
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

/** All values reached by a dotted path, traversing arrays of subdocuments like mongod. */
export function valuesAtPath(doc: unknown, path: string[], i = 0, out: unknown[] = []): unknown[] {
  if (i === path.length) {
    out.push(doc);
    return out;
  }
  if (Array.isArray(doc)) {
    const key = path[i];
    if (/^\d+$/.test(key)) {
      const idx = Number(key);
      if (idx < doc.length) valuesAtPath(doc[idx], path, i + 1, out);
    }
    for (const el of doc) if (el !== null && typeof el === 'object' && !Array.isArray(el)) valuesAtPath(el, path, i, out);
    return out;
  }
  if (doc !== null && typeof doc === 'object' && !(doc instanceof Date) && !bsonType(doc)) {
    const d = doc as Doc;
    if (Object.prototype.hasOwnProperty.call(d, path[i])) valuesAtPath(d[path[i]], path, i + 1, out);
  }
  return out;
}

/** The value a document sorts by for one key and direction. */
export function sortKey(doc: unknown, path: string, dir: number): unknown {
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
    const c = compareBson(flat[i], best);
    if (dir < 0 ? c > 0 : c < 0) best = flat[i];
  }
  return best;
}

export type SortSpec = Record<string, unknown>;
export type ScoreOf = (doc: Doc) => number;

/** Stable sort by a mongod sort spec; `{$meta: 'textScore'}` keys use scoreOf (descending). */
export function sortDocs<T extends Doc>(docs: T[], spec: SortSpec, scoreOf?: ScoreOf): T[] {
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
    k: keys.map((k) => (k.meta ? (scoreOf ? scoreOf(doc) : 0) : k.path === '$natural' ? i : sortKey(doc, k.path, k.dir))),
  }));
  decorated.sort((x, y) => {
    for (let j = 0; j < keys.length; j++) {
      const c = compareBson(x.k[j], y.k[j]);
      if (c) return keys[j].dir * c;
    }
    return x.i - y.i;
  });
  return decorated.map((d) => d.doc);
}

// ---------- $type ----------

const TYPE_ALIASES: Record<string, string> = {
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

function typeMatches(v: unknown, t: unknown): boolean {
  const name = typeof t === 'number' ? TYPE_ALIASES[String(t)] : String(t);
  const actual = bsonTypeName(v);
  if (name === 'number') return ['int', 'double', 'long', 'decimal'].includes(actual);
  return actual === name;
}

type QueryOp = (selector: string, value: unknown, options: Options) => (obj: Doc) => boolean;
const $type: QueryOp = (selector, value) => {
  const wanted = Array.isArray(value) ? value : [value];
  const path = selector.split('.');
  return (obj) =>
    valuesAtPath(obj, path).some((v) => wanted.some((t) => typeMatches(v, t) || (Array.isArray(v) && v.some((e) => typeMatches(e, t)))));
};

const $sort = (coll: Iterator, spec: SortSpec): Iterator => coll.transform((docs: unknown[]) => Lazy(sortDocs(docs as Doc[], spec)));

/*
 * Context.from() merges left-to-right with the FIRST definition winning, and mingo's exported
 * Query/Aggregator always put mingo's own context first, so overrides passed through options are
 * ignored. We therefore build the complete operator context ourselves and use the unwrapped base
 * classes (mingo/query, mingo/aggregator), which take the context from options as is.
 */
type OpTable = Record<string, unknown>;
const load = (m: string): OpTable => require(m) as OpTable; // eslint-disable-line @typescript-eslint/no-require-imports
const CONTEXT = Context.init({
  accumulator: load('mingo/operators/accumulator'),
  expression: { ...load('mingo/operators/expression'), $regexMatch, $regexFind, $regexFindAll }, // RE2: linear-regex.ts
  pipeline: { ...load('mingo/operators/pipeline'), $sort },
  projection: load('mingo/operators/projection'),
  query: { ...load('mingo/operators/query'), $type, $regex }, // $regex on RE2: linear-regex.ts
  window: load('mingo/operators/window'),
} as never);
const BaseQuery = (require('mingo/query') as { Query: typeof Query }).Query; // eslint-disable-line @typescript-eslint/no-require-imports
const BaseAggregator = (require('mingo/aggregator') as { Aggregator: typeof Aggregator }).Aggregator; // eslint-disable-line @typescript-eslint/no-require-imports

export type CollectionResolver = (name: string) => Doc[];

export function mingoOptions(resolver?: CollectionResolver): Options {
  return {
    idKey: '_id',
    useStrictMode: true,
    scriptEnabled: false,
    context: CONTEXT,
    ...(resolver ? { collectionResolver: resolver as Options['collectionResolver'] } : {}),
  };
}

const baseOptions = mingoOptions();

export function compileFilter(filter: Doc): (doc: Doc) => boolean {
  if (Object.keys(filter).length === 0) return () => true;
  const q = new BaseQuery(filter, baseOptions);
  return (doc) => q.test(doc);
}

export function runPipeline(docs: Doc[], pipeline: Doc[], resolver?: CollectionResolver): Doc[] {
  return new BaseAggregator(pipeline, mingoOptions(resolver)).run(docs) as Doc[];
}

/** Compile a find() projection once; returns a per-document transform. */
export function compileProjection(projection: Doc | undefined): ((d: Doc) => Doc) | undefined {
  if (!projection || Object.keys(projection).length === 0) return undefined;
  const q = new BaseQuery({}, baseOptions);
  return (d) => (q.find([d], projection).all()[0] as Doc) ?? {};
}

export { update as mingoUpdate } from 'mingo';
