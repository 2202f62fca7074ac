/**
 * Building stored documents from client content, the patch/set/unset rules, and turning stored
 * documents into what clients see (no `_id`; `id` or `@id` as the context asks).
 */
import type { DeletedDocument, RerumDocument, RerumMetadata, RerumResponseObject, StoredDocument } from '../types/rerum';
import { segmentIn, usesIdAlias } from './ids';
import { overwrittenMetadata } from './metadata';

type Json = Record<string, unknown>;

const clone = <T>(v: T): T => structuredClone(v);
const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/**
 * A document to store: `@context` first, then `@id`, the client's content, `__rerum`, `_id`.
 * Protected properties in `content` (`_id`, `@id`, `__rerum`, `__deleted`, and `id` under an
 * id-aliasing context) are dropped.
 */
export function composeDocument(content: Json, _id: string, atId: string, rerum: RerumMetadata): RerumDocument {
  // a shallow copy: only top-level keys are removed; `content` (a parsed request body or a copy) is not changed
  const rest = { ...content };
  const context = rest['@context'];
  const aliasing = usesIdAlias(context);
  for (const k of Object.keys(rest)) if (k === '@context' || isProtectedKey(k, aliasing)) delete rest[k];
  const doc: Json = context !== undefined ? { '@context': context } : {};
  doc['@id'] = atId;
  Object.assign(doc, rest);
  doc.__rerum = rerum;
  doc._id = _id;
  return doc as RerumDocument;
}

/** What an overwrite stores: `content` in place of `original`'s, same ids and history, `isOverwritten` stamped. */
export function overwriteOf(original: RerumDocument, content: Json, stamp: string, idPrefix: string): RerumDocument {
  return composeDocument(content, original._id, original['@id'] ?? idPrefix + original._id, overwrittenMetadata(original, stamp));
}

/** What a deleted object is replaced with: its `@id` and `_id`, and the object itself (no `_id`) under `__deleted`. */
export function tombstoneOf(doc: RerumDocument, deletor: string, time: string): DeletedDocument {
  const { _id, ...object } = clone(doc);
  return { '@id': doc['@id'], __deleted: { object, deletor, time }, _id };
}

/**
 * What the client sees of a stored document: `_id` removed, `id` instead of `@id` under an aliasing
 * context. A shallow copy: its values are the document's own (callers only serialize it, never change it).
 */
export function toResponse(doc: StoredDocument, idPrefix: string): RerumResponseObject {
  const { _id, ...rest } = doc as Json & { _id: string };
  if (rest['@context'] === undefined || !usesIdAlias(rest['@context'])) return rest as RerumResponseObject;
  const { '@context': context, '@id': _atId, ...others } = rest;
  void _atId;
  return { '@context': context, id: idPrefix + _id, ...others } as RerumResponseObject;
}

/** The response of a write: the object, plus itself again as `new_obj_state` (as the reference; serialized twice, not copied). */
export function withNewState(obj: RerumResponseObject): RerumResponseObject & { new_obj_state: RerumResponseObject } {
  return { ...obj, new_obj_state: obj };
}

/** The public identifier of a response object. */
export function publicIdOf(obj: RerumResponseObject): string | undefined {
  const id = (usesIdAlias(obj['@context']) ? obj.id : obj['@id']) ?? obj['@id'] ?? obj.id;
  return typeof id === 'string' ? id : undefined;
}

/**
 * The segments `/v1/id/<segment>` finds an object by: its `_id` (a response object has none: its
 * public id's last segment) and its slug.
 */
export function namesOf(obj: RerumDocument | RerumResponseObject): string[] {
  const own = '_id' in obj && obj._id != null ? String(obj._id) : segmentIn(publicIdOf(obj));
  const slug = (obj.__rerum as { slug?: unknown } | undefined)?.slug;
  const out = own ? [own] : [];
  if (typeof slug === 'string' && slug !== '' && slug !== own) out.push(slug);
  return out;
}

export interface PatchResult {
  /** False when nothing in the body applied: no new version is made. */
  changed: boolean;
  /** The original's content with the change applied (still carrying the original's ids and __rerum). */
  content: Json;
}

/** True when `body` has nothing a new object would keep: no key but `__rerum`, `_id`, `@id` (and `id` under an id-aliasing context). */
export function hasNoContent(body: Json): boolean {
  const aliasing = usesIdAlias(body['@context']);
  return Object.keys(body).every((k) => isProtectedKey(k, aliasing));
}

/**
 * Keys a client can never write: they are RERUM's (`id` too, under an id-aliasing context).
 * `__deleted` marks a tombstone: content carrying it would make a live object look deleted.
 */
const isProtectedKey = (k: string, aliasing: boolean): boolean =>
  k === '__rerum' || k === '__deleted' || k === '_id' || k === '@id' || (aliasing && k === 'id');

/** Apply each unprotected key of `body` to a copy of `original`; `step` says whether the key applied. */
function applyBody(
  original: RerumDocument,
  body: Json,
  aliasing: boolean,
  step: (content: Json, k: string, v: unknown) => boolean,
): PatchResult {
  const content: Json = clone(original);
  let changed = false;
  for (const [k, v] of Object.entries(body)) {
    if (!isProtectedKey(k, aliasing) && step(content, k, v)) changed = true;
  }
  return { changed, content };
}

/** PATCH /patch: replace (or with null, remove) keys the original already has; other keys are ignored. */
export function applyPatch(original: RerumDocument, body: Json): PatchResult {
  return applyBody(original, body, usesIdAlias(body['@context']), (content, k, v) => {
    if (!has(original, k)) return false;
    if (v === null) delete content[k];
    else content[k] = clone(v);
    return true;
  });
}

/** PATCH /set: add keys the original does not have; keys it has are ignored. */
export function applySet(original: RerumDocument, body: Json): PatchResult {
  return applyBody(original, body, usesIdAlias(original['@context']), (content, k, v) => {
    if (has(original, k)) return false;
    content[k] = clone(v);
    return true;
  });
}

/** PATCH /unset: remove the keys given as `key: null` that the original has; everything else is ignored. */
export function applyUnset(original: RerumDocument, body: Json): PatchResult {
  return applyBody(original, body, usesIdAlias(original['@context']), (content, k, v) => {
    if (!has(original, k) || v !== null) return false;
    delete content[k];
    return true;
  });
}
