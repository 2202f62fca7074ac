/**
 * The per-worker entry store: node-cache (useClones: false) holding frozen entries, with our own
 * LRU order (a Map re-inserted on every hit) and both an entry-count and a byte limit.
 *
 * An entry is the response as it is sent (middleware/representation.ts): the serialized body
 * bytes, every header that describes it (Content-Type, Link, Location, Cache-Control, ETag,
 * Content-Length, Current-Overwritten-Version, …) and the ETag, so a HIT writes a buffer and a 304
 * writes headers only. Size accounting is in bytes (body + header text + key). Entries are frozen;
 * nobody may write into an entry's body buffer (it is sent as it is). Every removal — explicit delete, eviction, TTL expiry inside node-cache —
 * goes through node-cache's 'del' event, so the LRU order, byte count and the owner's indexes
 * (onRemove) stay in step with what is stored.
 */
import NodeCache from 'node-cache';
import type { Representation } from '../middleware/representation';
import type { CacheKind } from './kinds';

export interface CacheEntry {
  readonly key: string;
  readonly kind: CacheKind;
  readonly rep: Representation;
  readonly bytes: number;
  readonly createdAt: number;
}

export interface StoreCounters {
  hits: number;
  misses: number;
  sets: number;
  evictions: number;
  invalidations: number;
  expirations: number;
}

export interface StoreOptions {
  maxEntries: number;
  maxBytes: number;
  ttlSeconds: number;
  /** Called for every entry that leaves the store, for whatever reason. */
  onRemove?: (entry: CacheEntry) => void;
}

export type RemovalReason = 'invalidate' | 'evict' | 'clear' | 'replace' | 'expire';

/** What an entry costs: the body's bytes, the header names and values, the key, and a fixed overhead. */
export function entryBytes(key: string, rep: Representation): number {
  let n = Buffer.byteLength(key) + rep.body.length + 64;
  for (const [k, v] of rep.headers) n += k.length + Buffer.byteLength(v);
  return n;
}

export class EntryStore {
  private readonly nc: NodeCache;
  private readonly lru = new Map<string, CacheEntry>();
  private readonly hitCount = new Map<string, number>();
  private totalBytes = 0;
  private pendingReason: RemovalReason | undefined;
  readonly counters: StoreCounters = { hits: 0, misses: 0, sets: 0, evictions: 0, invalidations: 0, expirations: 0 };
  readonly startedAt = Date.now();

  constructor(private readonly opts: StoreOptions) {
    const ttl = Math.max(0, opts.ttlSeconds);
    this.nc = new NodeCache({
      useClones: false,
      stdTTL: ttl,
      checkperiod: ttl > 0 ? Math.max(1, Math.min(60, ttl)) : 0,
      deleteOnExpire: true,
    });
    this.nc.on('del', (key: string, value: CacheEntry) => this.onDeleted(key, value));
  }

  get entries(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get maxEntries(): number {
    return this.opts.maxEntries;
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  get ttlSeconds(): number {
    return this.opts.ttlSeconds;
  }

  private onDeleted(key: string, value: CacheEntry): void {
    const reason = this.pendingReason ?? 'expire';
    const current = this.lru.get(key);
    if (current !== value) return; // not ours (already replaced)
    this.lru.delete(key);
    this.hitCount.delete(key);
    this.totalBytes -= value.bytes;
    if (reason === 'expire') this.counters.expirations++;
    this.opts.onRemove?.(value);
  }

  private remove(key: string, reason: RemovalReason): boolean {
    if (!this.lru.has(key)) return false;
    this.pendingReason = reason;
    try {
      this.nc.del(key);
    } finally {
      this.pendingReason = undefined;
    }
    return true;
  }

  /** The live entry, or undefined (expired entries are dropped here). Counts a hit or a miss. */
  get(key: string): CacheEntry | undefined {
    const entry = this.peek(key);
    if (!entry) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    this.lru.delete(key);
    this.lru.set(key, entry);
    this.hitCount.set(key, (this.hitCount.get(key) ?? 0) + 1);
    return entry;
  }

  /** Like get, without touching counters or recency. */
  peek(key: string): CacheEntry | undefined {
    if (!this.lru.has(key)) return undefined;
    const entry = this.nc.get<CacheEntry>(key); // node-cache drops it here when expired
    return entry !== undefined && this.lru.get(key) === entry ? entry : undefined;
  }

  has(key: string): boolean {
    return this.peek(key) !== undefined;
  }

  /** Stores an entry (evicting least recently used ones to make room); false if it can never fit. */
  set(key: string, kind: CacheKind, rep: Representation): CacheEntry | undefined {
    const bytes = entryBytes(key, rep);
    if (bytes > this.opts.maxBytes || this.opts.maxEntries < 1) return undefined;
    this.remove(key, 'replace');
    while (this.lru.size >= this.opts.maxEntries || this.totalBytes + bytes > this.opts.maxBytes) {
      const oldest = this.lru.keys().next();
      if (oldest.done) break;
      this.remove(oldest.value, 'evict');
      this.counters.evictions++;
    }
    const entry: CacheEntry = Object.freeze({ key, kind, rep, bytes, createdAt: Date.now() });
    this.lru.set(key, entry);
    this.totalBytes += bytes;
    this.nc.set(key, entry);
    this.counters.sets++;
    return entry;
  }

  /** Drops one entry because a write made it stale. */
  invalidate(key: string): boolean {
    const removed = this.remove(key, 'invalidate');
    if (removed) this.counters.invalidations++;
    return removed;
  }

  /** Drops every entry; returns how many there were. */
  clear(): number {
    const n = this.lru.size;
    for (const key of [...this.lru.keys()]) this.remove(key, 'clear');
    return n;
  }

  resetCounters(): void {
    for (const k of Object.keys(this.counters) as (keyof StoreCounters)[]) this.counters[k] = 0;
  }

  /** Entries from most to least recently used. */
  *entriesByRecency(): IterableIterator<{ entry: CacheEntry; hits: number }> {
    const all = [...this.lru.values()];
    for (let i = all.length - 1; i >= 0; i--) {
      const e = all[i];
      yield { entry: e, hits: this.hitCount.get(e.key) ?? 0 };
    }
  }

  close(): void {
    this.nc.close();
  }
}
