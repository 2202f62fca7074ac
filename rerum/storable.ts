/**
 * What client content may be stored: the one rule set every write route applies (create,
 * bulkCreate, update/import, patch, set, unset, overwrite, bulkUpdate), before anything is read or
 * written. Each refusal is a 400 naming the key (and where it is) or the depth; too large is 413.
 *
 * - Property names starting with `$`, at any depth: MongoDB reads them as operators in updates and
 *   queries, so an object holding one could not be changed reliably afterwards.
 * - Property names containing NUL: BSON cannot encode them.
 * - `__proto__`: JavaScript objects cannot hold it as a plain property (it would silently vanish).
 * - Nesting deeper than MAX_CONTENT_DEPTH objects/arrays: MongoDB refuses documents nested more
 *   than 100 levels, and a deleted object is kept two levels down (`__deleted.object`).
 * - Content whose stored (BSON) size leaves too little room under MongoDB's 16 MiB document limit
 *   for RERUM's own properties and later history links: 413.
 *
 * Property names with `.` are stored as given (MongoDB 5+ stores them; they are only awkward to
 * query). The server's own top-level properties (`_id` where not accepted, `@id`, `__rerum`,
 * `__deleted`) are not refused but ignored, as the reference ignores `__rerum` (rerum/document.ts).
 */
import { calculateObjectSize } from 'bson';
import { tooLarge, unstorable } from './errors';

/** Deepest nesting of objects/arrays accepted in client content (the body itself is level 1). */
export const MAX_CONTENT_DEPTH = 98;
/** MongoDB's document size limit. */
export const MAX_BSON_BYTES = 16 * 1024 * 1024;
/** Room kept for `@id`, `__rerum` (history links grow with every new version) and the tombstone. */
export const RESERVED_BSON_BYTES = 512 * 1024;

const describe = (path: string[]): string => (path.length ? `at '${path.join('.')}'` : 'at the top level');

const shown = (key: string): string => JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}…` : key);

/** 400 unless `content` (one JSON object to store) follows the rules above; 413 when too large to store. */
interface Node {
  value: unknown;
  depth: number;
  key: string;
  parent: Node | undefined;
}

/** The property path of a node (built only for an error message). */
function pathOf(node: Node | undefined): string[] {
  const out: string[] = [];
  for (let n = node; n && n.parent; n = n.parent) out.unshift(n.key);
  return out;
}

/** 400 unless `content` (one JSON object to store) follows the rules above; 413 when too large to store. */
export function assertStorable(content: unknown, label = 'The object'): void {
  // Iterative walk: a hostile 10,000-deep body must not overflow the stack before it is refused.
  const stack: Node[] = [{ value: content, depth: 1, key: '', parent: undefined }];
  while (stack.length) {
    const node = stack.pop()!;
    const { value, depth } = node;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_CONTENT_DEPTH) {
      const path = pathOf(node);
      throw unstorable(
        `${label} is nested too deeply ${describe(path.slice(0, 5))}${path.length > 5 ? '…' : ''}: at most ${MAX_CONTENT_DEPTH} levels of objects and arrays can be stored.`,
      );
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth: depth + 1, key: String(i), parent: node });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key.startsWith('$')) {
        throw unstorable(
          `${label} has the property name ${shown(key)} ${describe(pathOf(node))}: property names starting with '$' cannot be stored.`,
        );
      }
      if (key.includes('\0')) {
        throw unstorable(`${label} has a property name with a NUL character ${describe(pathOf(node))}: it cannot be stored.`);
      }
      if (key === '__proto__') {
        throw unstorable(`${label} has the property name "__proto__" ${describe(pathOf(node))}: it cannot be stored.`);
      }
      stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, key, parent: node });
    }
  }
  if (content === null || typeof content !== 'object') return; // not an object: the route's own checks answer
  const size = calculateObjectSize(content as Record<string, unknown>);
  if (size > MAX_BSON_BYTES - RESERVED_BSON_BYTES) {
    throw tooLarge(`${label} is too large to store: ${size} bytes as BSON, the limit is ${MAX_BSON_BYTES - RESERVED_BSON_BYTES}.`);
  }
}

/** Every item of a bulk body, each named by its position. */
export function assertStorableItems(items: unknown[]): void {
  items.forEach((item, i) => assertStorable(item, `Item ${i} of the array`));
}
