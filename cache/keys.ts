/**
 * Cache key scheme (same shape as the reference server's):
 *
 *   id:<segment>            GET /v1/id/:id
 *   history:<segment>       GET /v1/history/:id
 *   since:<segment>         GET /v1/since/:id
 *   query:{"filter":…,"limit":…,"skip":…}          POST /v1/api/query
 *   search:{"body":…,"limit":…,"skip":…}           POST /v1/api/search
 *   searchPhrase:{"body":…,"limit":…,"skip":…}     POST /v1/api/search/phrase
 *   gog:{"body":…,"limit":…,"path":…,"skip":…}     POST /gog/fragmentsInManuscript, /gog/glossesInManuscript, GET /gog/id/:id
 *
 * Query filters are written with recursively sorted keys wherever key order has no meaning (query
 * documents, operator documents). Inside literal sub-documents (`{a: {b: 1, c: 2}}`, `$eq`, `$in`
 * values) MongoDB equality is order-sensitive, so those keep their order: two filters that can give
 * different answers never share a key. limit/skip are the raw query-string values (digits read as
 * numbers), so two requests share a key only when the controller sees the same pagination.
 */
import type { Request } from 'express';
import { jsonPropertiesOf } from '../middleware/json-depth';
import { exactSegment } from '../rerum/ids';
import { isPlainObject, setField } from '../mql';

/** JSON with object keys sorted at every level. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(sortDeep(value));
}

function sortDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortDeep);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) setField(out, k, sortDeep((value as Record<string, unknown>)[k]));
    return out;
  }
  return value;
}

const LOGICAL_LIST = new Set(['$and', '$or', '$nor']);
/** Operators whose operand is itself a query (or an operator document). */
const QUERY_OPERAND = new Set(['$elemMatch', '$not']);

/** A copy of a filter with order-free keys sorted; literal values keep their own key order. */
export function canonicalFilter(filter: unknown): unknown {
  return canonQueryDoc(filter);
}

function canonQueryDoc(doc: unknown): unknown {
  if (!isPlainObject(doc)) return doc;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(doc).sort()) {
    const v = doc[k];
    if (LOGICAL_LIST.has(k) && Array.isArray(v)) out[k] = v.map(canonQueryDoc);
    else if (k.startsWith('$'))
      out[k] = v; // $where, $expr, $text, …: leave untouched
    else setField(out, k, canonFieldCondition(v)); // a field may be named __proto__
  }
  return out;
}

function canonFieldCondition(v: unknown): unknown {
  // An operator document ({$gt: 1, $lt: 5}) has order-free keys; anything else is a literal.
  if (isPlainObject(v)) {
    const keys = Object.keys(v);
    if (keys.length > 0 && keys.every((k) => k.startsWith('$'))) {
      const out: Record<string, unknown> = {};
      for (const k of keys.sort()) {
        out[k] = QUERY_OPERAND.has(k) ? (k === '$not' ? canonFieldCondition(v[k]) : canonQueryDoc(v[k])) : v[k];
      }
      return out;
    }
  }
  return v;
}

function pageValue(v: unknown): number | string | null {
  if (v === undefined) return null;
  const s = Array.isArray(v) ? v.join(',') : String(v);
  return /^\d{1,15}$/.test(s) ? Number(s) : s;
}

/**
 * The id route parameter exactly as the controller looks it up, or undefined when it is not a plain
 * segment (`nope/S`, `S#x`, ` S` …): such a request is never answered from, nor stored under, the
 * entry of another id — lookup and store use this one key.
 */
function routeId(req: Request): string | undefined {
  const params = (req.params ?? {}) as Record<string, string | undefined>;
  return exactSegment(params._id ?? params.id);
}

export function idKey(kind: string, segment: string): string {
  return `${kind}:${segment}`;
}

export function queryKey(filter: unknown, limit: unknown, skip: unknown): string {
  return `query:${JSON.stringify({ filter: canonicalFilter(filter), limit: pageValue(limit), skip: pageValue(skip) })}`;
}

export function searchKey(kind: string, body: unknown, limit: unknown, skip: unknown): string {
  return `${kind}:${stableStringify({ body: body ?? null, limit: pageValue(limit), skip: pageValue(skip) })}`;
}

/** The request's query string (limit, skip). */
const queryOf = (req: Request) => (req.query ?? {}) as Record<string, unknown>;

/** GET/HEAD on an id-shaped route (`/v1/id/:id`, history, since): keyed by the exact id segment. */
export function segmentRequestKey(kind: string, req: Request): { key: string; segment: string } | undefined {
  if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
  const segment = routeId(req);
  return segment ? { key: idKey(kind, segment), segment } : undefined;
}

/**
 * Most object properties (at every level) a body may have and still be keyed. Admission refuses a
 * query with more than QUERY_MAX_CLAUSES (500 by default) anyway; writing a key for a body of
 * hundreds of thousands of properties (sorting them all) took over a second of the event loop
 * before that refusal.
 */
export const MAX_KEYED_PROPERTIES = 10_000;

/** True when `body` has more than MAX_KEYED_PROPERTIES object properties; stops counting there. */
function tooManyProperties(body: unknown): boolean {
  let left = MAX_KEYED_PROPERTIES;
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const item of v) if (item !== null && typeof item === 'object') stack.push(item);
    } else if (isPlainObject(v)) {
      const keys = Object.keys(v);
      left -= keys.length;
      if (left < 0) return true;
      for (const k of keys) {
        const item = v[k];
        if (item !== null && typeof item === 'object') stack.push(item);
      }
    }
  }
  return false;
}

/**
 * A body too large to key (tooManyProperties) or nested too deeply to write out (thousands of
 * levels: RangeError, the call stack) gets no key: it is neither answered from nor stored in the
 * cache, and the route answers it (such a query is refused by admission).
 */
function unlessTooLarge<T>(req: Request, make: () => T): T | undefined {
  try {
    // the count the body parser took off its bytes, when it read this body (no walk of a huge one)
    const counted = jsonPropertiesOf(req);
    return (counted !== undefined ? counted > MAX_KEYED_PROPERTIES : tooManyProperties(req.body)) ? undefined : make();
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

/** POST /v1/api/query: keyed by the canonical filter and the page. */
export function queryRequestKey(req: Request): { key: string; filter: unknown } | undefined {
  if (req.method !== 'POST' || !isPlainObject(req.body)) return undefined;
  const q = queryOf(req);
  // the request's own body: a MISS takes a private copy before the controller runs (middleware.ts), a HIT needs none
  return unlessTooLarge(req, () => ({ key: queryKey(req.body, q.limit, q.skip), filter: req.body }));
}

/** POST /v1/api/search, /v1/api/search/phrase: keyed by the body and the page. */
export function searchRequestKey(kind: string, req: Request): { key: string } | undefined {
  if (req.method !== 'POST' || req.body === undefined) return undefined;
  const q = queryOf(req);
  return unlessTooLarge(req, () => ({ key: searchKey(kind, req.body, q.limit, q.skip) }));
}

/** The Gallery of Glosses reads: keyed by the route (path as sent), its JSON body and the page. */
export function gogRequestKey(req: Request): { key: string } | undefined {
  if (req.method === 'HEAD') return undefined;
  const q = queryOf(req);
  return unlessTooLarge(req, () => ({
    key: `gog:${stableStringify({ path: req.baseUrl + req.path, body: req.body ?? null, limit: pageValue(q.limit), skip: pageValue(q.skip) })}`,
  }));
}
