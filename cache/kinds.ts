/**
 * The cached route kinds, one row each. A row says everything the cache knows about a kind:
 *
 *   key    the cache key of a request on the kind's routes, or undefined when that request is not
 *          cached (cache/keys.ts builds the keys);
 *   index  how a write finds the kind's entries again:
 *          'tags'   an entry is filed under `tags(request, body sent)`; a write drops every entry
 *                   filed under one of `stale(written documents)` (their before and after states);
 *          'filter' the request's MongoDB filter is filed in the QueryIndex (query-index.ts) and a
 *                   write drops an entry whose filter matches one of the written documents (matcher.ts).
 *
 * Adding a cached route kind is a row here and `cache.read('<kind>')` on its route: `CacheKind` (and
 * `CachedRouteKind` in types/contracts.ts) is derived from this table, and `satisfies` refuses a row
 * without its index or rules. invalidation.ts and worker-cache.ts only read the table.
 */
import type { Request } from 'express';
import { namesOf } from '../rerum/document';
import { segmentIn } from '../rerum/ids';
import { isDeleted, treeRootOf } from '../rerum/metadata';
import { SEARCHABLE_FIELDS } from '../rerum/search-fields';
import type { RerumDocument, StoredDocument } from '../types/rerum';
import { gogRequestKey, queryRequestKey, searchRequestKey, segmentRequestKey } from './keys';
import { valuesAtPath } from './query-index';

type Loose = Record<string, unknown>;

/** What a key builder found in a request: its key, and what tracking the entry needs of it. */
export interface Keyed {
  key: string;
  /** The id segment of an id-shaped route. */
  segment?: string;
  /** The filter of a query route: the request's body (readMiddleware copies it before the controller may change it). */
  filter?: unknown;
}

/** A read of a cached kind the middleware may answer from, or store under, `key`. */
export interface KeyInfo extends Keyed {
  kind: CacheKind;
}

interface Rule {
  key(req: Request): Keyed | undefined;
}
interface TagRule extends Rule {
  index: 'tags';
  /** The tags an entry is filed under, from its key info and (read only when needed) the body sent. */
  tags(keyed: Keyed, body: () => string): readonly string[];
  /** The tags a write of these documents makes stale. The same function for two kinds is run once per write. */
  stale(docs: readonly Loose[]): ReadonlySet<string>;
}
interface FilterRule extends Rule {
  index: 'filter';
}
export type KindRule = TagRule | FilterRule;

/** The one tag of kinds whose entries all go stale together. */
const EVERY = '*';
const EVERY_TAG = [EVERY] as const;
const ALL_STALE: ReadonlySet<string> = new Set([EVERY]);
const NONE_STALE: ReadonlySet<string> = new Set();

/**
 * A stored document, and for a tombstone also the object it replaced (`__deleted.object`): what a
 * request could have been answered with before the write.
 */
function statesOf(doc: Loose): RerumDocument[] {
  const replaced = isDeleted(doc as StoredDocument) ? (doc as { __deleted?: { object?: unknown } }).__deleted?.object : undefined;
  return (replaced && typeof replaced === 'object' ? [doc, replaced] : [doc]) as RerumDocument[];
}

/** Every id segment `/v1/id/<segment>` can find this document (or the object it replaced) by. */
export function idSegmentsOf(doc: Loose): string[] {
  return [...new Set(statesOf(doc).flatMap(namesOf))];
}

/**
 * The version trees this document belongs to, named by their roots' segments, plus its own id
 * segments: a history/since entry is tagged with the segment it was requested under.
 */
export function treeSegmentsOf(doc: Loose): string[] {
  const out = new Set<string>();
  for (const s of statesOf(doc)) {
    const history = (s.__rerum as Partial<RerumDocument['__rerum']> | undefined)?.history;
    const root = history && typeof history === 'object' ? segmentIn(treeRootOf(s)) : undefined;
    if (root) out.add(root);
  }
  for (const seg of idSegmentsOf(doc)) out.add(seg);
  return [...out];
}

/** Every id segment the written documents can be requested under (`/v1/id/<segment>`). */
const idsOf = (docs: readonly Loose[]): ReadonlySet<string> => new Set(docs.flatMap(idSegmentsOf));

/** The version trees the written documents belong to. */
const treesOf = (docs: readonly Loose[]): ReadonlySet<string> => new Set(docs.flatMap(treeSegmentsOf));

/**
 * Does this stored document hold a value at a path the search routes query? Any value but null counts
 * (text or not, a superset); null is never indexed for text search.
 */
export function hasSearchableValue(doc: Loose): boolean {
  for (const path of SEARCHABLE_FIELDS) for (const v of valuesAtPath(doc, path)) if (v !== 'null') return true;
  return false;
}

/**
 * Search results are stale after a write whose old or new version holds a value at one of the
 * searchable paths (SEARCHABLE_FIELDS, rerum/search-fields.ts: the fields of the text index and of the
 * reference's Atlas Search indexes, and the only paths the search routes query); writes of documents
 * without any (most metadata, people, manifests without text) keep them. A document with no value at
 * those paths cannot be a result, and cannot change any result's score (MongoDB `$text` scores each
 * document on its own; Atlas Search's BM25 statistics are per queried field). Finer, per-term matching
 * is deliberately not attempted: whether a word matches depends on the server's analyzer — Snowball
 * stemming in the document's own `language` (the text index's language override, per document and per
 * sub-document), MongoDB's Unicode delimiter tables, or whatever analyzer the Atlas index defines, with
 * BM25 scores that move when any document with text in the queried field changes. A cache-side
 * approximation that is guaranteed to be a superset would match nearly everything, and one that is not
 * would serve stale search pages.
 */
const searchableIn = (docs: readonly Loose[]): ReadonlySet<string> => (docs.some(hasSearchableValue) ? ALL_STALE : NONE_STALE);

/** Tree ids named by a cached history/since body (each listed document's prime, or own id for a root), plus the requested id. */
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

/** history and since: the entries of a version tree, dropped by a write of any version in it. */
const treeKind = (kind: 'history' | 'since'): TagRule => ({
  key: (req) => segmentRequestKey(kind, req),
  index: 'tags',
  tags: (k, body) => treesOfBody(body(), k.segment ?? ''),
  stale: treesOf,
});

const searchKind = (kind: 'search' | 'searchPhrase'): TagRule => ({
  key: (req) => searchRequestKey(kind, req),
  index: 'tags',
  tags: () => EVERY_TAG,
  stale: searchableIn,
});

const TABLE = {
  /** GET /v1/id/:id — dropped by a write of a document with that id (@id, id, _id or slug, also in a tombstone). */
  id: { key: (req) => segmentRequestKey('id', req), index: 'tags', tags: (k) => [k.segment ?? ''], stale: idsOf },
  /** GET /v1/history/:id */
  history: treeKind('history'),
  /** GET /v1/since/:id */
  since: treeKind('since'),
  /** POST /v1/api/query — dropped when its filter could match the old or the new version of a written document. */
  query: { key: queryRequestKey, index: 'filter' },
  /** POST /v1/api/search */
  search: searchKind('search'),
  /** POST /v1/api/search/phrase */
  searchPhrase: searchKind('searchPhrase'),
  /**
   * POST /gog/fragmentsInManuscript, /gog/glossesInManuscript, GET /gog/id/:id — Gallery answers join
   * many documents ($lookup over Annotations and their targets): any write may change them.
   */
  gog: { key: gogRequestKey, index: 'tags', tags: () => EVERY_TAG, stale: () => ALL_STALE },
} satisfies Record<string, KindRule>;

/** A cached route kind: a row of the table. */
export type CacheKind = keyof typeof TABLE;

export const KINDS: Readonly<Record<CacheKind, KindRule>> = TABLE;

/** The cache key for a request on a cached route, or undefined when it should not be cached. */
export function keyForRequest(kind: CacheKind, req: Request): KeyInfo | undefined {
  const keyed = KINDS[kind].key(req);
  return keyed && { kind, ...keyed };
}
