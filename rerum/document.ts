/**
 * Building stored documents from client content, the patch/set/unset rules, and turning stored
 * documents into what clients see (no `_id`; `id` or `@id` as the context asks).
 */
import type { RerumDocument, RerumMetadata, RerumResponseObject, StoredDocument } from '../types/rerum';
import { usesIdAlias } from './ids';

type Json = Record<string, unknown>;

const clone = <T>(v: T): T => structuredClone(v);
const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/**
 * A document to store: `@context` first, then `@id`, the client's content, `__rerum`, `_id`.
 * Protected properties in `content` (`_id`, `@id`, `__rerum`, and `id` under an id-aliasing
 * context) are dropped.
 */
export function composeDocument(content: Json, _id: string, atId: string, rerum: RerumMetadata): RerumDocument {
  const rest = clone(content);
  const context = rest['@context'];
  const aliasing = usesIdAlias(context);
  for (const k of ['__rerum', '_id', '@id', '@context']) delete rest[k];
  if (aliasing) delete rest.id;
  const doc: Json = context !== undefined ? { '@context': context } : {};
  doc['@id'] = atId;
  Object.assign(doc, rest);
  doc.__rerum = rerum;
  doc._id = _id;
  return doc as RerumDocument;
}

/** What the client sees of a stored document: `_id` removed, `id` instead of `@id` under an aliasing context. */
export function toResponse(doc: StoredDocument, idPrefix: string): RerumResponseObject {
  const { _id, ...rest } = clone(doc) as Json & { _id: string };
  if (rest['@context'] === undefined || !usesIdAlias(rest['@context'])) return rest as RerumResponseObject;
  const { '@context': context, '@id': _atId, ...others } = rest;
  void _atId;
  return { '@context': context, id: idPrefix + _id, ...others } as RerumResponseObject;
}

/** The response of a write: the object, plus a copy of itself as `new_obj_state` (as the reference). */
export function withNewState(obj: RerumResponseObject): RerumResponseObject & { new_obj_state: RerumResponseObject } {
  return { ...obj, new_obj_state: clone(obj) };
}

/** The public identifier of a response object. */
export function publicIdOf(obj: RerumResponseObject): string | undefined {
  const id = (usesIdAlias(obj['@context']) ? obj.id : obj['@id']) ?? obj['@id'] ?? obj.id;
  return typeof id === 'string' ? id : undefined;
}

export interface PatchResult {
  /** False when nothing in the body applied: no new version is made. */
  changed: boolean;
  /** The original's content with the change applied (still carrying the original's ids and __rerum). */
  content: Json;
}

/** PATCH /patch: replace (or with null, remove) keys the original already has; other keys are ignored. */
export function applyPatch(original: RerumDocument, body: Json): PatchResult {
  const content: Json = clone(original);
  let changed = false;
  const aliasing = usesIdAlias(body['@context']);
  for (const [k, v] of Object.entries(body)) {
    if (k === '__rerum' || k === '_id' || k === '@id' || (aliasing && k === 'id')) continue;
    if (!has(original, k)) continue;
    changed = true;
    if (v === null) delete content[k];
    else content[k] = clone(v);
  }
  return { changed, content };
}

/** PATCH /set: add keys the original does not have; keys it has are ignored. */
export function applySet(original: RerumDocument, body: Json): PatchResult {
  const content: Json = clone(original);
  let changed = false;
  const aliasing = usesIdAlias(original['@context']);
  if (aliasing) delete content.id;
  for (const [k, v] of Object.entries(body)) {
    if (k === '_id' || (aliasing && k === 'id')) continue;
    if (has(original, k)) continue;
    changed = true;
    content[k] = clone(v);
  }
  return { changed, content };
}

/** PATCH /unset: remove the keys given as `key: null` that the original has; everything else is ignored. */
export function applyUnset(original: RerumDocument, body: Json): PatchResult {
  const content: Json = clone(original);
  let changed = false;
  const aliasing = usesIdAlias(original['@context']);
  for (const [k, v] of Object.entries(body)) {
    if (k === '__rerum' || k === '_id' || k === '@id' || (aliasing && k === 'id')) continue;
    if (!has(original, k) || v !== null) continue;
    changed = true;
    delete content[k];
  }
  return { changed, content };
}
