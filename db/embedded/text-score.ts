/**
 * {$meta: 'textScore'} outside the scan that computes the scores: in find projections, and in
 * aggregation stages, where the score rides along in a hidden field (TEXT_SCORE_FIELD).
 */
import { compileProjection, isPlainObject, type Doc } from '../../mql';

export const TEXT_SCORE_FIELD = '__embeddedTextScore';

export function isMetaTextScore(v: unknown): boolean {
  return isPlainObject(v) && v.$meta === 'textScore';
}

/** A find projection that may ask for {$meta: 'textScore'} (scores from the scan). */
export function buildProjector(projection: Doc | undefined, scores?: Map<Doc, number>): ((d: Doc) => Doc) | undefined {
  if (!projection) return undefined;
  const meta: string[] = [];
  const rest: Doc = {};
  for (const [k, v] of Object.entries(projection)) {
    if (isMetaTextScore(v)) meta.push(k);
    else rest[k] = v;
  }
  const base = compileProjection(rest);
  if (meta.length === 0) return base;
  return (d) => {
    const out = base ? base(d) : { ...d };
    for (const k of meta) out[k] = scores?.get(d) ?? 0;
    return out;
  };
}

export function replaceMetaTextScore(v: unknown): unknown {
  if (isMetaTextScore(v)) return `$${TEXT_SCORE_FIELD}`;
  if (Array.isArray(v)) return v.map(replaceMetaTextScore);
  if (isPlainObject(v)) {
    const o: Doc = {};
    for (const [k, x] of Object.entries(v)) o[k] = replaceMetaTextScore(x);
    return o;
  }
  return v;
}
