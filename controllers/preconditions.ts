/**
 * Optimistic concurrency the standard HTTP way (RFC 9110 §13.1.1), beside the reference's
 * `If-Overwritten-Version`: a write that changes an existing object honours `If-Match` with the
 * object's ETag — the strong ETag `GET /v1/id/:id` sends for it (controllers/respond.ts), computed
 * here from the stored document alone. No match → 412 Precondition Failed with the current version
 * (body `currentVersion`, header `ETag`). `If-Match: *` or no header: today's behaviour.
 *
 * Called right after the handler's own checks on the looked-up object (404/403/401 come first: a
 * request that would fail without its preconditions fails the same way with them).
 */
import type { Request } from 'express';
import type { Config } from '../config';
import { HttpError } from '../middleware/http-error';
import { listMatches } from '../middleware/representation';
import { toResponse } from '../rerum/document';
import { isDeleted } from '../rerum/metadata';
import type { RerumDocument, RerumResponseObject, StoredDocument } from '../types/rerum';
import { documentEtag } from './respond';

export class PreconditionFailed extends HttpError {
  constructor(
    message: string,
    etag: string,
    readonly currentVersion: RerumResponseObject,
  ) {
    super(412, message, { ETag: etag });
  }

  override toJSON() {
    return { ...super.toJSON(), currentVersion: this.currentVersion };
  }
}

/** The If-Match header, unless absent or `*` (which any live object matches). */
function ifMatchOf(req: Request): string | undefined {
  const header = req.get('If-Match');
  if (header === undefined || header.trim() === '*') return undefined;
  return header;
}

/** 412 unless `doc` (the stored, live object the write is about to change) has an ETag listed in If-Match. */
export function assertIfMatch(req: Request, doc: RerumDocument, config: Config): void {
  const header = ifMatchOf(req);
  if (header === undefined) return;
  const current = documentEtag(doc, config);
  if (listMatches(header, current, true)) return;
  throw new PreconditionFailed(
    `The If-Match '${header}' does not match the current ETag ${current} of ${doc['@id'] ?? doc._id}. Read it again and retry.`,
    current,
    toResponse(doc, config.idPrefix),
  );
}

/**
 * bulkUpdate: one If-Match lists the ETags of the objects the items name; every live RERUM object an
 * item names (`originals`, each once, as read before the first of its new versions) must have its
 * current ETag in the list, checked before anything is written.
 */
export function assertIfMatchEach(req: Request, originals: Iterable<StoredDocument>, config: Config): void {
  if (ifMatchOf(req) === undefined) return;
  for (const doc of originals) if (!isDeleted(doc)) assertIfMatch(req, doc, config);
}
