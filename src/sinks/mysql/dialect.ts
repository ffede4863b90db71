/** MySQL/MariaDB as a SQL sink target: its column types, catalog, DDL and offsets upsert. */
import type { Kind } from '../sql/columns.ts';
import type { Family, Refusal, SqlDialect } from '../sql/dialect.ts';

const qi = (s: string): string => '`' + s.replace(/`/g, '``') + '`';
/** A string literal; backslashes escape in MySQL's default sql_mode, so they are doubled too. */
const ql = (s: string): string => "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "''") + "'";

/** The column type of a kind; `key`: the column is (part of) the primary key, which needs a bounded length. */
export function mysqlType(kind: Kind, key: boolean): string {
  // (Decimal and key lengths here are what mysqlValue checks values against.)
  switch (kind.k) {
    case 'bool':
      return 'TINYINT(1)';
    case 'int':
      return ['', 'TINYINT', 'SMALLINT', '', 'INT', '', '', '', 'BIGINT'][kind.bytes];
    case 'float':
      return kind.bytes === 4 ? 'FLOAT' : 'DOUBLE';
    case 'decimal':
      return kind.precision && kind.precision <= 65 && (kind.scale ?? 0) <= 30 ? `DECIMAL(${kind.precision},${kind.scale ?? 0})` : 'DECIMAL(65,30)';
    case 'string':
      if (kind.length && kind.length <= 16383) return `${kind.fixed && kind.length <= 255 ? 'CHAR' : 'VARCHAR'}(${kind.length})`;
      return key ? 'VARCHAR(255)' : 'LONGTEXT';
    case 'bytes':
      return key ? 'VARBINARY(255)' : 'LONGBLOB';
    case 'date':
      return 'DATE';
    case 'time_us':
      return 'TIME(6)';
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'timestamptz':
      return 'DATETIME(6)';
    case 'timetz':
      return 'VARCHAR(32)';
    case 'json':
      return 'JSON';
    case 'uuid':
      return 'CHAR(36)';
    case 'interval_us':
      return kind.clock ? 'TIME(6)' : 'BIGINT';
    case 'interval':
      // ISO 8601 text (`P1Y2M3DT4H5M6.5S`): MySQL has no interval type, and text keeps it exact.
      return 'VARCHAR(80)';
    case 'array':
      return 'JSON';
  }
}

/** The family of a type as information_schema.COLUMNS.COLUMN_TYPE prints it. */
function family(columnType: string): Family {
  const t = columnType.toLowerCase();
  if (t.startsWith('tinyint(1)')) return { family: 'bool' };
  const ints: Record<string, number> = { tinyint: 1, smallint: 2, mediumint: 4, int: 4, bigint: 8 };
  const base = t.replace(/\(.*$/, '').replace(/ unsigned$/, '');
  if (base in ints) return { family: 'int', bytes: ints[base] };
  if (base === 'float') return { family: 'float', bytes: 4 };
  if (base === 'double') return { family: 'float', bytes: 8 };
  if (base === 'decimal') return { family: 'decimal' };
  if (/char|text/.test(base) || base === 'json') return { family: 'string' };
  if (/blob|binary/.test(base)) return { family: 'bytes' };
  if (base === 'date') return { family: 'date' };
  if (base === 'time') return { family: 'time_us' };
  if (base === 'datetime' || base === 'timestamp') return { family: 'timestamp' };
  return { family: 'other' };
}

/** Server errors that a retry can get past: lock wait timeout, deadlock, too many connections, shutdown. */
const TRANSIENT = [1205, 1213, 1040, 1053];

export const mysqlDialect: SqlDialect = {
  label: 'MySQL',
  qi,
  ql,
  param: () => '?',
  begin: 'START TRANSACTION',
  columnType: (col) => mysqlType(col.kind, col.key),
  family,
  columnDef: (col, type) => `${qi(col.name)} ${type}${col.key ? ' NOT NULL' : ' NULL'}`,
  addColumn: (table, column, type) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${qi(column)} ${type} NULL`,
  changeTypeHint: (table, column, type) => `ALTER TABLE ${table} MODIFY ${qi(column)} ${type}`,
  readColumns: (ref) => ({
    sql: `SELECT COLUMN_NAME AS n, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    params: [ref.table],
  }),
  // Binary collation: keys differing only in case or accents stay distinct, as in the source.
  tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin',
  offsetsUpdatedAt: 'TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)',
  offsetsLock: ' FOR UPDATE',
  offsetsUpsert: (table, sink, offsets) => ({
    sql: `INSERT INTO ${table} (sink, topic, \`partition\`, next_offset) VALUES ? ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)`,
    params: [offsets.map((o) => [sink, o.topic, o.partition, o.next])],
  }),
  refusal(e): Refusal | null {
    const err = e as { code?: string; errno?: number; sqlMessage?: string; message?: string };
    // Data and definition errors (1xxx/3xxx/4xxx server errors other than locks and connection loss) are permanent.
    if (typeof err.errno === 'number' && err.errno >= 1000 && err.errno < 5000 && !TRANSIENT.includes(err.errno)) {
      return { code: 'SINK_REJECTED', detail: `${err.sqlMessage ?? err.message} (${err.code})` };
    }
    return null;
  },
};
