/**
 * The aggregations of the `window` processor, written in its config as `name: fn(expression)`:
 * count, sum, avg, min, max, count_distinct and percentile. Each keeps an accumulator that is plain
 * JSON (it lives in the processor's keyed state and goes to its changelog), can be merged with
 * another (session windows merge), and gives its result when the window is emitted.
 *
 * Nulls are skipped as in SQL: `sum` of no values is null, `count(x)` counts non-null x, `count()`
 * counts records. Numbers compute in double precision; numeric strings ("12.50", PostgreSQL's
 * numeric in change events) and int64 values count as numbers.
 */
import { compileExpr, type Compiled } from '../expr/index.ts';

export const AGGREGATES = {
  count: 'Records in the window (`count()`), or those whose expression is not null (`count(after.email)`).',
  sum: 'Sum of the non-null values (null when there are none).',
  avg: 'Mean of the non-null values (null when there are none).',
  min: 'Smallest non-null value (numbers, or strings compared as text).',
  max: 'Largest non-null value (numbers, or strings compared as text).',
  count_distinct: 'Number of distinct non-null values (the values are kept in state: their number bounds its size).',
  first: 'The first non-null value, in the order the processor reads the records (where sessions merge: in the order of their starts).',
  last: 'The last non-null value, in the order the processor reads the records (the current value of a field, e.g. a status; where sessions merge: in the order of their starts).',
  percentile: '`percentile(x, p)` with 0 ≤ p ≤ 1: the value at that fraction, interpolated between neighbours as PostgreSQL\'s `percentile_cont` (the values are kept in state).',
} as const;

export type AggregateFn = keyof typeof AGGREGATES;

/** One parsed aggregation. */
export interface AggregateDef {
  name: string;
  fn: AggregateFn;
  /** The argument, or null for `count()`. */
  arg: string | null;
  /** percentile's fraction. */
  p?: number;
}

/** Parses `fn(expression)`; throws an Error whose message says what to write. */
export function parseAggregate(name: string, text: string): AggregateDef {
  const m = /^\s*([A-Za-z_]+)\s*\(([\s\S]*)\)\s*$/.exec(text);
  if (!m) throw new Error(`write the aggregation as function(expression), e.g. sum(after.amount) or count() (got ${JSON.stringify(text)})`);
  const fn = m[1].toLowerCase();
  if (!(fn in AGGREGATES)) throw new Error(`unknown aggregation ${m[1]}: use one of ${Object.keys(AGGREGATES).join(', ')}`);
  let arg: string | null = m[2].trim() || null;
  if (fn === 'count' && arg === '*') arg = null;
  if (arg === null && fn !== 'count') throw new Error(`${fn}() needs an expression to aggregate, e.g. ${fn}(after.amount)`);
  if (fn === 'percentile') {
    const at = arg!.lastIndexOf(',');
    const p = at < 0 ? NaN : Number(arg!.slice(at + 1).trim());
    if (at < 0 || !(p >= 0 && p <= 1)) throw new Error('write percentile(expression, fraction) with a fraction from 0 to 1, e.g. percentile(after.amount, 0.95)');
    return { name, fn, arg: arg!.slice(0, at).trim(), p };
  }
  return { name, fn: fn as AggregateFn, arg };
}

type Acc = unknown;

/** A compiled aggregation: its accumulator's life cycle. */
export interface Aggregate {
  def: AggregateDef;
  expr: Compiled | null;
  init(): Acc;
  /** Folds one (already evaluated, possibly null) value in; returns the new accumulator. */
  add(acc: Acc, v: unknown): Acc;
  merge(a: Acc, b: Acc): Acc;
  result(acc: Acc): unknown;
  /** Throws when `add` would throw on `v` (checked before any window changes). */
  check?(v: unknown): void;
  /** Takes a value added before out again (count, sum, avg: what a global aggregation of changes needs). */
  remove?(acc: Acc, v: unknown): Acc;
}

/** A number from a record value: numbers, int64 bigints and numeric strings; throws on anything else. */
export function toNumber(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new TypeError(`${what}: ${JSON.stringify(typeof v === 'string' ? v.slice(0, 80) : v) ?? String(v)} is not a number`);
}

/** min/max operands: numbers (numeric strings too) or, failing that, text. */
function ordered(v: unknown): number | string {
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') return v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  return JSON.stringify(v);
}

export function compileAggregate(def: AggregateDef, what: string): Aggregate {
  const expr = def.arg === null ? null : compileExpr(def.arg);
  const w = `${what} (${def.name})`;
  const numeric = (v: unknown) => {
    if (v !== null && v !== undefined) toNumber(v, w);
  };
  switch (def.fn) {
    case 'count':
      return { def, expr, init: () => 0, add: (a, v) => (expr === null || (v !== null && v !== undefined) ? (a as number) + 1 : a), remove: (a, v) => (expr === null || (v !== null && v !== undefined) ? (a as number) - 1 : a), merge: (a, b) => (a as number) + (b as number), result: (a) => a };
    case 'sum':
      return { def, expr, check: numeric, init: () => null, add: (a, v) => (v === null || v === undefined ? a : ((a as number | null) ?? 0) + toNumber(v, w)), remove: (a, v) => (v === null || v === undefined ? a : ((a as number | null) ?? 0) - toNumber(v, w)), merge: (a, b) => (a === null ? b : b === null ? a : (a as number) + (b as number)), result: (a) => a };
    case 'avg':
      return {
        def,
        expr,
        check: numeric,
        init: () => [0, 0],
        add: (a, v) => (v === null || v === undefined ? a : [(a as number[])[0] + toNumber(v, w), (a as number[])[1] + 1]),
        remove: (a, v) => (v === null || v === undefined ? a : [(a as number[])[0] - toNumber(v, w), (a as number[])[1] - 1]),
        merge: (a, b) => [(a as number[])[0] + (b as number[])[0], (a as number[])[1] + (b as number[])[1]],
        result: (a) => ((a as number[])[1] === 0 ? null : (a as number[])[0] / (a as number[])[1]),
      };
    case 'min':
    case 'max': {
      const better = def.fn === 'min' ? (x: number | string, y: number | string) => x < y : (x: number | string, y: number | string) => x > y;
      const pick = (a: Acc, b: Acc) => (a === null ? b : b === null ? a : better(b as number, a as number) ? b : a);
      return { def, expr, init: () => null, add: (a, v) => (v === null || v === undefined ? a : pick(a, ordered(v))), merge: pick, result: (a) => a };
    }
    case 'count_distinct':
      return {
        def,
        expr,
        init: () => ({}),
        add: (a, v) => {
          if (v !== null && v !== undefined) (a as Record<string, 1>)[typeof v === 'string' ? v : JSON.stringify(typeof v === 'bigint' ? String(v) : v)] = 1;
          return a;
        },
        merge: (a, b) => Object.assign(a as object, b),
        result: (a) => Object.keys(a as object).length,
      };
    case 'first':
      return { def, expr, init: () => null, add: (a, v) => (a !== null || v === null || v === undefined ? a : plain(v)), merge: (a, b) => a ?? b, result: (a) => a };
    case 'last':
      return { def, expr, init: () => null, add: (a, v) => (v === null || v === undefined ? a : plain(v)), merge: (a, b) => b ?? a, result: (a) => a };
    case 'percentile':
      return {
        def,
        expr,
        check: numeric,
        init: () => [],
        add: (a, v) => {
          if (v !== null && v !== undefined) (a as number[]).push(toNumber(v, w));
          return a;
        },
        merge: (a, b) => (a as number[]).concat(b as number[]),
        result: (a) => percentileCont(a as number[], def.p!),
      };
  }
}

/** A value as state keeps it (JSON: an int64 bigint as its text when beyond 2^53). */
const plain = (v: unknown): unknown => (typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : String(v)) : v);

/** The value at fraction `p` of `values`, interpolated linearly (PostgreSQL's percentile_cont). */
export function percentileCont(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((x, y) => x - y);
  const at = p * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo] + (s[hi] - s[lo]) * (at - lo);
}
