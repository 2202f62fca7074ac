/**
 * Writes on an existing object that make no new version: PUT overwrite, PATCH release, DELETE.
 * Only the generating agent (or the bot) may do these, and not on a released object.
 */
import type { RequestHandler } from 'express';
import { badRequest, forbidden } from '../middleware/http-error';
import { overwriteOf, toResponse, tombstoneOf } from '../rerum/document';
import { declaredId, segmentOf } from '../rerum/ids';
import { isReleased, nowStamp } from '../rerum/metadata';
import { BrokenTreeError, planDeleteHeal, planRelease } from '../rerum/tree';
import { claimSlug } from './create';
import { lostRace, type Kit } from './kit';
import { assertIfMatch } from './preconditions';
import { sendWritten } from './respond';
import type { Replacement } from '../types/rerum';

/**
 * Apply the replacements. A write that lost a race (another request changed the object first:
 * 'ConcurrentChange', nothing was changed) answers what it would have answered had it come second:
 * `live` reads the object again and throws that answer (403 for an object deleted or released
 * meanwhile); if the object still passes, the 409 stands.
 */
async function replaceOrAnswerAsSecond(kit: Kit, replacements: Replacement[], live: () => Promise<unknown>): Promise<void> {
  try {
    await kit.store.replaceAll(replacements);
  } catch (err) {
    if (lostRace(err)) await live();
    throw err;
  }
}

/**
 * PUT /v1/api/overwrite: replace the content in place, keeping `@id` and history; stamps
 * `__rerum.isOverwritten`. Optimistic locking: an `If-Overwritten-Version` header (or the body's
 * `__rerum.isOverwritten`) that is not the stored value → 409 with the current version.
 */
export function overwriteHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const body = kit.bodyOf(req);
    const declared = kit.requireDeclaredId(body, 'to overwrite');
    const agent = kit.agentOf(req);
    const live = async () => {
      const doc = kit.liveObject(await kit.store.findByUri(declared), 'overwrite');
      kit.assertOwnedUnreleased(doc, agent, 'overwrite', '  Fork with /update to make changes.');
      return doc;
    };
    const original = await live();
    assertIfMatch(req, original, config);
    const rerumBody = body.__rerum as { isOverwritten?: unknown } | undefined;
    const expected = req.get('If-Overwritten-Version') ?? rerumBody?.isOverwritten;
    const current = original.__rerum.isOverwritten ?? '';
    if (expected !== undefined && expected !== current) {
      res.status(409).json({
        status: 409,
        error: 'Conflict',
        message: `The 'If-Overwritten-Version' '${String(expected)}' does not match the current version '${current}'.`,
        currentVersion: toResponse(original, config.idPrefix),
      });
      return;
    }
    const stamp = nowStamp();
    const after = overwriteOf(original, body, stamp, config.idPrefix);
    await replaceOrAnswerAsSecond(kit, [{ before: original, after }], live);
    sendWritten(res, config, after, 200, { 'Current-Overwritten-Version': stamp });
  };
}

/** PATCH /v1/api/release/:_id: release the object (optionally under a new Slug) and update the releases tree. */
export function releaseHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const id = String(req.params._id ?? '');
    if (!id) throw badRequest('You must provide the id of an object to release.  Use /release/id-here.');
    const agent = kit.agentOf(req);
    const slugParam = typeof req.query.slug === 'string' ? req.query.slug : undefined;
    const slug = await claimSlug(kit, req.get('Slug') || slugParam);
    const live = async () => {
      const found = kit.liveObject(await kit.store.findBySegment(id), 'release');
      if (isReleased(found)) throw forbidden('The object you are trying to release is already released.');
      kit.assertOwnedUnreleased(found, agent, 'release');
      return found;
    };
    const doc = await live();
    assertIfMatch(req, doc, config);
    const versions = await kit.store.treeOf(doc);
    const plan = planRelease(versions, doc, nowStamp(), slug);
    await replaceOrAnswerAsSecond(kit, plan.replacements, live);
    sendWritten(res, config, plan.released, 200);
  };
}

/** How often a delete reads the object and its tree again when the tree looked broken. */
const DELETE_ATTEMPTS = 3;

/** DELETE /v1/api/delete/:_id (or with the `@id` in the body): mend the history tree, then leave a tombstone. */
export function deleteHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    let id = req.params._id ? String(req.params._id) : '';
    if (!id) {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const declared = typeof body === 'object' && body !== null ? declaredId(body) : undefined;
      if (declared === undefined) throw badRequest('You must provide the id of an object to delete.  Use /delete/id-here.');
      id = segmentOf(declared);
    }
    const agent = kit.agentOf(req);
    const live = async () => {
      const found = kit.liveObject(await kit.store.findBySegment(id), 'delete');
      kit.assertOwnedUnreleased(found, agent, 'delete', ' Fork to make changes.');
      return found;
    };
    for (let attempt = 1; ; attempt++) {
      const doc = await live();
      assertIfMatch(req, doc, config);
      const versions = await kit.store.treeOf(doc);
      let heal: Replacement[];
      try {
        heal = planDeleteHeal(versions, doc, config.idPrefix);
      } catch (err) {
        // The object and its tree are two reads: another request that changed the tree between them
        // (deleted a neighbour, mended the links) makes it look broken. Read both again; a tree that
        // stays broken is a 500, nothing changed.
        if (err instanceof BrokenTreeError && attempt < DELETE_ATTEMPTS) continue;
        throw err;
      }
      await replaceOrAnswerAsSecond(kit, [...heal, { before: doc, after: tombstoneOf(doc, agent, nowStamp()) }], live);
      res.status(204).end();
      return;
    }
  };
}
