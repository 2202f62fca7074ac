/** /client/*: register with the Auth0 tenant, renew tokens through it, check a token (see controllers/client.ts). */
import { Router } from 'express';
import { newAccessTokenHandler, newRefreshTokenHandler, registerHandler, verifyHandler } from '../controllers/client';
import { requireContentType } from '../middleware/json-body';
import type { AppDeps } from '../types/contracts';
import { route } from './v1';

export function createClientRouter(deps: AppDeps): Router {
  const { config } = deps;
  const router = Router();
  const json = requireContentType('json');
  route(router, '/register', { GET: [registerHandler(config)] });
  route(router, '/request-new-access-token', { POST: [json, newAccessTokenHandler(config)] });
  route(router, '/request-new-refresh-token', { POST: [json, newRefreshTokenHandler(config)] });
  route(router, '/verify', { GET: [deps.auth.requireToken, verifyHandler(config)] });
  return router;
}
