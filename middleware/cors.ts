/**
 * CORS as the reference (the `cors` package's defaults): any origin, the API's methods, and the
 * request's own headers on preflight. Our response headers that clients read are exposed.
 */
import type { RequestHandler } from 'express';

const METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';
const EXPOSED = 'Location, Link, Allow, ETag, Last-Modified, X-Cache, X-Worker, WWW-Authenticate';

export const cors: RequestHandler = (req, res, next) => {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', EXPOSED);
  if (req.method === 'OPTIONS' && req.get('Access-Control-Request-Method')) {
    res.setHeader('Access-Control-Allow-Methods', METHODS);
    const asked = req.get('Access-Control-Request-Headers');
    if (asked) {
      res.setHeader('Access-Control-Allow-Headers', asked);
      res.vary('Access-Control-Request-Headers');
    }
    res.setHeader('Access-Control-Max-Age', '600');
    res.status(204).end();
    return;
  }
  next();
};
