/**
 * Writes that make a new version of an object (history is tracked): PUT update (and import),
 * PATCH patch / set / unset, PUT bulkUpdate. All go through `newVersion`.
 */
import type { RequestHandler } from 'express';
import { changeOf } from '../db/objects';
import { applyPatch, applySet, applyUnset, composeDocument, type PatchResult } from '../rerum/document';
import { contextualDeclaredId, newId } from '../rerum/ids';
import { importMetadata, isDeleted, nowStamp, versionMetadata } from '../rerum/metadata';
import type { ObjectChange } from '../types/contracts';
import { withNextVersion } from '../rerum/tree';
import type { RerumDocument } from '../types/rerum';
import { bulkItems, type Body, type Kit } from './kit';
import { assertIfMatch, assertIfMatchEach } from './preconditions';
import { sendBulkWritten, sendWritten } from './respond';

interface Versioned {
  version: RerumDocument;
  original: RerumDocument;
  /** The original as it now is (the version listed in its `history.next`). */
  parentAfter: RerumDocument;
}

/** What the cache must hear of a new version: the version itself and its parent. */
const versionChanges = (v: Versioned): ObjectChange[] => [changeOf(null, v.version), changeOf(v.original, v.parentAfter)];

/** A new version of `original` with `content`, and the original as it is once linked to it (nothing stored yet). */
function newVersion(kit: Kit, original: RerumDocument, content: Body, agent: string, now = nowStamp()): Versioned {
  const { config } = kit.deps;
  const _id = newId();
  const version = composeDocument(content, _id, config.idPrefix + _id, versionMetadata(config, agent, original, now));
  return { version, original, parentAfter: withNextVersion(original, version['@id'] ?? '') };
}

/** Store one new version (linked into its parent's history) and tell the cache. */
const storeVersion = (kit: Kit, v: Versioned): Promise<void> =>
  kit.write(versionChanges(v), () => kit.store.insertVersion(v.version, v.original));

/** PUT /v1/api/update: a new version with the body as its content; a non-RERUM `@id` is imported. */
export function updateHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const body = kit.bodyOf(req);
    const declared = kit.requireDeclaredId(body, 'to update');
    const agent = kit.agentOf(req);
    if (!declared.includes(config.idPrefix)) {
      const _id = newId();
      const doc = composeDocument(body, _id, config.idPrefix + _id, importMetadata(config, agent, declared));
      await kit.write([changeOf(null, doc)], () => kit.store.insert(doc));
      sendWritten(res, config, doc, 200);
      return;
    }
    const original = kit.liveObject(await kit.store.findByUri(declared), 'update');
    assertIfMatch(req, original, config);
    const made = newVersion(kit, original, body, agent);
    await storeVersion(kit, made);
    sendWritten(res, config, made.version, 200);
  };
}

type Applier = (original: RerumDocument, body: Body) => PatchResult;

/** PATCH /patch, /set, /unset: apply the body to the original; no effective change → the original, unchanged. */
function patchingHandler(kit: Kit, apply: Applier): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const body = kit.bodyOf(req);
    const declared = kit.requireDeclaredId(body, 'to update');
    const agent = kit.agentOf(req);
    const original = kit.liveObject(await kit.store.findByUri(declared), 'update', 501);
    assertIfMatch(req, original, config);
    const { changed, content } = apply(original, body);
    if (!changed) {
      sendWritten(res, config, original, 200);
      return;
    }
    const made = newVersion(kit, original, content, agent);
    await storeVersion(kit, made);
    sendWritten(res, config, made.version, 200);
  };
}

export const patchHandler = (kit: Kit) => patchingHandler(kit, applyPatch);
export const setHandler = (kit: Kit) => patchingHandler(kit, applySet);
export const unsetHandler = (kit: Kit) => patchingHandler(kit, applyUnset);

/**
 * PUT /v1/api/bulkUpdate: a new version for each item naming a live RERUM object (others are
 * skipped, as the reference). The same object may appear more than once (history branches). If one
 * item fails, the versions already made are removed again (and the cache told).
 */
export function bulkUpdateHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const items = bulkItems(req.body, 'bulkUpdate');
    const agent = kit.agentOf(req);
    await assertIfMatchEach(req, items, kit);
    const now = nowStamp();
    const made: Versioned[] = [];
    let pending: Versioned | undefined;
    try {
      for (const item of items) {
        const declared = contextualDeclaredId(item) as string; // bulkItems checked it is a non-empty string
        if (!declared.includes(config.idPrefix)) continue;
        const original = await kit.store.findByUri(declared);
        if (!original || isDeleted(original)) continue;
        pending = newVersion(kit, original, item, agent, now);
        await kit.store.insertVersion(pending.version, pending.original);
        made.push(pending);
        pending = undefined;
      }
    } catch (err) {
      for (const m of [...made].reverse()) await kit.store.removeVersion(m.version, m.parentAfter).catch(() => {});
      // The versions were readable until removed (the failed one too): the cache must forget what it saw.
      await kit.invalidate([...made, ...(pending ? [pending] : [])].flatMap(versionChanges)).catch(() => {});
      throw err;
    }
    // Several versions of one parent: the cache needs each parent's final state only once.
    const changes = new Map<string, ObjectChange>();
    for (const m of made) {
      changes.set(m.version._id, changeOf(null, m.version));
      changes.set(m.parentAfter._id, changeOf(changes.get(m.parentAfter._id)?.before ?? m.original, m.parentAfter));
    }
    await kit.invalidate([...changes.values()]);
    sendBulkWritten(res, config, made.map((m) => m.version), 200);
  };
}
