/**
 * Client queries batched by shape (see db/batching.ts for when calls are batched at all). Pages of
 * equality filters of one shape — the same fields, operators and value types; the same skip, limit
 * and time limit — that wait for the database at the same moment go out as one `aggregate`: each
 * page is its own `$match`, `$skip`, `$limit` sub-pipeline (the first on the collection, the others
 * joined by `$unionWith`), so each keeps its own plan, order, skip and limit, exactly as its own
 * `find`; each row is tagged with its page. Filters of one shape have one plan (MongoDB's plan
 * cache is keyed by shape), so a cheap query is never made to wait for a costlier kind of query;
 * filters with any other operator (ranges, `$regex`, `$where`, `$or` …) are never batched.
 *
 * If the batch command fails for any reason (a document too large to tag, a time limit the batch
 * reached and a lone page would not), every page is read again alone, so each caller gets exactly
 * the answer, or the error, its own `find` gets.
 */
import type { AggregateOptions, Collection, Document, Filter, FindOptions, WithId } from 'mongodb';
import { settle, type Settled } from './batching';

/** The options a batched page may have. */
export type PageOptions = Pick<FindOptions, 'skip' | 'limit' | 'maxTimeMS'>;

export interface PageCall {
  filter: Document;
  options: PageOptions;
}

/** Operators whose cost does not depend on the values they compare beyond what equality's does. */
const EQUALITY_OPERATORS = new Set(['$and', '$eq', '$exists', '$in']);

/**
 * A filter's structure with each string and number replaced by its type (booleans and null kept,
 * and an `$exists` as the truth of its value: `$exists: false` (or 0) and `$exists: true` (or 1)
 * are different plans); undefined when it holds another operator or a value that is not plain JSON.
 */
function shapeOf(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'string') return 's';
  if (typeof value === 'number') return 'n';
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    const parts: string[] = [];
    for (const v of value) {
      const s = shapeOf(v);
      if (s === undefined) return undefined;
      parts.push(s);
    }
    return `[${parts.join(',')}]`;
  }
  if (typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.startsWith('$') && !EQUALITY_OPERATORS.has(k)) return undefined;
    const s = k === '$exists' ? String(Boolean(v)) : shapeOf(v);
    if (s === undefined) return undefined;
    parts.push(`${JSON.stringify(k)}:${s}`);
  }
  return `{${parts.join(',')}}`;
}

const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * The key of the batch a page may join (pages of one key only are batched together), or undefined
 * when the page is read alone: options other than skip, limit and time limit, or a filter that is
 * not equality-only.
 */
export function pageKey(filter: Document, options: object): string | undefined {
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined && (!(k === 'skip' || k === 'limit' || k === 'maxTimeMS') || !count(v))) return undefined;
  }
  const shape = shapeOf(filter);
  if (shape === undefined) return undefined;
  const { skip, limit, maxTimeMS } = options as PageOptions;
  return `${skip ?? 0}/${limit ?? 0}/${maxTimeMS ?? ''}/${shape}`;
}

/** One page's sub-pipeline: its own match, skip and limit, each row tagged with the page's index. */
function pageStages(call: PageCall, index: number): Document[] {
  const { skip, limit } = call.options;
  return [
    { $match: call.filter },
    ...(skip ? [{ $skip: skip }] : []),
    ...(limit ? [{ $limit: limit }] : []),
    { $replaceWith: { p: { $literal: index }, d: '$$ROOT' } },
  ];
}

/** The tagged rows of the batch command, back into each page in order. */
function pagesOf<S>(rows: Document[], pages: number): S[][] {
  const out = Array.from({ length: pages }, () => [] as S[]);
  for (const row of rows) {
    const page = out[row.p as number];
    if (!page || typeof row.d !== 'object' || row.d === null) throw new Error('A batched query row without its page.');
    page.push(row.d as S);
  }
  return out;
}

/** Reads pages of one key (db/batching.ts `run`): one `aggregate` for several, a `find` for one. */
export function readPages<S extends Document>(
  reads: Pick<Collection<S>, 'find' | 'aggregate' | 'collectionName'>,
): (calls: PageCall[]) => Promise<Settled<WithId<S>[]>[]> {
  const alone = (call: PageCall) => settle(() => reads.find(call.filter as Filter<S>, call.options).toArray());
  return async (calls) => {
    if (calls.length === 1) return [await alone(calls[0])];
    const [first, ...rest] = calls;
    const pipeline = [
      ...pageStages(first, 0),
      ...rest.map((call, i) => ({ $unionWith: { coll: reads.collectionName, pipeline: pageStages(call, i + 1) } })),
    ];
    const { limit, maxTimeMS } = first.options;
    const options: AggregateOptions = { ...(maxTimeMS ? { maxTimeMS } : {}), ...(limit ? { batchSize: limit * calls.length } : {}) };
    try {
      const pages = pagesOf<WithId<S>>(await reads.aggregate(pipeline, options).toArray(), calls.length);
      return pages.map((value) => ({ ok: true, value }));
    } catch {
      return Promise.all(calls.map(alone));
    }
  };
}
