/**
 * The stored-content rules (rerum/storable.ts) as a route guard: every write route runs it after
 * its body-shape guard, so a body that could not be stored safely is refused before anything is
 * read or written.
 */
import type { RequestHandler } from 'express';
import { HttpError } from './http-error';
import { assertStorable, assertStorableItems } from '../rerum/storable';

/** 413 for a bulk body with more than `max` items (BULK_MAX_ITEMS), before any item is looked at. */
export function bulkItemLimit(max: number): RequestHandler {
  return (req, _res, next) => {
    const n = Array.isArray(req.body) ? req.body.length : 0;
    if (n > max)
      return next(new HttpError(413, `The array has ${n} items: at most ${max} can be written in one request (BULK_MAX_ITEMS).`));
    next();
  };
}

export const requireStorableBody: RequestHandler = (req, _res, next) => {
  if (Array.isArray(req.body)) assertStorableItems(req.body);
  else assertStorable(req.body);
  next();
};
