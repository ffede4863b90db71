/** PostgreSQL as a SQL sink target: its column types, catalog, DDL and offsets upsert. */
import type { Kind, TargetColumn } from '../sql/columns.ts';
import { ansiIdent, ansiLiteral, type Family, type Refusal, type SqlDialect } from '../sql/dialect.ts';

/** PostgreSQL built-in types a PostgreSQL source's column can keep as they are. */
const SAME_TYPES = /^(smallint|integer|bigint|real|double precision|numeric|text|character varying|character|varchar|char|bpchar|boolean|bytea|date|time|timestamp|uuid|json|jsonb|inet|cidr|macaddr|macaddr8|interval|xml|money)\b/;

function pgTypeOf(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'boolean';
    case 'int':
      return kind.bytes <= 2 ? 'smallint' : kind.bytes === 4 ? 'integer' : 'bigint';
    case 'float':
      return kind.bytes === 4 ? 'real' : 'double precision';
    case 'decimal':
      return kind.precision ? `numeric(${kind.precision},${kind.scale ?? 0})` : 'numeric';
    case 'string':
      return kind.length ? `${kind.fixed ? 'character' : 'character varying'}(${kind.length})` : 'text';
    case 'bytes':
      return 'bytea';
    case 'date':
      return 'date';
    case 'time_us':
      return 'time';
    case 'timestamp_us':
      return 'timestamp';
    case 'timestamp_ms':
      return 'timestamp(3)';
    case 'timestamptz':
      return 'timestamptz';
    case 'timetz':
      return 'timetz';
    case 'json':
      return 'jsonb';
    case 'uuid':
      return 'uuid';
    case 'interval_us':
    case 'interval':
      return 'interval';
    case 'array':
      return pgTypeOf(kind.of) + '[]';
  }
}

/** The column type: a PostgreSQL source's own type where it is a built-in one, else the kind's. */
export function pgColumnType(col: TargetColumn, connector: string): string {
  const base = col.sourceType.replace(/(\[\])+$/, '');
  if (connector === 'postgresql' && SAME_TYPES.test(base)) return col.sourceType;
  // varbit travels as its text ('10101'), so the column keeps its type; bit(n) travels as bytes.
  if (connector === 'postgresql' && /^bit varying\b/.test(base) && elementKind(col.kind).k === 'string') return col.sourceType;
  return pgTypeOf(col.kind);
}

const elementKind = (k: Kind): Kind => (k.k === 'array' ? elementKind(k.of) : k);

/** The family of a type as format_type() prints it. */
function family(formatType: string): Family {
  const t = formatType.toLowerCase();
  if (t.endsWith('[]')) return { family: 'array' };
  if (t === 'smallint') return { family: 'int', bytes: 2 };
  if (t === 'integer') return { family: 'int', bytes: 4 };
  if (t === 'bigint') return { family: 'int', bytes: 8 };
  if (t === 'real') return { family: 'float', bytes: 4 };
  if (t === 'double precision') return { family: 'float', bytes: 8 };
  if (t.startsWith('numeric')) return { family: 'decimal' };
  if (t === 'text' || t.startsWith('character')) return { family: 'string' };
  if (t === 'boolean') return { family: 'bool' };
  if (t === 'bytea') return { family: 'bytes' };
  if (t === 'date') return { family: 'date' };
  if (t.startsWith('timestamp') && t.includes('with time zone')) return { family: 'timestamptz' };
  if (t.startsWith('timestamp')) return { family: 'timestamp' };
  if (t.startsWith('time') && t.includes('with time zone')) return { family: 'timetz' };
  if (t.startsWith('time')) return { family: 'time_us' };
  if (t === 'json' || t === 'jsonb') return { family: 'json' };
  if (t === 'uuid') return { family: 'uuid' };
  if (t.startsWith('interval')) return { family: 'interval_us' };
  return { family: 'other' };
}

const qi = ansiIdent;

export const postgresDialect: SqlDialect = {
  label: 'PostgreSQL',
  qi,
  ql: ansiLiteral,
  param: (n) => `$${n}`,
  begin: 'BEGIN',
  columnType: pgColumnType,
  family,
  columnDef: (col, type) => `${qi(col.name)} ${type}${col.key ? ' NOT NULL' : ''}`,
  addColumn: (table, column, type) => `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${qi(column)} ${type}`,
  changeTypeHint: (table, column, type) => `ALTER TABLE ${table} ALTER COLUMN ${qi(column)} TYPE ${type} USING …`,
  readColumns: (ref) => ({
    sql: `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    params: [ref.sql],
  }),
  // Two transactions creating one table at once: the second fails on pg_type's unique index
  // (23505) even with IF NOT EXISTS. A transaction-level advisory lock on the table's name orders them.
  lockTableDdl: (ref) => ({ sql: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, params: [ref.sql] }),
  tableOptions: '',
  offsetsUpdatedAt: 'timestamptz NOT NULL DEFAULT now()',
  offsetsLock: ' FOR UPDATE',
  // Literals, no parameters: the sink sends it in one message with the batch's last statements and COMMIT.
  offsetsUpsert: (table, sink, offsets) => ({
    sql: `INSERT INTO ${table} (sink, topic, "partition", next_offset) VALUES ${offsets.map((o) => `(${ansiLiteral(sink)}, ${ansiLiteral(o.topic)}, ${Math.trunc(o.partition)}, ${Math.trunc(o.next)})`).join(', ')}
           ON CONFLICT (sink, topic, "partition") DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
  }),
  refusal(e): Refusal | null {
    const err = e as { code?: unknown; message?: string };
    if (err.code === '42P10') return { code: 'SINK_NO_KEY', detail: String(err.message) };
    // Data exceptions, constraint violations, syntax/definition errors, program limits (54: 1600 columns).
    if (typeof err.code === 'string' && /^(22|23|42|54)/.test(err.code)) return { code: 'SINK_REJECTED', detail: `${err.message} (SQLSTATE ${err.code})` };
    return null;
  },
  wording: {
    addColumn: 'Add the column to the target',
    targetColumn: 'target column ',
    afterRestart: '; the sink resumes at the first change it could not apply',
  },
};
