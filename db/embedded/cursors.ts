/**
 * Server-side cursors: a snapshot array of (copy-on-write, hence stable) document references,
 * a position and a per-batch transform (projection). Batches are capped by count and by
 * ~16 MiB of BSON. Idle cursors are reaped after 10 minutes.
 */
import { calculateObjectSize, Long } from 'bson';
import type { Doc } from '../../mql';

const MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024;
const DEFAULT_FIRST_BATCH = 101;
const IDLE_MS = 10 * 60 * 1000;

interface Cursor {
  id: Long;
  ns: string;
  docs: Doc[];
  pos: number;
  map: (d: Doc) => Doc;
  lastUsed: number;
}

export class CursorManager {
  private cursors = new Map<string, Cursor>();
  private nextId = 1n;

  /** Build a cursor reply; registers a cursor only when documents remain. */
  open(ns: string, docs: Doc[], opts: { batchSize?: number; singleBatch?: boolean; map?: (d: Doc) => Doc }): Doc {
    this.reap();
    const map = opts.map ?? ((d: Doc) => d);
    const batchSize = opts.batchSize === undefined || opts.batchSize < 0 ? DEFAULT_FIRST_BATCH : opts.batchSize;
    const c: Cursor = { id: Long.ZERO, ns, docs, pos: 0, map, lastUsed: Date.now() };
    const firstBatch = this.take(c, opts.singleBatch ? Number.MAX_SAFE_INTEGER : batchSize);
    if (!opts.singleBatch && c.pos < docs.length) {
      c.id = Long.fromBigInt(this.nextId++);
      this.cursors.set(c.id.toString(), c);
    }
    return { cursor: { firstBatch, id: c.id, ns }, ok: 1 };
  }

  getMore(id: unknown, batchSize: number | undefined): Doc | undefined {
    const key = String(id);
    const c = this.cursors.get(key);
    if (!c) return undefined;
    c.lastUsed = Date.now();
    const nextBatch = this.take(c, batchSize && batchSize > 0 ? batchSize : Number.MAX_SAFE_INTEGER);
    let outId: Long = c.id;
    if (c.pos >= c.docs.length) {
      this.cursors.delete(key);
      outId = Long.ZERO;
    }
    return { cursor: { nextBatch, id: outId, ns: c.ns }, ok: 1 };
  }

  kill(ids: unknown[]): { killed: unknown[]; notFound: unknown[] } {
    const killed: unknown[] = [];
    const notFound: unknown[] = [];
    for (const id of ids) (this.cursors.delete(String(id)) ? killed : notFound).push(id);
    return { killed, notFound };
  }

  private take(c: Cursor, n: number): Doc[] {
    const out: Doc[] = [];
    let bytes = 0;
    while (out.length < n && c.pos < c.docs.length) {
      const d = c.map(c.docs[c.pos]);
      const size = calculateObjectSize(d);
      if (out.length > 0 && bytes + size > MAX_BATCH_BYTES) break;
      out.push(d);
      bytes += size;
      c.pos++;
    }
    return out;
  }

  private reap(): void {
    const now = Date.now();
    for (const [k, c] of this.cursors) if (now - c.lastUsed > IDLE_MS) this.cursors.delete(k);
  }

  clear(): void {
    this.cursors.clear();
  }
}
