/**
 * DuckDB SQL that reads change events' row images from newline-delimited JSON (lines.ts) into
 * typed values, exactly: the JSON reader types each field (`jsonType`), and `conv` turns it into
 * the column's value. The DuckDB sink and the lake sinks (which write Parquet through DuckDB) use it.
 */
import type { Kind } from '../sql/columns.ts';
import { duckType } from './dialect.ts';

/** How the JSON reader should type the field before conversion. */
export function jsonType(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'BOOLEAN';
    case 'int':
    case 'time_us':
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'interval_us':
      return 'BIGINT';
    case 'date':
      return 'INTEGER';
    case 'array':
      return jsonType(kind.of) + '[]';
    default:
      return 'VARCHAR';
  }
}

/** ISO 8601 intervals as sources write them (`P1Y2M3DT4H5M6.5S`), field by field. */
const ISO_INTERVAL = "'^P(-?\\d+)Y(-?\\d+)M(-?\\d+)DT(-?\\d+)H(-?\\d+)M(-?\\d+(?:\\.\\d+)?)S$'";

/**
 * SQL turning field `x` (as `jsonType` read it) into a value of `kind`, exactly: the ±infinity
 * markers of dates and timestamps, `24:00:00`, ISO's signed years, intervals field by field.
 */
export function conv(kind: Kind, x: string): string {
  switch (kind.k) {
    case 'float':
      return `${x}::${duckType(kind)}`;
    case 'decimal':
      return `${x}::${duckType(kind)}`;
    case 'bytes':
      return `from_base64(${x})`;
    case 'date':
      return `CASE ${x} WHEN 2147483647 THEN DATE 'infinity' WHEN -2147483648 THEN DATE '-infinity' ELSE DATE '1970-01-01' + ${x} END`;
    case 'time_us':
      return `CASE ${x} WHEN 86400000000 THEN TIME '24:00:00' ELSE TIME '00:00:00' + to_microseconds(${x}) END`;
    case 'timestamp_us':
      return `CASE ${x} WHEN 9223372036854775807 THEN TIMESTAMP 'infinity' WHEN -9223372036854775808 THEN TIMESTAMP '-infinity' ELSE make_timestamp(${x}) END`;
    case 'timestamp_ms':
      return `make_timestamp(${x} * 1000)`;
    case 'timestamptz':
      // `+010000-…` → `10000-…` (DuckDB reads `-000099-…` and `0000-…` as ISO's years before 1 already).
      return `(CASE WHEN left(${x}, 1) = '+' THEN ltrim(substr(${x}, 2), '0') ELSE ${x} END)::TIMESTAMPTZ`;
    case 'interval': {
      const f = (i: number) => `regexp_extract(${x}, ${ISO_INTERVAL}, ${i})`;
      return `CASE WHEN ${x} IS NOT NULL THEN to_months(${f(1)}::BIGINT * 12 + ${f(2)}::BIGINT) + to_days(${f(3)}::BIGINT) + to_microseconds(${f(4)}::BIGINT * 3600000000 + ${f(5)}::BIGINT * 60000000 + (${f(6)}::DECIMAL(38,6) * 1000000)::BIGINT) END`;
    }
    case 'json':
      return `${x}::JSON`;
    case 'uuid':
      return `${x}::UUID`;
    case 'interval_us':
      return `to_microseconds(${x})`;
    case 'array':
      return `list_transform(${x}, e -> ${conv(kind.of, 'e')})`;
    default:
      return x;
  }
}

/** The JSON reader's object size limit for lines of up to `longest` bytes. */
export const objectSize = (longest: number) => Math.max(16 << 20, longest + 1024);
