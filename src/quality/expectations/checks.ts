/**
 * The record-level checks of expectations, compiled once from their config: each tests one
 * record and gives null (it passes) or the reason it fails, in words a user can act on
 * (`after.amount = -5 is below min 0`). `unique` and `referential` read the processor's keyed
 * state; a check changes state only in `keep`, called once the record is known to be kept, so a
 * record that is dead-lettered or stops the processor leaves no trace. Volume (a check of windows,
 * not records) is in volume.ts.
 *
 * Null passes every check but `notNull`, as in SQL constraints: a missing value is `notNull`'s
 * business, and the other checks say what a present value must be.
 */
import type { SchemaRecord } from '../../core/schemas.ts';
import type { KeyedState, TransformInput } from '../../registry/spec.ts';
import { compileExpr, type Compiled } from '../../processors/expr/index.ts';
import { parseIsoMs } from '../../processors/expr/time.ts';
import { eq, isNumericString, numeric, show } from '../../processors/expr/values.ts';
import { evaluate, type Scope } from '../../processors/exprs.ts';
import type { ExpectationConfig } from '../../processors/expect/spec.ts';
import { kindOf } from './config.ts';

/** One record as the checks see it. */
export interface Subject {
  rec: TransformInput;
  scope: Scope;
  /** The row: a change event's `after`, or the value itself (a flat row, an event). */
  row: unknown;
  /** The change event's schema (header `s`), when it has one and the log holds it. */
  schema?: SchemaRecord;
  /** Wall-clock time of the check (ms). */
  now: number;
}

export interface RecordCheck {
  /** Why the record fails, or null when it passes. */
  test(s: Subject): string | null;
  /** The record is kept (passed on): remember what later records are checked against. */
  keep?(s: Subject): void;
}

/** What stateful checks read: the keyed state, and the clock (the largest record timestamp seen). */
export interface CheckEnv {
  state(): KeyedState;
  clock(): number;
}

/** A value as reasons quote it: numbers and numeric text bare, other text quoted. */
export const shown = (v: unknown): string => (typeof v === 'string' && isNumericString(v) ? v : show(v));

/** A value as a state key: numbers, int64 and numeric text by value (7, 7n and "7.00" are one key), anything else as JSON. */
export function canonical(v: unknown): string {
  const n = numeric(v);
  if (n !== undefined) return 'n' + String(n);
  if (typeof v === 'string') return 's' + v;
  return 'j' + JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}

/** A duration for messages: `7m12s`, `450ms`, `2h`. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const parts: string[] = [];
  let s = Math.floor(ms / 1000);
  for (const [unit, n] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join('');
}

const field = (src: string) => compileExpr(src);

/** Compiles the check of a record-level expectation (every kind but volume). */
export function compileCheck(e: ExpectationConfig, processor: string, env: CheckEnv): RecordCheck {
  const what = `processor ${processor} (expectation ${e.name})`;
  const read = (c: Compiled, s: Subject) => evaluate(c, s.scope, what);
  const kind = kindOf(e);
  switch (kind) {
    case 'notNull': {
      const fields = e.notNull!.map(field);
      return {
        test(s) {
          const missing = fields.filter((f) => {
            const v = read(f, s);
            return v === null || v === undefined;
          });
          return missing.length ? `${missing.map((f) => f.source).join(', ')} ${missing.length > 1 ? 'are' : 'is'} null` : null;
        },
      };
    }
    case 'range': {
      const r = e.range!;
      const f = field(r.field);
      return {
        test(s) {
          const v = read(f, s);
          if (v === null || v === undefined) return null;
          const n = numeric(v);
          if (n === undefined || (typeof n === 'number' && Number.isNaN(n))) return `${f.source} = ${shown(v)} is not a number`;
          if (r.min !== undefined && n < r.min) return `${f.source} = ${shown(v)} is below min ${r.min}`;
          if (r.max !== undefined && n > r.max) return `${f.source} = ${shown(v)} is above max ${r.max}`;
          return null;
        },
      };
    }
    case 'regex': {
      const r = e.regex!;
      const f = field(r.field);
      const re = new RegExp(r.pattern, (r.flags ?? '').replace(/[gy]/g, ''));
      return {
        test(s) {
          const v = read(f, s);
          if (v === null || v === undefined) return null;
          const text = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : null;
          if (text === null) return `${f.source} = ${shown(v)} is no text to match ${r.pattern}`;
          return re.test(text) ? null : `${f.source} = ${shown(v)} does not match ${r.pattern}`;
        },
      };
    }
    case 'allowed': {
      const a = e.allowed!;
      const f = field(a.field);
      const list = a.values.map((v) => shown(v)).join(', ');
      return {
        test(s) {
          const v = read(f, s);
          if (v === null || v === undefined) return null;
          return a.values.some((x) => eq(v, x)) ? null : `${f.source} = ${shown(v)} is not one of ${list.length > 200 ? list.slice(0, 200) + '…' : list}`;
        },
      };
    }
    case 'expr': {
      const c = compileExpr(e.expr!, { expect: 'boolean' });
      return {
        test(s) {
          const v = read(c, s);
          if (v === true || v === null || v === undefined) return null;
          if (v === false) return `${e.expr} is false`;
          throw new TypeError(`${what}: the condition gave ${shown(v)}, not true or false (in ${e.expr})`);
        },
      };
    }
    case 'freshness': {
      const fr = e.freshness!;
      const f = fr.field ? field(fr.field) : null;
      return {
        test(s) {
          let t: number;
          if (f) {
            const v = read(f, s);
            if (v === null || v === undefined) return null;
            const ms = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? (parseIsoMs(v) ?? numeric(v)) : undefined;
            if (ms === undefined || !Number.isFinite(Number(ms))) return `${f.source} = ${shown(v)} is no time (ms since the epoch or ISO-8601 text)`;
            t = Number(ms);
          } else t = s.rec.timestamp;
          const age = s.now - t;
          if (age <= fr.maxAge) return null;
          return `${f ? f.source : 'the event time'} ${new Date(t).toISOString()} is ${fmtDuration(age)} old, older than maxAge ${fmtDuration(fr.maxAge)}`;
        },
      };
    }
    case 'unique':
      return uniqueCheck(e, env, read);
    case 'referential': {
      const r = e.referential!;
      const f = field(r.field);
      return {
        test(s) {
          const v = read(f, s);
          if (v === null || v === undefined) return null;
          return env.state().get(refKey(r.table, r.key, v)) !== undefined ? null : `${f.source} = ${shown(v)} has no row in ${r.table}${r.key ? ` (${r.key})` : ''}`;
        },
      };
    }
    case 'schema':
      return schemaCheck(e.schema!.required);
    case 'volume':
      throw new Error('bug: volume is no record check');
  }
}

/** The state key of a referenced table's row: its table, key column and key value. */
export const refKey = (table: string, key: string | undefined, v: unknown): string => `r\u0000${table}\u0000${key ?? ''}\u0000${canonical(v)}`;

/** The state key prefix of a unique expectation's values. */
export const uniquePrefix = (name: string): string => `u\u0000${name}\u0000`;

/** What a unique expectation remembers of a value: when it was last kept (record timestamp) and by which row (record key). */
interface Seen {
  t: number;
  k: string | null;
}

function uniqueCheck(e: ExpectationConfig, env: CheckEnv, read: (c: Compiled, s: Subject) => unknown): RecordCheck {
  const u = e.unique!;
  const fields = u.fields.map(field);
  const prefix = uniquePrefix(e.name);
  const keyOf = (s: Subject): string | null => {
    const vs = fields.map((f) => read(f, s));
    if (vs.some((v) => v === null || v === undefined)) return null;
    return prefix + vs.map(canonical).join('\u0000');
  };
  const rowKey = (s: Subject) => (s.rec.key === null ? null : s.rec.key.toString('base64'));
  return {
    test(s) {
      const k = keyOf(s);
      if (k === null) return null;
      const seen = env.state().get<Seen>(k);
      if (!seen || seen.t + u.window < env.clock()) return null;
      const row = rowKey(s);
      if (row !== null && seen.k === row) return null; // the same row again (an update)
      const vals = fields.map((f) => `${f.source} = ${shown(read(f, s))}`).join(', ');
      return `${vals} was seen on another row ${fmtDuration(Math.max(0, s.rec.timestamp - seen.t))} before (within ${fmtDuration(u.window)})`;
    },
    keep(s) {
      const k = keyOf(s);
      if (k === null) return;
      const t = Math.max(s.rec.timestamp, env.state().get<Seen>(k)?.t ?? -Infinity);
      env.state().put(k, { t, k: rowKey(s) } satisfies Seen);
      // Expiry: a timer at the next whole second after the value leaves the window.
      env.state().timer(Math.ceil((t + u.window + 1) / 1000) * 1000, k);
    },
  };
}

/** JSON types a value can have, for rows without a schema. */
const JSON_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'any']);

function jsonTypeOk(v: unknown, t: string): boolean {
  if (v === null || v === undefined || t === 'any') return true;
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'number':
      return typeof v === 'number' || typeof v === 'bigint';
    case 'integer':
      return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && !Array.isArray(v);
  }
  return false;
}

/** Common spellings of source types, so `int` finds `integer` and `varchar` finds `character varying(40)`. */
const ALIASES: Record<string, string> = {
  int: 'integer', int4: 'integer', int2: 'smallint', int8: 'bigint', float4: 'real', float8: 'double precision', double: 'double precision',
  varchar: 'character varying', char: 'character', bpchar: 'character', bool: 'boolean', decimal: 'numeric',
  timestamptz: 'timestamp with time zone', timestamp: 'timestamp without time zone', timetz: 'time with time zone',
};
const norm = (t: string): string => {
  const s = t.trim().toLowerCase().replace(/\s+/g, ' ');
  return ALIASES[s] ?? s;
};
/** Whether a column's source type (`numeric(10,2)`) or Kafka Connect type (`bytes`) is the type required: modifiers are ignored unless required. */
function sourceTypeOk(col: { sourceType: string; connect?: { type?: string; name?: string } }, want: string): boolean {
  const w = norm(want);
  if (w === 'any') return true;
  const have = norm(col.sourceType);
  if (have === w) return true;
  if (!w.includes('(') && norm(have.replace(/\(.*?\)/g, '').replace(/\s+/g, ' ')) === w) return true;
  // `timestamp(3) with time zone`: the modifier in the middle.
  if (!w.includes('(') && have.replace(/\(\d+(,\d+)?\)/g, '').replace(/\s+/g, ' ').trim() === w) return true;
  return col.connect?.type === want || col.connect?.name === want;
}

function schemaCheck(required: Record<string, string>): RecordCheck {
  const cols = Object.entries(required);
  /** Per schema id: why its rows fail (null: they pass). */
  const bySchema = new Map<string, string | null>();
  return {
    test(s) {
      if (s.schema) {
        let r = bySchema.get(s.schema.id);
        if (r === undefined) {
          const have = new Map(s.schema.columns.map((c) => [c.name, c]));
          const problems: string[] = [];
          for (const [name, t] of cols) {
            const c = have.get(name);
            if (!c) problems.push(`column ${name} is missing`);
            else if (!sourceTypeOk(c as never, t)) problems.push(`column ${name} is ${c.sourceType}, not ${t}`);
          }
          r = problems.length ? `${problems.join('; ')} (table ${s.schema.schema}.${s.schema.table})` : null;
          bySchema.set(s.schema.id, r);
        }
        return r;
      }
      const row = s.row;
      if (row === null || typeof row !== 'object' || Array.isArray(row)) return `the row is ${shown(row)}, not a mapping of columns`;
      const problems: string[] = [];
      for (const [name, t] of cols) {
        if (!Object.hasOwn(row, name)) problems.push(`column ${name} is missing`);
        else if (!JSON_TYPES.has(t)) problems.push(`column ${name} cannot be checked as ${t} without a schema (records without one take JSON types: ${[...JSON_TYPES].join(', ')})`);
        else if (!jsonTypeOk((row as Record<string, unknown>)[name], t)) problems.push(`column ${name} = ${shown((row as Record<string, unknown>)[name])} is not ${t}`);
      }
      return problems.length ? problems.join('; ') : null;
    },
  };
}
