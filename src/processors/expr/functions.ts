/**
 * The expression language's functions: name, arity, parameter types (checked at compile time when
 * an argument's type is known), return type, documentation and implementation.
 *
 * Unless a function says otherwise (`nulls: 'own'`: coalesce, concat, is_null, min, max), a null
 * argument makes the result null without calling it. Implementations get their arguments evaluated
 * and a `fail` that throws a runtime ExprError pointing at the call.
 */
import { createHash } from 'node:crypto';
import { joinTypes, type ExprType, type Node } from './ast.ts';
import { compare, isNumericString, numeric, show, toText } from './values.ts';
import { dateTrunc, datePart, parseIsoMs, PART_UNITS, TRUNC_UNITS } from './time.ts';

export type Fail = (msg: string) => never;
export type Impl = (a: unknown[], fail: Fail) => unknown;

export interface Param {
  /** Accepted static types; 'any' accepts everything. */
  types: readonly ExprType[];
  /** Strings are accepted when numeric ("1500.00"): a literal string that is not numeric is a compile error. */
  numeric?: boolean;
  /** "a string or a list", for messages. */
  desc: string;
}

export interface FnDef {
  name: string;
  /** Parameters as the docs show them: "s, start[, len]". */
  args: string;
  returns: ExprType;
  doc: string;
  min: number;
  max: number;
  /** One per position; the last repeats for variadic functions. */
  params: Param[];
  nulls?: 'own';
  /** Not folded at compile time even with constant arguments (now()). */
  impure?: boolean;
  /** A sharper static return type from the arguments' types. */
  result?: (argTypes: ExprType[]) => ExprType;
  /** Extra compile-time checks of literal arguments; `err` reports at an argument. */
  check?: (args: Node[], err: (msg: string, at: Node) => never) => void;
  /** An implementation specialised for literal arguments (a regex compiled once). */
  prepare?: (args: Node[]) => Impl | undefined;
  impl: Impl;
}

const STR: Param = { types: ['string'], desc: 'a string' };
const NUM: Param = { types: ['number'], numeric: true, desc: 'a number' };
const ANY: Param = { types: ['any'], desc: 'any value' };
const TIME: Param = { types: ['number', 'string'], desc: 'a timestamp (ms or ISO-8601)' };

function str(v: unknown, fail: Fail): string {
  return typeof v === 'string' ? v : fail(`${show(v)} is not a string`);
}

function num(v: unknown, fail: Fail): number | bigint {
  const n = numeric(v);
  return n === undefined ? fail(`${show(v)} is not a number`) : n;
}

function integer(v: unknown, fail: Fail): number {
  const n = Number(num(v, fail));
  return Number.isInteger(n) ? n : fail(`${show(v)} is not an integer`);
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Length in characters (code points), as databases count them. */
function charLength(s: string): number {
  return SURROGATE.test(s) ? Array.from(s).length : s.length;
}

function charSlice(s: string, start: number, end: number): string {
  return SURROGATE.test(s) ? Array.from(s).slice(start, end).join('') : s.slice(start, end);
}

/** Hex digest of bytes, or of the UTF-8 of a value's string form. */
function digest(alg: string, v: unknown): string {
  const h = createHash(alg);
  if (v instanceof Uint8Array) h.update(v);
  else h.update(toText(v) ?? '', 'utf8');
  return h.digest('hex');
}

/** Epoch ms of a number (taken as ms), a bigint, a numeric string or an ISO-8601 string. */
function toMs(v: unknown, fail: Fail): number {
  if (typeof v === 'string' && !isNumericString(v)) {
    const t = parseIsoMs(v);
    return t === undefined ? fail(`${show(v)} is not an ISO-8601 timestamp`) : t;
  }
  if (typeof v !== 'number' && typeof v !== 'bigint' && typeof v !== 'string') fail(`${show(v)} is not a timestamp`);
  const n = Number(num(v, fail));
  return Number.isFinite(n) ? n : fail(`${show(v)} is not a timestamp`);
}

function toInt(v: unknown, fail: Fail): number | bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string') {
    if (!isNumericString(v)) fail(`${show(v)} is not a number`);
    const m = /^([+-]?)(\d*)(?:\.\d*)?$/.exec(v); // no exponent: truncate the digits exactly
    if (m) {
      const b = BigInt((m[1] === '-' ? '-' : '') + (m[2] || '0'));
      return Number.isSafeInteger(Number(b)) ? Number(b) : b;
    }
    v = Number(v);
  }
  if (typeof v !== 'number') return fail(`${show(v)} is not a number`);
  if (!Number.isFinite(v)) fail(`${show(v)} is not a finite number`);
  const t = Math.trunc(v as number);
  return Number.isSafeInteger(t) ? t + 0 : BigInt(t);
}

/** Half away from zero, at `digits` decimals (negative: tens, hundreds…), without 1.005 → 1.00 surprises. */
function roundTo(x: number | bigint, digits: number): number | bigint {
  if (typeof x === 'bigint') {
    if (digits >= 0) return x;
    const p = 10n ** BigInt(-digits);
    const a = x < 0n ? -x : x;
    const r = ((a + p / 2n) / p) * p;
    return x < 0n ? -r : r;
  }
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  let r: number;
  if (digits === 0) r = Math.round(a);
  else if (digits > 0 && a * 10 ** digits >= 2 ** 52) r = a; // no finer digits to round
  else {
    const s = String(a);
    r = s.includes('e') ? Math.round(a * 10 ** digits) / 10 ** digits : Number(Math.round(Number(`${s}e${digits}`)) + 'e' + -digits);
  }
  return x < 0 ? -r + 0 : r;
}

/** min/max: the argument (or, for one list argument, the element) ordered first; nulls skipped. */
function extreme(a: unknown[], fail: Fail, sign: 1 | -1): unknown {
  const xs = a.length === 1 && Array.isArray(a[0]) ? (a[0] as unknown[]) : a;
  let best: unknown = null;
  for (const x of xs) {
    if (x === null || x === undefined) continue;
    if (typeof x !== 'number' && typeof x !== 'bigint' && typeof x !== 'string') fail(`${show(x)} is not a number or a string`);
    if (best === null) {
      best = x;
      continue;
    }
    const c = compare(x, best);
    if (c === undefined) fail(`cannot compare ${show(x)} with ${show(best)}`);
    if (c * sign < 0) best = x;
  }
  return best;
}

/** "Unterminated group" out of "Invalid regular expression: /(/: Unterminated group". */
function regexProblem(e: unknown): string {
  return String((e as Error).message).replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
}

const regexCache = new Map<string, RegExp>();

function regex(src: string, fail: Fail): RegExp {
  let re = regexCache.get(src);
  if (!re) {
    try {
      re = new RegExp(src);
    } catch (e) {
      return fail(`${show(src)} is not a valid regular expression: ${regexProblem(e)}`);
    }
    if (regexCache.size >= 256) regexCache.clear();
    regexCache.set(src, re);
  }
  return re;
}

function unitCheck(units: readonly string[], fn: string) {
  return (args: Node[], err: (msg: string, at: Node) => never): void => {
    const u = args[0];
    if (u.k === 'lit' && typeof u.value === 'string' && !units.includes(u.value)) {
      err(`unknown unit ${show(u.value)}: ${fn}() takes ${units.map((x) => `'${x}'`).join(', ')}`, u);
    }
  };
}

function unit(v: unknown, units: readonly string[], fn: string, fail: Fail): string {
  const u = str(v, fail);
  return units.includes(u) ? u : fail(`unknown unit ${show(u)}: ${fn}() takes ${units.map((x) => `'${x}'`).join(', ')}`);
}

const DEFS: FnDef[] = [
  { name: 'lower', args: 's', returns: 'string', doc: 'The string in lower case.', min: 1, max: 1, params: [STR], impl: (a, f) => str(a[0], f).toLowerCase() },
  { name: 'upper', args: 's', returns: 'string', doc: 'The string in upper case.', min: 1, max: 1, params: [STR], impl: (a, f) => str(a[0], f).toUpperCase() },
  { name: 'trim', args: 's', returns: 'string', doc: 'The string without leading and trailing white space.', min: 1, max: 1, params: [STR], impl: (a, f) => str(a[0], f).trim() },
  {
    name: 'length',
    args: 's | list',
    returns: 'number',
    doc: 'Number of characters of a string, or of elements of a list.',
    min: 1,
    max: 1,
    params: [{ types: ['string', 'list'], desc: 'a string or a list' }],
    impl: (a, f) => (typeof a[0] === 'string' ? charLength(a[0]) : Array.isArray(a[0]) ? a[0].length : f(`${show(a[0])} is not a string or a list`)),
  },
  {
    name: 'concat',
    args: 'a, ...',
    returns: 'string',
    doc: 'The arguments joined into one string; nulls are skipped, other values take their string() form.',
    min: 1,
    max: Infinity,
    params: [ANY],
    nulls: 'own',
    impl: (a) => {
      let s = '';
      for (const x of a) if (x !== null && x !== undefined) s += toText(x);
      return s;
    },
  },
  {
    name: 'substr',
    args: 's, start[, len]',
    returns: 'string',
    doc: 'The part of s from character `start` (0-based) on, at most `len` characters long.',
    min: 2,
    max: 3,
    params: [STR, NUM, NUM],
    impl: (a, f) => {
      const s = str(a[0], f);
      const start = Math.max(0, integer(a[1], f));
      const len = a.length > 2 ? integer(a[2], f) : Infinity;
      return len <= 0 ? '' : charSlice(s, start, start + len);
    },
  },
  { name: 'starts_with', args: 's, prefix', returns: 'boolean', doc: 'Whether s begins with prefix.', min: 2, max: 2, params: [STR, STR], impl: (a, f) => str(a[0], f).startsWith(str(a[1], f)) },
  { name: 'ends_with', args: 's, suffix', returns: 'boolean', doc: 'Whether s ends with suffix.', min: 2, max: 2, params: [STR, STR], impl: (a, f) => str(a[0], f).endsWith(str(a[1], f)) },
  { name: 'contains', args: 's, part', returns: 'boolean', doc: 'Whether part occurs in s.', min: 2, max: 2, params: [STR, STR], impl: (a, f) => str(a[0], f).includes(str(a[1], f)) },
  {
    name: 'matches',
    args: 's, regex',
    returns: 'boolean',
    doc: 'Whether the JavaScript regular expression matches anywhere in s (anchor it with ^…$ for a whole match). A literal regex is compiled once, and checked at compile time.',
    min: 2,
    max: 2,
    params: [STR, STR],
    check: (args, err) => {
      const r = args[1];
      if (r.k !== 'lit' || typeof r.value !== 'string') return;
      try {
        new RegExp(r.value);
      } catch (e) {
        err(`${show(r.value)} is not a valid regular expression: ${regexProblem(e)}`, r);
      }
    },
    prepare: (args) => {
      const r = args[1];
      if (r.k !== 'lit' || typeof r.value !== 'string') return undefined;
      const re = new RegExp(r.value);
      return (a, f) => re.test(str(a[0], f));
    },
    impl: (a, f) => regex(str(a[1], f), f).test(str(a[0], f)),
  },
  {
    name: 'replace',
    args: 's, from, to',
    returns: 'string',
    doc: 's with every occurrence of the text `from` replaced by `to` (plain text, not a regex).',
    min: 3,
    max: 3,
    params: [STR, STR, STR],
    impl: (a, f) => {
      const s = str(a[0], f);
      const from = str(a[1], f);
      const to = str(a[2], f);
      return from === '' ? s : s.split(from).join(to);
    },
  },
  {
    name: 'split',
    args: 's, sep',
    returns: 'list',
    doc: 'The list of the parts of s between occurrences of sep (of its characters when sep is empty).',
    min: 2,
    max: 2,
    params: [STR, STR],
    impl: (a, f) => {
      const s = str(a[0], f);
      const sep = str(a[1], f);
      return sep === '' ? Array.from(s) : s.split(sep);
    },
  },
  {
    name: 'coalesce',
    args: 'a, ...',
    returns: 'any',
    doc: 'The first argument that is not null (null if all are).',
    min: 1,
    max: Infinity,
    params: [ANY],
    nulls: 'own',
    result: (t) => t.reduce(joinTypes),
    impl: (a) => {
      for (const x of a) if (x !== null && x !== undefined) return x;
      return null;
    },
  },
  {
    name: 'number',
    args: 'x',
    returns: 'number',
    doc: 'x as a number: numbers, numeric strings ("1500.00"), bigints, booleans (1/0). Anything else is an error.',
    min: 1,
    max: 1,
    params: [{ types: ['number', 'boolean'], numeric: true, desc: 'a number, a numeric string or a boolean' }],
    impl: (a, f) => {
      const v = a[0];
      if (typeof v === 'number') return v;
      if (typeof v === 'boolean') return v ? 1 : 0;
      return Number(num(v, f));
    },
  },
  {
    name: 'int',
    args: 'x',
    returns: 'number',
    doc: 'x truncated to an integer (as number() reads it); a bigint when beyond ±2^53, so 64-bit values stay exact.',
    min: 1,
    max: 1,
    params: [{ types: ['number', 'boolean'], numeric: true, desc: 'a number, a numeric string or a boolean' }],
    impl: (a, f) => toInt(a[0], f),
  },
  {
    name: 'string',
    args: 'x',
    returns: 'string',
    doc: 'The string form of x: numbers and booleans as written, lists and objects as JSON, bytes as base64.',
    min: 1,
    max: 1,
    params: [ANY],
    impl: (a) => toText(a[0]),
  },
  {
    name: 'boolean',
    args: 'x',
    returns: 'boolean',
    doc: "x as a boolean: booleans, the strings 'true'/'false' (any case), the numbers 1/0. Anything else is an error.",
    min: 1,
    max: 1,
    params: [{ types: ['boolean', 'string', 'number'], desc: 'a boolean, a string or a number' }],
    impl: (a, f) => {
      const v = a[0];
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string') {
        const l = v.toLowerCase();
        if (l === 'true' || l === 'false') return l === 'true';
      }
      if (v === 1 || v === 0 || v === 1n || v === 0n) return v == 1;
      return f(`${show(v)} is not a boolean`);
    },
  },
  {
    name: 'abs',
    args: 'x',
    returns: 'number',
    doc: 'The absolute value of x.',
    min: 1,
    max: 1,
    params: [NUM],
    impl: (a, f) => {
      const n = num(a[0], f);
      return typeof n === 'bigint' ? (n < 0n ? -n : n) : Math.abs(n);
    },
  },
  {
    name: 'round',
    args: 'x[, digits]',
    returns: 'number',
    doc: 'x rounded half away from zero, to `digits` decimals (default 0; negative rounds to tens, hundreds…).',
    min: 1,
    max: 2,
    params: [NUM, NUM],
    check: (args, err) => {
      const d = args[1];
      if (d && d.k === 'lit' && typeof d.value === 'number' && (!Number.isInteger(d.value) || Math.abs(d.value) > 100)) err(`${d.value} is not a number of digits`, d);
    },
    impl: (a, f) => {
      const d = a.length > 1 ? integer(a[1], f) : 0;
      if (Math.abs(d) > 100) f(`${d} is not a number of digits`);
      return roundTo(num(a[0], f), d);
    },
  },
  {
    name: 'floor',
    args: 'x',
    returns: 'number',
    doc: 'The largest integer not above x.',
    min: 1,
    max: 1,
    params: [NUM],
    impl: (a, f) => {
      const n = num(a[0], f);
      return typeof n === 'bigint' ? n : Math.floor(n);
    },
  },
  {
    name: 'ceil',
    args: 'x',
    returns: 'number',
    doc: 'The smallest integer not below x.',
    min: 1,
    max: 1,
    params: [NUM],
    impl: (a, f) => {
      const n = num(a[0], f);
      return typeof n === 'bigint' ? n : Math.ceil(n);
    },
  },
  {
    name: 'min',
    args: 'a, ... | list',
    returns: 'any',
    doc: 'The smallest argument (or element of a single list argument), ordered as `<` orders; nulls are skipped.',
    min: 1,
    max: Infinity,
    params: [{ types: ['number', 'string', 'list'], desc: 'a number, a string or a list' }],
    nulls: 'own',
    result: (t) => (t.length === 1 ? (t[0] === 'list' ? 'any' : t[0]) : t.reduce(joinTypes)),
    impl: (a, f) => extreme(a, f, 1),
  },
  {
    name: 'max',
    args: 'a, ... | list',
    returns: 'any',
    doc: 'The largest argument (or element of a single list argument), ordered as `>` orders; nulls are skipped.',
    min: 1,
    max: Infinity,
    params: [{ types: ['number', 'string', 'list'], desc: 'a number, a string or a list' }],
    nulls: 'own',
    result: (t) => (t.length === 1 ? (t[0] === 'list' ? 'any' : t[0]) : t.reduce(joinTypes)),
    impl: (a, f) => extreme(a, f, -1),
  },
  { name: 'is_null', args: 'x', returns: 'boolean', doc: 'Whether x is null (a missing field reads as null).', min: 1, max: 1, params: [ANY], nulls: 'own', impl: (a) => a[0] === null || a[0] === undefined },
  { name: 'sha256', args: 'x', returns: 'string', doc: 'Hex SHA-256 of the UTF-8 of string(x) (of the bytes themselves for bytes).', min: 1, max: 1, params: [ANY], impl: (a) => digest('sha256', a[0]) },
  { name: 'md5', args: 'x', returns: 'string', doc: 'Hex MD5 of the UTF-8 of string(x) (of the bytes themselves for bytes).', min: 1, max: 1, params: [ANY], impl: (a) => digest('md5', a[0]) },
  { name: 'now', args: '', returns: 'number', doc: 'The current time in ms since the epoch (evaluated for each record).', min: 0, max: 0, params: [], impure: true, impl: () => Date.now() },
  {
    name: 'timestamp_ms',
    args: 'x',
    returns: 'number',
    doc: 'Milliseconds since the epoch of an ISO-8601 string (UTC when it has no zone) or a number, which is taken as milliseconds already (microsecond or nanosecond values are not guessed: divide them).',
    min: 1,
    max: 1,
    params: [TIME],
    impl: (a, f) => toMs(a[0], f),
  },
  {
    name: 'date_part',
    args: 'unit, ts',
    returns: 'number',
    doc: "A UTC calendar field of a timestamp (ms or ISO-8601): unit 'year', 'month' (1-12), 'day', 'hour', 'minute', 'second' or 'dow' (0 = Sunday).",
    min: 2,
    max: 2,
    params: [STR, TIME],
    check: unitCheck(PART_UNITS, 'date_part'),
    impl: (a, f) => datePart(unit(a[0], PART_UNITS, 'date_part', f), toMs(a[1], f)) ?? f(`${show(a[1])} is outside the date range`),
  },
  {
    name: 'date_trunc',
    args: 'unit, ts',
    returns: 'number',
    doc: "A timestamp (ms or ISO-8601) truncated to the start of its UTC 'year', 'month', 'day', 'hour', 'minute' or 'second', in ms.",
    min: 2,
    max: 2,
    params: [STR, TIME],
    check: unitCheck(TRUNC_UNITS, 'date_trunc'),
    impl: (a, f) => dateTrunc(unit(a[0], TRUNC_UNITS, 'date_trunc', f), toMs(a[1], f)) ?? f(`${show(a[1])} is outside the date range`),
  },
];

export const FUNCTION_DEFS: ReadonlyMap<string, FnDef> = new Map(DEFS.map((d) => [d.name, d]));

/** The functions, for generated docs. */
export const FUNCTIONS: readonly { name: string; args: string; returns: ExprType; doc: string }[] = DEFS.map(({ name, args, returns, doc }) => ({ name, args, returns, doc }));

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}

/** The known function closest to a misspelt name, if one is close enough. */
export function suggest(name: string): string | undefined {
  const plain = name.toLowerCase().replace(/_/g, '');
  let best: string | undefined;
  let bestD = name.length <= 4 ? 2 : 3;
  for (const d of DEFS) {
    const dist = d.name.replace(/_/g, '') === plain ? 0 : distance(name.toLowerCase(), d.name);
    if (dist < bestD) {
      best = d.name;
      bestD = dist;
    }
  }
  return best;
}
