/**
 * Query planning and scanning for one collection. A filter on _id alone is a direct lookup; an
 * equality or $in on _id or on an indexed field (also inside $and/$or) narrows the scan to the
 * candidates the equality tables give (collection-indexes.ts: a superset, as mingo still tests
 * every candidate), returned in natural order; anything else is a full scan in natural order.
 * A $text filter needs the text index and yields scores. matchSliced is the same scan in time
 * slices (slicer.ts). Also the check that a command's hint names an existing index.
 */
import { bsonType as bsonTypeOf, compareBson, compileFilter, isPlainObject, type Doc } from '../../mql';
import { fail } from './errors';
import type { Slicer } from './slicer';
import { compileText, type CompiledText, type TextQuery } from './text-search';
import type { Collection } from './collection';
import type { CollectionIndexes } from './collection-indexes';
import { valueKey } from './value-key';

/** What a scan reads of a collection. */
export interface ScanSource {
  /** _id key → stored document, in insertion (natural) order */
  docs: Map<string, Doc>;
  /** insertion sequence per _id key, to return planned candidates in natural order */
  seq: Map<string, number>;
  indexes: CollectionIndexes;
}

export interface MatchResult {
  docs: Doc[];
  scores?: Map<Doc, number>;
}

export function isOperatorObject(v: unknown): v is Doc {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date || bsonTypeOf(v)) return false;
  const ks = Object.keys(v);
  return ks.length > 0 && ks[0].startsWith('$');
}

/** Values an equality index can answer for exactly (null/regex/documents/arrays are left to a scan). */
function isIndexableScalar(v: unknown): boolean {
  if (typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (v instanceof Date) return true;
  const t = bsonTypeOf(v);
  return t === 'ObjectId' || t === 'Long' || t === 'Decimal128';
}

/**
 * Stored documents matching a filter (references: callers must not mutate), plus $text scores.
 * Stops after `limit` matches (natural order), for callers that need only the first few.
 */
export function match(src: ScanSource, filter: Doc | undefined, limit = Infinity, collation?: Doc): MatchResult {
  const p = prepareMatch(src, filter, limit, collation);
  if ('docs' in p) return p;
  const out: Doc[] = [];
  for (const _ of scanning(p, limit, out));
  return { docs: out, scores: p.scores };
}

/**
 * match() in time slices: yields to the event loop between slices (other connections are
 * served meanwhile) and throws MaxTimeMSExpired past the slicer's deadline. Documents written
 * during a pause may or may not be seen, as with a yielding mongod scan.
 */
export async function matchSliced(
  src: ScanSource,
  filter: Doc | undefined,
  limit: number,
  slicer: Slicer,
  collation?: Doc,
): Promise<MatchResult> {
  const p = prepareMatch(src, filter, limit, collation);
  if ('docs' in p) return p;
  const out: Doc[] = [];
  for (const _ of scanning(p, limit, out)) if (slicer.due()) await slicer.pause();
  slicer.check();
  return { docs: out, scores: p.scores };
}

/** Tests the prepared scan's documents into `out` until it holds `limit`; yields after each document tested. */
function* scanning(p: PreparedScan, limit: number, out: Doc[]): Generator<void> {
  for (const d of p.source) {
    if (out.length >= limit) return;
    p.consider(d, out);
    yield;
  }
}

interface PreparedScan {
  source: Iterable<Doc>;
  consider: (d: Doc, out: Doc[]) => void;
  scores?: Map<Doc, number>;
}

function prepareMatch(src: ScanSource, filter: Doc | undefined, limit: number, collation?: Doc): MatchResult | PreparedScan {
  const f = filter ?? {};
  const keys = Object.keys(f);
  // Index keys compare strings binary: with a collation, every document is tested (no index, no _id lookup).
  if (keys.length === 1 && keys[0] === '_id' && !collation) {
    const v = f._id;
    if (!isOperatorObject(v) && !(v instanceof RegExp) && !Array.isArray(v) && bsonTypeOf(v) !== 'BSONRegExp') {
      const d = src.docs.get(valueKey(v));
      return { docs: d ? [d] : [] };
    }
    if (isOperatorObject(v) && Object.keys(v).length === 1) {
      const op = v as Doc;
      if ('$eq' in op && !Array.isArray(op.$eq) && !isOperatorObject(op.$eq) && !(op.$eq instanceof RegExp)) {
        const d = src.docs.get(valueKey(op.$eq));
        return { docs: d ? [d] : [] };
      }
      if (Array.isArray(op.$in) && op.$in.every((x) => !(x instanceof RegExp) && !Array.isArray(x) && !isOperatorObject(x))) {
        const seen = new Set<string>();
        const out: Doc[] = [];
        for (const x of op.$in) {
          if (out.length >= limit) break;
          const k = valueKey(x);
          const d = seen.has(k) ? undefined : src.docs.get(k);
          seen.add(k);
          if (d) out.push(d);
        }
        return { docs: out };
      }
    }
  }
  let rest = f;
  let text: CompiledText | undefined;
  if ('$text' in f) {
    const idx = src.indexes.textIndex();
    if (!idx) throw fail('IndexNotFound', 'text index required for $text query');
    text = compileText(f.$text as TextQuery, idx);
    rest = { ...f };
    delete rest.$text;
  }
  const test = compileFilter(rest, collation);
  const planned = collation ? undefined : plan(src, rest);
  const source: Iterable<Doc> = planned ? inNaturalOrder(src, planned) : src.docs.values();
  const scores = text ? new Map<Doc, number>() : undefined;
  const consider = (d: Doc, out: Doc[]): void => {
    const score = text?.score(d);
    if ((text && score === undefined) || !test(d)) return;
    if (scores) scores.set(d, score!);
    out.push(d);
  };
  return { source, consider, scores };
}

/** Candidate _id keys for a filter, or undefined when no index applies. */
function plan(src: ScanSource, f: Doc): Set<string> | undefined {
  for (const [k, v] of Object.entries(f)) {
    if (k === '$or' && Array.isArray(v) && v.length > 0) {
      const union = new Set<string>();
      let ok = true;
      for (const branch of v) {
        const p = isPlainObject(branch) ? plan(src, branch) : undefined;
        if (!p) {
          ok = false;
          break;
        }
        for (const id of p) union.add(id);
      }
      if (ok) return union;
      continue;
    }
    if (k === '$and' && Array.isArray(v)) {
      for (const branch of v) {
        const p = isPlainObject(branch) ? plan(src, branch) : undefined;
        if (p) return p;
      }
      continue;
    }
    if (k.startsWith('$')) continue;
    let values: unknown[] | undefined;
    if (isIndexableScalar(v)) values = [v];
    else if (isOperatorObject(v)) {
      if ('$eq' in v && isIndexableScalar(v.$eq)) values = [v.$eq];
      else if (Array.isArray(v.$in) && v.$in.length > 0 && v.$in.every(isIndexableScalar)) values = v.$in;
    }
    if (!values) continue;
    if (k === '_id') {
      const ids = new Set<string>();
      for (const x of values) {
        const key = valueKey(x);
        if (src.docs.has(key)) ids.add(key);
      }
      return ids;
    }
    const ids = src.indexes.lookup(k, values);
    if (ids) return ids;
  }
  return undefined;
}

function inNaturalOrder(src: ScanSource, ids: Set<string>): Doc[] {
  const rows: Array<[number, Doc]> = [];
  for (const id of ids) {
    const d = src.docs.get(id);
    if (d) rows.push([src.seq.get(id) ?? 0, d]);
  }
  if (rows.length > 1) rows.sort((a, b) => a[0] - b[0]);
  return rows.map((r) => r[1]);
}

/** A hint must name an existing index (by name or key pattern), or be {$natural: ±1}. */
export function checkHint(coll: Collection | undefined, hint: unknown): void {
  if (hint === undefined || hint === null || !coll) return;
  if (
    typeof hint === 'string'
      ? coll.indexes.some((i) => i.name === hint)
      : isPlainObject(hint) &&
        (Object.keys(hint).length === 0 || '$natural' in hint || coll.indexes.some((i) => compareBson(i.key, hint) === 0))
  )
    return;
  throw fail(
    'BadValue',
    `error processing query: ns=${coll.ns} planner returned error :: caused by :: hint provided does not correspond to an existing index`,
  );
}
