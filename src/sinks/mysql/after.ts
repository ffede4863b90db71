/**
 * The values of an envelope's `after` row as byte spans of its JSON, without decoding the
 * envelope or building the row: a load copies most values as they are spelled there (a string
 * without escapes, an integer), and decodes only the others.
 *
 * `scan` accepts only what `JSON.parse` reads as an object; anything else (and any escaped key)
 * makes it say no, and the caller parses the row as before (`afterRow`), which then also fails
 * the same way on text that is not JSON.
 */
import type { Value } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';

/** What a column's span holds. */
export const Span = {
  /** The row has no such field. */
  Absent: 0,
  /** A string without escapes, of ASCII only: its text lies between the quotes as it is. */
  Plain: 1,
  /** A string with escapes. */
  Escaped: 2,
  /** An integer literal. */
  Integer: 3,
  /** A number with a fraction or an exponent. */
  Number: 4,
  Null: 5,
  True: 6,
  False: 7,
  /** An array or object. */
  Nested: 8,
  /** A string without escapes with bytes beyond ASCII (UTF-8, or bytes a decoder replaces). */
  Wide: 9,
} as const;

const AFTER = Buffer.from('"after":');
const SOURCE = Buffer.from(',"source":{');
const LONG_INT = /\d{16}/;
const [QUOTE, BACKSLASH, COLON, COMMA, OPEN, CLOSE, OPEN_ARRAY, CLOSE_ARRAY] = [0x22, 0x5c, 0x3a, 0x2c, 0x7b, 0x7d, 0x5b, 0x5d];

/**
 * Where the `after` value lies in an envelope's bytes, as `afterText` finds it in its text
 * (`before`, `after`, `source` in that order, as Sluice writes it): [start, end), or null.
 */
export function afterSpan(b: Buffer): [number, number] | null {
  const a = b.indexOf(AFTER);
  const e = b.lastIndexOf(SOURCE);
  return a >= 0 && e > a ? [a + AFTER.length, e] : null;
}

export class AfterSpans {
  private readonly names: Buffer[];
  /** Per column: where its value starts and ends in the bytes scanned last, and what it is. */
  readonly start: Int32Array;
  readonly end: Int32Array;
  readonly kind: Uint8Array;

  /** @param names the columns, in the order the spans are kept */
  constructor(names: string[]) {
    this.names = names.map((n) => Buffer.from(n));
    this.start = new Int32Array(names.length);
    this.end = new Int32Array(names.length);
    this.kind = new Uint8Array(names.length);
  }

  /** Finds each column's value in `b[from, to)`, the JSON of a row object (or `null`); false when it is not that. */
  scan(b: Buffer, from: number, to: number): boolean {
    this.kind.fill(Span.Absent);
    let i = ws(b, from, to);
    if (b[i] === 0x6e) return isWord(b, i, to, 'null') && ws(b, i + 4, to) === to;
    if (b[i] !== OPEN) return false;
    i = ws(b, i + 1, to);
    if (b[i] === CLOSE) return ws(b, i + 1, to) === to;
    let expect = 0;
    for (;;) {
      if (i >= to || b[i] !== QUOTE) return false;
      const k = stringEnd(b, i, to);
      if (k <= 0) return false; // unterminated, a control character, or an escaped key
      const col = this.column(b, i + 1, k - 1, expect);
      i = ws(b, k, to);
      if (b[i] !== COLON) return false;
      i = ws(b, i + 1, to);
      if (i >= to) return false;
      const c = b[i];
      let e: number;
      let kind: number;
      if (c === QUOTE) {
        e = stringEnd(b, i, to);
        if (e === 0) return false;
        kind = e < 0 ? Span.Escaped : wide ? Span.Wide : Span.Plain;
        e = Math.abs(e);
      } else if (c === OPEN || c === OPEN_ARRAY) {
        e = nestedEnd(b, i, to);
        if (e < 0) return false;
        kind = Span.Nested;
      } else {
        e = i;
        while (e < to) {
          const d = b[e];
          if (d === COMMA || d === CLOSE || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
          e++;
        }
        kind = wordKind(b, i, e);
        if (kind < 0) return false;
      }
      if (col >= 0) {
        this.start[col] = i;
        this.end[col] = e;
        this.kind[col] = kind;
        expect = col + 1;
      }
      i = ws(b, e, to);
      if (i >= to) return false;
      const d = b[i];
      if (d === CLOSE) return ws(b, i + 1, to) === to;
      if (d !== COMMA) return false;
      i = ws(b, i + 1, to);
    }
  }

  /** The column whose name is `b[s, e)` (trying `expect` first: fields come in column order), or -1. */
  private column(b: Buffer, s: number, e: number, expect: number): number {
    const names = this.names;
    const n = names.length;
    for (let j = 0; j < n; j++) {
      const c = (expect + j) % n;
      const name = names[c];
      if (name.length !== e - s) continue;
      let k = 0;
      while (k < name.length && name[k] === b[s + k]) k++;
      if (k === name.length) return c;
    }
    return -1;
  }

  /**
   * Column `col`'s value as `afterRow` gives it: integers beyond 2^53 as bigint, other numbers as
   * numbers. Throws on a value `JSON.parse` would refuse (a bad escape, a bad nested value).
   */
  value(b: Buffer, col: number): Value {
    const s = this.start[col];
    const e = this.end[col];
    switch (this.kind[col]) {
      case Span.Absent:
      case Span.Null:
        return null;
      case Span.Plain:
      case Span.Wide:
        return b.toString('utf8', s + 1, e - 1);
      case Span.Escaped:
        return JSON.parse(b.toString('utf8', s, e)) as string;
      case Span.Integer: {
        const text = b.toString('latin1', s, e);
        const v = Number(text);
        return Number.isSafeInteger(v) ? v : BigInt(text);
      }
      case Span.Number:
        return Number(b.toString('latin1', s, e));
      case Span.True:
        return true;
      case Span.False:
        return false;
      default: {
        // Span.Nested
        const text = b.toString('utf8', s, e);
        return (LONG_INT.test(text) ? parseJson(text) : JSON.parse(text)) as Value;
      }
    }
  }
}

function ws(b: Buffer, i: number, to: number): number {
  while (i < to) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function isWord(b: Buffer, i: number, to: number, word: string): boolean {
  if (i + word.length > to) return false;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return false;
  return true;
}

/** What the bare word `b[s, e)` is (null, true, false, a JSON number), or -1. */
function wordKind(b: Buffer, s: number, e: number): number {
  const n = e - s;
  if (n === 4 && isWord(b, s, e, 'null')) return Span.Null;
  if (n === 4 && isWord(b, s, e, 'true')) return Span.True;
  if (n === 5 && isWord(b, s, e, 'false')) return Span.False;
  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  let i = s;
  if (b[i] === 0x2d) i++;
  if (i >= e) return -1;
  if (b[i] === 0x30) i++;
  else if (b[i] >= 0x31 && b[i] <= 0x39) while (i < e && b[i] >= 0x30 && b[i] <= 0x39) i++;
  else return -1;
  if (i === e) return Span.Integer;
  if (b[i] === 0x2e) {
    const d = ++i;
    while (i < e && b[i] >= 0x30 && b[i] <= 0x39) i++;
    if (i === d) return -1;
  }
  if (i < e && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    const d = i;
    while (i < e && b[i] >= 0x30 && b[i] <= 0x39) i++;
    if (i === d) return -1;
  }
  return i === e ? Span.Number : -1;
}

/** Whether the string `stringEnd` found last has bytes beyond ASCII. */
let wide = false;

/**
 * The index just past the closing quote of the string starting at `i`; negated when the string
 * has escapes; 0 when it is unterminated or holds a control character (not JSON). Sets `wide`.
 */
function stringEnd(b: Buffer, i: number, to: number): number {
  let escaped = false;
  let high = 0;
  for (let j = i + 1; j < to; j++) {
    const c = b[j];
    if (c === QUOTE) {
      wide = high !== 0;
      return escaped ? -(j + 1) : j + 1;
    }
    high |= c & 0x80;
    if (c === BACKSLASH) {
      escaped = true;
      j++;
    } else if (c < 0x20) return 0;
  }
  return 0;
}

/**
 * Whether `b[s, e)` is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): then its bytes are what encoding its decoded text gives back. A decoder replaces
 * anything else, so such text takes the decoding path.
 */
export function isUtf8(b: Buffer, s: number, e: number): boolean {
  let i = s;
  while (i < e) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return false;
    if (i + n >= e) return false;
    const d = b[i + 1];
    if (d < lo || d > hi) return false;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return false;
    i += n + 1;
  }
  return true;
}

/** The index just past the array or object starting at `i`, or -1 (unbalanced, a bad string inside). */
function nestedEnd(b: Buffer, i: number, to: number): number {
  let depth = 0;
  for (let j = i; j < to; j++) {
    const c = b[j];
    if (c === QUOTE) {
      const e = stringEnd(b, j, to);
      if (e === 0) return -1;
      j = Math.abs(e) - 1;
    } else if (c === OPEN || c === OPEN_ARRAY) depth++;
    else if (c === CLOSE || c === CLOSE_ARRAY) {
      if (--depth === 0) return j + 1;
    }
  }
  return -1;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * Whether `b[s, e)` is a decimal `[-+]digits[.digits]` that DECIMAL(p, scale) holds without
 * rounding: at most p - scale digits before the point (leading zeros aside) and scale after it
 * (trailing zeros aside). What `checkDecimal` accepts and returns as it is, in its plainest form.
 */
export function plainDecimal(b: Buffer, s: number, e: number, p: number, scale: number): boolean {
  let i = s;
  if (b[i] === 0x2d || b[i] === 0x2b) i++;
  const intStart = i;
  while (i < e && isDigit(b[i])) i++;
  const intEnd = i;
  if (intEnd === intStart) return false;
  let fracStart = i;
  let fracEnd = i;
  if (i < e && b[i] === 0x2e) {
    fracStart = ++i;
    while (i < e && isDigit(b[i])) i++;
    fracEnd = i;
    if (fracEnd === fracStart) return false;
  }
  if (i !== e) return false;
  let lead = intStart;
  while (lead < intEnd && b[lead] === 0x30) lead++;
  let trail = fracEnd;
  while (trail > fracStart && b[trail - 1] === 0x30) trail--;
  return intEnd - lead <= p - scale && trail - fracStart <= scale;
}

/**
 * Where the clock of a UTC timestamp `YYYY-MM-DDTHH:MM:SS[.f…][Z]` in `b[s, e)` ends (before the
 * `Z`), or -1 for any other spelling: MySQL's DATETIME text is its date, a space and that clock.
 */
export function zonedClockEnd(b: Buffer, s: number, e: number): number {
  if (e - s < 19) return -1;
  for (let k = 0; k < 19; k++) {
    const c = b[s + k];
    const want = k === 4 || k === 7 ? 0x2d : k === 10 ? 0x54 : k === 13 || k === 16 ? 0x3a : -1;
    if (want < 0 ? !isDigit(c) : c !== want) return -1;
  }
  let i = s + 19;
  if (i < e && b[i] === 0x2e) {
    const d = ++i;
    while (i < e && isDigit(b[i])) i++;
    if (i === d) return -1;
  }
  const clockEnd = i;
  if (i < e && b[i] === 0x5a) i++;
  return i === e ? clockEnd : -1;
}
