/**
 * Writes that make a new version of an object (history is tracked): PUT update (and import),
 * PATCH patch / set / unset, PUT bulkUpdate. All go through `newVersion`.
 */
import type { RequestHandler } from 'express';
import type { NewVersion } from '../db/objects';
import { applyPatch, applySet, applyUnset, composeDocument, type PatchResult } from '../rerum/document';
import { contextualDeclaredId, newId, segmentOf } from '../rerum/ids';
import { importMetadata, isDeleted, nowStamp, versionMetadata } from '../rerum/metadata';
import type { RerumDocument, StoredDocument } from '../types/rerum';
import { bulkItems, lostRace, type Body, type Kit } from './kit';
import { assertIfMatch, assertIfMatchEach } from './preconditions';
import { sendBulkWritten, sendWritten } from './respond';

/** A new version of `original` with `content` (nothing stored yet). */
function newVersion(kit: Kit, original: RerumDocument, content: Body, agent: string, now = nowStamp()): NewVersion {
  const { config } = kit.deps;
  const _id = newId();
  const version = composeDocument(content, _id, config.idPrefix + _id, versionMetadata(config, agent, original, now));
  return { version, parent: original };
}

/** Store one new version, linked into its parent's history. */
const storeVersion = (kit: Kit, v: NewVersion): Promise<void> => kit.store.insertVersions([v]);

/** How often a version write is made again from a fresh read when another request changed a parent first. */
const WRITE_ATTEMPTS = 3;

/**
 * A version write (read the originals, store the versions, answer) whose parent another request
 * deleted between the read and the link is undone by the store ('ConcurrentChange', nothing
 * changed); it is then made again from a fresh read, so it answers as if it had come second: 403
 * for an update of the deleted object, the item skipped by bulkUpdate. After WRITE_ATTEMPTS the 409
 * stands.
 */
function redoneOnConcurrentChange(write: RequestHandler): RequestHandler {
  return async (req, res, next) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await write(req, res, next);
        return;
      } catch (err) {
        if (!lostRace(err) || attempt >= WRITE_ATTEMPTS) throw err;
      }
    }
  };
}

/** PUT /v1/api/update: a new version with the body as its content; a non-RERUM `@id` is imported. */
export function updateHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return redoneOnConcurrentChange(async (req, res) => {
    const body = kit.bodyOf(req);
    const declared = kit.requireDeclaredId(body, 'to update');
    const agent = kit.agentOf(req);
    if (!declared.includes(config.idPrefix)) {
      const _id = newId();
      const doc = composeDocument(body, _id, config.idPrefix + _id, importMetadata(config, agent, declared));
      await kit.store.insert(doc);
      sendWritten(res, config, doc, 200);
      return;
    }
    const original = kit.liveObject(await kit.store.findByUri(declared), 'update');
    assertIfMatch(req, original, config);
    const made = newVersion(kit, original, body, agent);
    await storeVersion(kit, made);
    sendWritten(res, config, made.version, 200);
  });
}

type Applier = (original: RerumDocument, body: Body) => PatchResult;

/** PATCH /patch, /set, /unset: apply the body to the original; no effective change → the original, unchanged. */
function patchingHandler(kit: Kit, apply: Applier): RequestHandler {
  const { config } = kit.deps;
  return redoneOnConcurrentChange(async (req, res) => {
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
  });
}

export const patchHandler = (kit: Kit) => patchingHandler(kit, applyPatch);
export const setHandler = (kit: Kit) => patchingHandler(kit, applySet);
export const unsetHandler = (kit: Kit) => patchingHandler(kit, applyUnset);

/**
 * PUT /v1/api/bulkUpdate: a new version for each item naming a live RERUM object (others are
 * skipped, as the reference). The same object may appear more than once (history branches): each
 * such item makes its own version of the object as it was read, and all are linked into its
 * `history.next` in one step. All or nothing: if one fails, none is kept.
 */
export function bulkUpdateHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return redoneOnConcurrentChange(async (req, res) => {
    const items = bulkItems(req.body, 'bulkUpdate');
    const agent = kit.agentOf(req);
    const now = nowStamp();
    // bulkItems checked each declared id is a non-empty string; items not naming a RERUM object are skipped
    const named = items
      .map((item) => ({ item, declared: contextualDeclaredId(item) as string }))
      .filter(({ declared }) => declared.includes(config.idPrefix))
      .map(({ item, declared }) => ({ item, segment: segmentOf(declared) }));
    // every original in one query
    const originals = named.length
      ? await kit.store.findBySegments([...new Set(named.map((n) => n.segment))])
      : new Map<string, StoredDocument>();
    assertIfMatchEach(req, originals.values(), config);
    const made: NewVersion[] = [];
    for (const { item, segment } of named) {
      const original = originals.get(segment);
      if (!original || isDeleted(original)) continue;
      made.push(newVersion(kit, original, item, agent, now));
    }
    await kit.store.insertVersions(made);
    sendBulkWritten(
      res,
      config,
      made.map((m) => m.version),
      200,
    );
  });
}
