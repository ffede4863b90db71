/**
 * THE MySQL/MariaDB type mapping (docs/connectors/mysql-types.md): a column's type name, its Kafka
 * Connect schema, and the conversion of a snapshot's text value. The binlog decoder builds its
 * columns with the same `buildColumn`, and its binary values land on the same Values, so a row
 * looks the same whether the snapshot read it or the binlog delivered it.
 *
 * Values follow Debezium's MySQL connector with decimal.handling.mode=string and
 * time.precision.mode=adaptive_time_microseconds.
 */
import type { FieldSchema, Value } from '../../core/event.ts';
import type { BinlogColumn } from './binlog/types.ts';
import { bitsLittleEndian, datetimeMicros, datetimeMillis, daysFromCivil, float32Value } from './binlog/values.ts';
import { mysqlError } from './errors.ts';

/** Binlog column type codes (MYSQL_TYPE_*). */
export const MY = {
  DECIMAL: 0, TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, NULL: 6, TIMESTAMP: 7, LONGLONG: 8, INT24: 9, DATE: 10, TIME: 11, DATETIME: 12,
  YEAR: 13, NEWDATE: 14, VARCHAR: 15, BIT: 16, TIMESTAMP2: 17, DATETIME2: 18, TIME2: 19, JSON: 245, NEWDECIMAL: 246, ENUM: 247, SET: 248,
  TINY_BLOB: 249, MEDIUM_BLOB: 250, LONG_BLOB: 251, BLOB: 252, VAR_STRING: 253, STRING: 254, GEOMETRY: 255,
} as const;

/** Everything that decides a column's type name and schema, from either information_schema or a TABLE_MAP. */
export interface ColumnSpec {
  name: string;
  /** The real type: ENUM/SET rather than STRING, BLOB for every TEXT/BLOB size, TIME2/DATETIME2/TIMESTAMP2 for temporal types. */
  typeCode: number;
  unsigned: boolean;
  nullable: boolean;
  key: boolean;
  /** DECIMAL precision and scale. */
  precision?: number;
  scale?: number;
  /** Fractional-second digits of TIME/DATETIME/TIMESTAMP. */
  fsp?: number;
  /** CHAR/VARCHAR length in characters (BINARY/VARBINARY: bytes); BIT: number of bits. */
  length?: number;
  /** TEXT/BLOB size: bytes of the length prefix, 1 tiny, 2 plain, 3 medium, 4 long. */
  blobBytes?: number;
  /** Character set name of text columns; `binary` for byte strings. */
  charset?: string | null;
  /** ENUM/SET labels in declaration order. */
  labels?: string[];
  /** GEOMETRY subtype name: geometry, point, linestring, … */
  geometry?: string;
}

const INT_NAMES: Record<number, string> = { [MY.TINY]: 'tinyint', [MY.SHORT]: 'smallint', [MY.INT24]: 'mediumint', [MY.LONG]: 'int', [MY.LONGLONG]: 'bigint' };
const BLOB_PREFIX = ['tiny', '', 'medium', 'long'];

const quoteLabel = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const withFsp = (name: string, fsp: number | undefined): string => (fsp ? `${name}(${fsp})` : name);

/** The type name as information_schema prints it, minus what the binlog cannot tell (integer display widths, zerofill). */
export function typeNameOf(s: ColumnSpec): string {
  const u = s.unsigned ? ' unsigned' : '';
  const binary = s.charset === 'binary';
  switch (s.typeCode) {
    case MY.TINY: case MY.SHORT: case MY.INT24: case MY.LONG: case MY.LONGLONG:
      return INT_NAMES[s.typeCode] + u;
    case MY.FLOAT: return 'float' + u;
    case MY.DOUBLE: return 'double' + u;
    case MY.NEWDECIMAL: return `decimal(${s.precision},${s.scale})${u}`;
    case MY.YEAR: return 'year';
    case MY.DATE: return 'date';
    case MY.TIME: case MY.TIME2: return withFsp('time', s.fsp);
    case MY.DATETIME: case MY.DATETIME2: return withFsp('datetime', s.fsp);
    case MY.TIMESTAMP: case MY.TIMESTAMP2: return withFsp('timestamp', s.fsp);
    case MY.VARCHAR: return `${binary ? 'varbinary' : 'varchar'}(${s.length})`;
    case MY.STRING: return `${binary ? 'binary' : 'char'}(${s.length})`;
    case MY.BLOB: return BLOB_PREFIX[(s.blobBytes ?? 2) - 1] + (binary ? 'blob' : 'text');
    case MY.JSON: return 'json';
    case MY.ENUM: return `enum(${(s.labels ?? []).map(quoteLabel).join(',')})`;
    case MY.SET: return `set(${(s.labels ?? []).map(quoteLabel).join(',')})`;
    case MY.BIT: return `bit(${s.length})`;
    case MY.GEOMETRY: return s.geometry ?? 'geometry';
    default: return `type${s.typeCode}`;
  }
}

const named = (type: FieldSchema['type'], optional: boolean, name?: string, parameters?: Record<string, string>): FieldSchema => ({
  type,
  optional,
  ...(name ? { name, version: 1 } : {}),
  ...(parameters ? { parameters } : {}),
});

/** The Kafka Connect schema of a column's values. */
export function schemaOf(s: ColumnSpec): FieldSchema {
  const opt = s.nullable;
  switch (s.typeCode) {
    case MY.TINY: return named('int16', opt);
    // SMALLINT UNSIGNED goes up to 65535, beyond int16 (Debezium widens it the same way).
    case MY.SHORT: return named(s.unsigned ? 'int32' : 'int16', opt);
    case MY.INT24: return named('int32', opt);
    case MY.LONG: return named(s.unsigned ? 'int64' : 'int32', opt);
    case MY.LONGLONG: return named('int64', opt);
    case MY.FLOAT: return named('float', opt);
    case MY.DOUBLE: return named('double', opt);
    case MY.NEWDECIMAL: return named('string', opt);
    case MY.YEAR: return named('int32', opt, 'io.debezium.time.Year');
    // Zero dates ('0000-00-00', allowed by a permissive sql_mode even in NOT NULL columns) become
    // null, so date and datetime schemas are always optional.
    case MY.DATE: return named('int32', true, 'io.debezium.time.Date');
    case MY.DATETIME: case MY.DATETIME2:
      return (s.fsp ?? 0) <= 3 ? named('int64', true, 'io.debezium.time.Timestamp') : named('int64', true, 'io.debezium.time.MicroTimestamp');
    case MY.TIMESTAMP: case MY.TIMESTAMP2: return named('string', true, 'io.debezium.time.ZonedTimestamp');
    case MY.TIME: case MY.TIME2: return named('int64', opt, 'io.debezium.time.MicroTime');
    case MY.VARCHAR: case MY.STRING: case MY.BLOB:
      return named(s.charset === 'binary' ? 'bytes' : 'string', opt);
    case MY.JSON: return named('string', opt, 'io.debezium.data.Json');
    case MY.ENUM: return named('string', opt, 'io.debezium.data.Enum', { allowed: (s.labels ?? []).join(',') });
    case MY.SET: return named('string', opt, 'io.debezium.data.EnumSet', { allowed: (s.labels ?? []).join(',') });
    case MY.BIT: return s.length === 1 ? named('boolean', opt) : named('bytes', opt, 'io.debezium.data.Bits', { length: String(s.length) });
    case MY.GEOMETRY: return named('bytes', opt);
    default: return named('bytes', opt);
  }
}

/** A BinlogColumn (type name and schema) from a spec; both the snapshot and the binlog build theirs here. */
export function buildColumn(s: ColumnSpec): BinlogColumn {
  return {
    name: s.name,
    typeName: typeNameOf(s),
    typeCode: s.typeCode,
    nullable: s.nullable,
    unsigned: s.unsigned,
    key: s.key,
    schema: schemaOf(s),
    ...(s.charset ? { charset: s.charset } : {}),
  };
}

/** The Connect schema of a column (the one buildColumn put there). */
export function connectSchema(col: BinlogColumn): FieldSchema {
  return col.schema;
}

/** One row of information_schema.COLUMNS. */
export interface InformationSchemaColumn {
  COLUMN_NAME: string;
  DATA_TYPE: string;
  COLUMN_TYPE: string;
  IS_NULLABLE: string;
  COLUMN_KEY: string;
  NUMERIC_PRECISION: number | string | null;
  NUMERIC_SCALE: number | string | null;
  DATETIME_PRECISION: number | string | null;
  CHARACTER_SET_NAME: string | null;
  ORDINAL_POSITION: number | string;
}

const BY_DATA_TYPE: Record<string, [number, number?]> = {
  tinyint: [MY.TINY], smallint: [MY.SHORT], mediumint: [MY.INT24], int: [MY.LONG], integer: [MY.LONG], bigint: [MY.LONGLONG],
  float: [MY.FLOAT], double: [MY.DOUBLE], real: [MY.DOUBLE], 'double precision': [MY.DOUBLE], decimal: [MY.NEWDECIMAL], numeric: [MY.NEWDECIMAL],
  year: [MY.YEAR], date: [MY.DATE], time: [MY.TIME2], datetime: [MY.DATETIME2], timestamp: [MY.TIMESTAMP2],
  char: [MY.STRING], binary: [MY.STRING], varchar: [MY.VARCHAR], varbinary: [MY.VARCHAR],
  tinytext: [MY.BLOB, 1], text: [MY.BLOB, 2], mediumtext: [MY.BLOB, 3], longtext: [MY.BLOB, 4],
  tinyblob: [MY.BLOB, 1], blob: [MY.BLOB, 2], mediumblob: [MY.BLOB, 3], longblob: [MY.BLOB, 4],
  enum: [MY.ENUM], set: [MY.SET], bit: [MY.BIT], json: [MY.JSON],
  geometry: [MY.GEOMETRY], point: [MY.GEOMETRY], linestring: [MY.GEOMETRY], polygon: [MY.GEOMETRY], multipoint: [MY.GEOMETRY],
  multilinestring: [MY.GEOMETRY], multipolygon: [MY.GEOMETRY], geometrycollection: [MY.GEOMETRY], geomcollection: [MY.GEOMETRY],
};
const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/** ENUM/SET labels from a COLUMN_TYPE such as `enum('a','it''s')`. */
export function parseLabels(columnType: string): string[] {
  const open = columnType.indexOf('(');
  const out: string[] = [];
  let i = open + 1;
  while (i < columnType.length && columnType[i] === "'") {
    let s = '';
    i++;
    for (;;) {
      const c = columnType[i];
      if (c === undefined) return out;
      if (c === "'" && columnType[i + 1] === "'") {
        s += "'";
        i += 2;
      } else if (c === "'") {
        i++;
        break;
      } else if (c === '\\' && i + 1 < columnType.length) {
        s += columnType[i + 1];
        i += 2;
      } else {
        s += c;
        i++;
      }
    }
    out.push(s);
    if (columnType[i] === ',') i++;
  }
  return out;
}

const firstNumber = (s: string): number | undefined => {
  const m = /\((\d+)/.exec(s);
  return m ? Number(m[1]) : undefined;
};

/** A captured column from its information_schema.COLUMNS row (the snapshot's view of the table). */
export function columnFromInformationSchema(row: InformationSchemaColumn): BinlogColumn {
  const dataType = String(row.DATA_TYPE).toLowerCase();
  const columnType = String(row.COLUMN_TYPE);
  const lowerType = columnType.toLowerCase();
  const hit = BY_DATA_TYPE[dataType];
  if (!hit) {
    throw mysqlError(
      'MYSQL_UNSUPPORTED_TYPE',
      `column ${row.COLUMN_NAME} has type ${columnType}, which Sluice cannot map to a change-event field. Exclude the table from source.tables, or add a generated column that converts it (… ADD COLUMN ${row.COLUMN_NAME}_text VARCHAR(64) AS (CAST(${row.COLUMN_NAME} AS CHAR)) STORED) and capture that.`,
    );
  }
  const [typeCode, blobBytes] = hit;
  const spec: ColumnSpec = {
    name: String(row.COLUMN_NAME),
    typeCode,
    unsigned: /\bunsigned\b/.test(lowerType),
    nullable: String(row.IS_NULLABLE).toUpperCase() === 'YES',
    key: String(row.COLUMN_KEY).toUpperCase() === 'PRI',
  };
  switch (typeCode) {
    case MY.NEWDECIMAL:
      spec.precision = Number(row.NUMERIC_PRECISION ?? firstNumber(lowerType) ?? 10);
      spec.scale = Number(row.NUMERIC_SCALE ?? 0);
      break;
    case MY.TIME2: case MY.DATETIME2: case MY.TIMESTAMP2:
      spec.fsp = Number(row.DATETIME_PRECISION ?? firstNumber(lowerType) ?? 0);
      break;
    case MY.STRING: case MY.VARCHAR:
      spec.length = firstNumber(lowerType) ?? 0;
      spec.charset = BINARY_TYPES.has(dataType) ? 'binary' : (row.CHARACTER_SET_NAME ?? 'utf8mb4').toLowerCase();
      break;
    case MY.BLOB:
      spec.blobBytes = blobBytes;
      spec.charset = BINARY_TYPES.has(dataType) ? 'binary' : (row.CHARACTER_SET_NAME ?? 'utf8mb4').toLowerCase();
      break;
    case MY.ENUM: case MY.SET:
      spec.labels = parseLabels(columnType);
      spec.charset = (row.CHARACTER_SET_NAME ?? 'utf8mb4').toLowerCase();
      break;
    case MY.BIT:
      spec.length = Number(row.NUMERIC_PRECISION ?? firstNumber(lowerType) ?? 1);
      break;
    case MY.GEOMETRY:
      spec.geometry = dataType;
      break;
  }
  return buildColumn(spec);
}

/**
 * The select-list expression that reads a column for the snapshot so textValue gets its full value:
 * FLOAT columns print only 6 significant digits as text, so they are read as a DOUBLE (exactly the
 * stored 32-bit value) instead.
 */
export function selectExpression(col: BinlogColumn, quotedIdent: string): string {
  return col.typeCode === MY.FLOAT ? `(${quotedIdent} + 0e0)` : quotedIdent;
}

type TextConv = (raw: string | Buffer) => Value;
const converters = new WeakMap<BinlogColumn, TextConv>();

const ascii = (raw: string | Buffer): string => (typeof raw === 'string' ? raw : raw.toString('latin1'));
const utf8 = (raw: string | Buffer): string => (typeof raw === 'string' ? raw : raw.toString('utf8'));
const bytes = (raw: string | Buffer): Buffer => (typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
const digits = (s: string, a: number, b: number): number => {
  let v = 0;
  for (let i = a; i < b; i++) v = v * 10 + (s.charCodeAt(i) - 48);
  return v;
};
/** Microseconds of a fraction `.123` starting at s[i] (the dot), or 0. */
const fraction = (s: string, i: number): number => {
  if (s.charCodeAt(i) !== 46) return 0;
  let v = 0;
  let n = 0;
  for (let j = i + 1; j < s.length && n < 6; j++, n++) v = v * 10 + (s.charCodeAt(j) - 48);
  for (; n < 6; n++) v *= 10;
  return v;
};

function textDate(raw: string | Buffer): Value {
  const s = ascii(raw);
  const y = digits(s, 0, 4), m = digits(s, 5, 7), d = digits(s, 8, 10);
  return y === 0 || m === 0 || d === 0 ? null : daysFromCivil(y, m, d);
}

function textDatetime(micros: boolean): TextConv {
  return (raw) => {
    const s = ascii(raw);
    const y = digits(s, 0, 4), mo = digits(s, 5, 7), d = digits(s, 8, 10);
    if (y === 0 || mo === 0 || d === 0) return null;
    const h = digits(s, 11, 13), mi = digits(s, 14, 16), sec = digits(s, 17, 19);
    const f = fraction(s, 19);
    return micros ? datetimeMicros(y, mo, d, h, mi, sec, f) : datetimeMillis(y, mo, d, h, mi, sec, f);
  };
}

// TIMESTAMP text is in the session time zone: textValue assumes the snapshot connection ran
// SET time_zone = '+00:00', so the text is already UTC and only needs its ISO spelling. Debezium's
// snapshot writes the fraction without its trailing zeros (`…:05.1Z`, `…:05Z`), where its binlog
// reader, like ours (binlog/values.ts), writes the column's fsp digits.
function textTimestamp(raw: string | Buffer): Value {
  const s = ascii(raw);
  if (s.startsWith('0000-00-00')) return null;
  let end = s.length;
  if (end > 19 && s.charCodeAt(19) === 46) {
    while (s.charCodeAt(end - 1) === 48) end--;
    if (end === 20) end = 19;
  }
  return s.slice(0, 10) + 'T' + s.slice(11, end) + 'Z';
}

function textTime(raw: string | Buffer): Value {
  const s = ascii(raw);
  let i = 0;
  const neg = s.charCodeAt(0) === 45;
  if (neg) i = 1;
  const c1 = s.indexOf(':', i);
  const h = digits(s, i, c1);
  const mi = digits(s, c1 + 1, c1 + 3);
  const sec = digits(s, c1 + 4, c1 + 6);
  const v = ((h * 60 + mi) * 60 + sec) * 1_000_000 + fraction(s, c1 + 6);
  return neg ? -v : v;
}

function makeConverter(col: BinlogColumn): TextConv {
  const fsp = Number(/\((\d+)\)/.exec(col.typeName)?.[1] ?? 0);
  switch (col.typeCode) {
    case MY.TINY: case MY.SHORT: case MY.INT24: case MY.LONG: case MY.YEAR:
      return (raw) => Number(ascii(raw));
    case MY.LONGLONG: return (raw) => BigInt(ascii(raw));
    case MY.FLOAT: return (raw) => float32Value(Math.fround(Number(ascii(raw))));
    case MY.DOUBLE: return (raw) => Number(ascii(raw));
    // MySQL prints DECIMAL exactly, with exactly `scale` fraction digits: the value as is.
    case MY.NEWDECIMAL: case MY.DECIMAL: return ascii;
    case MY.DATE: case MY.NEWDATE: return textDate;
    case MY.DATETIME: case MY.DATETIME2: return textDatetime(fsp > 3);
    case MY.TIMESTAMP: case MY.TIMESTAMP2: return textTimestamp;
    case MY.TIME: case MY.TIME2: return textTime;
    case MY.BIT: {
      const n = Number(/bit\((\d+)\)/.exec(col.typeName)?.[1] ?? 1);
      if (n === 1) return (raw) => bytes(raw).some((b) => b !== 0);
      return (raw) => {
        const b = bytes(raw);
        return bitsLittleEndian(b, 0, b.length, n);
      };
    }
    case MY.GEOMETRY: return bytes;
    default:
      // Text arrives in the connection's character set (utf8mb4), whatever the column's is.
      return col.schema.type === 'bytes' ? bytes : utf8;
  }
}

/**
 * A value the snapshot read as text (or as raw bytes, for columns whose result-set charset is
 * binary: numbers and dates come as ASCII bytes then) → the Value the binlog decoder gives for the
 * same datum. Assumes a utf8mb4 connection with time_zone '+00:00' and FLOAT columns read through
 * selectExpression.
 */
export function textValue(col: BinlogColumn, raw: string | Buffer | null): Value {
  if (raw === null || raw === undefined) return null;
  let conv = converters.get(col);
  if (!conv) {
    conv = makeConverter(col);
    converters.set(col, conv);
  }
  return conv(raw);
}
