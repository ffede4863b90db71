/**
 * Column types and values for Cassandra. A source column's kind (sql/columns.ts, from its Kafka
 * Connect schema) gives the CQL type of a table the sink creates; a value is converted to what the
 * driver binds for the target column's actual CQL type (a table made by hand may differ):
 *
 *   bool → boolean          int8/16/32/64 → tinyint/smallint/int/bigint    float32/64 → float/double
 *   decimal → decimal       string → text            bytes → blob          uuid → uuid
 *   date → date             time (µs) → time         timestamp, timestamptz → timestamp (ms)
 *   json, timetz, interval (ISO 8601) → text         interval (µs), MySQL TIME → bigint (µs)
 *   array → frozen<list<…>> (nested: frozen<list<frozen<list<…>>>>)
 */
import cassandra from 'cassandra-driver';
import type { FieldSchema, Value } from '../../core/event.ts';
import type { Kind, TargetColumn } from '../sql/columns.ts';
import { converterOf } from '../document/reshape.ts';
import { Decimal, type DocValue } from '../document/types.ts';
import { toJsonText } from '../document/json.ts';
import { Refused } from '../sql/values.ts';

const { types } = cassandra;
const DAY_MS = 86_400_000;

/** The CQL type of a column of `kind` in a table the sink creates. */
export function cqlType(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'boolean';
    case 'int':
      return ({ 1: 'tinyint', 2: 'smallint', 4: 'int', 8: 'bigint' } as const)[kind.bytes];
    case 'float':
      return kind.bytes === 4 ? 'float' : 'double';
    case 'decimal':
      return 'decimal';
    case 'string':
    case 'json':
    case 'timetz':
    case 'interval':
      return 'text';
    case 'bytes':
      return 'blob';
    case 'uuid':
      return 'uuid';
    case 'date':
      return 'date';
    case 'time_us':
      return 'time';
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'timestamptz':
      return 'timestamp';
    case 'interval_us':
      return 'bigint';
    case 'array':
      return `frozen<list<${cqlType(kind.of)}>>`;
  }
}

/** Turns one event value into what the driver binds for a column of `cql` type; throws Refused when it cannot. */
export type CqlConverter = (v: Value) => unknown;

/** The element type of a CQL list or set type (`frozen<list<int>>` → `int`), or null. */
function elementType(cql: string): string | null {
  let t = cql;
  while (t.startsWith('frozen<') && t.endsWith('>')) t = t.slice('frozen<'.length, -1);
  const m = /^(list|set)<(.+)>$/.exec(t);
  return m ? m[2] : null;
}

const BIG = /^[+-]?\d+$/;

function bigintOf(v: DocValue): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && BIG.test(v)) return BigInt(v);
  if (v instanceof Decimal && BIG.test(v.text)) return BigInt(v.text);
  throw new Refused(`a CQL bigint holds whole numbers (got ${JSON.stringify(String(v))})`);
}

function textOf(v: DocValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Decimal) return v.text;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return toJsonText(v);
}

/** Converts a converted document value (reshape.ts) to a driver value for `cql`. */
function toCql(v: DocValue, cql: string): unknown {
  if (v === null || v === undefined) return null;
  const base = cql.replace(/\s+/g, '').toLowerCase();
  const el = elementType(base);
  if (el !== null) {
    if (!Array.isArray(v)) throw new Refused(`a CQL ${cql} takes a list (got ${textOf(v)})`);
    return v.map((x) => {
      if (x === null || x === undefined) throw new Refused('a Cassandra list cannot hold null elements');
      return toCql(x, el);
    });
  }
  switch (base) {
    case 'text':
    case 'varchar':
    case 'ascii':
      return textOf(v);
    case 'boolean':
      return typeof v === 'boolean' ? v : v === 'true' || v === 1;
    case 'tinyint':
    case 'smallint':
    case 'int':
      return Number(v);
    case 'bigint':
    case 'counter':
    case 'varint':
      return bigintOf(v);
    case 'float':
    case 'double':
      return typeof v === 'number' ? v : Number(textOf(v));
    case 'decimal':
      return types.BigDecimal.fromString(textOf(v));
    case 'blob':
      return Buffer.isBuffer(v) ? v : Buffer.from(textOf(v));
    case 'uuid':
    case 'timeuuid':
      return types.Uuid.fromString(textOf(v));
    case 'timestamp':
      if (v instanceof Date) return v;
      if (typeof v === 'number' || typeof v === 'bigint') return new Date(Number(v));
      return new Date(textOf(v));
    case 'date':
      // One argument: days since the epoch (the typings list only the year-month-day form).
      if (v instanceof Date) return new (types.LocalDate as unknown as new (days: number) => unknown)(Math.floor(v.getTime() / DAY_MS));
      return types.LocalDate.fromString(textOf(v));
    case 'time':
      return types.LocalTime.fromString(textOf(v));
    default:
      return v;
  }
}

/** The converter from an event value of column `col` (its Connect schema) to a value of the target's `cql` type. */
export function converterFor(connect: FieldSchema, sourceType: string, col: TargetColumn, cql: string): CqlConverter {
  // JSON columns keep their text exactly as the source wrote it.
  if (col.kind.k === 'json') return (v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : toJsonText(v as DocValue));
  const doc = converterOf(connect, sourceType);
  return (v) => {
    const d = doc(v);
    if (typeof d === 'number' && !Number.isFinite(d) && /^(tinyint|smallint|int|bigint|varint|decimal)$/.test(cql)) throw new Refused(`a CQL ${cql} has no NaN or infinity`);
    return toCql(d, cql);
  };
}

/** Quotes a CQL identifier (names are case-sensitive as the source has them). */
export const qi = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
