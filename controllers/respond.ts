/**
 * Response helpers shared by the /v1 controllers: the reference's headers (Web Annotation / JSON-LD
 * Content-Type and Link, Location) and `_id`-free bodies. Reads are sent as representations
 * (middleware/representation.ts): bytes, headers and a strong ETag computed once, answered 304 on a
 * matching If-None-Match, stored as they are by the read cache.
 */
import type { Request, Response } from 'express';
import type { Config } from '../config';
import { etagOf, representation, sendRepresentation, type Representation } from '../middleware/representation';
import { publicIdOf, toResponse, withNewState } from '../rerum/document';
import type { RerumDocument, RerumResponseObject, StoredDocument } from '../types/rerum';

export const JSON_TYPE = 'application/json; charset=utf-8';
const ANNO_LD_TYPE = 'application/ld+json; charset=utf-8; profile="http://www.w3.org/ns/anno.jsonld"';
/** The reference's container types: a `@type`/`type` string containing one of these (so any `...List`), or an array naming one. */
const CONTAINER_TYPES = [
  'ItemList',
  'AnnotationPage',
  'AnnotationList',
  'AnnotationCollection',
  'Sequence',
  'Range',
  'Canvas',
  'List',
  'Set',
  'Collection',
];
/** The `Allow` the reference sends with every object and list it answers. */
export const ALLOW_ALL = 'GET,OPTIONS,HEAD,PUT,PATCH,DELETE,POST';

const isContainer = (obj: RerumResponseObject): boolean => {
  const t = (obj as Record<string, unknown>)['@type'] ?? obj.type ?? '';
  if (typeof t === 'string') return CONTAINER_TYPES.some((c) => t.includes(c));
  return Array.isArray(t) && CONTAINER_TYPES.some((c) => t.includes(c));
};

/** Headers the reference sets for a single object (configureWebAnnoHeadersFor); its container Link value is kept verbatim. */
export function objectHeaders(obj: RerumResponseObject): Record<string, string> {
  return {
    'Content-Type': obj['@context'] ? ANNO_LD_TYPE : JSON_TYPE,
    Link: isContainer(obj)
      ? 'application/ld+json;charset=utf-8;profile="http://www.w3.org/ns/anno.jsonld"'
      : '<http://www.w3.org/ns/ldp#Resource>; rel="type"',
    Allow: ALLOW_ALL,
  };
}

/** Headers the reference sets for arrays of objects (query, history, since, search). */
export function listHeaders(config: Config): Record<string, string> {
  return {
    'Content-Type': ANNO_LD_TYPE,
    Link: `<${config.context}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`,
    Allow: ALLOW_ALL,
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

/** A read answering a list of objects (query, search, history, since). */
export function sendList(req: Request, res: Response, config: Config, docs: StoredDocument[]): void {
  sendRead(
    req,
    res,
    docs.map((d) => toResponse(d, config.idPrefix)),
    listHeaders(config),
  );
}

/**
 * `?limit=` and `?skip=` as the reference's getPagination: the leading whole number of the value
 * (parseInt), capped at `maxQueryLimit` / `maxQuerySkip`; a missing, unreadable, zero or negative
 * value falls back to the default (limit 100, skip 0).
 */
export function limitSkip(
  req: Request,
  caps: Pick<Config, 'maxQueryLimit' | 'maxQuerySkip'>,
  defaultLimit = 100,
): { limit: number; skip: number } {
  const read = (name: 'limit' | 'skip', dflt: number, max: number) => {
    const raw = req.query[name];
    const n = raw === undefined ? NaN : Number.parseInt(String(raw), 10);
    if (!Number.isFinite(n) || n <= 0) return dflt;
    return Math.min(n, max);
  };
  return { limit: read('limit', defaultLimit, caps.maxQueryLimit), skip: read('skip', 0, caps.maxQuerySkip) };
}
