/**
 * The field-level query operators, with mongod's semantics where mingo's differ: values compare in
 * the BSON order within one type bracket (all four numeric kinds are one bracket, so `{v: 10}`
 * finds a Long 10 and a Decimal128 "10.0"), paths are walked as paths.ts describes (no descent into
 * nested arrays), `$elemMatch` with a document condition only considers elements that are
 * documents, `$size`/`$elemMatch` look at arrays as a whole. Each operator has mingo's shape:
 * (field path, operand, options) → predicate on the document; mingo keeps `$and`/`$or`/`$nor`/
 * `$not`/`$expr` and composes these.
 */
import { stringCompare, type StringCompare } from './collation';
import { compareBson, typeRank } from './compare';
import { isNumeric, toDouble } from './numbers';
import { matchValues, MISSING, type PathValue } from './paths';
import { linearRegex } from './regex';
import { bsonType, bsonTypeName, isPlainObject, TYPE_ALIASES, type Doc } from './values';

type Predicate = (obj: Doc) => boolean;

/** The string comparison of the collation in mingo's options (compileFilter's `collation`), if any. */
const stringsOf = (options: unknown): StringCompare | undefined =>
  stringCompare((options as { collation?: unknown } | undefined)?.collation);
/** mingo's query-operator shape. `compile` builds a sub-query with the same operator set (for $elemMatch). */
export type QueryOperator = (selector: string, operand: unknown, options: unknown) => Predicate;

const isNullish = (v: PathValue): boolean => v === MISSING || v === null || v === undefined;

/** Equality of one value with the operand, as mongod's `$eq` (null also matches a missing field). */
function equals(v: PathValue, operand: unknown, strings?: StringCompare): boolean {
  if (operand === null || operand === undefined) return isNullish(v);
  if (v === MISSING) return false;
  if (typeRank(v) !== typeRank(operand)) return false;
  return compareBson(v, operand, strings) === 0;
}

const isRegexOperand = (v: unknown): boolean => v instanceof RegExp || bsonType(v) === 'BSONRegExp';

function regexMatches(v: PathValue, re: ReturnType<typeof linearRegex>): boolean {
  if (typeof v === 'string') return re.test(v);
  if (bsonType(v) === 'BSONSymbol') return re.test(String((v as { value: string }).value));
  return false;
}

/** `$gt`/`$gte`/`$lt`/`$lte`: same type bracket only (MinKey/MaxKey operands compare with everything). */
function ordered(test: (c: number) => boolean, nullMatches: boolean): QueryOperator {
  return (selector, operand, options) => {
    if (operand === null || operand === undefined) return (obj) => nullMatches && matchValues(obj, selector).some(isNullish);
    const anyType = typeRank(operand) === 1 || typeRank(operand) === 13;
    const strings = stringsOf(options);
    return (obj) =>
      matchValues(obj, selector).some(
        (v) => v !== MISSING && (anyType || typeRank(v) === typeRank(operand)) && test(compareBson(v, operand, strings)),
      );
  };
}

export const $eq: QueryOperator = (selector, operand, options) => {
  const strings = stringsOf(options);
  return (obj) => matchValues(obj, selector).some((v) => equals(v, operand, strings));
};
export const $ne: QueryOperator = (selector, operand, options) => {
  const eq = $eq(selector, operand, options);
  return (obj) => !eq(obj);
};
export const $gt = ordered((c) => c > 0, false);
export const $gte = ordered((c) => c >= 0, true);
export const $lt = ordered((c) => c < 0, false);
export const $lte = ordered((c) => c <= 0, true);

function inTest(operand: unknown, strings: StringCompare | undefined): (v: PathValue) => boolean {
  if (!Array.isArray(operand)) throw Object.assign(new Error('$in needs an array'), { code: 2 });
  const regexes = operand.filter(isRegexOperand).map((r) => linearRegex(r));
  const values = operand.filter((o) => !isRegexOperand(o));
  return (v) => values.some((o) => equals(v, o, strings)) || regexes.some((re) => regexMatches(v, re));
}

export const $in: QueryOperator = (selector, operand, options) => {
  const test = inTest(operand, stringsOf(options));
  return (obj) => matchValues(obj, selector).some(test);
};
export const $nin: QueryOperator = (selector, operand, options) => {
  const test = inTest(operand, stringsOf(options));
  return (obj) => !matchValues(obj, selector).some(test);
};

export const $exists: QueryOperator = (selector, operand) => {
  const want = !(operand === false || operand === 0 || operand === null || operand === undefined);
  return (obj) => matchValues(obj, selector, false).some((v) => v !== MISSING) === want;
};

export const $regex: QueryOperator = (selector, operand) => {
  const re = linearRegex(operand);
  return (obj) => matchValues(obj, selector).some((v) => regexMatches(v, re));
};

export const $size: QueryOperator = (selector, operand) => {
  if (typeof operand !== 'number' && !isNumeric(operand)) throw Object.assign(new Error('$size needs a number'), { code: 2 });
  const n = toDouble(operand);
  return (obj) => matchValues(obj, selector, false).some((v) => Array.isArray(v) && v.length === n);
};

export const $mod: QueryOperator = (selector, operand) => {
  if (!Array.isArray(operand) || operand.length !== 2 || !operand.every(isNumeric)) {
    throw Object.assign(new Error('malformed mod, needs to be an array of two numbers'), { code: 2 });
  }
  const d = Math.trunc(toDouble(operand[0]));
  const r = Math.trunc(toDouble(operand[1]));
  if (d === 0) throw Object.assign(new Error('divisor cannot be 0'), { code: 2 });
  return (obj) => matchValues(obj, selector).some((v) => isNumeric(v) && Math.trunc(toDouble(v)) % d === r);
};

function typeMatches(v: unknown, t: unknown): boolean {
  const name = typeof t === 'number' ? TYPE_ALIASES[String(t)] : String(t);
  if (name === 'number') return isNumeric(v);
  return bsonTypeName(v) === name;
}

export const $type: QueryOperator = (selector, operand) => {
  const wanted = Array.isArray(operand) ? operand : [operand];
  return (obj) => matchValues(obj, selector).some((v) => v !== MISSING && wanted.some((t) => typeMatches(v, t)));
};

/**
 * `$elemMatch` and `$all`: they need a sub-query compiled with the same operator set, which the
 * engine (engine.ts) provides once its context exists.
 */
export function arrayOperators(compile: (filter: Doc, options: unknown) => Predicate): Record<'$elemMatch' | '$all', QueryOperator> {
  const elemMatch = (criteria: unknown, options: unknown): ((v: unknown) => boolean) => {
    if (!isPlainObject(criteria)) throw Object.assign(new Error('$elemMatch needs an Object'), { code: 2 });
    const keys = Object.keys(criteria);
    const onValues = keys.length > 0 && keys.every((k) => k.startsWith('$') && k !== '$and' && k !== '$or' && k !== '$nor');
    if (onValues) {
      // {$elemMatch: {$gt: 1}}: conditions on each element itself
      const test = compile({ v: criteria }, options);
      return (v) => test({ v });
    }
    const test = compile(criteria, options);
    return (v) => isPlainObject(v) && test(v);
  };
  const $elemMatch: QueryOperator = (selector, operand, options) => {
    const test = elemMatch(operand, options);
    return (obj) => matchValues(obj, selector, false).some((v) => Array.isArray(v) && v.some(test));
  };
  const $all: QueryOperator = (selector, operand, options) => {
    if (!Array.isArray(operand)) throw Object.assign(new Error('$all needs an array'), { code: 2 });
    if (operand.length === 0) return () => false;
    const parts: Predicate[] = operand.map((item) => {
      if (isPlainObject(item) && Object.keys(item)[0] === '$elemMatch') return $elemMatch(selector, item.$elemMatch, options);
      if (isRegexOperand(item)) return $regex(selector, item, options);
      return $eq(selector, item, options);
    });
    return (obj) => parts.every((p) => p(obj));
  };
  return { $elemMatch, $all };
}
