/** POST /v1/api/create and /v1/api/bulkCreate. */
import type { RequestHandler } from 'express';
import { badRequest, conflict } from '../middleware/http-error';
import { composeDocument, hasNoContent } from '../rerum/document';
import { IdTakenError } from '../rerum/errors';
import { isValidId, newId } from '../rerum/ids';
import { nowStamp, rootMetadata } from '../rerum/metadata';
import type { RerumDocument } from '../types/rerum';
import { bulkItems, type Kit } from './kit';
import { sendBulkWritten, sendWritten } from './respond';

/**
 * A `Slug` header names a new object's alternative id segment; it must be free. An empty one is no
 * slug (as the reference). A Slug in the server's own id format (24 hex digits) is refused: it could
 * be, or later become, another object's `_id`, and `/v1/id/{segment}` would answer with the wrong one.
 * The lookup here answers the common case (and refuses a slug equal to an existing `_id`); two
 * requests claiming one slug at once can both pass it, and the unique slug index (db/indexes.ts)
 * refuses the second write: 'IdTaken', the same 409.
 */
export async function claimSlug(kit: Kit, slug: string | undefined): Promise<string | undefined> {
  const s = slug?.trim();
  if (!s) return undefined;
  if (/[/?#\s]/.test(s)) throw badRequest('The Slug header must be a single URL path segment.');
  if (isValidId(s)) throw badRequest('A Slug of 24 hexadecimal digits is not allowed: that is the form of the ids this server generates.');
  if (await kit.store.exists(s)) throw conflict('The id provided already exists.  Please use a different _id or Slug.');
  return s;
}

/** Attempts at drawing fresh ids when the database says a generated one is taken. */
const ID_ATTEMPTS = 5;

/**
 * Insert documents made by `make` from one id per item: the client's valid `_id` where it gave one
 * (`clientIds[i]`), else a freshly drawn one. No lookup comes first: the unique `_id` index is the
 * check, and a duplicate key on a drawn id (practically never: ids end in 5 random bytes, see newId)
 * draws again; one on a client's id, or on the slug (the unique slug index, db/indexes.ts), is
 * 'IdTaken' (409). One round trip in the usual case.
 */
async function insertWithFreshIds(
  kit: Kit,
  clientIds: (string | undefined)[],
  make: (ids: string[]) => RerumDocument[],
): Promise<RerumDocument[]> {
  const ids = clientIds.map((c) => c ?? newId());
  for (let attempt = 1; ; attempt++) {
    const docs = make(ids);
    try {
      if (docs.length === 1) await kit.store.insert(docs[0]);
      else await kit.store.insertAll(docs);
      return docs;
    } catch (err) {
      // a slug another document holds stays taken whatever the id: 409 at once
      if (!(err instanceof IdTakenError) || err.slugTaken || attempt >= ID_ATTEMPTS) throw err;
      const drawn = ids.map((id, i) => (clientIds[i] === undefined ? i : -1)).filter((i) => i >= 0);
      // a client's own id that is taken stays taken: answer 409 at once
      if (drawn.length === 0 || (err.takenId !== undefined && clientIds.includes(err.takenId))) throw err;
      for (const i of drawn) if (err.takenId === undefined || ids[i] === err.takenId) ids[i] = newId();
    }
  }
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
    const now = nowStamp();
    const [doc] = await insertWithFreshIds(kit, [isValidId(body._id) ? body._id : undefined], ([_id]) => [
      composeDocument(body, _id, config.idPrefix + _id, rootMetadata(config, agent, now, slug)),
    ]);
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
      throw badRequest(
        `Detected empty JSON object at index ${empty}.  You must provide at least one property in each object of the /bulkCreate request body JSON.`,
      );
    }
    const agent = kit.agentOf(req);
    const now = nowStamp();
    const docs = await insertWithFreshIds(
      kit,
      items.map((d) => (isValidId(d._id) ? d._id : undefined)),
      (ids) => items.map((d, i) => composeDocument(d, ids[i], config.idPrefix + ids[i], rootMetadata(config, agent, now))),
    );
    sendBulkWritten(res, config, docs, 201);
  };
}
