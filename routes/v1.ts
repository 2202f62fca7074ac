/**
 * The /v1 API (mounted by app.ts at /v1). Each route lists the methods it takes; any other method
 * is a 405 with an `Allow` header, and OPTIONS answers 204 with the same `Allow`.
 * Reads go through the read cache; writes need a token, and await cache invalidation themselves.
 */
import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import { HttpError, methodNotAllowed } from '../middleware/http-error';
import { siteFiles } from '../middleware/site-files';
import { requireContentType, requireJsonArray, requireJsonObject, requireJsonOrText } from '../middleware/json-body';
import { newAccessTokenHandler, newRefreshTokenHandler } from '../controllers/client';
import { bulkItemLimit, requireStorableBody } from '../middleware/storable-body';
import { bulkCreateHandler, createHandler } from '../controllers/create';
import { createKit } from '../controllers/kit';
import { deleteHandler, overwriteHandler, releaseHandler } from '../controllers/lifecycle';
import { historyHandler, idHandler, queryHandler, queryHeadHandler, sinceHandler } from '../controllers/read';
import { searchPhraseHandler, searchWordsHandler } from '../controllers/search';
import { bulkUpdateHandler, patchHandler, setHandler, unsetHandler, updateHandler } from '../controllers/versions';
import type { AppDeps } from '../types/contracts';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Handlers = Partial<Record<Method, RequestHandler[]>>;

/** public/ at the project root, also when running from dist/. */
const projectRoot = path.resolve(__dirname, '..');
export const publicDir =
  path.basename(projectRoot) === 'dist' ? path.resolve(projectRoot, '..', 'public') : path.resolve(projectRoot, 'public');

/** Mount `handlers` on `path`; every other method → 405 with Allow, OPTIONS → 204 with Allow. */
export function route(router: Router, routePath: string, handlers: Handlers, allowedOverride?: string[]): void {
  const r = router.route(routePath);
  const methods = Object.keys(handlers) as Method[];
  const allowed = allowedOverride ?? [...methods, ...(handlers.GET && !handlers.HEAD ? ['HEAD'] : []), 'OPTIONS'];
  for (const m of methods) {
    const hs = handlers[m]!;
    switch (m) {
      case 'GET':
        r.get(...hs);
        break;
      case 'HEAD':
        r.head(...hs);
        break;
      case 'POST':
        r.post(...hs);
        break;
      case 'PUT':
        r.put(...hs);
        break;
      case 'PATCH':
        r.patch(...hs);
        break;
      case 'DELETE':
        r.delete(...hs);
        break;
    }
  }
  r.options((_req, res) => {
    res.set('Allow', allowed.join(', ')).status(204).end();
  });
  r.all(() => {
    throw methodNotAllowed(allowed);
  });
}

/** POST with `X-HTTP-Method-Override: PATCH` stands in for PATCH (clients without PATCH); plain POST → 405. */
const patchOverride: RequestHandler = (req, _res, next) => {
  if (req.get('X-HTTP-Method-Override') === 'PATCH') return next();
  const e = methodNotAllowed(['PATCH', 'OPTIONS']);
  next(new HttpError(405, `${e.message}. POST is accepted with the header 'X-HTTP-Method-Override: PATCH'.`, e.headers));
};

/**
 * Old names, rewritten in place as the reference does (no redirect): `/api/<name>.action<rest>` →
 * `/api/<name><rest>` (so `PATCH /api/release.action/:id` is a release), then `/api/getByProperties<rest>`
 * → `/api/query<rest>` and `/api/batch_create<rest>` → `/api/bulkCreate<rest>`. The query string is kept.
 * Mounted at /api, so `req.url` is relative to it; the routes after this one see the new URL.
 */
const OLD_ALIASES: [RegExp, string][] = [
  [/^\/([^/?]+)\.action(?=[/?]|$)/, '/$1'],
  [/^\/getByProperties(?=[/?.]|$)/, '/query'],
  [/^\/batch_create(?=[/?.]|$)/, '/bulkCreate'],
];
const compatibility: RequestHandler = (req, _res, next) => {
  let url = req.url;
  for (const [pattern, replacement] of OLD_ALIASES) url = url.replace(pattern, replacement);
  req.url = url;
  next();
};

/** GET /v1/api: the reference's listing, word for word. */
export const API_INDEX = {
  message: 'Welcome to v1 in nodeJS!  Below are the available endpoints, used like /v1/api/{endpoint}',
  endpoints: {
    '/create': 'POST - Create a new object.',
    '/bulkCreate': 'POST - Create multiple new objects in one request.',
    '/update': 'PUT - Update the body an existing object.',
    '/bulkUpdate': 'PUT - Update multiple existing objects in one request.',
    '/patch': 'PATCH - Update the properties of an existing object.',
    '/set': 'PATCH - Update the body an existing object by adding a new property.',
    '/unset': 'PATCH - Update the body an existing object by removing an existing property.',
    '/delete': 'DELETE - Mark an object as deleted.',
    '/query': 'POST - Supply a JSON object to match on, and query the db for an array of matches.',
    '/search': 'POST - Full-text search across stored objects.',
    '/release': 'PATCH - Lock a JSON object from changes and guarantee the content and URI.',
    '/overwrite': 'PUT - Update a specific document in place, overwriting the existing body.',
  },
};

export function createV1Router(deps: AppDeps): Router {
  const kit = createKit(deps);
  const { cache } = deps;
  const auth = deps.auth.requireToken;
  const bulkLimit = bulkItemLimit(deps.config.bulkMaxItems);
  const router = Router();

  // public/ is also served under /v1 (as the reference): /v1/ is the index page, /v1/API.html, /v1/context.json …
  router.use(siteFiles(publicDir));

  // Reads
  route(router, '/id/:_id', { GET: [cache.read('id'), idHandler(kit)] });
  route(router, '/history/:_id', { GET: [cache.read('history'), historyHandler(kit)] });
  route(router, '/since/:_id', { GET: [cache.read('since'), sinceHandler(kit)] });
  route(router, '/api', { GET: [(_req, res) => void res.json(API_INDEX)] });
  router.use('/api/cache', cache.router(deps.auth.requireAdmin));
  router.use('/api', compatibility);
  // The reference's old names for the /client token proxies.
  route(router, '/api/accessToken', { POST: [requireContentType('json'), newAccessTokenHandler(deps.config)] });
  route(router, '/api/refreshToken', { POST: [requireContentType('json'), newRefreshTokenHandler(deps.config)] });
  route(router, '/api/query', {
    POST: [requireJsonObject, cache.read('query'), queryHandler(kit)],
    HEAD: [queryHeadHandler(kit)],
  });
  route(router, '/api/search', { POST: [requireJsonOrText, cache.read('search'), searchWordsHandler(kit)] });
  route(router, '/api/search/phrase', { POST: [requireJsonOrText, cache.read('searchPhrase'), searchPhraseHandler(kit)] });

  // Writes
  route(router, '/api/create', { POST: [auth, requireJsonObject, requireStorableBody, createHandler(kit)] });
  route(router, '/api/bulkCreate', { POST: [auth, requireJsonArray, bulkLimit, requireStorableBody, bulkCreateHandler(kit)] });
  route(router, '/api/update', { PUT: [auth, requireJsonObject, requireStorableBody, updateHandler(kit)] });
  route(router, '/api/bulkUpdate', { PUT: [auth, requireJsonArray, bulkLimit, requireStorableBody, bulkUpdateHandler(kit)] });
  route(router, '/api/overwrite', { PUT: [auth, requireJsonObject, requireStorableBody, overwriteHandler(kit)] });
  for (const [name, handler] of [
    ['patch', patchHandler],
    ['set', setHandler],
    ['unset', unsetHandler],
  ] as const) {
    const h = handler(kit);
    route(
      router,
      `/api/${name}`,
      {
        PATCH: [auth, requireJsonObject, requireStorableBody, h],
        // The reference's order: token, then Content-Type, then the override header.
        POST: [auth, requireJsonObject, patchOverride, requireStorableBody, h],
      },
      ['PATCH', 'OPTIONS'],
    );
  }
  route(router, '/api/release/:_id', { PATCH: [auth, releaseHandler(kit)] });
  route(router, '/api/delete/:_id', { DELETE: [auth, deleteHandler(kit)] });
  route(router, '/api/delete', { DELETE: [auth, deleteHandler(kit)] });

  return router;
}
