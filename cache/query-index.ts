/**
 * Index of cached query filters by the equality constraints they carry, so that a write only tests
 * the filters that could plausibly select one of the documents it changed.
 *
 * For each filter we derive a list of terms (path, value) with this guarantee:
 *
 *   if the filter matches document D, then for at least one term, D holds `value` at `path`
 *   (the value itself, or an element of an array there; arrays of sub-documents are walked).
 *
 * - `{a: v}` / `{a: {$eq: v}}` → (a, v)   (v not null: `{a: null}` also matches a missing field)
 * - `{a: {$in: [v1, v2]}}`     → (a, v1), (a, v2)   (no null among them)
 * - `{a: {$all: [v1, …]}}`     → (a, v1)
 * - a condition that can only hold when `a` is present — `$exists: true`, `$gt/$gte/$lt/$lte` with a
 *   non-null operand, `$regex`, `$size`, `$mod`, `$elemMatch`, `$type` (not null/undefined/missing)
 *   — → (a, PRESENT): D holds some value (null and [] included) at `a`
 * - implicit/explicit AND      → the terms of ONE indexable conjunct (value terms before presence
 *   terms, then the one with fewest terms)
 * - `$or: [...]`               → the union of its branches' terms, only if every branch is indexable
 * - anything else ($ne, $nin, $not, $exists: false, `{a: null}`, $nor, $where, …) is not indexable.
 * A filter without any indexable conjunct goes to the always-test bucket.
 *
 * On a write, for each changed document we read its values at every indexed path (the values the
 * matcher tests: mql's matchValues, arrays walked as mongod walks them) and look
 * up those (path, value) buckets, plus the path's PRESENT bucket when it holds any value.
 * Candidates = those buckets + the always-test bucket; each candidate is then tested by the matcher
 * (matcher.ts, mql/). The cost of a write is therefore (indexed paths) lookups + the candidates'
 * tests: it does not grow with the number of cached filters that merely share an indexed path.
 * Values are compared by a canonical encoding (type tag + JSON with sorted keys, numbers by numeric
 * value across int/Long/double/Decimal128), which is at least as permissive as MongoDB's equality;
 * a superset of candidates is always safe.
 */
import { isNumeric, isPlainObject, matchValues, MISSING, numericKey, setField } from '../mql';
import { stableStringify } from './keys';

export interface Term {
  path: string;
  /** A canonical value, or PRESENT (the path holds any value). */
  value: string;
}

/** The term value meaning "the document holds some value at this path". */
export const PRESENT = '\u0000present';

/** Operators that can only be satisfied by a value present at the path (given their operand). */
function impliesPresence(op: string, operand: unknown): boolean {
  switch (op) {
    case '$exists':
      return operand === true;
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return operand !== null && operand !== undefined; // {$gte: null} / {$lte: null} match a missing field
    case '$regex':
    case '$mod':
    case '$elemMatch':
      return true;
    case '$size':
      return typeof operand === 'number';
    case '$type': {
      const types = Array.isArray(operand) ? operand : [operand];
      return (
        types.length > 0 &&
        types.every(
          (t) => (typeof t === 'string' && !['null', 'undefined', 'missing'].includes(t)) || (typeof t === 'number' && t !== 6 && t !== 10),
        )
      );
    }
    default:
      return false;
  }
}

/** Estimated number of filters a write would test through these terms (lower is better). */
export type TermCost = (terms: Term[]) => number;
const termCount: TermCost = (terms) => terms.length;

/** Value terms are more selective than presence terms; among equals, the lower cost wins. */
function better(a: Term[], b: Term[] | undefined, cost: TermCost): boolean {
  if (!b) return true;
  const pa = a.some((t) => t.value === PRESENT);
  const pb = b.some((t) => t.value === PRESENT);
  if (pa !== pb) return pb;
  return cost(a) < cost(b);
}

/**
 * Canonical encoding of a value for equality lookups: numerically equal values of any numeric kind
 * (int, Long, double, Decimal128; mql's numericKey) share one encoding, also inside documents and arrays.
 */
export function canonicalValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return `s:${v}`;
    case 'boolean':
      return `b:${v}`;
    default:
      if (v === null) return 'null';
      if (v === undefined) return 'undefined';
      if (isNumeric(v)) return `n:${numericKey(v)}`;
      return `j:${stableStringify(numbersCanonical(v))}`;
  }
}

/** Nested numbers as their numeric key, so `{b: Long(1)}` and `{b: 1}` encode alike. */
function numbersCanonical(v: unknown): unknown {
  if (isNumeric(v)) return { $n: numericKey(v) };
  if (Array.isArray(v)) return v.map(numbersCanonical);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) setField(out, k, numbersCanonical(v[k]));
    return out;
  }
  return v;
}

/** A literal usable as an equality key: not null/undefined, no operator keys anywhere inside objects. */
function indexableLiteral(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'object') {
    if (v instanceof RegExp) return false;
    if (isPlainObject(v) && Object.keys(v).some((k) => k.startsWith('$'))) return false;
  }
  return true;
}

/** Terms for a field condition, or undefined when not indexable. */
function fieldTerms(path: string, cond: unknown, cost: TermCost): Term[] | undefined {
  if (path.startsWith('$') || path.split('.').some((p) => p === '' || p.startsWith('$'))) return undefined;
  if (isPlainObject(cond)) {
    const keys = Object.keys(cond);
    const ops = keys.filter((k) => k.startsWith('$'));
    if (ops.length === 0) return [{ path, value: canonicalValue(cond) }]; // literal sub-document
    if (ops.length !== keys.length) return undefined; // mixed: invalid in MongoDB, do not guess
    let best: Term[] | undefined;
    for (const op of ops) {
      let terms: Term[] | undefined;
      const operand = cond[op];
      if (impliesPresence(op, operand)) {
        terms = [{ path, value: PRESENT }];
      } else if (op === '$eq') {
        terms = indexableLiteral(operand) ? [{ path, value: canonicalValue(operand) }] : undefined;
      } else if (op === '$in') {
        if (Array.isArray(operand) && operand.length > 0 && operand.every(indexableLiteral)) {
          terms = operand.map((v) => ({ path, value: canonicalValue(v) }));
        }
      } else if (op === '$all') {
        if (Array.isArray(operand) && operand.length > 0 && indexableLiteral(operand[0]) && !isPlainObject(operand[0])) {
          terms = [{ path, value: canonicalValue(operand[0]) }];
        }
      }
      if (terms && better(terms, best, cost)) best = terms;
    }
    return best;
  }
  if (!indexableLiteral(cond)) return undefined;
  return [{ path, value: canonicalValue(cond) }];
}

/**
 * Terms for a query document (implicit AND), or undefined when not indexable. Among the conjuncts,
 * `cost` picks the one through which the fewest filters would be tested (QueryIndex passes the
 * current bucket sizes, so `{type: 'Annotation', target: X}` is filed under its target, not under
 * the type every other annotation query shares).
 */
export function indexTerms(filter: unknown, cost: TermCost = termCount): Term[] | undefined {
  if (!isPlainObject(filter)) return undefined;
  let best: Term[] | undefined;
  const consider = (terms: Term[] | undefined) => {
    if (terms && terms.length > 0 && better(terms, best, cost)) best = terms;
  };
  for (const [k, v] of Object.entries(filter)) {
    if (k === '$and') {
      if (Array.isArray(v)) for (const sub of v) consider(indexTerms(sub, cost));
    } else if (k === '$or') {
      if (Array.isArray(v) && v.length > 0) {
        const all: Term[] = [];
        let ok = true;
        for (const sub of v) {
          const t = indexTerms(sub, cost);
          if (!t) {
            ok = false;
            break;
          }
          all.push(...t);
        }
        if (ok) consider(all);
      }
    } else if (k.startsWith('$')) {
      continue; // $nor, $where, $expr, $text, $comment…: not a usable conjunct
    } else {
      consider(fieldTerms(k, v, cost));
    }
  }
  return best;
}

/**
 * Canonical values a document holds at a dotted path: exactly the values a filter condition on the
 * path is tested against (mql's matchValues: arrays walked as mongod walks them, a terminal array
 * and its elements).
 */
export function valuesAtPath(doc: unknown, path: string): Set<string> {
  const out = new Set<string>();
  for (const v of matchValues(doc, path)) if (v !== MISSING && v !== undefined) out.add(canonicalValue(v));
  return out;
}

/** Filters indexed by terms; keys are opaque strings (cache keys). */
export class QueryIndex {
  /** path → value → keys */
  private readonly buckets = new Map<string, Map<string, Set<string>>>();
  private readonly alwaysTest = new Set<string>();
  private readonly termsOf = new Map<string, Term[] | undefined>();

  /** Filters a write holding these terms' values would reach (plus one per term, so ties favour fewer terms). */
  private readonly cost: TermCost = (terms) => {
    let n = terms.length;
    for (const t of terms) n += this.buckets.get(t.path)?.get(t.value)?.size ?? 0;
    return n;
  };

  get size(): number {
    return this.termsOf.size;
  }

  get alwaysTestSize(): number {
    return this.alwaysTest.size;
  }

  get indexedPathCount(): number {
    return this.buckets.size;
  }

  add(key: string, filter: unknown): void {
    if (this.termsOf.has(key)) this.remove(key);
    const terms = indexTerms(filter, this.cost);
    this.termsOf.set(key, terms);
    if (!terms) {
      this.alwaysTest.add(key);
      return;
    }
    for (const t of terms) {
      let byValue = this.buckets.get(t.path);
      if (!byValue) this.buckets.set(t.path, (byValue = new Map()));
      let keys = byValue.get(t.value);
      if (!keys) byValue.set(t.value, (keys = new Set()));
      keys.add(key);
    }
  }

  remove(key: string): void {
    if (!this.termsOf.has(key)) return;
    const terms = this.termsOf.get(key);
    this.termsOf.delete(key);
    if (!terms) {
      this.alwaysTest.delete(key);
      return;
    }
    for (const t of terms) {
      const byValue = this.buckets.get(t.path);
      const keys = byValue?.get(t.value);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) byValue!.delete(t.value);
      if (byValue!.size === 0) this.buckets.delete(t.path);
    }
  }

  clear(): void {
    this.buckets.clear();
    this.alwaysTest.clear();
    this.termsOf.clear();
  }

  /** Keys of every filter that could match this document (a superset; test each with the matcher). */
  candidates(doc: unknown, into: Set<string> = new Set()): Set<string> {
    for (const k of this.alwaysTest) into.add(k);
    for (const [path, byValue] of this.buckets) {
      const values = valuesAtPath(doc, path);
      if (values.size === 0) continue;
      const present = byValue.get(PRESENT);
      if (present) for (const k of present) into.add(k);
      for (const v of values) {
        const keys = byValue.get(v);
        if (keys) for (const k of keys) into.add(k);
      }
    }
    return into;
  }
}
