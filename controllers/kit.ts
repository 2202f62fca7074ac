/**
 * What every /v1 controller needs, built once per app: the object store (which also keeps the read
 * cache right: controllers never name the cache), the requesting agent, and the lookups with the
 * reference's 4xx answers.
 */
import type { Request } from 'express';
import { HttpError, badRequest, forbidden, unauthorized } from '../middleware/http-error';
import type { ObjectStore } from '../db/objects';
import { DomainError } from '../rerum/errors';
import { contextualDeclaredId, declaredId } from '../rerum/ids';
import { isDeleted, isReleased, mayModify } from '../rerum/metadata';
import type { AppDeps } from '../types/contracts';
import type { RerumDocument, StoredDocument } from '../types/rerum';

export type Body = Record<string, unknown>;

/**
 * The items of a `/bulkCreate` or `/bulkUpdate` body (the route checked it is an array), checked as
 * the reference does before anything is written: not empty; every item a JSON object; its declared
 * identifier (`@id`, or `id` under an id-aliasing context) absent or empty for bulkCreate, and a
 * non-empty string for bulkUpdate. Any bad item → 400 for the whole request.
 */
export function bulkItems(body: unknown, route: 'bulkCreate' | 'bulkUpdate'): Body[] {
  const items = body as unknown[];
  if (items.length === 0) throw badRequest('No action on an empty array.');
  const needsId = route === 'bulkUpdate';
  const invalid = items.some((d) => {
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return true;
    const id = contextualDeclaredId(d as Body);
    return needsId ? typeof id !== 'string' || id === '' : Boolean(id);
  });
  if (invalid) {
    throw badRequest(
      `All objects in the body of a \`/${route}\` must be JSON and must ${needsId ? '' : 'not '}contain a declared identifier property.`,
    );
  }
  return items as Body[];
}

/** Did another request change the object first ('ConcurrentChange': this write changed nothing)? */
export const lostRace = (err: unknown): boolean => err instanceof DomainError && err.kind === 'ConcurrentChange';

export interface Kit {
  deps: AppDeps;
  store: ObjectStore;
  agentOf(req: Request): string;
  /** The JSON object body of a request (routes already checked its shape). */
  bodyOf(req: Request): Body;
  /** The `@id`/`id` a write body declares; 400 when it has none. */
  requireDeclaredId(body: Body, routeWords: string): string;
  /** A live object by `@id`/`id` or id segment: 404 if missing, 403 if deleted. */
  liveObject(found: StoredDocument | null, action: string, notFoundStatus?: number): RerumDocument;
  /** The reference's checks before overwrite, release and delete: not released, and the agent's own. */
  assertOwnedUnreleased(doc: RerumDocument, agent: string, action: string, releasedHint?: string): void;
}

export function createKit(deps: AppDeps): Kit {
  const { store } = deps;
  return {
    deps,
    store,
    agentOf: (req) => deps.auth.agentOf(req),
    bodyOf: (req) => (req.body ?? {}) as Body,
    requireDeclaredId(body, routeWords) {
      const id = declaredId(body);
      if (id === undefined || id === null || id === '') {
        throw badRequest(`Object in request body must have the property '@id' or 'id' ${routeWords}.`);
      }
      if (typeof id !== 'string') throw badRequest(`The '@id' or 'id' must be a string URI.`);
      return id;
    },
    liveObject(found, action, notFoundStatus = 404) {
      if (!found) {
        throw new HttpError(
          notFoundStatus,
          notFoundStatus === 501
            ? 'This object is not from RERUM and will need imported. This is not automated yet. You can make a new object with create.'
            : `No object with this id could be found in RERUM. Cannot ${action}.`,
        );
      }
      if (isDeleted(found)) throw forbidden(`The object you are trying to ${action} is deleted.`);
      return found;
    },
    assertOwnedUnreleased(doc, agent, action, releasedHint = '') {
      if (isReleased(doc)) throw forbidden(`The object you are trying to ${action} is released.${releasedHint}`);
      if (!mayModify(doc, agent)) {
        throw unauthorized(`You are not the generating agent for this object and so are not authorized to ${action} it.`);
      }
    },
  };
}
