/**
 * Writes that make a new version of an object (history is tracked): PUT update (and import),
 * PATCH patch / set / unset, PUT bulkUpdate. All go through `createVersion`.
 */
import type { RequestHandler } from 'express';
import { changeOf } from '../db/objects';
import { applyPatch, applySet, applyUnset, composeDocument, toResponse, type PatchResult } from '../rerum/document';
import { newId } from '../rerum/ids';
import { importMetadata, isDeleted, nowStamp, versionMetadata } from '../rerum/metadata';
import type { ObjectChange } from '../types/contracts';
import type { RerumDocument } from '../types/rerum';
import { bulkItems, type Body, type Kit } from './kit';
import { JSON_TYPE, sendWritten } from './respond';

interface Versioned {
  version: RerumDocument;
  parentAfter: RerumDocument;
  changes: ObjectChange[];
}

/** Store a new version of `original` with `content`, linked into its history tree. */
export async function createVersion(kit: Kit, original: RerumDocument, content: Body, agent: string, now = nowStamp()): Promise<Versioned> {
  const { config } = kit.deps;
  const _id = newId();
  const version = composeDocument(content, _id, config.idPrefix + _id, versionMetadata(config, agent, original, now));
  const parentAfter = await kit.store.insertVersion(version, original);
  return { version, parentAfter, changes: [changeOf(null, version), changeOf(original, parentAfter)] };
}

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
      await kit.store.insert(doc);
      await kit.invalidate([changeOf(null, doc)]);
      sendWritten(res, config, doc, 200);
      return;
    }
    const original = kit.liveObject(await kit.store.findByUri(declared), 'update');
    const { version, changes } = await createVersion(kit, original, body, agent);
    await kit.invalidate(changes);
    sendWritten(res, config, version, 200);
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
    const { changed, content } = apply(original, body);
    if (!changed) {
      sendWritten(res, config, original, 200);
      return;
    }
    const { version, changes } = await createVersion(kit, original, content, agent);
    await kit.invalidate(changes);
    sendWritten(res, config, version, 200);
  };
}

export const patchHandler = (kit: Kit) => patchingHandler(kit, applyPatch);
export const setHandler = (kit: Kit) => patchingHandler(kit, applySet);
export const unsetHandler = (kit: Kit) => patchingHandler(kit, applyUnset);

/**
 * PUT /v1/api/bulkUpdate: a new version for each item naming a live RERUM object (others are
 * skipped, as the reference). The same object may appear more than once (history branches). If one
 * item fails, the versions already made are removed again.
 */
export function bulkUpdateHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const items = bulkItems(req.body, 'bulkUpdate');
    const agent = kit.agentOf(req);
    const now = nowStamp();
    const made: Versioned[] = [];
    try {
      for (const item of items) {
        const declared = (item['@id'] ?? item.id) as string;
        if (!declared.includes(config.idPrefix)) continue;
        const original = await kit.store.findByUri(declared);
        if (!original || isDeleted(original)) continue;
        made.push(await createVersion(kit, original, item, agent, now));
      }
    } catch (err) {
      for (const m of made.reverse()) await kit.store.removeVersion(m.version, m.parentAfter).catch(() => {});
      throw err;
    }
    // Several versions of one parent: the cache needs each parent's final state only once.
    const changes = new Map<string, ObjectChange>();
    for (const m of made) {
      changes.set(m.version._id, changeOf(null, m.version));
      const prev = changes.get(m.parentAfter._id);
      changes.set(m.parentAfter._id, changeOf(prev?.before ?? m.changes[1].before, m.parentAfter));
    }
    await kit.invalidate([...changes.values()]);
    res.set('Content-Type', JSON_TYPE);
    if (made.length) res.set('Link', made.map((m) => m.version['@id'] ?? ''));
    res.status(200).json(made.map((m) => toResponse(m.version, config.idPrefix)));
  };
}
