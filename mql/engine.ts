/**
 * mingo, with mongod's semantics where they differ, as one operator context shared by everything
 * that matches, projects, aggregates or updates (the embedded database and the cache's matcher):
 *
 * - Field conditions ($eq, $gt, $in, $elemMatch, $size, $type, $regex, …): query.ts — BSON
 *   comparison across numeric kinds, mongod's array path walk, RE2 regular expressions (regex.ts).
 * - Sort: mingo ranks unknown types (ObjectId, Long, Decimal128, …) after everything else and
 *   compares arrays as sorted sets; `$sort` here is compare.ts's sortDocs (BSON order, an array
 *   sorts by its smallest element ascending and its largest descending).
 * - `$sum`/`$avg` add Longs and Decimal128s with mongod's type promotion (numbers.ts); mingo's
 *   skip them.
 * - `$regexMatch`/`$regexFind`/`$regexFindAll` run on RE2.
 * - Equality of ObjectId/Date elsewhere (mingo's isEqual) compares ObjectIds by hex and Dates by
 *   time, which matches mongod.
 * - Copies: documents handed to mingo are either stored documents that mingo only reads (match,
 *   projection) or the caller's own deep copies (update, aggregate), so mingo never mutates stored data.
 */
import path from 'node:path';
import { Aggregator, Context, Query } from 'mingo';
import { stringCompare } from './collation';
import { sortDocs, type SortSpec } from './compare';
import { avgOf, sumOf } from './numbers';
import * as fieldOps from './query';
import { $regexFind, $regexFindAll, $regexMatch } from './regex';
import { isPlainObject, setField, type Doc } from './values';

/* tsconfig uses moduleResolution "node", which ignores package "exports" subpaths; load at runtime. */
interface Iterator {
  transform(f: (items: unknown[]) => unknown): Iterator;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a mingo subpath export: tsconfig's moduleResolution "node" cannot import it (see above)
const { Lazy } = require('mingo/lazy') as { Lazy: (src: unknown[]) => Iterator };
type Options = NonNullable<ConstructorParameters<typeof Query>[1]>;

type Accumulator = (coll: unknown[], expr: unknown, options: unknown) => unknown;
type OpTable = Record<string, unknown>;
const load = (m: string): OpTable => require(m) as OpTable; // eslint-disable-line @typescript-eslint/no-require-imports -- a mingo subpath export: tsconfig's moduleResolution "node" cannot import it (see above)
const mingoAccumulators = load('mingo/operators/accumulator');
const push = mingoAccumulators.$push as Accumulator;

const $sum: Accumulator = (coll, expr, options) => sumOf(push(coll, expr, options) as unknown[]);
const $avg: Accumulator = (coll, expr, options) => avgOf(push(coll, expr, options) as unknown[]);
const $sort = (coll: Iterator, spec: SortSpec, options?: { collation?: unknown }): Iterator => {
  const strings = stringCompare(options?.collation);
  return coll.transform((docs: unknown[]) => Lazy(sortDocs(docs as Doc[], spec, undefined, strings)));
};

/*
 * Context.from() merges left-to-right with the FIRST definition winning, and mingo's exported
 * Query/Aggregator always put mingo's own context first, so overrides passed through options are
 * ignored. We therefore build the complete operator context ourselves and use the unwrapped base
 * classes (mingo/query, mingo/aggregator), which take the context from options as is.
 */
const BaseQuery = (require('mingo/query') as { Query: typeof Query }).Query; // eslint-disable-line @typescript-eslint/no-require-imports -- a mingo subpath export: tsconfig's moduleResolution "node" cannot import it (see above)
const BaseAggregator = (require('mingo/aggregator') as { Aggregator: typeof Aggregator }).Aggregator; // eslint-disable-line @typescript-eslint/no-require-imports -- a mingo subpath export: tsconfig's moduleResolution "node" cannot import it (see above)

const { $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $regex, $size, $mod, $type } = fieldOps;
const compileSub = (filter: Doc, options: unknown): ((d: Doc) => boolean) => {
  const q = new BaseQuery(filter, (options as Options | undefined) ?? baseOptions);
  return (d) => q.test(d);
};
const CONTEXT = Context.init({
  accumulator: { ...mingoAccumulators, $sum, $avg },
  expression: { ...load('mingo/operators/expression'), $regexMatch, $regexFind, $regexFindAll },
  pipeline: { ...load('mingo/operators/pipeline'), $sort },
  projection: load('mingo/operators/projection'),
  query: {
    ...load('mingo/operators/query'),
    ...{ $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $regex, $size, $mod, $type },
    ...fieldOps.arrayOperators(compileSub),
  },
  window: load('mingo/operators/window'),
} as never);

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

/*
 * mingo copies the whole operator context (six tables, hundreds of operators) into every Query or
 * Aggregator built from plain options — 10 µs a filter, more than matching it. Built from a
 * ComputeOptions instance, it shares that instance's context instead (1 µs). mingo does not export
 * the class, so it is taken from the very module its Query and Aggregator use (same file, same class).
 */
interface ComputeOptionsInstance {
  options: Options;
  update(locals: object): ComputeOptionsInstance;
}
interface ComputeOptionsClass {
  new (options: Options, locals?: object): ComputeOptionsInstance;
  init(options: Options): ComputeOptionsInstance;
}
const MINGO_DIR = path.dirname(require.resolve('mingo/query'));
/** A module of mingo's that its package does not export, by file (the same instance its exported modules use). */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- not exported by mingo: no import can name it
const loadInternal = (...file: string[]): unknown => require(path.join(MINGO_DIR, ...file));
const { ComputeOptions } = loadInternal('core', '_internal.js') as { ComputeOptions: ComputeOptionsClass };
/** mingoOptions() with its context copied once; `computed(extra)` adds options and shares that context. */
const computedBase = ComputeOptions.init(mingoOptions());
const computed = (extra?: Partial<Options>): Options =>
  (extra ? new ComputeOptions({ ...computedBase.options, ...extra }) : computedBase) as unknown as Options;
const baseOptions = computed();

/**
 * A query filter compiled once: a predicate with mongod's matching semantics, strings compared by
 * `collation` when given (collation.ts). Throws on a filter mongod refuses.
 */
export function compileFilter(filter: Doc, collation?: Doc): (doc: Doc) => boolean {
  if (Object.keys(filter).length === 0) return () => true;
  const options =
    collation && stringCompare(collation) ? computed({ collation: collation as unknown as Options['collation'] }) : baseOptions;
  if (!namesProto(filter)) {
    const q = new BaseQuery(filter, options);
    return (doc) => q.test(doc);
  }
  // mingo copies objects by assignment, which turns a field named __proto__ into a prototype and
  // loses it: the filter and each document it tests see that name as one no stored field can have
  // (BSON field names hold no NUL), so it matches as mongod matches the field
  const q = new BaseQuery(protoRenamed(filter) as Doc, options);
  return (doc) => q.test(protoRenamed(doc) as Doc);
}

const PROTO = '__proto__';
const PROTO_STANDIN = '\u0000__proto__';
const namesPathProto = (k: string): boolean => k === PROTO || (k.includes('.') && k.split('.').includes(PROTO));

/** True when a field name or dotted path anywhere in `v` is (or walks through) `__proto__`. */
function namesProto(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(namesProto);
  if (!isPlainObject(v)) return false;
  for (const k of Object.keys(v)) if (namesPathProto(k) || namesProto(v[k])) return true;
  return false;
}

/** `v` with every `__proto__` field name and path segment renamed to PROTO_STANDIN (a copy where one is renamed). */
function protoRenamed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(protoRenamed);
  if (!isPlainObject(v)) return v;
  const out: Doc = {};
  for (const k of Object.keys(v)) {
    const name = namesPathProto(k)
      ? k
          .split('.')
          .map((s) => (s === PROTO ? PROTO_STANDIN : s))
          .join('.')
      : k;
    out[name] = protoRenamed(v[k]);
  }
  return out;
}

/**
 * Runs a pipeline; `variables` are a command's `let` values (letValues), seen as `$$name`;
 * `collation` applies to `$match` and `$sort` (the caller refuses it with stages it would not reach).
 */
export function runPipeline(docs: Doc[], pipeline: Doc[], resolver?: CollectionResolver, variables?: Doc, collation?: Doc): Doc[] {
  const options = computed({
    ...(resolver ? { collectionResolver: resolver as Options['collectionResolver'] } : {}),
    ...(variables ? { variables } : {}),
    ...(collation ? { collation: collation as unknown as Options['collation'] } : {}),
  });
  return new BaseAggregator(pipeline, options).run(docs) as Doc[];
}

/** The values of a command's `let`: each an expression, evaluated once without a document (as mongod). */
export function letValues(lets: Doc): Doc {
  const out: Doc = {};
  for (const [name, expr] of Object.entries(lets)) {
    const [row] = new BaseAggregator([{ $project: { _id: 0, v: { $let: { vars: {}, in: expr } } } }], baseOptions).run([{}]) as Doc[];
    out[name] = row?.v ?? null;
  }
  return out;
}

/** A filter whose `$expr` clauses (top level, or in $and/$or/$nor) see `variables` as `$$name`. */
export function withVariables(filter: Doc, variables: Doc): Doc {
  const vars: Doc = {};
  for (const [k, v] of Object.entries(variables)) vars[k] = { $literal: v };
  const rewrite = (f: Doc): Doc => {
    const out: Doc = {};
    for (const [k, v] of Object.entries(f)) {
      if (k === '$expr') out[k] = { $let: { vars, in: v } };
      else if ((k === '$and' || k === '$or' || k === '$nor') && Array.isArray(v))
        out[k] = v.map((sub) => (sub !== null && typeof sub === 'object' && !Array.isArray(sub) ? rewrite(sub as Doc) : sub));
      else setField(out, k, v); // a field may be named __proto__
    }
    return out;
  };
  return rewrite(filter);
}

/** Compile a find() projection once; returns a per-document transform. */
export function compileProjection(projection: Doc | undefined): ((d: Doc) => Doc) | undefined {
  if (!projection || Object.keys(projection).length === 0) return undefined;
  const q = new BaseQuery({}, baseOptions);
  return (d) => (q.find([d], projection).all()[0] as Doc) ?? {};
}

type UpdateOperator = (expr: unknown, arrayFilters: Doc[], options: ComputeOptionsInstance) => (doc: Doc) => string[];
const UPDATE_OPERATORS = load('mingo/operators/update') as Record<string, UpdateOperator>;
// how mingo's update() resolves paths, `$` and arrayFilters
const { buildParams } = loadInternal('operators', 'update', '_internal.js') as {
  buildParams: (exprs: unknown[], arrayFilters: Doc[], options: ComputeOptionsInstance) => object;
};

/**
 * Applies the operators of an update document ($set, $inc, $addToSet, $pull, …) to `doc` in place, as
 * mingo's update() does, but with this module's context built once: mingo's update() merged its
 * whole operator context anew for every call (85-105 µs an update), and matched $pull conditions,
 * arrayFilters and the positional `$` with mingo's own operators rather than mongod's (query.ts).
 * Values are deep-copied in. `condition` is the update's query, for the positional `$`. Returns the
 * modified paths, sorted ([] when nothing changed); throws mingo's errors (unknown operator, …).
 */
export function applyModifiers(doc: Doc, modifier: Doc, arrayFilters?: Doc[], condition?: Doc): string[] {
  const unknown = Object.keys(modifier).find((op) => !Object.hasOwn(UPDATE_OPERATORS, op));
  if (unknown !== undefined) throw new Error(`Unknown update operator: '${unknown}'.`);
  const filters = arrayFilters ?? [];
  const options = new ComputeOptions(computedBase.options).update({
    condition: condition ?? {},
    updateConfig: { cloneMode: 'deep', arrayFilters: filters },
    updateParams: {},
  });
  const renameTargets = Object.values((modifier.$rename ?? {}) as Doc).map((target) => ({ [String(target)]: true }));
  options.update({ updateParams: buildParams([...Object.values(modifier), ...renameTargets], filters, options) });
  const mutations = Object.keys(modifier).map((op) => UPDATE_OPERATORS[op](modifier[op], filters, options));
  const fields: string[] = [];
  for (const mutate of mutations) fields.push(...mutate(doc));
  return fields.sort();
}
