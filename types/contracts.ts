/**
 * The seams between the parts of the server. app.ts wires concrete implementations of these
 * together; controllers, the cache and auth only know each other through these types.
 */
import type { Request, RequestHandler, Router } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { CacheKind } from '../cache/kinds';
import type { ObjectStore } from '../db/objects';
import type { RerumDocument } from './rerum';

/** Read routes whose responses the cache keeps: the rows of the kinds table (cache/kinds.ts). */
export type CachedRouteKind = CacheKind;

/**
 * One stored document changed by a write: its state before (null for a new document) and after
 * (null if it was removed outright). Soft delete is a change with `after.__deleted` set.
 */
export interface ObjectChange {
  before: RerumDocument | null;
  after: RerumDocument | null;
}

export interface ReadCache {
  /** Middleware for a cached read route: answers a HIT itself (`X-Cache: HIT`), otherwise marks
   *  `X-Cache: MISS`, lets the controller answer, and stores a successful answer unless a write
   *  that could affect it happened after this request started (no stale fill). */
  read(kind: CachedRouteKind): RequestHandler;
  /** Optional: answers a HIT of `GET`/`HEAD /v1/id/:_id` or `POST /v1/api/query` before the app's routing (app.ts),
   *  passes everything else on; `parseBody` is the app's body parser (run here for a query). */
  earlyHit?(parseBody: RequestHandler): RequestHandler;
  /** Drop every entry, in every worker, that these changes could have made stale. Resolves only
   *  when no worker can serve such an entry any more; the write path awaits it before responding. */
  invalidate(changes: ObjectChange[]): Promise<void>;
  /** `GET /stats` and `POST /clear`, mounted at /v1/api/cache; `POST /clear` and `GET /stats?details=true`
   *  run behind `requireAdmin` (AuthLayer), the plain counters are public. */
  router(requireAdmin: RequestHandler): Router;
  close(): Promise<void>;
}

export interface AuthLayer {
  /** Verifies the bearer token with express-oauth2-jwt-bearer; 401 JSON when missing or bad. */
  requireToken: RequestHandler;
  /** Lets through only a valid token of the agent named by CACHE_ADMIN_AGENT: unset → 403 naming
   *  the setting (whatever the token), no or bad token → 401, any other agent → 403. READONLY does not apply. */
  requireAdmin: RequestHandler;
  /** The agent claim of a request that passed `requireToken`. */
  agentOf(req: Request): string;
  /** Routes the auth layer serves itself (the local issuer's JWKS), mounted at the app root. */
  router: Router;
}

export interface AppDeps {
  config: Config;
  /** Every read and write of RERUM documents; tells `cache` what each write changed. */
  store: ObjectStore;
  cache: ReadCache;
  auth: AuthLayer;
  logger: Logger;
  /** Health check of the database: resolves when it answers a ping. */
  pingDatabase(): Promise<void>;
}
