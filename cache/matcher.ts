/**
 * Could this query filter select this document? Decided by mql's compileFilter, the same code the
 * embedded database matches with (mingo for the logical operators, mql/query.ts for field
 * conditions with mongod's semantics), never by a matcher of the cache's own. Answers true whenever the answer is not certain: operators that
 * run code or need an index ($where, $expr, $function, $text, geo, …), filters mingo rejects, or any
 * error — a wrong "true" only costs a cache entry, a wrong "false" would serve stale data.
 */
import { compileFilter as compileMongoFilter, type Doc } from '../mql';

const UNSURE_OPERATORS = new Set([
  '$where',
  '$expr',
  '$function',
  '$accumulator',
  '$text',
  '$jsonSchema',
  '$near',
  '$nearSphere',
  '$geoWithin',
  '$geoIntersects',
  '$sampleRate',
]);

/**
 * Filters with more clauses than this are not tested at all (treated as "could match"): a write
 * then drops them without spending time on them, whatever a client cached. Regular expressions in
 * the filters that are tested run on RE2 (linear time; mql/regex.ts).
 */
export const MAX_TESTED_CLAUSES = 64;

function clauseCount(value: unknown, limit: number): number {
  let n = 0;
  const stack = [value];
  while (stack.length && n <= limit) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      n += v.length;
      stack.push(...v);
    } else {
      for (const inner of Object.values(v as Record<string, unknown>)) {
        n++;
        stack.push(inner);
      }
    }
  }
  return n;
}

/** True for a filter compileFilter does not test (too many clauses): every write reaching it drops it. */
export const tooCostlyToTest = (filter: unknown): boolean => clauseCount(filter, MAX_TESTED_CLAUSES) > MAX_TESTED_CLAUSES;

function usesUnsureOperator(value: unknown, depth = 0): boolean {
  if (depth > 64) return true;
  if (Array.isArray(value)) return value.some((v) => usesUnsureOperator(v, depth + 1));
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (UNSURE_OPERATORS.has(k)) return true;
      if (usesUnsureOperator(v, depth + 1)) return true;
    }
  }
  return false;
}

/** A compiled filter, reusable across documents. */
export interface CompiledFilter {
  test(doc: unknown): boolean;
}

const ALWAYS: CompiledFilter = { test: () => true };

export function compileFilter(filter: unknown): CompiledFilter {
  if (!filter || typeof filter !== 'object' || Array.isArray(filter)) return ALWAYS;
  if (tooCostlyToTest(filter)) return ALWAYS;
  if (usesUnsureOperator(filter)) return ALWAYS;
  let matches: (doc: Doc) => boolean;
  try {
    matches = compileMongoFilter(filter as Doc);
  } catch {
    return ALWAYS;
  }
  return {
    test(doc: unknown): boolean {
      try {
        return matches(doc as Doc);
      } catch {
        return true;
      }
    },
  };
}

export function filterCouldMatch(filter: unknown, doc: unknown): boolean {
  return compileFilter(filter).test(doc);
}
