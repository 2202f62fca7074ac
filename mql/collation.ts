/**
 * Collations (MongoDB's `collation` document) on Node's ICU (Intl.Collator): string comparison by
 * locale with strength 1 (base letters: case and diacritics ignored), 2 (diacritics count, case
 * not) or 3 (the default: both count), caseLevel, caseFirst, numericOrdering and alternate
 * 'shifted' (punctuation and spaces ignored). `{locale: 'simple'}` (or no collation) is binary
 * comparison. What ICU options Intl.Collator cannot express (strength 4/5, backwards,
 * maxVariable 'space') is refused, never approximated.
 */
import { ServerCodes } from './codes';
import { isPlainObject } from './values';

export type StringCompare = (a: string, b: string) => number;

const error = (name: 'BadValue' | 'CommandNotSupported' | 'IDLUnknownField', message: string): Error =>
  Object.assign(new Error(message), { code: ServerCodes[name], codeName: name });

const FIELDS = new Set([
  'locale',
  'strength',
  'caseLevel',
  'caseFirst',
  'numericOrdering',
  'alternate',
  'maxVariable',
  'backwards',
  'normalization',
  'version',
]);
const cache = new Map<string, StringCompare | undefined>();

/**
 * The string comparison a collation document asks for; undefined for none or `{locale: 'simple'}`
 * (binary order). Throws BadValue for an invalid document, CommandNotSupported for what ICU through
 * Intl cannot do.
 */
export function stringCompare(spec: unknown): StringCompare | undefined {
  if (spec === undefined || spec === null) return undefined;
  if (!isPlainObject(spec)) throw error('BadValue', 'collation must be an object');
  const key = JSON.stringify(spec);
  if (cache.has(key)) return cache.get(key);
  const cmp = build(spec);
  if (cache.size > 100) cache.clear();
  cache.set(key, cmp);
  return cmp;
}

function build(spec: Record<string, unknown>): StringCompare | undefined {
  for (const k of Object.keys(spec)) if (!FIELDS.has(k)) throw error('IDLUnknownField', `BSON field 'collation.${k}' is an unknown field.`);
  const { locale, strength = 3, caseLevel = false, caseFirst = 'off', numericOrdering = false, alternate = 'non-ignorable' } = spec;
  if (typeof locale !== 'string') throw error('BadValue', 'Missing expected field "locale" (a string) in the collation');
  if (locale === 'simple') return undefined;
  const tag = locale.replace(/_/g, '-');
  let supported: string[];
  try {
    supported = Intl.Collator.supportedLocalesOf([tag]);
  } catch {
    supported = []; // not a well-formed language tag
  }
  if (supported.length === 0) throw error('BadValue', `Field 'locale' is invalid in: ${JSON.stringify(spec)}`);
  if (typeof strength !== 'number' || !Number.isInteger(strength) || strength < 1 || strength > 5)
    throw error('BadValue', `Field 'strength' must be an integer 1 through 5. Got: ${String(strength)}`);
  if (strength > 3)
    throw error('CommandNotSupported', `collation strength ${strength} is not supported by the embedded server (1 to 3 are)`);
  if (typeof caseLevel !== 'boolean' || typeof numericOrdering !== 'boolean')
    throw error('BadValue', "collation 'caseLevel' and 'numericOrdering' must be booleans");
  if (caseFirst !== 'off' && caseFirst !== 'upper' && caseFirst !== 'lower')
    throw error('BadValue', `Field 'caseFirst' must be 'upper', 'lower' or 'off'. Got: ${String(caseFirst)}`);
  if (alternate !== 'non-ignorable' && alternate !== 'shifted')
    throw error('BadValue', `Field 'alternate' must be 'non-ignorable' or 'shifted'. Got: ${String(alternate)}`);
  if (spec.backwards === true) throw error('CommandNotSupported', 'collation backwards is not supported by the embedded server');
  if (spec.maxVariable !== undefined && spec.maxVariable !== 'punct')
    throw error('CommandNotSupported', "collation maxVariable other than 'punct' is not supported by the embedded server");
  const sensitivity = strength === 1 ? (caseLevel ? 'case' : 'base') : strength === 2 ? (caseLevel ? 'variant' : 'accent') : 'variant';
  const collator = new Intl.Collator(supported[0], {
    usage: 'sort',
    sensitivity,
    caseFirst: caseFirst === 'off' ? 'false' : caseFirst,
    numeric: numericOrdering,
    ignorePunctuation: alternate === 'shifted',
  });
  return (a, b) => collator.compare(a, b);
}
