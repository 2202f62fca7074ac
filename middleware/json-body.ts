/**
 * Request-body guards for write and query routes. app.ts parses JSON (application/json and
 * application/ld+json) and text/plain bodies; these check that what arrived is what the route takes:
 * the wrong Content-Type → 415, a body of the wrong JSON shape → 400, both as JSON errors.
 */
import type { Request, RequestHandler } from 'express';
import { isPlainObject } from '../mql';
import { HttpError, badRequest } from './http-error';

type BodyKind = 'json' | 'text';

const MEDIA_TYPES: Record<BodyKind, string[]> = {
  json: ['application/json', 'application/ld+json'],
  text: ['text/plain'],
};

/**
 * True when a Content-Type value is not exactly one media type with `name=value` parameters, as the
 * reference judges it: a comma or space in the type, a parameter without `=` (so `application/json;`
 * too), or a comma or space outside a quoted parameter value means a second type was smuggled in.
 */
export function hasSmuggledType(contentType: string): boolean {
  const [type, ...params] = contentType.split(';');
  if (/[ ,]/.test(type.trim())) return true;
  return params.some((p) => {
    const param = p.trim();
    return !param.includes('=') || /[ ,]/.test(param.replace(/"[^"]*"/g, ''));
  });
}

/** Why the request's Content-Type is not exactly one of the given kinds (a 415), or undefined when it is. */
function contentTypeProblem(req: Request, accepted: string[]): HttpError | undefined {
  const wanted = accepted.join(', ');
  const raw = (req.get('Content-Type') ?? '').toLowerCase();
  const mime = raw.split(';')[0].trim();
  if (!mime) return new HttpError(415, `Missing or empty Content-Type header. This endpoint requires ${wanted}.`);
  if (hasSmuggledType(raw))
    return new HttpError(415, 'Multiple Content-Type values are not allowed. Provide exactly one Content-Type header.');
  if (accepted.includes(mime)) return undefined;
  return new HttpError(415, `Unsupported Content-Type: ${raw}. This endpoint requires ${wanted}.`);
}

/** 415 unless the request's Content-Type is exactly one of the given kinds. */
export function requireContentType(...kinds: BodyKind[]): RequestHandler {
  const accepted = kinds.flatMap((k) => MEDIA_TYPES[k]);
  return (req, _res, next) => next(contentTypeProblem(req, accepted));
}

function shapeGuard(check: (body: unknown) => boolean, expected: string): RequestHandler {
  const contentType = requireContentType('json');
  return (req, res, next) => {
    contentType(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (!hasBody(req) || !check(req.body)) {
        return next(badRequest(`The body of your request was invalid: expected ${expected}.`));
      }
      next();
    });
  };
}

/** True when the client sent a body at all (the parsers leave `req.body` undefined otherwise). */
export const hasBody = (req: Request): boolean => req.body !== undefined;

/** Would requireJsonObject let this request (body already parsed) through? */
export const isJsonObjectRequest = (req: Request): boolean =>
  !contentTypeProblem(req, MEDIA_TYPES.json) && hasBody(req) && isPlainObject(req.body);

/** JSON Content-Type and a JSON object body. */
export const requireJsonObject = shapeGuard(isPlainObject, 'a JSON object');
/** JSON Content-Type and a JSON array body. */
export const requireJsonArray = shapeGuard((b) => Array.isArray(b), 'a JSON array');
/** JSON Content-Type and a JSON object or array body. */
export const requireJsonBody = shapeGuard((b) => isPlainObject(b) || Array.isArray(b), 'a JSON object or array');
/** JSON or text/plain Content-Type (search routes take either). */
export const requireJsonOrText = requireContentType('json', 'text');
