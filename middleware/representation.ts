/**
 * A read answer as bytes: status, serialized body, the headers that describe it (Content-Type, Link,
 * Location, Cache-Control, ETag, Content-Length, …) and its strong ETag, all computed once.
 *
 * The read controllers build one (controllers/respond.ts), the read cache stores it as it is
 * (cache/store.ts) and both send it with `sendRepresentation`, so a cached answer, an uncached one
 * and a 304 carry the same headers. Per-request headers (CORS, X-Cache, X-Worker, Date) are not part
 * of it.
 *
 * Freshness: every read says `Cache-Control: no-cache` — browsers and shared caches may keep a copy
 * but must ask us before using it (a conditional request answered 304 while the ETag still matches).
 * No Last-Modified: RERUM changes stored documents in place without a time stamp (a parent's
 * `history.next`, release trees, trees mended by a delete), and HTTP dates have a one-second
 * resolution, so a date could call a changed body unchanged. The ETag alone validates.
 */
import { hash } from 'node:crypto';
import type { Request, Response } from 'express';

export const READ_CACHE_CONTROL = 'no-cache';

export interface Representation {
  readonly status: number;
  readonly body: Buffer;
  /** Header names in their sent spelling, values as sent; ETag, Cache-Control and Content-Length included. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly etag: string;
}

/** A strong ETag of the exact bytes of a body: `"<sha1, base64url>"`. */
export function etagOf(bytes: Buffer | string): string {
  return `"${hash('sha1', bytes, 'base64url')}"`;
}

/**
 * The representation of `text` with `headers` (Content-Type, Link, … as the route sets them).
 * Adds Cache-Control (unless given), ETag and Content-Length.
 */
export function representation(status: number, text: string | Buffer, headers: Record<string, string>): Representation {
  const body = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const etag = etagOf(body);
  const out: Array<readonly [string, string]> = [];
  let cacheControl = false;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'etag' || lower === 'content-length' || lower === 'last-modified') continue;
    if (lower === 'cache-control') cacheControl = true;
    out.push(Object.freeze([name, value] as const));
  }
  if (!cacheControl) out.push(Object.freeze(['Cache-Control', READ_CACHE_CONTROL] as const));
  out.push(Object.freeze(['ETag', etag] as const));
  out.push(Object.freeze(['Content-Length', String(body.length)] as const));
  return Object.freeze({ status, body, headers: Object.freeze(out), etag });
}

/** Does any entity tag of an If-None-Match / If-Match list equal `etag` (weak: W/ ignored on both sides)? */
export function listMatches(header: string, etag: string, strong: boolean): boolean {
  const trimmed = header.trim();
  if (trimmed === '*') return true;
  const mine = etag.startsWith('W/') ? etag.slice(2) : etag;
  if (strong && etag.startsWith('W/')) return false;
  for (const raw of trimmed.split(',')) {
    let t = raw.trim();
    if (t.startsWith('W/')) {
      if (strong) continue;
      t = t.slice(2);
    }
    if (t === mine) return true;
  }
  return false;
}

/** GET/HEAD with an If-None-Match naming this representation → 304. (If-Modified-Since: no Last-Modified is sent, see above.) */
export function isNotModified(req: Request, rep: Representation): boolean {
  if (rep.status !== 200 || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  const inm = req.headers['if-none-match'];
  return typeof inm === 'string' && listMatches(inm, rep.etag, false);
}

type Listener = (rep: Representation) => void;
const listeners = new WeakMap<Response, Listener>();

/** Be told of the representation a read route is about to send on `res` (the read cache fills from it). */
export function onRepresentation(res: Response, listener: Listener): void {
  listeners.set(res, listener);
}

/**
 * Send `rep`: its headers; 304 without a body when the request's If-None-Match names it, the body
 * otherwise (none for HEAD). Listeners registered with onRepresentation hear of it first.
 *
 * A 304 carries every header of the 200 except Content-Length: RFC 9110 allows it there, but HTTP
 * clients that do not special-case 304 would wait for that many body bytes that never come.
 */
export function sendRepresentation(req: Request, res: Response, rep: Representation): void {
  const listener = listeners.get(res);
  if (listener) {
    listeners.delete(res);
    listener(rep);
  }
  if (isNotModified(req, rep)) {
    for (const [name, value] of rep.headers) if (name !== 'Content-Length') res.setHeader(name, value);
    res.statusCode = 304;
    res.end();
    return;
  }
  for (const [name, value] of rep.headers) res.setHeader(name, value);
  res.statusCode = rep.status;
  if (req.method === 'HEAD') res.end();
  else res.end(rep.body);
}
