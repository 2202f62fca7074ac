/**
 * Response helpers shared by the /v1 controllers: the reference's headers (Web Annotation / JSON-LD
 * Content-Type and Link, Location) and `_id`-free bodies. Reads are sent as representations
 * (middleware/representation.ts): bytes, headers and a strong ETag computed once, answered 304 on a
 * matching If-None-Match, stored as they are by the read cache.
 */
import type { Request, Response } from 'express';
import type { Config } from '../config';
import { badRequest } from '../middleware/http-error';
import { etagOf, representation, sendRepresentation, type Representation } from '../middleware/representation';
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

/** A URL as a header value: characters outside printable ASCII percent-encoded (what res.location does). */
const headerSafeUrl = (url: string): string => url.replace(/[^\x21-\x7E]+/g, (run) => encodeURI(run));

/**
 * What `GET /v1/id/:id` answers for a live stored document: the object without `_id`, its headers,
 * Location and `Current-Overwritten-Version`. Its ETag is therefore a function of the stored document
 * alone, which lets the write routes check If-Match (controllers/preconditions.ts).
 */
export function idRepresentation(doc: RerumDocument, config: Config): Representation {
  const obj = toResponse(doc, config.idPrefix);
  const headers = objectHeaders(obj);
  const location = publicIdOf(obj);
  if (location) headers.Location = headerSafeUrl(location);
  headers['Current-Overwritten-Version'] = doc.__rerum?.isOverwritten ?? '';
  return representation(200, JSON.stringify(obj), headers);
}

/** The ETag `GET /v1/id/:id` sends for this stored document. */
export function documentEtag(doc: RerumDocument, config: Config): string {
  return etagOf(JSON.stringify(toResponse(doc, config.idPrefix)));
}

/** Send a read answer (a 200 JSON body) as a representation. */
export function sendRead(req: Request, res: Response, value: unknown, headers: Record<string, string>): void {
  sendRepresentation(req, res, representation(200, JSON.stringify(value), headers));
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

/** Answer a bulk write: the objects as stored, each `@id` in a Link header (as the reference). */
export function sendBulkWritten(res: Response, config: Config, docs: RerumDocument[], status: number): void {
  res.set('Content-Type', JSON_TYPE);
  if (docs.length) res.set('Link', docs.map((d) => d['@id'] ?? ''));
  res.status(status).json(docs.map((d) => toResponse(d, config.idPrefix)));
}

/** A read answering a list of objects (query, search, history, since). */
export function sendList(req: Request, res: Response, config: Config, docs: StoredDocument[]): void {
  sendRead(req, res, docs.map((d) => toResponse(d, config.idPrefix)), listHeaders(config));
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
