/**
 * MongoDB's four numeric types as one: int32 (a JS integer in int32 range, or Int32), int64 (Long,
 * bigint), double (any other JS number, or Double) and Decimal128. Comparison is by numeric value
 * across types, exactly (a Long beyond 2^53 or a 34-digit decimal is not rounded through a double);
 * arithmetic follows mongod's promotion: int32 overflows into int64, int64 with a double is a
 * double, anything with a Decimal128 is a Decimal128 (a double enters it rounded to 15 digits, as
 * mongod's Decimal128(double) does).
 */
import { Decimal128, Long } from 'bson';
import { bsonType } from './values';

export type NumericKind = 'int' | 'long' | 'double' | 'decimal';

/** The numeric kind of a value, or undefined when it is not a number. */
export function numericKind(v: unknown): NumericKind | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? 'int' : 'double';
  if (typeof v === 'bigint') return 'long';
  switch (bsonType(v)) {
    case 'Int32':
      return 'int';
    case 'Long':
      return 'long';
    case 'Double':
      return 'double';
    case 'Decimal128':
      return 'decimal';
  }
  return undefined;
}

export const isNumeric = (v: unknown): boolean => numericKind(v) !== undefined;

/** The nearest double (Decimal128 and Long rounded; monotonic, so a < b ⇒ toDouble(a) <= toDouble(b)). */
export function toDouble(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  switch (bsonType(v)) {
    case 'Long':
      return Number(BigInt((v as Long).toString()));
    case 'Int32':
    case 'Double':
      return (v as { valueOf(): number }).valueOf();
    case 'Decimal128':
      return parseFloat((v as Decimal128).toString());
  }
  return NaN;
}

const toBigInt = (v: unknown): bigint => (typeof v === 'bigint' ? v : BigInt(String(v)));

/** An exact finite decimal: coef × 10^exp. */
interface Dec {
  coef: bigint;
  exp: number;
}

type Exact = Dec | { special: number }; // special: NaN, ±Infinity

const DEC_TEXT = /^([+-]?)(\d+)(?:\.(\d*))?(?:E([+-]?\d+))?$/i;

function parseDecimal(s: string): Exact {
  const m = DEC_TEXT.exec(s);
  if (!m) {
    if (/^-inf/i.test(s)) return { special: -Infinity };
    if (/^\+?inf/i.test(s)) return { special: Infinity };
    return { special: NaN };
  }
  const frac = m[3] ?? '';
  const coef = BigInt(m[2] + frac) * (m[1] === '-' ? -1n : 1n);
  return { coef, exp: Number(m[4] ?? 0) - frac.length };
}

/** The exact value of a double as a decimal (a double is m × 2^e). */
function doubleToDec(d: number): Dec {
  if (Number.isInteger(d)) return { coef: BigInt(d), exp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, d);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  let exp2 = -1074;
  if (biased !== 0) {
    mant |= 1n << 52n;
    exp2 = biased - 1075;
  }
  // non-integer ⇒ exp2 < 0: m × 2^exp2 = m × 5^-exp2 × 10^exp2
  return { coef: sign * mant * 5n ** BigInt(-exp2), exp: exp2 };
}

function exact(v: unknown): Exact {
  const k = numericKind(v);
  if (k === 'long') return { coef: toBigInt(v), exp: 0 };
  if (k === 'decimal') return parseDecimal(String(v));
  const d = toDouble(v);
  return Number.isFinite(d) ? doubleToDec(d) : { special: d };
}

function cmpDec(a: Dec, b: Dec): number {
  const e = Math.min(a.exp, b.exp);
  const x = a.coef * 10n ** BigInt(a.exp - e);
  const y = b.coef * 10n ** BigInt(b.exp - e);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Compares two numeric values of any kinds by value, as mongod does: NaN equals NaN and sorts
 * before every other number; -0 equals 0; a double equals a Decimal128 only when its exact binary
 * value is that decimal (0.5 does, 0.1 does not).
 */
export function compareNumbers(a: unknown, b: unknown): number {
  const x = toDouble(a);
  const y = toDouble(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) ? (Number.isNaN(y) ? 0 : -1) : 1;
  if (x !== y) return x < y ? -1 : 1; // rounding to double is monotonic: distinct doubles decide
  const ka = numericKind(a);
  const kb = numericKind(b);
  if ((ka === 'int' || ka === 'double') && (kb === 'int' || kb === 'double')) return 0;
  if (!Number.isFinite(x)) {
    // ±Infinity as doubles: a Decimal128 may be infinite too, a Long never is
    const ea = exact(a);
    const eb = exact(b);
    const sa = 'special' in ea ? ea.special : Math.sign(x) * Number.MAX_VALUE;
    const sb = 'special' in eb ? eb.special : Math.sign(y) * Number.MAX_VALUE;
    return sa === sb ? 0 : sa < sb ? -1 : 1;
  }
  const ea = exact(a);
  const eb = exact(b);
  if ('special' in ea || 'special' in eb) return 0; // unreachable: finite doubles come from finite values
  return cmpDec(ea, eb);
}

/**
 * A string that is equal exactly for numerically equal values of any kinds (an index or hash key):
 * the exact integer for integral values, the double's text for a value a double holds exactly, the
 * normalised decimal text ('D' prefix) for a Decimal128 no double equals (0.1 as a decimal).
 */
export function numericKey(v: unknown): string {
  const d = toDouble(v);
  if (Number.isNaN(d)) return 'NaN';
  if (!Number.isFinite(d) && numericKind(v) !== 'decimal') return String(d);
  const k = numericKind(v);
  if (k === 'long') return toBigInt(v).toString();
  if (k === 'decimal') {
    const e = exact(v);
    if ('special' in e) return String(e.special);
    if (e.exp >= 0) return (e.coef * 10n ** BigInt(e.exp)).toString();
    const div = 10n ** BigInt(-e.exp);
    if (e.coef % div === 0n) return (e.coef / div).toString();
    if (Number.isFinite(d) && cmpDec(e, doubleToDec(d)) === 0) return String(d);
    let { coef, exp } = e;
    while (coef % 10n === 0n) {
      coef /= 10n;
      exp++;
    }
    return `D${coef}E${exp}`;
  }
  if (Number.isInteger(d)) return BigInt(d).toString();
  return String(d);
}

// ---------- arithmetic ----------

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function decText(d: Dec): string {
  return `${d.coef}E${d.exp}`;
}

/** A value as a decimal for arithmetic: a double rounded to 15 significant digits, as mongod. */
function arithmeticDec(v: unknown): Exact {
  const k = numericKind(v);
  if (k === 'double') {
    const d = toDouble(v);
    return Number.isFinite(d) ? parseDecimal(d.toPrecision(15)) : { special: d };
  }
  return exact(v);
}

function decimalOf(e: Exact): Decimal128 {
  if ('special' in e) return Decimal128.fromString(Number.isNaN(e.special) ? 'NaN' : e.special > 0 ? 'Infinity' : '-Infinity');
  return Decimal128.fromStringWithRounding(decText(e));
}

function decAdd(a: Exact, b: Exact): Exact {
  if ('special' in a || 'special' in b) {
    const x = 'special' in a ? a.special : 0;
    const y = 'special' in b ? b.special : 0;
    return { special: x + y };
  }
  const e = Math.min(a.exp, b.exp);
  return { coef: a.coef * 10n ** BigInt(a.exp - e) + b.coef * 10n ** BigInt(b.exp - e), exp: e };
}

function decMul(a: Exact, b: Exact): Exact {
  if ('special' in a || 'special' in b) {
    const x = 'special' in a ? a.special : a.coef === 0n ? 0 : Number(a.coef > 0n ? 1 : -1);
    const y = 'special' in b ? b.special : b.coef === 0n ? 0 : Number(b.coef > 0n ? 1 : -1);
    return { special: x * y };
  }
  return { coef: a.coef * b.coef, exp: a.exp + b.exp };
}

const widest = (a: NumericKind, b: NumericKind): NumericKind => {
  const order: NumericKind[] = ['int', 'long', 'double', 'decimal'];
  return order[Math.max(order.indexOf(a), order.indexOf(b))];
};

/** An int64 result, or undefined when it overflows. */
const asLong = (n: bigint): Long | undefined => (n < INT64_MIN || n > INT64_MAX ? undefined : Long.fromBigInt(n));

/**
 * a + b (`op` 'add') or a × b ('mul') with mongod's promotion; undefined when an int64 result
 * overflows (mongod refuses such an $inc/$mul). Both operands must be numeric.
 */
export function arithmetic(op: 'add' | 'mul', a: unknown, b: unknown): unknown {
  const kind = widest(numericKind(a)!, numericKind(b)!);
  if (kind === 'decimal') return decimalOf((op === 'add' ? decAdd : decMul)(arithmeticDec(a), arithmeticDec(b)));
  if (kind === 'double') return op === 'add' ? toDouble(a) + toDouble(b) : toDouble(a) * toDouble(b);
  const x = toBigInt(kind === 'int' ? toDouble(a) : a);
  const y = toBigInt(kind === 'int' ? toDouble(b) : b);
  const r = op === 'add' ? x + y : x * y;
  if (kind === 'int' && r >= -2147483648n && r <= 2147483647n) return Number(r);
  return asLong(r);
}

/**
 * `$sum` over values as mongod's accumulator: non-numeric values are ignored; ints that overflow
 * become a long, a long that overflows becomes a double; any double makes a double, any decimal a
 * decimal. Nothing numeric: 0.
 */
export function sumOf(values: unknown[]): unknown {
  let kind: NumericKind = 'int';
  let big = 0n; // exact sum of int/long values
  let dbl = 0; // sum of double values
  let dec: Exact = { coef: 0n, exp: 0 };
  let any = false;
  for (const v of values) {
    const k = numericKind(v);
    if (!k) continue;
    any = true;
    kind = widest(kind, k);
    if (k === 'decimal') dec = decAdd(dec, exact(v));
    else if (k === 'double') dbl += toDouble(v);
    else big += toBigInt(k === 'int' ? toDouble(v) : v);
  }
  if (!any) return 0;
  if (kind === 'decimal')
    return decimalOf(decAdd(decAdd(dec, { coef: big, exp: 0 }), dbl === 0 ? { coef: 0n, exp: 0 } : arithmeticDec(dbl)));
  if (kind === 'double') return Number(big) + dbl;
  if (kind === 'int' && big >= -2147483648n && big <= 2147483647n) return Number(big);
  return asLong(big) ?? Number(big);
}

/** `$avg` as mongod's: the mean of the numeric values (a double, or a decimal if any is one); none: null. */
export function avgOf(values: unknown[]): unknown {
  const nums = values.filter(isNumeric);
  if (nums.length === 0) return null;
  const sum = sumOf(nums);
  if (numericKind(sum) === 'decimal') {
    const s = exact(sum);
    if ('special' in s) return sum;
    // s / n as IEEE 754 decimal division: exact results keep the dividend's exponent where they
    // can (0.3 / 2 = 0.15), others are rounded to 34 significant digits.
    const n = BigInt(nums.length);
    const scale = 40;
    let coef = (s.coef * 10n ** BigInt(scale)) / n;
    let exp = s.exp - scale;
    if ((s.coef * 10n ** BigInt(scale)) % n === 0n) {
      while (exp < s.exp && coef % 10n === 0n) {
        coef /= 10n;
        exp++;
      }
    }
    return decimalOf({ coef, exp });
  }
  return toDouble(sum) / nums.length;
}
