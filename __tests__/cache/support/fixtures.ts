/**
 * Stored documents and the ObjectChanges real writes report, built with the functions the write paths
 * use (rerum/): the same shapes the object store hands the cache, never hand-written ones.
 */
import { composeDocument, overwriteOf, tombstoneOf } from '../../../rerum/document';
import { newId } from '../../../rerum/ids';
import { nowStamp, rootMetadata, versionMetadata } from '../../../rerum/metadata';
import { planDeleteHeal, planRelease, withNextVersions } from '../../../rerum/tree';
import type { ObjectChange } from '../../../types/contracts';
import type { RerumDocument } from '../../../types/rerum';

export const ID_PREFIX = 'http://localhost:3001/v1/id/';
const META = { context: 'http://store.rerum.io/v1/context.json', apiVersion: '1.1.0' };
const AGENT = 'http://store.rerum.io/v1/id/agent';

/** A fresh `_id`, as the server mints them. */
export const hexId = newId;

/** A new object with this `_id` and content, as create stores it (the root of its own tree). */
export function doc(id: string, props: Record<string, unknown>, slug?: string): RerumDocument {
  return composeDocument(props, id, ID_PREFIX + id, rootMetadata(META, AGENT, nowStamp(), slug));
}

/** A new version of `parent` with this content, as update/patch/set/unset store it (`parent` itself unchanged). */
export function versionOf(parent: RerumDocument, props: Record<string, unknown>): RerumDocument {
  const id = newId();
  return composeDocument(props, id, ID_PREFIX + id, versionMetadata(META, AGENT, parent));
}

/** create: one new document. */
export function createChange(d: RerumDocument): ObjectChange[] {
  return [{ before: null, after: d }];
}

/** update/patch/set/unset: a new version made from `prev`, and prev gains it in `history.next`. */
export function updateChanges(
  prev: RerumDocument,
  newProps: Record<string, unknown>,
): { changes: ObjectChange[]; next: RerumDocument; prevAfter: RerumDocument } {
  const next = versionOf(prev, newProps);
  const prevAfter = withNextVersions(prev, [next['@id']!]);
  return {
    changes: [
      { before: prev, after: prevAfter },
      { before: null, after: next },
    ],
    next,
    prevAfter,
  };
}

/** overwrite: same document, new content. */
export function overwriteChange(d: RerumDocument, newProps: Record<string, unknown>): { changes: ObjectChange[]; after: RerumDocument } {
  const after = overwriteOf(d, newProps, nowStamp(), ID_PREFIX);
  return { changes: [{ before: d, after }], after };
}

/** delete: the tree around `d` mended (`tree`: every version of it), then `d` replaced by its tombstone. */
export function deleteChange(d: RerumDocument, tree: RerumDocument[] = [d]): { changes: ObjectChange[]; after: RerumDocument } {
  const after = tombstoneOf(d, AGENT, nowStamp()) as unknown as RerumDocument;
  return { changes: [...planDeleteHeal(tree, d, ID_PREFIX), { before: d, after }] as ObjectChange[], after };
}

/** release: `d` released and the releases tree (`tree`: every version of it) updated around it. */
export function releaseChange(d: RerumDocument, tree: RerumDocument[] = [d]): { changes: ObjectChange[]; after: RerumDocument } {
  const plan = planRelease(tree, d, nowStamp());
  return { changes: plan.replacements as ObjectChange[], after: plan.released };
}
