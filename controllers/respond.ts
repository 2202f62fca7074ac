/**
 * Response helpers shared by the /v1 controllers: the reference's headers (Web Annotation / JSON-LD
 * Content-Type and Link, Location, Last-Modified) and `_id`-free bodies.
 */
import type { Request, Response } from 'express';
import type { Config } from '../config';
import { badRequest } from '../middleware/http-error';
import { publicIdOf, toResponse, withNewState } from '../rerum/document';
import type { RerumDocument, RerumResponseObject, StoredDocument } from '../types/rerum';

export const JSON_TYPE = 'application/json; charset=utf-8';
const ANNO_LD_TYPE = 'application/ld+json; charset=utf-8; profile="http://www.w3.org/ns/anno.jsonld"';
const CONTAINER_TYPES = ['ItemList', 'AnnotationList', 'Collection', 'Sequence', 'Range', 'Canvas'];

/** Headers the reference sets for a single object (configureWebAnnoHeadersFor). */
export function objectHeaders(obj: RerumResponseObject): Record<string, string> {
  const headers: Record<string, string> = { 'Content-Type': obj['@context'] ? ANNO_LD_TYPE : JSON_TYPE };
  const t = obj.type ?? obj['@type'];
  const typeString = typeof t === 'string' ? t : '';
  headers.Link = CONTAINER_TYPES.some((c) => typeString.includes(c))
    ? 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"'
    : '<http://www.w3.org/ns/ldp#Resource>; rel="type"';
  return headers;
}

/** Headers the reference sets for arrays of objects (query, history, since, search). */
export function listHeaders(config: Config): Record<string, string> {
  return {
    'Content-Type': ANNO_LD_TYPE,
    Link: `<${config.context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`,
  };
}

/** Last-Modified from the last overwrite, else the creation. */
export function lastModified(doc: RerumDocument): string | undefined {
  const stamp = doc.__rerum?.isOverwritten || doc.__rerum?.createdAt;
  if (!stamp) return undefined;
  const date = new Date(`${stamp.split('.')[0]}Z`);
  return Number.isNaN(date.getTime()) ? undefined : date.toUTCString();
}

/**
 * Answer a write with the object as stored: its headers, Location, and the body with a
 * `new_obj_state` copy (as the reference).
 */
export function sendWritten(res: Response, config: Config, doc: StoredDocument, status = 200, extra: Record<string, string> = {}): void {
  const obj = toResponse(doc, config.idPrefix);
  res.set(objectHeaders(obj));
  res.set(extra);
  const location = publicIdOf(obj);
  if (location) res.location(location);
  res.status(status).json(withNewState(obj));
}

/** Most bytes of `Link` values on a bulk answer: HTTP clients refuse header blocks of a few tens of KB. */
export const MAX_LINK_BYTES = 8 * 1024;

/** The first ids that fit in MAX_LINK_BYTES (the body lists every object). */
function boundedLinks(ids: string[]): string[] {
  const out: string[] = [];
  let bytes = 0;
  for (const id of ids) {
    bytes += Buffer.byteLength(id) + 8;
    if (bytes > MAX_LINK_BYTES) break;
    out.push(id);
  }
  return out;
}

/** Answer a bulk write: the objects as stored, their `@id`s in Link headers (as the reference; at most MAX_LINK_BYTES). */
export function sendBulkWritten(res: Response, config: Config, docs: RerumDocument[], status: number): void {
  res.set('Content-Type', JSON_TYPE);
  if (docs.length) res.set('Link', boundedLinks(docs.map((d) => d['@id'] ?? '')));
  res.status(status).json(docs.map((d) => toResponse(d, config.idPrefix)));
}

export function sendList(res: Response, config: Config, docs: StoredDocument[]): void {
  res.set(listHeaders(config));
  res.status(200).json(docs.map((d) => toResponse(d, config.idPrefix)));
}

/** `?limit=` and `?skip=` (defaults 100 and 0, as the reference); 400 for anything but whole numbers ≥ 0
 * (up to 2^53 - 1: larger ones are not exact, and the database refuses them). */
export function limitSkip(req: Request): { limit: number; skip: number } {
  const read = (name: 'limit' | 'skip', dflt: number) => {
    const raw = req.query[name];
    if (raw === undefined || raw === '') return dflt;
    const n = typeof raw === 'string' ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < 0) throw badRequest(`'${name}' must be a whole number of 0 or more.`);
    return n;
  };
  return { limit: read('limit', 100), skip: read('skip', 0) };
}
