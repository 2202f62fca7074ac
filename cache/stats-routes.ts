/**
 * GET /stats (per worker and summed over the cluster; public) and POST /clear (every worker),
 * mounted at /v1/api/cache. Clear and `GET /stats?details=true` (every worker's keys, i.e. other
 * clients' queries, and timing samples) run behind `requireAdmin` (CACHE_ADMIN_AGENT).
 */
import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { CacheSync } from './cluster-sync';
import { hitRate } from './worker-cache';

const SUMMED = ['hits', 'misses', 'sets', 'evictions', 'invalidations', 'expirations', 'refusedFills', 'entries', 'bytes'] as const;

export function cacheRouter(
  sync: CacheSync,
  clearEverywhere: () => Promise<{ cleared: number; workers: number; timedOut: string[] }>,
  limits: { maxEntries: number; maxBytes: number; ttlSeconds: number; syncTimeoutMs: number; leaseMs: number; idleMs: number },
  requireAdmin: RequestHandler,
  logger: Logger,
): Router {
  const r = Router();
  const wantsDetails = (q: unknown) => String(q ?? '') === 'true';
  r.get(
    '/stats',
    (req, res, next) => (wantsDetails(req.query.details) ? requireAdmin(req, res, next) : next()),
    async (req, res, next) => {
      try {
        const details = wantsDetails(req.query.details);
        const { workers, missing } = await sync.clusterStats(details);
        const total: Record<string, number> = {};
        for (const f of SUMMED) total[f] = workers.reduce((s, w) => s + (Number(w[f]) || 0), 0);
        res.set('Cache-Control', 'no-store');
        res.json({
          enabled: true,
          mode: sync.mode,
          worker: sync.workerId,
          ...total,
          hitRate: hitRate(total.hits, total.misses),
          /** Slowest worker's p99 time spent in invalidate() over its last 1024 writes. */
          invalidateP99Ms: Math.max(0, ...workers.map((w) => Number((w.invalidateMs as { p99?: number } | undefined)?.p99) || 0)),
          length: total.entries,
          maxLength: limits.maxEntries,
          maxBytes: limits.maxBytes,
          ttl: limits.ttlSeconds,
          syncTimeoutMs: limits.syncTimeoutMs,
          leaseMs: limits.leaseMs,
          idleMs: limits.idleMs,
          workerCount: workers.length,
          missingWorkers: missing,
          workers,
        });
      } catch (e) {
        next(e);
      }
    },
  );
  r.post('/clear', requireAdmin, async (_req, res, next) => {
    try {
      const { cleared, workers, timedOut } = await clearEverywhere();
      logger.info({ cleared, workers }, 'cache cleared on every worker');
      res.set('Cache-Control', 'no-store');
      res.json({ message: 'Cache cleared', cleared, entriesCleared: cleared, currentSize: 0, workers, timedOutWorkers: timedOut });
    } catch (e) {
      next(e);
    }
  });
  return r;
}
