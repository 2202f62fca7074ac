/**
 * The Express application. Everything it needs comes in as AppDeps (types/contracts.ts), so
 * server.ts and the tests build the same app over real parts.
 *
 * Express's own ETags are off: reads send strong ETags of their exact bytes (middleware/representation.ts),
 * and every answer defaults to `Cache-Control: no-cache` (a route or static file may say otherwise), so
 * no browser or shared cache reuses an answer without asking us first.
 *
 * Order: CORS → request log → (cached GET /v1/id and POST /v1/api/query HITs) → health → site pages (public/) → maintenance (DOWN) → body parsers →
 * local-issuer JWKS → /v1 API (public/ again under /v1) → 404 → JSON error handler.
 */
import express, { type Express, type RequestHandler } from 'express';
import type { Config } from './config';
import { cors } from './middleware/cors';
import { errorHandler, notFoundHandler } from './middleware/error-handler';
import { checkJsonBody } from './middleware/json-depth';
import { HttpError } from './middleware/http-error';
import { READ_CACHE_CONTROL } from './middleware/representation';
import { refuseTokenInQuery, requestLog } from './middleware/request-log';
import { siteFiles } from './middleware/site-files';
import { createClientRouter } from './routes/client';
import { createGogRouter } from './routes/gog';
import { healthRouter } from './routes/health';
import { createV1Router, publicDir } from './routes/v1';
import type { AppDeps } from './types/contracts';

export const DOWN_MESSAGE =
  'RERUM v1 is down for updates or maintenance at this time.  We apologize for the inconvenience.  Try again later.';

/**
 * JSON (application/json, application/ld+json) and text/plain bodies, in one middleware. A request
 * without a body (no Content-Length, no Transfer-Encoding: most GET, HEAD, DELETE) passes straight on
 * with `req.body` undefined, as the parsers would leave it.
 */
function bodyParsers(config: Config): RequestHandler {
  const json = express.json({
    type: ['application/json', 'application/ld+json'],
    limit: config.maxBodyBytes,
    strict: false,
    verify: checkJsonBody, // before parsing: deep JSON is slow to parse and no route takes it
  });
  const text = express.text({ type: 'text/plain', limit: config.maxTextBodyBytes });
  return (req, res, next) => {
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return next();
    json(req, res, (err?: unknown) => (err ? next(err) : text(req, res, next)));
  };
}

export function createApp(deps: AppDeps): Express {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, linklocal, uniquelocal'); // X-Forwarded-* only from a proxy on this host or network
  app.set('json spaces', 0);
  app.set('etag', false);

  app.use(cors);
  app.use((_req, res, next) => {
    res.setHeader('Cache-Control', READ_CACHE_CONTROL);
    next();
  });
  app.use(requestLog(deps.logger, config.slowRequestMs));
  app.use(refuseTokenInQuery);
  // The reference's limits: JSON 5 MB, text 4 KB (MAX_BODY_BYTES, MAX_TEXT_BODY_BYTES); above → 413.
  const parseBody = bodyParsers(config);
  // The most frequent reads, cached GET /v1/id and POST /v1/api/query, answered here without the routing below.
  if (deps.cache.earlyHit && !config.down) app.use(deps.cache.earlyHit(parseBody));
  app.use(healthRouter(deps));
  // The site's pages and files (index at `/`, API.html, terms, maintenance page, stylesheets, favicon,
  // context.json) are served before the maintenance check, as the reference does: they stay up under DOWN.
  app.use(siteFiles(publicDir));
  if (config.down) {
    app.use((_req, _res, next) => next(new HttpError(503, DOWN_MESSAGE)));
  }

  app.use(parseBody); // done already for a query the early HIT looked at

  app.use(deps.auth.router);
  app.use('/v1', createV1Router(deps));
  app.use('/client', createClientRouter(deps));
  app.use('/gog', createGogRouter(deps));

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
