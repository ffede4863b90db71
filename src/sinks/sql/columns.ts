/**
 * What a column holds, independent of any target: derived from the Kafka Connect schema in events
 * (logical names such as io.debezium.time.MicroTimestamp) and the source type name. Each sink maps
 * a kind to its own column type and to the expression that turns the event's JSON value into it.
 */
import type { FieldSchema } from '../../core/event.ts';
import type { SchemaColumn, SchemaRecord } from '../../core/schemas.ts';
import type { SinkCommonConfig } from '../config.ts';
import { sinkError } from '../errors.ts';

export type Kind =
  | { k: 'bool' }
  | { k: 'int'; bytes: 1 | 2 | 4 | 8 }
  | { k: 'float'; bytes: 4 | 8 }
  | { k: 'decimal'; precision?: number; scale?: number }
  | { k: 'string'; length?: number; fixed?: boolean }
  | { k: 'bytes' }
  | { k: 'date' }
  | { k: 'time_us' }
  | { k: 'timestamp_us' }
  | { k: 'timestamp_ms' }
  | { k: 'timestamptz' }
  | { k: 'timetz' }
  | { k: 'json' }
  | { k: 'uuid' }
  /** `clock`: a MySQL TIME, a signed duration within ±838:59:59 (MySQL targets keep it a TIME). */
  | { k: 'interval_us'; clock?: boolean }
  /** io.debezium.time.Interval: ISO 8601 `P1Y2M3DT4H5M6.5S`, years, months, days and time apart. */
  | { k: 'interval' }
  | { k: 'array'; of: Kind };

export interface TargetColumn {
  name: string;
  kind: Kind;
  key: boolean;
  /** The source type name (e.g. `numeric(10,2)`); sinks of the same database family may reuse it. */
  sourceType: string;
  /** A metadata column added by the unwrap options (`__op`, …) or the soft-delete flag. */
  meta?: 'op' | 'table' | 'source_ts_ms' | 'deleted';
}

export function kindOf(schema: FieldSchema, sourceType = '', connector = ''): Kind {
  const name = schema.name ?? '';
  switch (name) {
    case 'io.debezium.time.Date':
      return { k: 'date' };
    case 'io.debezium.time.MicroTime':
      // MySQL's TIME is a duration (negative, or past 24 h), which a time-of-day column would wrap.
      return connector === 'mysql' ? { k: 'interval_us', clock: true } : { k: 'time_us' };
    case 'io.debezium.time.MicroTimestamp':
      return { k: 'timestamp_us' };
    case 'io.debezium.time.Timestamp':
      return { k: 'timestamp_ms' };
    case 'io.debezium.time.ZonedTimestamp':
      return { k: 'timestamptz' };
    case 'io.debezium.time.ZonedTime':
      return { k: 'timetz' };
    case 'io.debezium.data.Json':
      return { k: 'json' };
    case 'io.debezium.data.Uuid':
      return { k: 'uuid' };
    case 'io.debezium.time.MicroDuration':
      return { k: 'interval_us' };
    case 'io.debezium.time.Interval':
      return { k: 'interval' };
  }
  switch (schema.type) {
    case 'boolean':
      return { k: 'bool' };
    case 'int8':
      return { k: 'int', bytes: 1 };
    case 'int16':
      return { k: 'int', bytes: 2 };
    case 'int32':
      return { k: 'int', bytes: 4 };
    case 'int64':
      // MySQL's BIGINT UNSIGNED goes past int64 (values up to 2^64-1 travel exact): an exact decimal.
      return /^bigint\b.*\bunsigned\b/i.test(sourceType) ? { k: 'decimal', precision: 20, scale: 0 } : { k: 'int', bytes: 8 };
    case 'float':
    case 'float32':
      return { k: 'float', bytes: 4 };
    case 'double':
    case 'float64':
      return { k: 'float', bytes: 8 };
    case 'bytes':
      return { k: 'bytes' };
    case 'array':
      return { k: 'array', of: kindOf(schema.items!, sourceType.replace(/\[\]$/, '')) };
    case 'string': {
      const t = sourceType.toLowerCase();
      const dec = /^(?:numeric|decimal)(?:\((\d+)(?:,\s*(\d+))?\))?/.exec(t);
      if (dec) return { k: 'decimal', precision: dec[1] ? Number(dec[1]) : undefined, scale: dec[1] ? Number(dec[2] ?? 0) : undefined };
      const len = /^(character varying|varchar|character|char|bpchar)\((\d+)\)$/.exec(t);
      if (len) return { k: 'string', length: Number(len[2]), fixed: !/var/.test(len[1]) };
      return { k: 'string' };
    }
    default:
      throw sinkError('SINK_UNSUPPORTED_TYPE', `a column of Connect type ${schema.type}${name ? ` (${name})` : ''} cannot be written to a table sink; exclude the table with the sink's \`tables\` option`);
  }
}

export function kindName(k: Kind): string {
  if (k.k === 'array') return `${kindName(k.of)}[]`;
  if (k.k === 'int') return `int${k.bytes * 8}`;
  if (k.k === 'float') return `float${k.bytes * 8}`;
  if (k.k === 'decimal') return k.precision ? `decimal(${k.precision},${k.scale ?? 0})` : 'decimal';
  return k.k;
}

/** The target table's columns for a schema: key columns first as in the source, then the rest, then metadata. */
export function targetColumns(schema: SchemaRecord, cfg: SinkCommonConfig): TargetColumn[] {
  const cols: TargetColumn[] = schema.columns.map((c: SchemaColumn) => ({ name: c.name, kind: kindOf(c.connect, c.sourceType, schema.connector), key: c.key, sourceType: c.sourceType }));
  for (const f of cfg.addFields) {
    const name = `__${f}`;
    if (cols.some((c) => c.name === name)) continue;
    cols.push({ name, kind: f === 'source_ts_ms' ? { k: 'int', bytes: 8 } : { k: 'string' }, key: false, sourceType: '', meta: f });
  }
  if (cfg.deletes === 'soft' && !cols.some((c) => c.name === cfg.softDeleteColumn)) {
    cols.push({ name: cfg.softDeleteColumn, kind: { k: 'bool' }, key: false, sourceType: '', meta: 'deleted' });
  }
  return cols;
}

/** `{schema}`/`{table}` in a name template. */
export function targetName(template: string, schema: SchemaRecord): string {
  // A function replacer: a `$&` in a name is the name's own text, not a replacement pattern.
  return template.replace(/\{schema\}/g, () => schema.schema).replace(/\{table\}/g, () => schema.table);
}

/**
 * Whether a target column declared as `family` can take values of `kind` (after an ALTER TABLE in
 * the source): same family, or a wider integer/float, or text which takes anything.
 */
export function compatible(kind: Kind, target: { family: string; bytes?: number }): boolean {
  const f = target.family;
  if (f === 'string') return true;
  switch (kind.k) {
    case 'int':
      return (f === 'int' && (target.bytes ?? 8) >= kind.bytes) || f === 'decimal' || f === 'float';
    case 'float':
      return (f === 'float' && (target.bytes ?? 8) >= kind.bytes);
    case 'decimal':
      return f === 'decimal';
    case 'string':
    case 'uuid':
      return f === 'string' || f === kind.k;
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'timestamptz':
      return f === 'timestamp' || f === 'timestamptz';
    case 'interval_us':
      return f === 'interval_us' || (kind.clock === true && f === 'time_us');
    case 'interval':
      return f === 'interval_us';
    default:
      return f === kind.k || (kind.k === 'array' && f === 'array');
  }
}
