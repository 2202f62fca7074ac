/**
 * Identifiers: minting `_id`s, reading the id segment out of an `@id`/`id` URI, and deciding whether
 * an object is shown with `id` (contexts that alias `id` to `@id`) or with `@id`.
 */
import { randomBytes } from 'node:crypto';
import { ObjectId } from 'bson';
import { badRequest } from '../middleware/http-error';

/**
 * A fresh `_id` in ObjectId form (24 hex): 4 bytes of seconds since the epoch (ids still sort by
 * creation time), then 8 random bytes. A plain ObjectId's counter makes the next id predictable from
 * any id seen, which let a client claim it first (as a Slug or a client `_id`).
 */
export const newId = (): string => {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(Math.floor(Date.now() / 1000) >>> 0, 0);
  randomBytes(8).copy(bytes, 4);
  return new ObjectId(bytes).toHexString();
};

/** True for a 24-hex ObjectId string, the only client-suggested `_id` create accepts. */
export const isValidId = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{24}$/i.test(value);

/**
 * Contexts under which `id` means `@id` (IIIF Presentation 3, Web Annotation, the RERUM context).
 * Objects with one of these in their `@context` are answered with `id` instead of `@id`, and a
 * client cannot set `id` on them (the reference's `_contextid`).
 */
const ID_ALIASING_CONTEXTS = [
  'store.rerum.io/v1/context.json',
  'iiif.io/api/presentation/3/context.json',
  'www.w3.org/ns/anno.jsonld',
  'www.w3.org/ns/oa.jsonld',
];

export function usesIdAlias(context: unknown): boolean {
  const names = Array.isArray(context) ? context : [context];
  return names.some((c) => typeof c === 'string' && ID_ALIASING_CONTEXTS.some((known) => c.includes(known)));
}

/** The identifier a client gave in a write body: `@id`, else `id`. */
export function declaredId(body: Record<string, unknown>): unknown {
  return body['@id'] ?? body.id;
}

/**
 * The identifier a bulk item declares, as the reference checks it: `id` (else `@id`) under an
 * id-aliasing context, otherwise `@id` only.
 */
export function contextualDeclaredId(body: Record<string, unknown>): unknown {
  return usesIdAlias(body['@context']) ? (body.id ?? body['@id']) : body['@id'];
}

/**
 * The `_id` (or slug) named by an `@id`/`id` URI: its last path segment. The URI must be an http(s)
 * URL, else 400 (the reference answered 500 here).
 */
export function segmentOf(uri: unknown): string {
  if (typeof uri !== 'string') throw badRequest(`The '@id' or 'id' must be a string URI.`);
  if (!/^https?:\/\//.test(uri)) throw badRequest(`The '@id' or 'id' must be an http(s) URI. Please check: ${uri}`);
  const seg = uri.replace(/[?#].*$/, '').split('/').pop() ?? '';
  if (!seg) throw badRequest(`The '@id' or 'id' does not name an object: ${uri}`);
  return seg;
}
