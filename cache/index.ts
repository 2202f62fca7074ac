/**
 * The read cache (ReadCache in types/contracts.ts), wired here: per-worker store + invalidation indexes
 * (worker-cache.ts) following the route kinds table (kinds.ts), kept consistent across PM2 workers
 * (cluster-sync.ts), exposed as read-route middleware (middleware.ts) and /v1/api/cache routes
 * (stats-routes.ts), with the invalidation timings of write-times.ts.
 */
import type { RequestHandler, Router } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { CachedRouteKind, ObjectChange, ReadCache } from '../types/contracts';
import { monotonicMs } from './clock';
import { ClusterSync, LocalSync, type CacheSync } from './cluster-sync';
import { createDisabledCache } from './disabled';
import { planFromChanges } from './invalidation';
import { earlyHitMiddleware, readMiddleware } from './middleware';
import { Pm2Transport, runningUnderPm2, type SyncTransport } from './pm2-transport';
import { cacheRouter } from './stats-routes';
import { WorkerCache } from './worker-cache';
import { WriteTimes } from './write-times';

export interface ReadCacheOptions {
  /** Use this channel instead of PM2 (tests); implies cluster mode. */
  transport?: SyncTransport;
}

/** The cache plus handles for tests and the benchmark. */
export interface ReadCacheInternals extends ReadCache {
  readonly worker: WorkerCache;
  readonly sync: CacheSync;
  /** Resolves once the cluster channel is up (immediately without PM2). */
  readonly ready: Promise<void>;
}

export function createReadCache(config: Config, logger: Logger): ReadCache {
  return config.caching ? createEnabledCache(config, logger) : createDisabledCache();
}

export function createEnabledCache(config: Config, logger: Logger, opts: ReadCacheOptions = {}): ReadCacheInternals {
  const log = logger.child({ component: 'cache' });
  const worker = new WorkerCache(config);
  const writeTimes = new WriteTimes();
  /**
   * CACHE_SYNC_DISABLED_FOR_TEST=1: negative control for `scripts/race-condition.sh --cluster
   * --broken-sync` (and cluster-sync.test.ts), never for production: the writer drops its own
   * entries but does not tell its siblings, so they keep serving stale copies.
   */
  const syncDisabledForTest = process.env.CACHE_SYNC_DISABLED_FOR_TEST === '1';
  if (syncDisabledForTest)
    log.error('cache: CACHE_SYNC_DISABLED_FOR_TEST=1 — invalidations are NOT broadcast; siblings will serve stale data (test only)');
  const handlers = {
    apply: (plan: Parameters<WorkerCache['apply']>[0]) => worker.apply(plan),
    clearAll: () => {
      worker.clear(true);
    },
    stats: (details: boolean) => ({
      ...worker.stats(),
      leaseValid: sync.holdsLease(),
      invalidateMs: writeTimes.stats(),
      ...(details ? { details: worker.details(), ...writeTimes.samples() } : {}),
    }),
  };
  const transport = opts.transport ?? (runningUnderPm2() ? new Pm2Transport(log) : undefined);
  const sync: CacheSync = transport
    ? new ClusterSync(transport, handlers, log, {
        syncTimeoutMs: config.cacheSyncTimeoutMs,
        leaseMs: config.cacheLeaseMs,
        idleMs: config.cacheIdleMs,
      })
    : new LocalSync(handlers);

  const ready = sync.start().catch((err: unknown) => {
    // Without the channel no invalidation can reach the siblings: never take a lease, never serve
    // from the cache (the lease stays lapsed), but keep answering from the database.
    log.error({ err }, 'cache: could not connect to the PM2 daemon; this worker will not serve from its cache');
  });

  let closed = false;

  const invalidate = async (changes: ObjectChange[]): Promise<void> => {
    if (closed || !changes || changes.length === 0) return;
    const plan = planFromChanges(changes);
    if (!plan.all && plan.docs.length === 0) return;
    const started = monotonicMs();
    let local = 0;
    try {
      // Publish first (once this worker has joined, the plan leaves at the end of this turn with the
      // others of the turn), then drop our own entries while the siblings do the same: the local drop
      // is synchronous, so no request runs on this worker in between.
      const published = syncDisabledForTest ? undefined : sync.publish(plan);
      void published?.catch(() => undefined); // awaited below; never left unhandled if apply throws
      const dropStarted = monotonicMs();
      try {
        worker.apply(plan);
      } finally {
        local = monotonicMs() - dropStarted;
      }
      await published;
    } finally {
      writeTimes.record(monotonicMs() - started, local);
    }
  };

  const clearEverywhere = async () => {
    const plan = { all: true, docs: [], resetStats: true };
    const local = worker.apply(plan);
    worker.guard.barrier();
    const r = await sync.publish(plan);
    return { cleared: local + r.dropped, workers: 1 + r.acked, timedOut: r.timedOut };
  };

  return {
    worker,
    sync,
    ready,
    read(kind: CachedRouteKind): RequestHandler {
      return readMiddleware(kind, worker, sync, log);
    },
    earlyHit(parseBody: RequestHandler): RequestHandler {
      return earlyHitMiddleware(worker, sync, parseBody);
    },
    invalidate,
    router(requireAdmin: RequestHandler): Router {
      return cacheRouter(
        sync,
        clearEverywhere,
        {
          maxEntries: config.cacheMaxEntries,
          maxBytes: config.cacheMaxBytes,
          ttlSeconds: config.cacheTtlSeconds,
          syncTimeoutMs: config.cacheSyncTimeoutMs,
          leaseMs: config.cacheLeaseMs,
          idleMs: config.cacheIdleMs,
        },
        requireAdmin,
        log,
      );
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await ready;
      await sync.close();
      worker.clear(true);
      worker.close();
    },
  };
}
