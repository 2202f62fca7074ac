/** The Gallery of Glosses routes, mounted at /gog (see controllers/gog.ts), cached as kind 'gog'. */
import { Router } from 'express';
import { createKit } from '../controllers/kit';
import { expandedIdHandler, fragmentsHandler, glossesHandler, requireGalleryAgent } from '../controllers/gog';
import { requireJsonObject } from '../middleware/json-body';
import type { AppDeps } from '../types/contracts';
import { route } from './v1';

export function createGogRouter(deps: AppDeps): Router {
  const kit = createKit(deps);
  const { cache } = deps;
  const auth = deps.auth.requireToken;
  const gallery = requireGalleryAgent(kit);
  const router = Router();
  route(router, '/fragmentsInManuscript', { POST: [auth, gallery, requireJsonObject, cache.read('gog'), fragmentsHandler(kit)] });
  route(router, '/glossesInManuscript', { POST: [auth, gallery, requireJsonObject, cache.read('gog'), glossesHandler(kit)] });
  route(router, '/id/:_id', { GET: [cache.read('gog'), expandedIdHandler(kit)] });
  return router;
}
