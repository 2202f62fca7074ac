/**
 * The stored-content rules (rerum/storable.ts) as a route guard: every write route runs it after
 * its body-shape guard, so a body that could not be stored safely is refused before anything is
 * read or written.
 */
import type { RequestHandler } from 'express';
import { assertStorable, assertStorableItems } from '../rerum/storable';

export const requireStorableBody: RequestHandler = (req, _res, next) => {
  if (Array.isArray(req.body)) assertStorableItems(req.body);
  else assertStorable(req.body);
  next();
};
