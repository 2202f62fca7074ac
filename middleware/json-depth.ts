/**
 * How deeply a JSON body nests, and how many object properties it has, read off its bytes before it
 * is parsed.
 *
 * No route takes JSON nested deeper than about a hundred levels: stored content stops at 98
 * (rerum/storable.ts; MongoDB's own limit is 100), a bulk body adds one, a query stops at
 * QUERY_MAX_DEPTH (at most 100). Yet parsing deep JSON is slow: V8 took over a second of one
 * core for a 5 MB body of nested objects or arrays (the body limit), with the event loop blocked,
 * and that before any route, token check included, could refuse it. So a body nested deeper than
 * JSON_MAX_DEPTH is refused with 400 before it is parsed; a scan of its bytes costs a few
 * milliseconds for 5 MB.
 *
 * The same scan counts the body's object properties (at every level), which a route can read with
 * jsonPropertiesOf instead of walking the parsed body: an object of hundreds of thousands of
 * properties is slow to enumerate (V8 sorts a large object's keys on every Object.keys), and the
 * query route refuses more than QUERY_MAX_CLAUSES anyway.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './http-error';

/** Deepest nesting of objects and arrays a JSON body may have: above every limit of a route. */
export const JSON_MAX_DEPTH = 128;

const QUOTE = 0x22;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * Reads `text`, JSON in the given charset (as body-parser names it: utf-8, utf-16le, utf-32be, …):
 * whether it opens more than `maxDepth` objects/arrays at once outside strings (it stops there),
 * and how many object properties it has (a `:` outside strings). UTF-16 and UTF-32 are read in their
 * code units (big-endian when named so, marked so, or when the text starts so); every other charset
 * body-parser accepts writes these ASCII characters as single bytes. Text that is not valid JSON is
 * only counted, not judged: JSON.parse does that.
 */
export function scanJson(text: Uint8Array, maxDepth: number, charset = 'utf-8'): { tooDeep: boolean; properties: number } {
  const width = /^utf-?16/i.test(charset) ? 2 : /^utf-?32/i.test(charset) ? 4 : 1;
  // named so, else a byte-order mark (FE FF; 00 00 FE FF), else the first character: JSON text starts
  // with an ASCII one, whose zero high byte comes first only in big-endian
  const bigEndian =
    /be$/i.test(charset) ||
    (width > 1 && !/le$/i.test(charset) && ((text[0] === 0xfe && text[1] === 0xff) || (text[0] === 0 && text[width - 1] !== 0)));
  const unit = (i: number): number => {
    let u = 0;
    for (let k = 0; k < width; k++) u = u * 256 + text[bigEndian ? i + k : i + width - 1 - k];
    return u;
  };
  let depth = 0;
  let properties = 0;
  let inString = false;
  for (let i = 0; i + width <= text.length; i += width) {
    const c = width === 1 ? text[i] : unit(i);
    if (inString) {
      if (c === BACKSLASH)
        i += width; // the escaped unit is never structural
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === COLON) properties++;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return { tooDeep: true, properties };
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) depth--;
  }
  return { tooDeep: false, properties };
}

const propertiesOf = new WeakMap<object, number>();

/**
 * body-parser's `verify` for JSON bodies: 400 for a body nested deeper than JSON_MAX_DEPTH, before it
 * is parsed; otherwise notes its property count for jsonPropertiesOf.
 */
export function checkJsonBody(req: IncomingMessage, _res: unknown, body: Buffer, charset: string | null): void {
  const { tooDeep, properties } = scanJson(body, JSON_MAX_DEPTH, charset ?? 'utf-8');
  if (tooDeep) {
    throw new HttpError(
      400,
      `The body of your request was invalid: it is nested too deeply (at most ${JSON_MAX_DEPTH} levels of objects and arrays).`,
    );
  }
  propertiesOf.set(req, properties);
}

/** How many object properties (at every level) the request's JSON body has, when the app's parser read it. */
export function jsonPropertiesOf(req: object): number | undefined {
  return propertiesOf.get(req);
}
