/**
 * The /v1 API (mounted by app.ts at /v1). Each route lists the methods it takes; any other method
 * is a 405 with an `Allow` header, and OPTIONS answers 204 with the same `Allow`.
 * Reads go through the read cache; writes need a token, and await cache invalidation themselves.
 */
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import { HttpError, methodNotAllowed } from '../middleware/http-error';
import { requireJsonArray, requireJsonObject, requireJsonOrText } from '../middleware/json-body';
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
export const publicDir = path.basename(projectRoot) === 'dist' ? path.resolve(projectRoot, '..', 'public') : path.resolve(projectRoot, 'public');

/** Mount `handlers` on `path`; every other method → 405 with Allow, OPTIONS → 204 with Allow. */
function route(router: Router, routePath: string, handlers: Handlers, allowedOverride?: string[]): void {
  const r = router.route(routePath);
  const methods = Object.keys(handlers) as Method[];
  const allowed = allowedOverride ?? [...methods, ...(handlers.GET && !handlers.HEAD ? ['HEAD'] : []), 'OPTIONS'];
  for (const m of methods) {
    const hs = handlers[m]!;
    switch (m) {
      case 'GET': r.get(...hs); break;
      case 'HEAD': r.head(...hs); break;
      case 'POST': r.post(...hs); break;
      case 'PUT': r.put(...hs); break;
      case 'PATCH': r.patch(...hs); break;
      case 'DELETE': r.delete(...hs); break;
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

/** Old-style `/v1/api/<action>.action` names, redirected (307, method and body kept) to today's routes. */
const COMPAT_ACTIONS: Record<string, string> = {
  create: 'api/create', update: 'api/update', putUpdate: 'api/update', overwrite: 'api/overwrite',
  patch: 'api/patch', patchUpdate: 'api/patch', set: 'api/set', patchSet: 'api/set', unset: 'api/unset', patchUnset: 'api/unset',
  query: 'api/query', getByProperties: 'api/query', search: 'api/search', bulkCreate: 'api/bulkCreate', batch_create: 'api/bulkCreate',
  bulkUpdate: 'api/bulkUpdate', batch_update: 'api/bulkUpdate', delete: 'api/delete', release: 'api/release',
  getByID: 'id', history: 'history', since: 'since',
};
/** Actions whose target takes the object id as a path segment (`?_id=` in the old form). */
const ID_IN_PATH = new Set(['id', 'history', 'since', 'api/release', 'api/delete']);

const compatibility: RequestHandler = (req, res, next) => {
  const action = String((req.params as Record<string, string>)[0] ?? '');
  const target = COMPAT_ACTIONS[action];
  if (!target) return next();
  const query = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
  let location = `${req.baseUrl}/${target}`;
  const id = query.get('_id') ?? query.get('id');
  if (ID_IN_PATH.has(target) && id) {
    location += `/${encodeURIComponent(id)}`;
    query.delete('_id');
    query.delete('id');
  }
  const rest = query.toString();
  res.redirect(307, rest ? `${location}?${rest}` : location);
};

export const API_INDEX = {
  message: 'Welcome to v1 in nodeJS!  Below are the available endpoints, used like /v1/api/{endpoint}',
  endpoints: {
    '/create': 'POST - Create a new object.',
    '/update': 'PUT - Update the body an existing object.',
    '/patch': 'PATCH - Update the properties of an existing object.',
    '/set': 'PATCH - Update the body an existing object by adding a new property.',
    '/unset': 'PATCH - Update the body an existing object by removing an existing property.',
    '/delete': 'DELETE - Mark an object as deleted.',
    '/query': 'POST - Supply a JSON object to match on, and query the db for an array of matches.',
    '/release': 'POST - Lock a JSON object from changes and guarantee the content and URI.',
    '/overwrite': 'POST - Update a specific document in place, overwriting the existing body.',
  },
};

export function createV1Router(deps: AppDeps): Router {
  const kit = createKit(deps);
  const { cache } = deps;
  const auth = deps.auth.requireToken;
  const bulkLimit = bulkItemLimit(deps.config.bulkMaxItems);
  const router = Router();

  router.use(express.static(publicDir, { index: false }));
  route(router, '/', {
    GET: [(req, res) => res.redirect(301, `${req.baseUrl}/API.html`)],
  });

  // Reads
  route(router, '/id/:_id', { GET: [cache.read('id'), idHandler(kit)] });
  route(router, '/history/:_id', { GET: [cache.read('history'), historyHandler(kit)] });
  route(router, '/since/:_id', { GET: [cache.read('since'), sinceHandler(kit)] });
  route(router, '/api', { GET: [(_req, res) => void res.json(API_INDEX)] });
  router.use('/api/cache', cache.router(auth));
  router.all(/^\/api\/([A-Za-z_]+)\.action$/, compatibility);
  // As the reference's rewrites, these two old names also work without `.action`.
  router.all(/^\/api\/(getByProperties|batch_create)$/, compatibility);
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
  for (const [name, handler] of [['patch', patchHandler], ['set', setHandler], ['unset', unsetHandler]] as const) {
    const h = handler(kit);
    route(router, `/api/${name}`, {
      PATCH: [auth, requireJsonObject, requireStorableBody, h],
      // The reference's order: token, then Content-Type, then the override header.
      POST: [auth, requireJsonObject, patchOverride, requireStorableBody, h],
    }, ['PATCH', 'OPTIONS']);
  }
  route(router, '/api/release/:_id', { PATCH: [auth, releaseHandler(kit)] });
  route(router, '/api/delete/:_id', { DELETE: [auth, deleteHandler(kit)] });
  route(router, '/api/delete', { DELETE: [auth, deleteHandler(kit)] });

  return router;
}
