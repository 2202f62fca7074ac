/**
 * Client regular expressions run on RE2 (the `re2js` port: linear time in the input, no
 * backtracking), never on JavaScript's backtracking RegExp. `^(a+)+$` against 28 `a`s and a `!`
 * takes microseconds here, seconds in RegExp.
 *
 * Used for the `$regex` query operator (query.ts) and the `$regexMatch`, `$regexFind`,
 * `$regexFindAll` expression operators (engine.ts), so the embedded database and the cache matcher
 * (cache/matcher.ts) both match with it. A pattern RE2 cannot run (backreferences, lookaround) is
 * refused with MongoDB's "invalid regular expression" code 51091, which the API answers with 400.
 *
 * Options as MongoDB's: `i` (case), `m` (multi-line anchors), `s` (dot matches newline); `u` is
 * accepted (RE2 is Unicode-aware); `x` (extended) is refused, as JavaScript's parser refuses it.
 */
import { RE2JS } from 're2js';
import { ServerCodes } from './codes';

const INVALID_REGEX = ServerCodes.Location51091;

const invalid = (message: string) => Object.assign(new Error(`Regular expression is invalid: ${message}`), { code: INVALID_REGEX });

/** Compiled patterns: per RegExp object (mingo compiles each filter's `$regex` once), and by text. */
const byRegExp = new WeakMap<RegExp, RE2JS>();
const byText = new Map<string, RE2JS>();
const BY_TEXT_MAX = 1000;

function flagsOf(options: string): number {
  let flags = 0;
  for (const o of options) {
    switch (o) {
      case 'i':
        flags |= RE2JS.CASE_INSENSITIVE;
        break;
      case 'm':
        flags |= RE2JS.MULTILINE;
        break;
      case 's':
        flags |= RE2JS.DOTALL;
        break;
      case 'u':
      case 'g':
      case 'd':
      case 'y':
      case 'v':
        break; // JavaScript-only flags that do not change a test
      default:
        throw invalid(`unsupported option '${o}'`);
    }
  }
  return flags;
}

function compileText(pattern: string, options: string): RE2JS {
  const key = `${options}/${pattern}`;
  let re = byText.get(key);
  if (re) return re;
  try {
    re = RE2JS.compile(pattern, flagsOf(options));
  } catch (err) {
    if ((err as { code?: number }).code === INVALID_REGEX) throw err;
    throw invalid(`${(err as Error).message} (patterns run on RE2: no backreferences or lookaround)`);
  }
  if (byText.size >= BY_TEXT_MAX) byText.delete(byText.keys().next().value as string);
  byText.set(key, re);
  return re;
}

/** The RE2 form of a pattern given as a RegExp (mingo's normalised `$regex`) or as text with options. */
export function linearRegex(pattern: unknown, options = ''): RE2JS {
  if (pattern instanceof RegExp) {
    let re = byRegExp.get(pattern);
    if (!re) {
      re = compileText(pattern.source, pattern.flags);
      byRegExp.set(pattern, re);
    }
    return re;
  }
  const bson = pattern as { _bsontype?: string; pattern?: string; options?: string } | null;
  if (bson && typeof bson === 'object' && bson._bsontype === 'BSONRegExp')
    return compileText(String(bson.pattern), String(bson.options ?? ''));
  if (typeof pattern !== 'string') throw Object.assign(new Error('$regex has to be a string'), { code: ServerCodes.BadValue });
  return compileText(pattern, options);
}

/** True when `re` matches somewhere in `s` (RegExp.prototype.test semantics). */
export const linearTest = (re: RE2JS, s: string): boolean => re.test(s);

/** The first match at or after `from`: its text, index and captures (null for groups that did not take part). */
export function linearExec(re: RE2JS, s: string, from = 0): { match: string; index: number; captures: (string | null)[] } | null {
  const m = re.matcher(s);
  if (!m.find(from)) return null;
  const captures: (string | null)[] = [];
  for (let g = 1; g <= m.groupCount(); g++) captures.push(m.group(g));
  return { match: m.group(0) ?? '', index: m.start(0), captures };
}

// ---------- mingo operators ----------

/* Loaded at run time: tsconfig's moduleResolution "node" ignores package "exports" subpaths. */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a mingo subpath export: tsconfig's moduleResolution "node" cannot import it (see above)
const { evalExpr } = require('mingo/core') as { evalExpr(obj: unknown, expr: unknown, options: unknown): unknown };

interface RegexArgs {
  input?: unknown;
  regex?: unknown;
  options?: unknown;
}

/** The matches of `$regexMatch`/`$regexFind`/`$regexFindAll`'s arguments, in MongoDB's result shape. */
function regexSearch(
  obj: unknown,
  expr: unknown,
  options: unknown,
  global: boolean,
): Array<{ match: string; idx: number; captures: (string | null)[] }> {
  const args = evalExpr(obj, expr, options) as RegexArgs;
  if (typeof args?.input !== 'string') return [];
  const re = linearRegex(args.regex, typeof args.options === 'string' ? args.options : '');
  const input = args.input;
  const out: Array<{ match: string; idx: number; captures: (string | null)[] }> = [];
  let from = 0;
  while (from <= input.length) {
    const m = linearExec(re, input, from);
    if (!m) break;
    // MongoDB counts code points in `idx`.
    out.push({ match: m.match, idx: [...input.slice(0, m.index)].length, captures: m.captures });
    if (!global) break;
    from = m.index + Math.max(m.match.length, 1);
  }
  return out;
}

export const $regexMatch = (obj: unknown, expr: unknown, options: unknown): boolean => regexSearch(obj, expr, options, false).length > 0;
export const $regexFind = (obj: unknown, expr: unknown, options: unknown) => regexSearch(obj, expr, options, false)[0] ?? null;
export const $regexFindAll = (obj: unknown, expr: unknown, options: unknown) => regexSearch(obj, expr, options, true);
