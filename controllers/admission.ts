/**
 * Query admission: what a client's `/query` filter (POST and HEAD) may cost before it reaches the
 * database. Reads are anonymous, so one filter must not be able to stall every other client (on the
 * embedded database one query runs at a time) nor, once cached, every later write (cached filters
 * are matched against each written object).
 *
 * Refused with 400 naming the limit (all configurable, see config.ts and the README):
 * - more than QUERY_MAX_CLAUSES clauses (every property of every object in the filter counts),
 * - a list (`$in`, `$nin`, `$all`, `$or`, `$and`, `$nor`, any array value) longer than QUERY_MAX_LIST,
 * - nesting deeper than QUERY_MAX_DEPTH objects/arrays,
 * - a property name holding a NUL character (BSON cannot carry it),
 * - server-side JavaScript (`$where`, `$function`, `$accumulator`) and the aggregation-expression
 *   operators that loop over client-chosen ranges or arrays (`$range`, `$reduce`, `$map`, `$filter`, …).
 * Regular expressions run on RE2 (linear time; mql/regex.ts), and every client query
 * runs with `maxTimeMS` = QUERY_MAX_TIME_MS: a query stopped by it is answered 503 (see queryTimedOut).
 */
import { HttpError, badRequest } from '../middleware/http-error';
import { hasCode } from '../mql';
import type { Config } from '../config';

export type QueryLimits = Pick<Config, 'queryMaxClauses' | 'queryMaxList' | 'queryMaxDepth' | 'queryMaxTimeMs'>;

/** Operators that would run JavaScript on the database server. */
const SERVER_JS = new Set(['$where', '$function', '$accumulator']);
/** Expression operators whose cost is set by client-chosen numbers or repeated per array element. */
const LOOPING = new Set([
  '$range',
  '$reduce',
  '$map',
  '$filter',
  '$zip',
  '$sortArray',
  '$setUnion',
  '$setIntersection',
  '$setDifference',
  '$allElementsTrue',
  '$anyElementTrue',
  '$concatArrays',
  '$regexFindAll',
  '$replaceAll',
]);

const tooManyClauses = (limits: QueryLimits) =>
  badRequest(`The query has more than ${limits.queryMaxClauses} clauses (QUERY_MAX_CLAUSES).`);

/**
 * 400 when the body's property count, read off its bytes before it was parsed (jsonPropertiesOf in
 * middleware/json-depth.ts), is already over QUERY_MAX_CLAUSES: such a filter is not walked at all
 * (enumerating an object of 400,000 properties took ~0.4 s each time).
 */
export function admitQuerySize(properties: number | undefined, limits: QueryLimits): void {
  if (properties !== undefined && properties > limits.queryMaxClauses) throw tooManyClauses(limits);
}

/** 400 unless `filter` is within the limits above. */
export function admitQuery(filter: unknown, limits: QueryLimits): void {
  let clauses = 0;
  const stack: Array<{ v: unknown; depth: number }> = [{ v: filter, depth: 1 }];
  while (stack.length) {
    const { v, depth } = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.queryMaxDepth) {
      throw badRequest(`The query is nested too deeply: at most ${limits.queryMaxDepth} levels (QUERY_MAX_DEPTH).`);
    }
    if (Array.isArray(v)) {
      if (v.length > limits.queryMaxList) {
        throw badRequest(`The query has a list of ${v.length} values: at most ${limits.queryMaxList} are allowed (QUERY_MAX_LIST).`);
      }
      for (const e of v) stack.push({ v: e, depth: depth + 1 });
      continue;
    }
    for (const [k, inner] of Object.entries(v)) {
      // BSON field names end at a NUL: the driver cannot send such a filter at all
      if (k.includes('\0')) throw badRequest('The query has a property name with a NUL character: MongoDB cannot match such a name.');
      if (SERVER_JS.has(k)) throw badRequest(`The query could not be run: ${k} (server-side JavaScript) is not allowed.`);
      if (LOOPING.has(k))
        throw badRequest(`The query could not be run: the ${k} operator is not allowed in queries (its cost is unbounded).`);
      if (++clauses > limits.queryMaxClauses) throw tooManyClauses(limits);
      stack.push({ v: inner, depth: depth + 1 });
    }
  }
}

/** A database error that says the query ran out of its `maxTimeMS`, as the 503 to answer; else undefined. */
export function queryTimedOut(err: unknown, limits: QueryLimits): HttpError | undefined {
  if (!hasCode(err, 'MaxTimeMSExpired') && (err as { codeName?: string } | null)?.codeName !== 'MaxTimeMSExpired') return undefined;
  return new HttpError(
    503,
    `The query took longer than ${limits.queryMaxTimeMs} ms (QUERY_MAX_TIME_MS) and was stopped. Narrow it down, e.g. with more specific properties.`,
  );
}
