/**
 * The read-route middleware: answers a HIT from the cache, or lets the controller answer (MISS) and
 * stores a 200 answer unless a write that could affect it happened after the request started.
 *
 * Headers: `X-Cache: HIT|MISS` and `X-Worker: <pm_id or pid>` on every cached route. A HIT replays
 * the stored body (a string) with its Content-Type and the other stored headers; Express then adds
 * ETag / answers conditional requests and HEAD as usual. HEAD is served from the GET entry and never
 * fills. Responses are only stored while this worker holds its lease (cluster-sync.ts).
 */
import type { RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { CachedRouteKind } from '../types/contracts';
import type { CacheSync } from './cluster-sync';
import { keyForRequest } from './keys';
import type { WorkerCache } from './worker-cache';

/** Response headers worth replaying on a HIT (ETag is recomputed by Express; CORS etc. are per request). */
const STORED_HEADERS = ['content-type', 'cache-control', 'link', 'last-modified', 'content-language', 'location', 'allow', 'vary'];

function storedHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of STORED_HEADERS) {
    const v = res.getHeader(h);
    if (v === undefined) continue;
    out[h] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

export function readMiddleware(kind: CachedRouteKind, cache: WorkerCache, sync: CacheSync, logger: Logger): RequestHandler {
  return (req, res, next) => {
    let info;
    try {
      info = keyForRequest(kind, req);
    } catch (e) {
      logger.warn({ err: e }, 'cache: could not build a key; passing through');
      info = undefined;
    }
    if (!info) return next();
    res.setHeader('X-Worker', sync.workerId);

    if (sync.canServe()) {
      const hit = cache.get(info.key);
      if (hit) {
        for (const [h, v] of Object.entries(hit.headers)) res.setHeader(h, v);
        res.setHeader('X-Cache', 'HIT');
        res.status(hit.status).send(hit.body);
        return;
      }
    } else {
      cache.store.counters.misses++;
    }
    res.setHeader('X-Cache', 'MISS');
    if (req.method === 'HEAD') return next();

    const token = cache.beginRead(sync.leaseEpoch());
    const keyInfo = info;
    const originalSend = res.send.bind(res);
    let done = false;
    res.send = function sendAndFill(this: Response, body?: unknown) {
      // res.json() and res.send(object) come back here with the serialized string
      if (!done && res.statusCode === 200 && (typeof body === 'string' || Buffer.isBuffer(body))) {
        done = true;
        try {
          if (sync.canServe()) {
            const text = typeof body === 'string' ? body : body.toString('utf8');
            cache.fill(token, sync.leaseEpoch(), keyInfo, text, storedHeaders(res));
          }
        } catch (e) {
          logger.warn({ err: e }, 'cache: could not store a response');
        }
      }
      return originalSend(body as never);
    } as Response['send'];
    next();
  };
}
