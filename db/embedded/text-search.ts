/**
 * `$text` support. mingo has no text operator, so `$text` is removed from the filter and
 * evaluated here against the collection's text index (mongod requires one, error 27 otherwise).
 *
 * Tokens: Unicode letters/digits, lower-cased unless $caseSensitive; for English (the default)
 * a small stop-word list is dropped and a light suffix stemmer is applied to both the query terms
 * and the document text (mongod uses Snowball; this is an approximation).
 * Semantics like mongod: terms are OR'ed; every "quoted phrase" must appear (substring);
 * "-term" excludes documents containing it.
 * Score: Σ over indexed fields of weight × Σ over matched terms of (0.5 + 0.5·count/tokens)·count
 * — monotone in occurrences and weights, not numerically identical to mongod.
 */
import type { Doc } from '../../mql';
import { fail as failWith } from './errors';

export interface TextIndexInfo {
  name: string;
  /** field paths; '$**' means every string field, recursively */
  fields: string[];
  weights: Record<string, number>;
  defaultLanguage: string;
}

export interface TextQuery {
  $search: string;
  $language?: string;
  $caseSensitive?: boolean;
  $diacriticSensitive?: boolean;
}

const STOP_WORDS = new Set(
  (
    'a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our ' +
    'she so that the their them then there these they this to was we were what when where which who will with you your'
  ).split(' '),
);

function stem(w: string): string {
  if (w.length <= 3) return w;
  if (w.endsWith('ies') && w.length > 4) return w.slice(0, -3) + 'y';
  if (w.endsWith('ing') && w.length > 5) return w.slice(0, -3);
  if (w.endsWith('ed') && w.length > 4) return w.slice(0, -2);
  if (w.endsWith('es') && /(ss|x|ch|sh)es$/.test(w)) return w.slice(0, -2);
  if (w.endsWith('s') && !w.endsWith('ss')) return w.slice(0, -1);
  return w;
}

function stripDiacritics(s: string): string {
  return s.normalize('NFD').replace(/\p{M}+/gu, '');
}

interface Norm {
  caseSensitive: boolean;
  diacriticSensitive: boolean;
  english: boolean;
}

function tokens(text: string, n: Norm): string[] {
  let t = n.caseSensitive ? text : text.toLowerCase();
  if (!n.diacriticSensitive) t = stripDiacritics(t);
  const raw = t.match(/[\p{L}\p{N}_']+/gu) ?? [];
  const out: string[] = [];
  for (let w of raw) {
    w = w.replace(/'s$/, '').replace(/'/g, '');
    if (!w) continue;
    if (n.english) {
      const lw = w.toLowerCase();
      if (STOP_WORDS.has(lw)) continue;
      out.push(stem(w));
    } else out.push(w);
  }
  return out;
}

function collectStrings(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const e of v) collectStrings(e, out);
  else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    for (const e of Object.values(v as Doc)) collectStrings(e, out);
  }
}

function stringsAt(doc: Doc, path: string): string[] {
  const out: string[] = [];
  if (path === '$**') {
    collectStrings(doc, out);
    return out;
  }
  const walk = (v: unknown, parts: string[], i: number): void => {
    if (i === parts.length) return collectStrings(v, out);
    if (Array.isArray(v)) return v.forEach((e) => walk(e, parts, i));
    if (v !== null && typeof v === 'object') walk((v as Doc)[parts[i]], parts, i + 1);
  };
  walk(doc, path.split('.'), 0);
  return out;
}

export interface CompiledText {
  /** score > 0 when the document matches, undefined otherwise */
  score(doc: Doc): number | undefined;
}

export function compileText(q: TextQuery, index: TextIndexInfo): CompiledText {
  if (typeof q?.$search !== 'string') throw failWith('BadValue', '$search needs a String');
  const lang = (q.$language ?? index.defaultLanguage ?? 'english').toLowerCase();
  const n: Norm = {
    caseSensitive: !!q.$caseSensitive,
    diacriticSensitive: !!q.$diacriticSensitive,
    english: lang === 'english' || lang === 'en',
  };
  const phrases: string[] = [];
  const rest = q.$search.replace(/"([^"]*)"/g, (_m, p: string) => {
    if (p.trim()) phrases.push(p);
    return ' ';
  });
  const positive = new Set<string>();
  const negative = new Set<string>();
  for (const word of rest.split(/\s+/)) {
    if (!word) continue;
    const neg = word.startsWith('-');
    for (const t of tokens(neg ? word.slice(1) : word, n)) (neg ? negative : positive).add(t);
  }
  for (const p of phrases) for (const t of tokens(p, n)) positive.add(t);
  const normPhrase = (s: string): string => {
    let t = n.caseSensitive ? s : s.toLowerCase();
    if (!n.diacriticSensitive) t = stripDiacritics(t);
    return t;
  };
  const phraseNorm = phrases.map(normPhrase);

  return {
    score(doc) {
      let score = 0;
      let hit = false;
      const fieldTexts: string[] = [];
      for (const field of index.fields) {
        const weight = index.weights[field] ?? 1;
        for (const s of stringsAt(doc, field)) {
          fieldTexts.push(s);
          const toks = tokens(s, n);
          if (toks.length === 0) continue;
          const counts = new Map<string, number>();
          for (const t of toks) counts.set(t, (counts.get(t) ?? 0) + 1);
          for (const t of negative) if (counts.has(t)) return undefined;
          for (const t of positive) {
            const c = counts.get(t);
            if (c) {
              hit = true;
              score += weight * (0.5 + (0.5 * c) / toks.length) * c;
            }
          }
        }
      }
      if (phraseNorm.length) {
        const all = fieldTexts.map(normPhrase);
        for (const p of phraseNorm) if (!all.some((s) => s.includes(p))) return undefined;
        hit = true;
        if (score === 0) score = 1;
      }
      return hit ? score : undefined;
    },
  };
}
