/** DuckDB as a SQL sink target: its column types, catalog, DDL and offsets upsert. */
import type { Kind } from '../sql/columns.ts';
import { ansiIdent, ansiLiteral, type Family, type Refusal, type SqlDialect } from '../sql/dialect.ts';

const qi = ansiIdent;
const ql = ansiLiteral;

export function duckType(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'BOOLEAN';
    case 'int':
      return ['', 'TINYINT', 'SMALLINT', '', 'INTEGER', '', '', '', 'BIGINT'][kind.bytes];
    case 'float':
      return kind.bytes === 4 ? 'FLOAT' : 'DOUBLE';
    case 'decimal':
      return kind.precision && kind.precision <= 38 ? `DECIMAL(${kind.precision},${kind.scale ?? 0})` : 'VARCHAR';
    case 'bytes':
      return 'BLOB';
    case 'date':
      return 'DATE';
    case 'time_us':
      return 'TIME';
    case 'timestamp_us':
    case 'timestamp_ms':
      return 'TIMESTAMP';
    case 'timestamptz':
      return 'TIMESTAMPTZ';
    case 'json':
      return 'JSON';
    case 'uuid':
      return 'UUID';
    case 'interval_us':
    case 'interval':
      // Months, days and microseconds apart, as PostgreSQL's interval: ISO intervals fit exactly.
      return 'INTERVAL';
    case 'array':
      return duckType(kind.of) + '[]';
    default:
      return 'VARCHAR';
  }
}

/** The family of a type as information_schema.columns.data_type prints it. */
function family(t: string): Family {
  const u = t.toUpperCase();
  if (u.endsWith('[]')) return { family: 'array' };
  const ints: Record<string, number> = { TINYINT: 1, SMALLINT: 2, INTEGER: 4, BIGINT: 8, HUGEINT: 16 };
  if (u in ints) return { family: 'int', bytes: ints[u] };
  if (u === 'FLOAT') return { family: 'float', bytes: 4 };
  if (u === 'DOUBLE') return { family: 'float', bytes: 8 };
  if (u.startsWith('DECIMAL')) return { family: 'decimal' };
  if (u === 'VARCHAR') return { family: 'string' };
  if (u === 'BOOLEAN') return { family: 'bool' };
  if (u === 'BLOB') return { family: 'bytes' };
  if (u === 'DATE') return { family: 'date' };
  if (u === 'TIME') return { family: 'time_us' };
  if (u === 'TIMESTAMP WITH TIME ZONE' || u === 'TIMESTAMPTZ') return { family: 'timestamptz' };
  if (u.startsWith('TIMESTAMP')) return { family: 'timestamp' };
  if (u === 'JSON') return { family: 'json' };
  if (u === 'UUID') return { family: 'uuid' };
  if (u === 'INTERVAL') return { family: 'interval_us' };
  return { family: 'other' };
}

/** DuckDB's error classes that mean the statement or its data is wrong, not the moment. */
const REFUSED = /Conversion Error|Constraint Error|Binder Error|Invalid Input Error|Catalog Error|Parser Error/i;

export const duckdbDialect: SqlDialect = {
  label: 'DuckDB',
  qi,
  ql,
  param: (n) => `$${n}`,
  begin: 'BEGIN TRANSACTION',
  columnType: (col) => duckType(col.kind),
  family,
  // The primary key makes its columns NOT NULL.
  columnDef: (col, type) => `${qi(col.name)} ${type}`,
  addColumn: (table, column, type) => `ALTER TABLE ${table} ADD COLUMN ${qi(column)} ${type}`,
  changeTypeHint: (table, column, type) => `ALTER TABLE ${table} ALTER ${qi(column)} TYPE ${type}`,
  readColumns: (ref) => ({
    sql: `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND table_name = $1 ORDER BY ordinal_position`,
    params: [ref.table],
  }),
  tableOptions: '',
  offsetsUpdatedAt: 'TIMESTAMPTZ NOT NULL',
  // A DuckDB file is held by one process: no other worker can write it.
  offsetsLock: null,
  offsetsUpsert: (table, sink, offsets) => ({
    sql: `INSERT OR REPLACE INTO ${table} VALUES ${offsets.map((o) => `(${ql(sink)}, ${ql(o.topic)}, ${o.partition}, ${o.next}, now())`).join(', ')}`,
  }),
  refusal(e): Refusal | null {
    const msg = (e as Error).message ?? String(e);
    return REFUSED.test(msg) ? { code: 'SINK_REJECTED', detail: msg.split('\n')[0] } : null;
  },
};
