/**
 * The Express application. Everything it needs comes in as AppDeps (types/contracts.ts), so
 * server.ts and the tests build the same app over real parts.
 *
 * Order: CORS → request log → health → maintenance (DOWN) → body parsers → local-issuer JWKS →
 * /v1 API → site root and static pages → 404 → JSON error handler.
 */
import express, { type Express } from 'express';
import { cors } from './middleware/cors';
import { errorHandler, notFoundHandler } from './middleware/error-handler';
import { HttpError } from './middleware/http-error';
import { refuseTokenInQuery, requestLog } from './middleware/request-log';
import { healthRouter } from './routes/health';
import { createV1Router, publicDir } from './routes/v1';
import type { AppDeps } from './types/contracts';

export const DOWN_MESSAGE = 'RERUM v1 is down for updates or maintenance at this time.  We apologize for the inconvenience.  Try again later.';

export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, linklocal, uniquelocal'); // X-Forwarded-* only from a proxy on this host or network
  app.set('json spaces', 0);

  app.use(cors);
  app.use(requestLog(deps.logger));
  app.use(refuseTokenInQuery);
  app.use(healthRouter(deps));
  if (config.down) {
    app.use((_req, _res, next) => next(new HttpError(503, DOWN_MESSAGE)));
  }

  const limit = config.maxBodyBytes;
  app.use(express.json({ type: ['application/json', 'application/ld+json'], limit, strict: false }));
  app.use(express.text({ type: 'text/plain', limit }));

  app.use(deps.auth.router);
  app.use('/v1', createV1Router(deps));
  app.get('/', (_req, res) => res.redirect(302, '/v1/API.html'));
  app.use(express.static(publicDir, { index: false }));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
