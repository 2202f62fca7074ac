/** POST /v1/api/create and /v1/api/bulkCreate. */
import type { RequestHandler } from 'express';
import type { Filter } from 'mongodb';
import { badRequest, conflict } from '../middleware/http-error';
import { composeDocument, hasNoContent } from '../rerum/document';
import { isValidId, newId } from '../rerum/ids';
import { nowStamp, rootMetadata } from '../rerum/metadata';
import type { RerumDocument } from '../types/rerum';
import { bulkItems, type Kit } from './kit';
import { sendBulkWritten, sendWritten } from './respond';

/**
 * A `Slug` header names a new object's alternative id segment; it must be free. An empty one is no
 * slug (as the reference). A Slug in the server's own id format (24 hex digits) is refused: it could
 * be, or later become, another object's `_id`, and `/v1/id/{segment}` would answer with the wrong one.
 */
export async function claimSlug(kit: Kit, slug: string | undefined): Promise<string | undefined> {
  const s = slug?.trim();
  if (!s) return undefined;
  if (/[/?#\s]/.test(s)) throw badRequest('The Slug header must be a single URL path segment.');
  if (isValidId(s)) throw badRequest('A Slug of 24 hexadecimal digits is not allowed: that is the form of the ids this server generates.');
  if (await kit.store.exists(s)) throw conflict('The id provided already exists.  Please use a different _id or Slug.');
  return s;
}

/**
 * `count` fresh ids that no stored object uses as `_id` or Slug. Generated ids are random (see
 * newId), so a retry is practically never needed; the check keeps it that way even against data
 * written by other servers.
 */
async function unusedIds(kit: Kit, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, newId);
  for (let attempt = 0; attempt < 5; attempt++) {
    const taken = await kit.store.find({ $or: [{ _id: { $in: ids } }, { '__rerum.slug': { $in: ids } }] } as Filter<RerumDocument>, {
      projection: { _id: 1, '__rerum.slug': 1 },
    });
    if (taken.length === 0) return ids;
    const used = new Set(taken.flatMap((d) => [d._id, d.__rerum?.slug]));
    for (let i = 0; i < ids.length; i++) if (used.has(ids[i])) ids[i] = newId();
  }
  throw new Error('could not draw an unused id');
}

export function createHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const body = kit.bodyOf(req);
    if (hasNoContent(body)) {
      throw badRequest('Detected empty JSON object.  You must provide at least one property in the /create request body JSON.');
    }
    const agent = kit.agentOf(req);
    const slug = await claimSlug(kit, req.get('Slug'));
    const _id = isValidId(body._id) ? body._id : (await unusedIds(kit, 1))[0];
    const doc = composeDocument(body, _id, config.idPrefix + _id, rootMetadata(config, agent, nowStamp(), slug));
    await kit.store.insert(doc);
    sendWritten(res, config, doc, 201);
  };
}

export function bulkCreateHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const items = bulkItems(req.body, 'bulkCreate');
    // The reference silently drops `{}` items (and answers 500 when nothing is left); refusing keeps
    // the answer's items in step with the request's.
    const empty = items.findIndex((d) => hasNoContent(d));
    if (empty >= 0) {
      throw badRequest(`Detected empty JSON object at index ${empty}.  You must provide at least one property in each object of the /bulkCreate request body JSON.`);
    }
    const agent = kit.agentOf(req);
    const now = nowStamp();
    const fresh = await unusedIds(kit, items.length);
    const docs: RerumDocument[] = items
      .map((d, i) => {
        const _id = isValidId(d._id) ? d._id : fresh[i];
        return composeDocument(d, _id, config.idPrefix + _id, rootMetadata(config, agent, now));
      });
    await kit.store.insertAll(docs);
    sendBulkWritten(res, config, docs, 201);
  };
}
