/**
 * The read-route middleware: answers a HIT from the cache, or lets the controller answer (MISS) and
 * stores a 200 answer unless a write that could affect it happened after the request started.
 *
 * An entry is the representation the controller sent (middleware/representation.ts): body bytes,
 * all of its headers and its ETag. A HIT sends exactly that — the same headers as the MISS, only
 * `X-Cache`, `X-Worker` and `Date` differ — and a conditional GET/HEAD whose If-None-Match names the
 * ETag gets a 304 with those headers and no body. HEAD is served from the GET entry and never fills.
 * Responses are only stored while this worker holds its lease (cluster-sync.ts).
 *
 * A controller that answers with res.send/res.json instead of a representation is still cached
 * correctly: its 200 body and every header it set (not the per-request ones) become the
 * representation, sent the same way.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { isJsonObjectRequest } from '../middleware/json-body';
import { onRepresentation, representation, sendRepresentation, type Representation } from '../middleware/representation';
import { deepCopy } from '../mql';
import type { CacheSync } from './cluster-sync';
import { idKey } from './keys';
import { keyForRequest, type CacheKind, type KeyInfo } from './kinds';
import type { WorkerCache } from './worker-cache';

/** Headers that belong to one request/connection, never to a stored representation. */
const PER_REQUEST = new Set([
  'x-cache',
  'x-worker',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'etag',
  'access-control-allow-origin',
  'access-control-expose-headers',
  'access-control-allow-credentials',
  'set-cookie',
]);

/** The headers a controller set on `res` that describe its answer. */
function describingHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of res.getHeaderNames()) {
    if (PER_REQUEST.has(name)) continue;
    const v = res.getHeader(name);
    if (v === undefined) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}

/** A cached answer: the stored representation, marked as this worker's HIT — the same whichever middleware finds it. */
function sendHit(req: Request, res: Response, sync: CacheSync, rep: Representation): void {
  sync.noteRead();
  res.setHeader('X-Worker', sync.workerId);
  res.setHeader('X-Cache', 'HIT');
  sendRepresentation(req, res, rep);
}

/** The key earlyHitMiddleware built for a query it did not answer (the body is the same when the route runs). */
const keyedEarly = new WeakMap<Request, KeyInfo>();

/** `/v1/id/<segment>` with a segment of plain URL characters only (no `/`, `?`, `#`, `%`): routed to GET /v1/id/:_id with `_id` = segment. */
const PLAIN_ID_URL = /^\/v1\/id\/([A-Za-z0-9._~!$&'()*+,;=:@-]+)$/;
/** `/v1/api/query`, with or without a query string (limit, skip): routed to POST /v1/api/query as it is. */
const QUERY_URL = /^\/v1\/api\/query(?:\?|$)/;

/**
 * The HITs of the most frequent reads answered before the app's routing (app.ts mounts this right
 * after CORS, the request log and the token-in-URL check): Express's router, the site files and the
 * /v1 router are skipped. It answers only a request the route would answer from the same entry,
 * while this worker may serve, exactly as readMiddleware does (same representation, `X-Cache: HIT`,
 * `X-Worker`, 304 on a matching If-None-Match):
 *   - `GET`/`HEAD /v1/id/<segment>`: a plain URL, no body;
 *   - `POST /v1/api/query[?…]`: its body parsed by `parseBody` (the app's body parser, which a later
 *     mount then finds done), a JSON Content-Type and a JSON object, as the query route requires.
 * Everything else, a MISS or a refusal included, goes on to the route, which counts the MISS, fills
 * the entry or answers the error (a body the parser refuses goes to the error handler, as it would there).
 */
export function earlyHitMiddleware(cache: WorkerCache, sync: CacheSync, parseBody: RequestHandler): RequestHandler {
  const answerQuery = (req: Request, res: Response, next: NextFunction) => {
    // the body came in after the first check: the lease may have lapsed meanwhile
    if (!sync.canServe() || !isJsonObjectRequest(req)) return next();
    let info: KeyInfo | undefined;
    try {
      info = keyForRequest('query', req);
    } catch {
      return next(); // the route's read middleware tries again and logs why (a body too deep gets no key, not an error)
    }
    const hit = info && cache.hit(info.key);
    if (!hit) {
      if (info) keyedEarly.set(req, info); // the route's readMiddleware takes it from here: one key per request
      return next();
    }
    sendHit(req, res, sync, hit.rep);
  };
  return (req, res, next) => {
    if (!sync.canServe()) return next();
    if (req.method === 'POST') {
      if (!QUERY_URL.test(req.url)) return next();
      return parseBody(req, res, (err?: unknown) => {
        if (err) return next(err);
        // the body parser's callback runs outside Express's error handling: an error thrown here would end the process
        try {
          answerQuery(req, res, next);
        } catch (e) {
          next(e);
        }
      });
    }
    if ((req.method !== 'GET' && req.method !== 'HEAD') || req.headers['content-length'] !== undefined) return next();
    if (req.headers['transfer-encoding'] !== undefined) return next();
    const m = PLAIN_ID_URL.exec(req.url);
    if (!m) return next();
    const hit = cache.hit(idKey('id', m[1]));
    if (!hit) return next();
    sendHit(req, res, sync, hit.rep);
  };
}

export function readMiddleware(kind: CacheKind, cache: WorkerCache, sync: CacheSync, logger: Logger): RequestHandler {
  return (req, res, next) => {
    let info;
    try {
      info = (kind === 'query' ? keyedEarly.get(req) : undefined) ?? keyForRequest(kind, req);
    } catch (e) {
      logger.warn({ err: e }, 'cache: could not build a key; passing through');
      info = undefined;
    }
    if (!info) return next();

    sync.noteRead();
    if (sync.canServe()) {
      const hit = cache.get(info.key);
      if (hit) return sendHit(req, res, sync, hit.rep);
    } else {
      cache.store.counters.misses++;
    }
    res.setHeader('X-Worker', sync.workerId);
    res.setHeader('X-Cache', 'MISS');
    if (req.method === 'HEAD') return next();

    const token = cache.beginRead(sync.leaseEpoch());
    // the query filter as asked: the controller may change req.body before the entry is filled
    const keyInfo = info.filter === undefined ? info : { ...info, filter: deepCopy(info.filter) };
    let done = false;
    const fill = (rep: Representation) => {
      if (done || rep.status !== 200) return;
      done = true;
      try {
        if (sync.canServe()) cache.fill(token, sync.leaseEpoch(), keyInfo, rep);
      } catch (e) {
        logger.warn({ err: e }, 'cache: could not store a response');
      }
    };
    onRepresentation(res, fill);
    const originalSend = res.send.bind(res);
    res.send = function sendAndFill(this: Response, body?: unknown) {
      // res.json() and res.send(object) come back here with the serialized string
      if (!done && res.statusCode === 200 && (typeof body === 'string' || Buffer.isBuffer(body))) {
        const headers = describingHeaders(res);
        if (!headers['content-type'])
          headers['Content-Type'] = typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/octet-stream';
        sendRepresentation(req, res, representation(200, body, headers));
        return res;
      }
      return originalSend(body as never);
    } as Response['send'];
    next();
  };
}
