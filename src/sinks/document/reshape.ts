/**
 * From change events to documents: each column's Debezium value is converted by its Kafka Connect
 * schema (and source type) into a document value, then laid out by the collection's template (or
 * flat, one field per column). Conversions:
 *   io.debezium.time.Date (days)                → Date at UTC midnight
 *   Timestamp (ms) / MicroTimestamp (µs) / NanoTimestamp (ns) → Date (millisecond precision)
 *   ZonedTimestamp (ISO text)                   → Date
 *   MicroTime / Time / NanoTime                 → "HH:MM:SS[.ffffff]" text
 *   decimal/numeric text, Connect Decimal bytes, VariableScaleDecimal → Decimal (exact)
 *   int64                                       → number when safe, else bigint
 *   io.debezium.data.Json                       → the parsed value
 *   bytes                                       → Buffer
 *   Enum, Uuid, other strings                   → string
 *   arrays                                      → arrays of the converted elements
 */
import type { FieldSchema, Row, Value } from '../../core/event.ts';
import { SluiceError } from '../../core/errors.ts';
import type { SchemaColumn, SchemaRecord } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { render, templateColumns, type Compiled } from './template.ts';
import { Decimal, type Doc, type DocValue } from './types.ts';
import { documentError } from './errors.ts';
import { infinityOf, Refused, unrepresentable } from '../sql/values.ts';

export type Converter = (v: Value) => DocValue;

const DAY_MS = 86_400_000;

function int64(v: Value): DocValue {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  return v as DocValue;
}

const num = (v: Value): number => (typeof v === 'bigint' ? Number(v) : Number(v));

const hasNonFinite = (v: DocValue): boolean => (typeof v === 'number' ? !Number.isFinite(v) : Array.isArray(v) ? v.some(hasNonFinite) : false);

/** A Date of `ms`, or `Refused` when a Date cannot hold it (±infinity markers, years past ±275760). */
function dateOf(ms: number, v: Value, infinite: boolean): Date {
  if (infinite) throw new Refused('a document date has no infinity');
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new Refused(`a document date holds the years 271821 BC to 275760 AD (${typeof v === 'bigint' ? v.toString() : String(v)} is outside)`);
  return d;
}

function timeOfDay(signed: bigint): string {
  // MySQL's TIME is a duration: negative, or past 24 h (`-838:59:59`).
  if (signed < 0n) return '-' + timeOfDay(-signed);
  const us = signed;
  const totalSec = us / 1_000_000n;
  const frac = us % 1_000_000n;
  const h = totalSec / 3600n;
  const m = (totalSec / 60n) % 60n;
  const s = totalSec % 60n;
  const p = (x: bigint) => x.toString().padStart(2, '0');
  return `${p(h)}:${p(m)}:${p(s)}${frac ? '.' + frac.toString().padStart(6, '0').replace(/0+$/, '') : ''}`;
}

/** Big-endian two's complement bytes → bigint. */
function unscaled(b: Buffer): bigint {
  if (b.length === 0) return 0n;
  let n = BigInt('0x' + b.toString('hex'));
  if (b[0] & 0x80) n -= 1n << BigInt(b.length * 8);
  return n;
}

/** Decimal text of unscaled × 10^-scale. */
export function scaledText(u: bigint, scale: number): string {
  if (scale <= 0) return (u * 10n ** BigInt(-scale)).toString();
  const neg = u < 0n;
  const digits = (neg ? -u : u).toString().padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const asBuffer = (v: Value): Buffer => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'base64'));

/** The converter for values of Connect schema `s` (source type `sourceType`). */
export function converterOf(s: FieldSchema, sourceType = ''): Converter {
  const conv = baseConverter(s, sourceType);
  return (v) => (v === null || v === undefined ? null : conv(v));
}

function baseConverter(s: FieldSchema, sourceType: string): Converter {
  switch (s.name) {
    case 'io.debezium.time.Date':
      return (v) => dateOf(num(v) * DAY_MS, v, infinityOf('date', v) !== null);
    case 'io.debezium.time.Timestamp':
      return (v) => dateOf(num(v), v, false);
    case 'io.debezium.time.MicroTimestamp':
      return (v) => dateOf(Math.floor(num(v) / 1000), v, infinityOf('timestamp', v) !== null);
    case 'io.debezium.time.NanoTimestamp':
      return (v) => new Date(Number(BigInt(v as number | bigint) / 1_000_000n));
    case 'io.debezium.time.ZonedTimestamp':
      return (v) => {
        const d = new Date(String(v));
        return Number.isNaN(d.getTime()) ? String(v) : d;
      };
    case 'io.debezium.time.MicroTime':
      return (v) => timeOfDay(BigInt(v as number | bigint));
    case 'io.debezium.time.Time':
      return (v) => timeOfDay(BigInt(v as number | bigint) * 1000n);
    case 'io.debezium.time.NanoTime':
      return (v) => timeOfDay(BigInt(v as number | bigint) / 1000n);
    case 'io.debezium.data.Json':
      return (v) => (typeof v === 'string' ? (parseJson(v) as DocValue) : (v as DocValue));
    case 'org.apache.kafka.connect.data.Decimal': {
      const scale = Number(s.parameters?.scale ?? 0);
      return (v) => (typeof v === 'string' && s.type === 'string' ? new Decimal(v) : new Decimal(scaledText(unscaled(asBuffer(v)), scale)));
    }
    case 'io.debezium.data.VariableScaleDecimal':
      return (v) => {
        const o = v as Row;
        return new Decimal(scaledText(unscaled(asBuffer(o.value)), num(o.scale)));
      };
  }
  switch (s.type) {
    case 'int64':
      return int64;
    case 'float':
    case 'double':
    case 'float32':
    case 'float64':
      return (v) => (typeof v === 'string' ? Number(v) : (v as number));
    case 'bytes':
      return asBuffer;
    case 'string':
      if (/^\s*(numeric|decimal)\b/i.test(sourceType)) return (v) => (typeof v === 'string' && /^[+-]?(\d|\.\d)/.test(v) ? new Decimal(v) : String(v));
      return (v) => (typeof v === 'string' ? v : String(v));
    case 'array': {
      const item = converterOf(s.items ?? { type: 'string', optional: true }, sourceType.replace(/\[\]$/, ''));
      // Any number of dimensions (a PostgreSQL array's schema gives the element, not the depth).
      const each = (v: Value): DocValue => (Array.isArray(v) ? v.map(each) : item(v));
      return (v) => (Array.isArray(v) ? v.map(each) : (v as DocValue));
    }
    case 'struct': {
      const fields = (s.fields ?? []).map((f) => [f.field!, converterOf(f)] as const);
      return (v) => {
        const o = v as Row;
        const out: Doc = {};
        for (const [name, c] of fields) if (name in o) out[name] = c(o[name]);
        for (const k of Object.keys(o)) if (!(k in out)) out[k] = int64(o[k]) as DocValue;
        return out;
      };
    }
    default:
      return (v) => int64(v);
  }
}

/** How one source schema version becomes documents of one collection. */
export class TableShape {
  readonly table: string;
  private readonly converters: [string, Converter][];
  private readonly byName = new Map<string, Converter>();

  constructor(
    readonly schema: SchemaRecord,
    private readonly template: Compiled | null,
    /** The sink's name and target, for errors naming a value the documents cannot hold. */
    private readonly sink: { name: string; label: string; json?: boolean } = { name: '', label: 'a document' },
  ) {
    this.table = `${schema.schema}.${schema.table}`;
    this.converters = schema.columns.map((c: SchemaColumn) => [c.name, converterOf(c.connect, c.sourceType)]);
    for (const [n, c] of this.converters) this.byName.set(n, c);
  }

  /** Template paths that read columns this schema lacks. */
  missingColumns(): { name: string; path: string }[] {
    return this.template ? templateColumns(this.template).filter((c) => !this.byName.has(c.name)) : [];
  }

  /** A row image with every value converted. */
  convert(row: Row): Doc {
    const out: Doc = {};
    for (const [name, c] of this.converters) {
      if (!(name in row)) continue;
      try {
        const v = c(row[name]);
        // JSON has no NaN or infinity (MongoDB's doubles do): JSONB would get null.
        if (this.sink.json && hasNonFinite(v)) throw new Refused('JSON has no NaN or infinity');
        out[name] = v;
      } catch (e) {
        if (e instanceof Refused) throw unrepresentable(this.sink.name, this.sink.label, this.schema, name, row[name], e.why);
        throw e;
      }
    }
    for (const k of Object.keys(row)) if (!(k in out)) out[k] = int64(row[k]) as DocValue;
    return out;
  }

  /** The `_id` of a converted row: its key value, or the key values joined by `|`. */
  idOf(row: Doc): string | number {
    const keys = this.schema.keyColumns;
    if (keys.length === 1) {
      const v = row[keys[0]];
      if (typeof v === 'number' || typeof v === 'string') return v;
      return idText(v);
    }
    // `|` inside a value is escaped, so ('a|b','c') and ('a','b|c') stay two documents.
    return keys.map((k) => idText(row[k]).replace(/\\/g, '\\\\').replace(/\|/g, '\\|')).join('|');
  }

  /** The document of a converted row. */
  document(id: string | number, row: Doc, meta: { sourceTs: Date | null; syncTs: Date; op: string }): Doc {
    if (!this.template) return { _id: id, ...row };
    const body = render(this.template, { row, ...meta, table: this.table }) as Doc;
    return { _id: id, ...body };
  }
}

function idText(v: DocValue | undefined): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'object' && !(v instanceof Decimal)) return JSON.stringify(v);
  return String(v);
}

/** `source.ts_ms` of an envelope as a Date. */
export function sourceTsOf(env: Row): Date | null {
  const src = env.source as Row | null | undefined;
  const ts = src?.ts_ms;
  return typeof ts === 'number' || typeof ts === 'bigint' ? new Date(Number(ts)) : null;
}

export function templateError(message: string): SluiceError {
  return documentError('SINK_TEMPLATE_INVALID', message);
}
