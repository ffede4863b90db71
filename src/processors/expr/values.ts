/**
 * The runtime semantics of the expression language's values, shared by operators and functions:
 * what counts as a number (numbers, bigints, numeric strings like "1500.00"), equality, ordering,
 * arithmetic, the string form of a value, and how a value is shown in an error message.
 *
 * Values are JSON-like: null, boolean, number, bigint (int64), string, Buffer (bytes), arrays and
 * plain objects. `undefined` is read as null.
 */
import { writeValue } from '../../core/serde/json.ts';
import type { Value } from '../../core/event.ts';

const INTEGER = /^[+-]?\d+$/;

const POW10 = Array.from({ length: 16 }, (_, i) => 10 ** i);

/**
 * The value of a decimal string as CDC sends decimals ("1500.00", "-3", ".5", "1e5": the JSON
 * number syntax, loosened to allow a sign, leading zeros and a bare point); undefined for anything
 * else (spaces, hex, NaN, Infinity). Hand-written because filters run it on every record: strings
 * of at most 15 digits without an exponent are computed as mantissa / 10^k, which is exact and
 * correctly rounded (both are exact doubles), and skips Number()'s slower general conversion.
 */
export function parseDecimal(s: string): number | undefined {
  const n = s.length;
  let i = 0;
  let c = s.charCodeAt(0);
  const neg = c === 45;
  if (neg || c === 43) i++;
  let digits = 0;
  let frac = 0;
  let mant = 0;
  while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
    mant = mant * 10 + (c - 48);
    digits++;
    i++;
  }
  if (i < n && c === 46) {
    i++;
    while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
      mant = mant * 10 + (c - 48);
      digits++;
      frac++;
      i++;
    }
  }
  if (digits === 0) return undefined;
  let exact = digits <= 15;
  if (i < n && (c === 101 || c === 69)) {
    exact = false;
    c = s.charCodeAt(++i);
    if (c === 43 || c === 45) i++;
    const start = i;
    while (i < n && (c = s.charCodeAt(i)) >= 48 && c <= 57) i++;
    if (i === start) return undefined;
  }
  if (i !== n) return undefined;
  if (!exact) return Number(s);
  const v = frac === 0 ? mant : mant / POW10[frac];
  return neg ? -v : v;
}

export function isNumericString(s: string): boolean {
  return parseDecimal(s) !== undefined;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * The numeric value of a number, bigint or numeric string; undefined for anything else. Integer
 * strings beyond 2^53 become bigints, so "9223372036854775807" keeps every digit.
 */
export function numeric(v: unknown): number | bigint | undefined {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  if (typeof v !== 'string') return undefined;
  const n = parseDecimal(v);
  if (n !== undefined && (n > MAX_SAFE || n < -MAX_SAFE) && INTEGER.test(v)) return BigInt(v);
  return n;
}

/** A plain object (a row, a struct), as opposed to a list or bytes. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** `o[k]` if `o` is a plain object with `k` as an own property, else null: never the prototype chain. */
export function getField(o: unknown, k: string): unknown {
  if (typeof o !== 'object' || o === null || Array.isArray(o) || o instanceof Uint8Array || !Object.hasOwn(o, k)) return null;
  const v = (o as Record<string, unknown>)[k];
  return v === undefined ? null : v;
}

const OBJECT_PROTO = Object.prototype;

/**
 * getField for a key known at compile time, faster for plain objects: when `o`'s prototype is
 * Object.prototype and no Object.prototype property has the name `k`, `o[k]` can only be an own
 * property, so Object.hasOwn (the costly part) is skipped. Anything else takes getField.
 */
export function fieldGetter(k: string): (o: unknown) => unknown {
  if (k in OBJECT_PROTO) return (o) => getField(o, k);
  return (o) => {
    if (typeof o !== 'object' || o === null) return null;
    // An own "__proto__" key (JSON.parse makes them) is never Object.prototype itself: getField then.
    if ((o as { __proto__?: unknown }).__proto__ !== OBJECT_PROTO) return getField(o, k);
    const v = (o as Record<string, unknown>)[k];
    return v === undefined ? null : v;
  };
}

/** "a number", "a string", … for messages. */
export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
  }
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  return 'an object';
}

const MAX_SHOWN = 40;

/** A value as error messages quote it, at most 40 characters (then '…'). */
export function show(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') {
    const body = v.length > MAX_SHOWN ? v.slice(0, MAX_SHOWN) + '…' : v;
    return "'" + body.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t') + "'";
  }
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  let s: string;
  try {
    s = typeof v === 'object' ? writeValue(v as Value) : String(v);
  } catch {
    s = String(v);
  }
  return s.length > MAX_SHOWN ? s.slice(0, MAX_SHOWN) + '…' : s;
}

/** The string form of a value (the string() function): JSON for lists and objects, base64 for bytes. Null stays null. */
export function toText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(v);
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  return writeValue(v as Value);
}

/**
 * `==`: null equals only null; a number, bigint or numeric string against a number or bigint
 * compares by value ("1500.00" == 1500, 5n == 5); two strings compare exactly; lists and objects
 * compare deeply (same keys, any order); bytes by content; anything else strictly.
 */
export function eq(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return (a ?? null) === (b ?? null);
  const ta = typeof a;
  const tb = typeof b;
  if (ta === 'number' || ta === 'bigint' || tb === 'number' || tb === 'bigint') {
    if (ta === 'string' && tb === 'string') return false;
    const na = numeric(a);
    const nb = numeric(b);
    // Loose equality between number and bigint compares mathematical values exactly.
    return na !== undefined && nb !== undefined && (na as number) == (nb as number);
  }
  if (ta !== 'object' || tb !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!eq(a[i], b[i])) return false;
    return true;
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  if (ka.length !== Object.keys(b as object).length) return false;
  for (const k of ka) if (!Object.hasOwn(b as object, k) || !eq((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/**
 * Ordering of two non-null values: -1, 0 or 1; undefined when they cannot be ordered. Numbers,
 * bigints and numeric strings numerically; two strings that are not both numeric by code units.
 * NaN orders with nothing (every comparison with it is false).
 */
export function compare(a: unknown, b: unknown): number | undefined {
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined && nb !== undefined) return na < nb ? -1 : na > nb ? 1 : na == nb ? 0 : NaN;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return undefined;
}

export type ArithOp = '+' | '-' | '*' | '/' | '%';

/**
 * Arithmetic on two numeric values (already checked non-null). bigint with bigint stays bigint for
 * + - * % (exact int64 ids); so does bigint with an integer number (`id % 16` on a 64-bit id is
 * exact). `/` always gives a number. Undefined for a division by zero.
 */
export function arith(op: ArithOp, a: number | bigint, b: number | bigint): number | bigint | undefined {
  if (typeof a === 'number' && typeof b === 'number') return arithNum(op, a, b);
  if (op !== '/') {
    const ba = typeof a === 'bigint' ? a : Number.isInteger(a) ? BigInt(a) : undefined;
    const bb = typeof b === 'bigint' ? b : Number.isInteger(b) ? BigInt(b) : undefined;
    if (ba !== undefined && bb !== undefined) {
      if (op === '+') return ba + bb;
      if (op === '-') return ba - bb;
      if (op === '*') return ba * bb;
      return bb === 0n ? undefined : ba % bb;
    }
  }
  return arithNum(op, Number(a), Number(b));
}

function arithNum(op: ArithOp, a: number, b: number): number | undefined {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return b === 0 ? undefined : a / b;
    case '%':
      return b === 0 ? undefined : a % b;
  }
}
