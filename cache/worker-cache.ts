/**
 * One worker's cache: the entry store, the invalidation indexes and the fill guard, kept in step.
 * Knows nothing about other workers (cluster-sync.ts) or HTTP (middleware.ts).
 */
import type { Config } from '../config';
import { representation, type Representation } from '../middleware/representation';
import { CacheIndex, FillGuard, preparePlan, trackInfoFor, type InvalidationPlan } from './invalidation';
import type { CacheKind, KeyInfo } from './kinds';
import { EntryStore, type CacheEntry, type StoreCounters } from './store';

export interface ReadToken {
  gen: number;
  epoch: number;
}

export interface WorkerStats extends StoreCounters {
  refusedFills: number;
  entries: number;
  bytes: number;
  hitRate: number;
  maxEntries: number;
  maxBytes: number;
  ttlSeconds: number;
  uptimeSeconds: number;
  pid: number;
}

export interface EntryDetail {
  position: number;
  key: string;
  kind: CacheKind;
  ageSeconds: number;
  hits: number;
  bytes: number;
}

export function hitRate(hits: number, misses: number): number {
  return hits + misses > 0 ? Math.round((hits / (hits + misses)) * 10000) / 100 : 0;
}

export class WorkerCache {
  readonly store: EntryStore;
  readonly index: CacheIndex;
  readonly guard = new FillGuard();
  refusedFills = 0;

  constructor(opts: Pick<Config, 'cacheMaxEntries' | 'cacheMaxBytes' | 'cacheTtlSeconds'>) {
    this.store = new EntryStore({
      maxEntries: opts.cacheMaxEntries,
      maxBytes: opts.cacheMaxBytes,
      ttlSeconds: opts.cacheTtlSeconds,
      onRemove: (e) => this.index.untrack(e.key),
    });
    this.index = new CacheIndex(this.store);
  }

  get(key: string): CacheEntry | undefined {
    return this.store.get(key);
  }

  /** The entry under `key` counted as a HIT, or undefined without counting a MISS (the caller passes the request on). */
  hit(key: string): CacheEntry | undefined {
    return this.store.has(key) ? this.store.get(key) : undefined;
  }

  beginRead(epoch: number): ReadToken {
    return { gen: this.guard.begin(), epoch };
  }

  /**
   * Stores a response unless an invalidation since `token` could have touched it. `rep` is the
   * representation as sent (a JSON text with its headers is turned into one, for tests).
   */
  fill(token: ReadToken, currentEpoch: number, info: KeyInfo, rep: Representation | string, headers: Record<string, string> = {}): boolean {
    const sent = typeof rep === 'string' ? representation(200, rep, headers) : rep;
    const track = trackInfoFor(info, () => sent.body.toString('utf8'));
    if (token.epoch !== currentEpoch || !this.guard.mayFill(token.gen, track)) {
      this.refusedFills++;
      return false;
    }
    const entry = this.store.set(info.key, info.kind, sent);
    if (!entry) return false;
    this.index.track(info.key, track);
    return true;
  }

  /** Applies a write's plan: drops what it makes stale and remembers it for in-flight reads. */
  apply(plan: InvalidationPlan): number {
    if (plan.resetStats) this.resetCounters();
    const prepared = preparePlan(plan);
    if (!prepared.all && prepared.docs.length === 0) return 0;
    this.guard.record(prepared);
    if (prepared.all) {
      const n = this.store.clear();
      this.index.clear();
      return n;
    }
    return this.index.apply(prepared);
  }

  /** Drops everything. `barrier` also refuses fills from reads already in flight. */
  clear(barrier = true): number {
    if (barrier) this.guard.barrier();
    const n = this.store.clear();
    this.index.clear();
    return n;
  }

  stats(): WorkerStats {
    const c = this.store.counters;
    return {
      ...c,
      refusedFills: this.refusedFills,
      entries: this.store.entries,
      bytes: this.store.bytes,
      hitRate: hitRate(c.hits, c.misses),
      maxEntries: this.store.maxEntries,
      maxBytes: this.store.maxBytes,
      ttlSeconds: this.store.ttlSeconds,
      uptimeSeconds: Math.round((Date.now() - this.store.startedAt) / 1000),
      pid: process.pid,
    };
  }

  details(): EntryDetail[] {
    const out: EntryDetail[] = [];
    let position = 0;
    const now = Date.now();
    for (const { entry, hits } of this.store.entriesByRecency()) {
      out.push({
        position: position++,
        key: entry.key,
        kind: entry.kind,
        ageSeconds: Math.round((now - entry.createdAt) / 1000),
        hits,
        bytes: entry.bytes,
      });
    }
    return out;
  }

  resetCounters(): void {
    this.store.resetCounters();
    this.refusedFills = 0;
  }

  close(): void {
    this.store.close();
  }
}
