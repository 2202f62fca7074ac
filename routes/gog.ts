/** The Gallery of Glosses routes, mounted at /gog (see controllers/gog.ts). Not cached yet. */
import { Router } from 'express';
import { createKit } from '../controllers/kit';
import { expandedIdHandler, fragmentsHandler, glossesHandler } from '../controllers/gog';
import { requireJsonObject } from '../middleware/json-body';
import type { AppDeps } from '../types/contracts';
import { route } from './v1';

export function createGogRouter(deps: AppDeps): Router {
  const kit = createKit(deps);
  const auth = deps.auth.requireToken;
  const router = Router();
  route(router, '/fragmentsInManuscript', { POST: [auth, requireJsonObject, fragmentsHandler(kit)] });
  route(router, '/glossesInManuscript', { POST: [auth, requireJsonObject, glossesHandler(kit)] });
  route(router, '/id/:_id', { GET: [expandedIdHandler(kit)] });
  return router;
}
