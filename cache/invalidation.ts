/**
 * What a write makes stale, and dropping it.
 *
 * Per changed document (both its before and after state):
 *  - id entries: `id:<segment>` for every id segment of the document (@id, id, _id, and the same
 *    fields under __deleted.object);
 *  - history/since entries of its whole version tree: those entries are indexed by the tree ids
 *    found in their own cached body (each listed document's prime, or own id for a root) plus the
 *    requested segment, and looked up by the changed document's prime and own ids;
 *  - query entries whose filter could match the old or the new version: candidates come from the
 *    QueryIndex (equality terms + always-test bucket), each confirmed by the matcher (mql/);
 *  - search / searchPhrase entries: dropped by every write whose old or new version holds a value at
 *    one of the searchable paths (SEARCHABLE_FIELDS, rerum/search-fields.ts: the fields of the text
 *    index and of the reference's Atlas Search indexes, and the only paths the search routes query); kept by
 *    writes of documents without any (most metadata, people, manifests without text). A document
 *    with no value at those paths cannot be a result, and cannot change any result's score (MongoDB
 *    `$text` scores each document on its own; Atlas Search's BM25 statistics are per queried field).
 *    Finer, per-term matching is deliberately not attempted: whether a word matches depends on the
 *    server's analyzer — Snowball stemming in the document's own `language` (the text index's
 *    language override, per document and per sub-document), MongoDB's Unicode delimiter tables, or
 *    whatever analyzer the Atlas index defines, with BM25 scores that move when any document with
 *    text in the queried field changes. A cache-side approximation that is guaranteed to be a
 *    superset would match nearly everything, and one that is not would serve stale search pages.
 * The cost of a write is the number of candidate entries, not the number of cached entries.
 *
 * FillGuard closes the stale-fill hole: a read records the invalidation generation when it starts;
 * when it wants to store its result it is refused if any invalidation applied since then could have
 * touched its entry (checked per entry, so unrelated writes do not block fills).
 */
import type { ObjectChange } from '../types/contracts';
import type { CachedRouteKind } from '../types/contracts';
import { SEARCHABLE_FIELDS } from '../rerum/search-fields';
import { idKey } from './keys';
import { compileFilter, type CompiledFilter } from './matcher';
import { QueryIndex, valuesAtPath } from './query-index';
import { idSegmentsOf, treeSegmentsOf } from './rerum-ids';
import type { EntryStore } from './store';

type Loose = Record<string, unknown>;

/** A write's effect, in the form every worker can evaluate (it is what travels between workers). */
export interface InvalidationPlan {
  /** Drop everything (cache clear, or a change we cannot reason about). */
  all: boolean;
  /** The stored documents touched, old and new states. */
  docs: Loose[];
  /** Cache clear: also reset the counters. */
  resetStats?: boolean;
}

export interface PreparedPlan extends InvalidationPlan {
  ids: Set<string>;
  trees: Set<string>;
  /** Some version holds a value at a searchable path: search / searchPhrase entries are stale. */
  searchable: boolean;
}

/**
 * Does this stored document hold a value at a path the search routes query? Any value but null counts
 * (text or not, a superset); null is never indexed for text search.
 */
export function hasSearchableValue(doc: Loose): boolean {
  for (const path of SEARCHABLE_FIELDS) for (const v of valuesAtPath(doc, path)) if (v !== 'null') return true;
  return false;
}

export function planFromChanges(changes: ObjectChange[]): InvalidationPlan {
  const docs: Loose[] = [];
  let all = false;
  for (const c of changes ?? []) {
    if (!c || (c.before == null && c.after == null)) {
      all = true; // a change we cannot attribute to a document
      continue;
    }
    if (c.before) docs.push(c.before as Loose);
    if (c.after) docs.push(c.after as Loose);
  }
  return { all, docs };
}

export function preparePlan(plan: InvalidationPlan): PreparedPlan {
  const ids = new Set<string>();
  const trees = new Set<string>();
  let searchable = false;
  for (const d of plan.docs) {
    if (!d || typeof d !== 'object') continue;
    for (const s of idSegmentsOf(d)) ids.add(s);
    for (const s of treeSegmentsOf(d)) trees.add(s);
    if (!searchable && hasSearchableValue(d)) searchable = true;
  }
  return { all: plan.all, docs: plan.docs.filter((d) => d && typeof d === 'object'), ids, trees, searchable };
}

/** What the index remembers about one cached entry. */
export type TrackInfo =
  | { kind: 'id'; segment: string }
  | { kind: 'history' | 'since'; trees: string[] }
  | { kind: 'query'; filter: unknown; compiled: CompiledFilter }
  | { kind: 'search' | 'searchPhrase' }
  | { kind: 'gog' };

/** A kind the switches below do not handle is a type error here, not an entry no write drops. */
function unhandled(kind: never): never {
  throw new Error(`cache: no invalidation rule for route kind ${String(kind)}`);
}

/** Tree ids named by a cached history/since body (plus the requested id). */
export function treesOfBody(body: string, requestedSegment: string): string[] {
  const out = new Set<string>([requestedSegment]);
  try {
    const parsed: unknown = JSON.parse(body);
    const list = Array.isArray(parsed) ? parsed : [parsed];
    for (const d of list) if (d && typeof d === 'object') for (const s of treeSegmentsOf(d as Loose)) out.add(s);
  } catch {
    /* the requested id alone */
  }
  return [...out];
}

export function trackInfoFor(kind: CachedRouteKind, extra: { segment?: string; filter?: unknown; body?: string }): TrackInfo {
  switch (kind) {
    case 'id':
      return { kind, segment: extra.segment ?? '' };
    case 'history':
    case 'since':
      return { kind, trees: treesOfBody(extra.body ?? '', extra.segment ?? '') };
    case 'query':
      return { kind, filter: extra.filter, compiled: compileFilter(extra.filter) };
    case 'search':
    case 'searchPhrase':
    case 'gog':
      return { kind };
    default:
      return unhandled(kind);
  }
}

/** Longest a write spends testing cached query filters in one worker before dropping the rest untested. */
export const MATCH_BUDGET_MS = 25;

/** Would this plan make an entry with this info stale? (Direct check, no index.) */
export function entryAffectedBy(info: TrackInfo, plan: PreparedPlan): boolean {
  if (plan.all) return true;
  if (plan.docs.length === 0) return false;
  switch (info.kind) {
    case 'id':
      return plan.ids.has(info.segment);
    case 'history':
    case 'since':
      return info.trees.some((t) => plan.trees.has(t));
    case 'query':
      return plan.docs.some((d) => info.compiled.test(d));
    case 'search':
    case 'searchPhrase':
      return plan.searchable;
    case 'gog':
      // Gallery answers join many documents ($lookup over Annotations and their targets): any write may change them.
      return true;
    default:
      return unhandled(info);
  }
}

export class CacheIndex {
  private readonly info = new Map<string, TrackInfo>();
  private readonly queries = new QueryIndex();
  private readonly trees = new Map<string, Set<string>>();
  private readonly searches = new Set<string>();
  /** Entries every write drops (the Gallery of Glosses reads). */
  private readonly anyWrite = new Set<string>();

  constructor(
    private readonly store: EntryStore,
    /** Testing budget per write (tests of exactness pass Infinity). */
    private readonly matchBudgetMs = MATCH_BUDGET_MS,
  ) {}

  get queryIndex(): QueryIndex {
    return this.queries;
  }

  infoOf(key: string): TrackInfo | undefined {
    return this.info.get(key);
  }

  track(key: string, info: TrackInfo): void {
    this.untrack(key);
    this.info.set(key, info);
    switch (info.kind) {
      case 'query':
        this.queries.add(key, info.filter);
        break;
      case 'history':
      case 'since':
        for (const t of info.trees) {
          let s = this.trees.get(t);
          if (!s) this.trees.set(t, (s = new Set()));
          s.add(key);
        }
        break;
      case 'search':
      case 'searchPhrase':
        this.searches.add(key);
        break;
      case 'gog':
        this.anyWrite.add(key);
        break;
      case 'id': // found by key from the plan's ids
        break;
      default:
        unhandled(info);
    }
  }

  untrack(key: string): void {
    const info = this.info.get(key);
    if (!info) return;
    this.info.delete(key);
    switch (info.kind) {
      case 'query':
        this.queries.remove(key);
        break;
      case 'history':
      case 'since':
        for (const t of info.trees) {
          const s = this.trees.get(t);
          if (!s) continue;
          s.delete(key);
          if (s.size === 0) this.trees.delete(t);
        }
        break;
      case 'search':
      case 'searchPhrase':
        this.searches.delete(key);
        break;
      case 'gog':
        this.anyWrite.delete(key);
        break;
      case 'id':
        break;
      default:
        unhandled(info);
    }
  }

  /** Keys this plan makes stale, found through the indexes. */
  affectedKeys(plan: PreparedPlan): Set<string> {
    const out = new Set<string>();
    if (plan.all) {
      for (const k of this.info.keys()) out.add(k);
      return out;
    }
    if (plan.docs.length === 0) return out;
    for (const seg of plan.ids) {
      const k = idKey('id', seg);
      if (this.info.has(k)) out.add(k);
    }
    for (const t of plan.trees) {
      const s = this.trees.get(t);
      if (s) for (const k of s) out.add(k);
    }
    if (plan.searchable) for (const k of this.searches) out.add(k);
    for (const k of this.anyWrite) out.add(k);
    const candidates = new Set<string>();
    for (const d of plan.docs) this.queries.candidates(d, candidates);
    // Bounded however the cache was filled: once MATCH_BUDGET_MS is spent testing, the remaining
    // candidates are dropped untested (dropping is always safe, testing only saves entries).
    const deadline = performance.now() + this.matchBudgetMs;
    let tested = 0;
    for (const k of candidates) {
      if (out.has(k)) continue;
      const info = this.info.get(k);
      if (info?.kind !== 'query') continue;
      if ((++tested & 15) === 0 && performance.now() > deadline) {
        out.add(k);
        continue;
      }
      if (plan.docs.some((d) => info.compiled.test(d))) out.add(k);
    }
    return out;
  }

  /** Drops what the plan makes stale; returns how many entries were dropped. */
  apply(plan: PreparedPlan): number {
    let n = 0;
    for (const k of this.affectedKeys(plan)) if (this.store.invalidate(k)) n++;
    return n;
  }

  clear(): void {
    this.info.clear();
    this.queries.clear();
    this.trees.clear();
    this.searches.clear();
    this.anyWrite.clear();
  }
}

/** Remembers recent invalidations so a read can tell whether its result may still be stored. */
export class FillGuard {
  private gen = 0;
  private readonly log: { gen: number; plan: PreparedPlan }[] = [];
  /** Reads that started at or before this generation can never fill. */
  private floor = 0;

  constructor(private readonly maxLog = 1024) {}

  get generation(): number {
    return this.gen;
  }

  begin(): number {
    return this.gen;
  }

  record(plan: PreparedPlan): void {
    this.gen++;
    if (plan.all) {
      this.floor = this.gen;
      this.log.length = 0;
      return;
    }
    this.log.push({ gen: this.gen, plan });
    if (this.log.length > this.maxLog) {
      const dropped = this.log.splice(0, this.log.length - this.maxLog);
      this.floor = Math.max(this.floor, dropped[dropped.length - 1].gen);
    }
  }

  /** Everything before now counts as touched (cache cleared, lease lapsed). */
  barrier(): void {
    this.gen++;
    this.floor = this.gen;
    this.log.length = 0;
  }

  mayFill(startGen: number, info: TrackInfo): boolean {
    if (startGen < this.floor) return false;
    for (let i = this.log.length - 1; i >= 0; i--) {
      const e = this.log[i];
      if (e.gen <= startGen) break;
      if (entryAffectedBy(info, e.plan)) return false;
    }
    return true;
  }
}
