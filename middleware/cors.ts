/**
 * CORS as the reference (the `cors` package's defaults): any origin, the API's methods, and on
 * preflight the request headers the page asks for (or, when it names none, the ones RERUM clients
 * send). Every response header is readable by the page: `*` for requests without credentials (the
 * reference exposes `*`), and the API's headers by name for the browsers and requests where `*`
 * is taken literally (credentialed requests); the CORS-safelisted ones (Content-Type, Content-Length,
 * Cache-Control, …) are always readable.
 *
 * No `Vary: Origin`: every answer is the same for every origin (`Access-Control-Allow-Origin: *`).
 * A preflight that reflects the asked headers varies on `Access-Control-Request-Headers`.
 */
import type { RequestHandler } from 'express';

const METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE';
export const EXPOSED_HEADERS = [
  '*',
  'Location',
  'Link',
  'Allow',
  'ETag',
  'Current-Overwritten-Version',
  'X-Cache',
  'X-Worker',
  'WWW-Authenticate',
].join(', ');
export const ALLOWED_REQUEST_HEADERS = [
  'Authorization',
  'Content-Type',
  'Slug',
  'If-Overwritten-Version',
  'If-Match',
  'If-None-Match',
  'X-HTTP-Method-Override',
].join(', ');

export const cors: RequestHandler = (req, res, next) => {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
  if (req.method === 'OPTIONS' && req.get('Access-Control-Request-Method')) {
    res.setHeader('Access-Control-Allow-Methods', METHODS);
    const asked = req.get('Access-Control-Request-Headers');
    res.setHeader('Access-Control-Allow-Headers', asked || ALLOWED_REQUEST_HEADERS);
    res.vary('Access-Control-Request-Headers');
    res.setHeader('Access-Control-Max-Age', '600');
    res.status(204).end();
    return;
  }
  next();
};
