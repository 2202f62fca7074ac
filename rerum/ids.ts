/**
 * Identifiers: minting `_id`s, reading the id segment out of an `@id`/`id` URI, and deciding whether
 * an object is shown with `id` (contexts that alias `id` to `@id`) or with `@id`.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { invalidId } from './errors';

/** This process's id counter: random start, +1 per id (3 bytes, wrapping). */
let counter = randomBytes(3).readUIntBE(0, 3);

/** The random tails come from the CSPRNG 4 KiB at a time, each byte used once (one call per 819 ids, not one per id). */
const pool = Buffer.alloc(4095);
let poolAt = pool.length;

/**
 * A fresh `_id` in ObjectId form (24 hex): 4 bytes of seconds since the epoch, a 3-byte counter, then
 * 5 random bytes. Ids made by one process still sort in creation order (seconds, then counter), but
 * the random tail makes the next id unpredictable: a plain ObjectId (seconds, per-process random,
 * counter) can be predicted from any id seen, which let a client claim it first (as a Slug or a
 * client `_id`).
 */
export const newId = (): string => {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(Math.floor(Date.now() / 1000) >>> 0, 0);
  counter = (counter + 1) % 0x1000000;
  bytes.writeUIntBE(counter, 4, 3);
  if (poolAt + 5 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  pool.copy(bytes, 7, poolAt, poolAt + 5);
  poolAt += 5;
  return bytes.toString('hex');
};

/** True for a 24-hex ObjectId string, the only client-suggested `_id` create accepts. */
export const isValidId = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{24}$/i.test(value);

/**
 * The id segment a `/v1/id/:id` (history, since) request names, when it can name one exactly as
 * given: the route looks up `_id` or slug equal to the decoded path parameter, and only a value with
 * no path, query, fragment, percent or white-space characters is one the cache may key on. Anything
 * else is answered by the database as it stands (undefined).
 */
export const exactSegment = (value: unknown): string | undefined =>
  // eslint-disable-next-line no-control-regex -- the C0 controls and DEL are exactly what is refused
  typeof value === 'string' && value !== '' && !/[/?#%\s\u0000-\u001f\u007f]/.test(value) ? value : undefined;

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

/** The last path segment of a URI, query string and fragment removed ('' when it ends in '/'). */
const lastSegment = (uri: string): string =>
  uri
    .replace(/[?#].*$/, '')
    .split('/')
    .pop() ?? '';

const isHttpUri = (uri: string): boolean => /^https?:\/\//.test(uri);

/**
 * The `_id` (or slug) named by an `@id`/`id` URI: its last path segment. The URI must be an http(s)
 * URL, else 400 (the reference answered 500 here).
 */
export function segmentOf(uri: unknown): string {
  if (typeof uri !== 'string') throw invalidId(`The '@id' or 'id' must be a string URI.`);
  if (!isHttpUri(uri)) throw invalidId(`The '@id' or 'id' must be an http(s) URI. Please check: ${uri}`);
  const seg = lastSegment(uri);
  if (!seg) throw invalidId(`The '@id' or 'id' does not name an object: ${uri}`);
  return seg;
}

/** `segmentOf` for a value that may name nothing: undefined instead of an error. */
export function segmentIn(uri: unknown): string | undefined {
  return typeof uri === 'string' && isHttpUri(uri) ? lastSegment(uri) || undefined : undefined;
}
