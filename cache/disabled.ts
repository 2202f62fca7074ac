/** The cache used when CACHING=false: every read goes to the database, invalidation is a no-op. */
import { Router, type RequestHandler } from 'express';
import type { ReadCache } from '../types/contracts';

export function createDisabledCache(): ReadCache {
  const passThrough: RequestHandler = (_req, _res, next) => next();
  return {
    read: () => passThrough,
    invalidate: async () => {},
    router(requireAdmin) {
      const r = Router();
      r.get('/stats', (_req, res) => {
        res.json({ enabled: false, hits: 0, misses: 0, sets: 0, evictions: 0, entries: 0, bytes: 0, hitRate: 0, workers: [] });
      });
      r.post('/clear', requireAdmin, (_req, res) => {
        res.json({ cleared: 0 });
      });
      return r;
    },
    close: async () => {},
  };
}
