/**
 * How a stored RERUM document maps onto the cache's id-shaped keys.
 *
 * - id entries are keyed by the id path segment (`/v1/id/<segment>`): the last path segment of
 *   `@id` / `id`, or the `_id` itself. Full URLs and bare ids give the same segment.
 * - history/since entries belong to a version tree, named by the segment of the tree's prime
 *   (`__rerum.history.prime`, or the document's own id when it is the root).
 * A soft-deleted document may keep its original fields only under `__deleted.object`; both places
 * are read.
 */
import type { RerumDocument } from '../types/rerum';

type Loose = Record<string, unknown>;

/** Last non-empty path segment of an id or URL (query string and fragment removed). */
export function idSegment(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  let s = value.trim();
  if (!s) return undefined;
  s = s.replace(/[?#].*$/, '').replace(/\/+$/, '');
  const seg = s.slice(s.lastIndexOf('/') + 1);
  if (!seg) return undefined;
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}

function views(doc: RerumDocument | Loose): Loose[] {
  const out: Loose[] = [doc as Loose];
  const deleted = (doc as Loose).__deleted as Loose | undefined;
  if (deleted && typeof deleted === 'object' && deleted.object && typeof deleted.object === 'object') {
    out.push(deleted.object as Loose);
  }
  return out;
}

/** Every id segment under which this document can be requested from /v1/id/:id. */
export function idSegmentsOf(doc: RerumDocument | Loose): string[] {
  const out = new Set<string>();
  for (const v of views(doc)) {
    for (const field of ['@id', 'id', '_id']) {
      const seg = idSegment(typeof v[field] === 'object' && v[field] !== null ? String(v[field]) : v[field]);
      if (seg) out.add(seg);
    }
    const rerum = v.__rerum as Loose | undefined;
    if (rerum && typeof rerum === 'object' && typeof rerum.slug === 'string' && rerum.slug) out.add(rerum.slug);
  }
  return [...out];
}

/** Segments naming the version tree(s) this document belongs to: its prime, or itself when root. */
export function treeSegmentsOf(doc: RerumDocument | Loose): string[] {
  const out = new Set<string>();
  for (const v of views(doc)) {
    const rerum = v.__rerum as Loose | undefined;
    const history = rerum && typeof rerum === 'object' ? (rerum.history as Loose | undefined) : undefined;
    const prime = history && typeof history === 'object' ? history.prime : undefined;
    if (typeof prime === 'string' && prime !== '' && prime !== 'root') {
      const seg = idSegment(prime);
      if (seg) out.add(seg);
    }
  }
  // A root (or a document without history) names its own tree; adding its own ids is harmless for
  // non-roots and covers roots and metadata-less documents.
  for (const seg of idSegmentsOf(doc)) out.add(seg);
  return [...out];
}
