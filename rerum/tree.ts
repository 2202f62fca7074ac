/**
 * The history and releases trees. Pure: each planner takes every version of one tree (as read from
 * the database) and returns the documents to replace, before and after, so the caller can write
 * them, invalidate the cache with them, and undo them.
 */
import type { RerumDocument, Replacement } from '../types/rerum';
import { BrokenTreeError } from './errors';
import { isReleased } from './metadata';

export { BrokenTreeError };

const byAtId = (versions: RerumDocument[], atId: string) => versions.find((v) => v['@id'] === atId);

/** The versions upstream of `key`, nearest first, ending at the root. `key` itself is not included. */
export function ancestorsOf(versions: RerumDocument[], key: RerumDocument): RerumDocument[] {
  const out: RerumDocument[] = [];
  const seen = new Set<string>([key['@id'] ?? '']);
  let cur = key;
  while (cur.__rerum.history.prime !== 'root') {
    const prev = byAtId(versions, cur.__rerum.history.previous);
    if (!prev || seen.has(prev['@id'] ?? '')) break;
    seen.add(prev['@id'] ?? '');
    out.push(prev);
    cur = prev;
  }
  return out;
}

/** The versions downstream of `key`, depth first in `history.next` order. `key` itself is not included. */
export function descendantsOf(versions: RerumDocument[], key: RerumDocument): RerumDocument[] {
  const out: RerumDocument[] = [];
  const seen = new Set<string>([key['@id'] ?? '']);
  const walk = (node: RerumDocument) => {
    for (const nextId of node.__rerum.history.next) {
      const child = byAtId(versions, nextId);
      if (!child || seen.has(nextId)) continue;
      seen.add(nextId);
      out.push(child);
      walk(child);
    }
  };
  walk(key);
  return out;
}

/**
 * `doc` with `ids` added to its `history.next` (as the database's `$addToSet` with `$each`), or taken
 * out of it (`$pullAll`). Shallow: only the path to `history.next` is new.
 */
export function withNextVersions(doc: RerumDocument, ids: string[], add = true): RerumDocument {
  const next = doc.__rerum?.history?.next ?? [];
  const changed = add
    ? [...next, ...ids.filter((id, i) => !next.includes(id) && ids.indexOf(id) === i)]
    : next.filter((id) => !ids.includes(id));
  return { ...doc, __rerum: { ...doc.__rerum, history: { ...doc.__rerum.history, next: changed } } };
}

/** Copy-on-write edits of several documents; each document yields at most one replacement. */
class Draft {
  private readonly edits = new Map<string, Replacement & { after: RerumDocument }>();

  edit(doc: RerumDocument): RerumDocument {
    let e = this.edits.get(doc._id);
    if (!e) {
      e = { before: doc, after: structuredClone(doc) };
      this.edits.set(doc._id, e);
    }
    return e.after;
  }

  replacements(): Replacement[] {
    return [...this.edits.values()].filter((e) => JSON.stringify(e.before) !== JSON.stringify(e.after));
  }
}

export interface ReleasePlan {
  /** The released object as it will be stored. */
  released: RerumDocument;
  /** Every document to replace, the released object included. */
  replacements: Replacement[];
}

/**
 * Release `releasing`: stamp `isReleased`, record the release it replaces (its nearest released
 * ancestor), point the descendants that pointed at that ancestor to it instead (a released descendant
 * now replaces it), and list it in every ancestor's `releases.next` in place of the released
 * descendants it now stands in front of.
 */
export function planRelease(versions: RerumDocument[], releasing: RerumDocument, now: string, slug?: string): ReleasePlan {
  const draft = new Draft();
  const releasedId = releasing['@id'] ?? '';
  const formerPrevious = releasing.__rerum.releases.previous;
  const covered = releasing.__rerum.releases.next;

  const released = draft.edit(releasing);
  released.__rerum.isReleased = now;
  released.__rerum.releases.replaces = formerPrevious;
  if (slug) released.__rerum.slug = slug;

  for (const d of descendantsOf(versions, releasing)) {
    if (d.__rerum.releases.previous !== formerPrevious) continue;
    const w = draft.edit(d);
    w.__rerum.releases.previous = releasedId;
    if (isReleased(d) && d.__rerum.releases.replaces === formerPrevious) w.__rerum.releases.replaces = releasedId;
  }
  for (const a of ancestorsOf(versions, releasing)) {
    const next = a.__rerum.releases.next.filter((id) => !covered.includes(id));
    if (!next.includes(releasedId)) next.push(releasedId);
    draft.edit(a).__rerum.releases.next = next;
  }
  return { released, replacements: draft.replacements() };
}

/**
 * Mend the history tree around `deleting` before it is replaced by its tombstone:
 * - each next version takes over its previous (the gap is closed);
 * - if it was the root, each next version becomes the root of its own tree (keeping the deleted
 *   root's `previous`, e.g. an import's origin) and its descendants take it as their prime;
 * - its previous version (when a RERUM object) lists the deleted one's next versions in its place.
 */
export function planDeleteHeal(versions: RerumDocument[], deleting: RerumDocument, idPrefix: string): Replacement[] {
  const draft = new Draft();
  const { previous, prime, next } = deleting.__rerum.history;
  const deletingId = deleting['@id'] ?? '';
  const isRoot = prime === 'root';

  for (const nextId of next) {
    const n = byAtId(versions, nextId);
    if (!n) throw new BrokenTreeError(`The history tree could not be mended: next version ${nextId} was not found.`);
    if (isRoot) {
      for (const d of descendantsOf(versions, n)) draft.edit(d).__rerum.history.prime = n['@id'] ?? '';
      const w = draft.edit(n);
      w.__rerum.history.prime = 'root';
      w.__rerum.history.previous = previous;
    } else if (previous !== '') {
      draft.edit(n).__rerum.history.previous = previous;
    } else {
      throw new BrokenTreeError(`The history tree could not be mended: ${deletingId} has no previous version and is not the root.`);
    }
  }

  if (previous !== '') {
    const p = byAtId(versions, previous);
    if (p) {
      const w = draft.edit(p);
      const kept = p.__rerum.history.next.filter((id) => id !== deletingId);
      w.__rerum.history.next = [...kept, ...next.filter((id) => !kept.includes(id))];
    } else if (previous.startsWith(idPrefix)) {
      throw new BrokenTreeError(`The history tree could not be mended: previous version ${previous} was not found.`);
    }
  }
  return draft.replacements();
}
