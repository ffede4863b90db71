/**
 * Reading a sink's target table for a scheduled validation: its columns and primary key, its rows
 * in keyset pages (each page one autocommit statement: no transaction stays open, no lock is held
 * between pages), and counts over the whole table. PostgreSQL, MySQL/MariaDB and DuckDB, each with
 * the sink's own connection config. Rows come as plain JSON-like values the checks read: numbers,
 * int64 and decimals as text, times as ISO-8601 text, bytes as hex text.
 */
import { timeoutsOf, type ConnectionConfig } from '../../config/fields.ts';
import { resolve } from 'node:path';
import { loadDriver } from '../../core/drivers.ts';
import { validationError } from './errors.ts';

export type Row = Record<string, unknown>;

/** A table as the database names it. */
export interface TableRef {
  /** `schema.table` as shown to users. */
  display: string;
  schema: string;
  name: string;
}

export interface Column {
  name: string;
  /** The database's type name (`integer`, `numeric`, `character varying`; MySQL's `int(11)`). */
  type: string;
}

export interface TableDb {
  readonly label: string;
  /** The table `table` names (`schema.table` or bare: the sink's schema/database). */
  ref(table: string): TableRef;
  /** Its columns, in order; empty when it does not exist. */
  columns(t: TableRef): Promise<Column[]>;
  primaryKey(t: TableRef): Promise<string[]>;
  /** The SQL name of the table. */
  sql(t: TableRef): string;
  qi(name: string): string;
  /** Rows of a query whose values are literals made by `lit`. */
  query(sql: string): Promise<Row[]>;
  /** A literal of a value read from a row (for keyset pages). */
  lit(v: unknown): string;
  close(): Promise<void>;
}

const ansiQi = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
const ansiQl = (s: string): string => "'" + s.replace(/'/g, "''") + "'";

function split(table: string, defaultSchema: string): { schema: string; name: string } {
  const dot = table.indexOf('.');
  return dot < 0 ? { schema: defaultSchema, name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

/** A value as the checks see it: no Date, no Buffer, no driver objects. */
function plain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v)) return v.toString('hex');
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? String(v) : v.toISOString();
  return v;
}
const plainRow = (r: Row): Row => {
  const out: Row = {};
  for (const [k, v] of Object.entries(r)) out[k] = plain(v);
  return out;
};

/** A read that failed for a reason the user must fix (a missing table) stays as it is; others become VALIDATION_READ. */
function readFailure(label: string, where: string, e: unknown): Error {
  if ((e as { code?: string }).code?.startsWith('VALIDATION_')) return e as Error;
  return validationError('VALIDATION_READ', `cannot read ${label} ${where}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
}

async function postgresDb(c: ConnectionConfig, defaultSchema: string): Promise<TableDb> {
  const { default: pg } = await import('pg');
  const t = timeoutsOf(c);
  // Times, dates and intervals as the server's text (ISO); int8 and numeric as text (pg's default); bytea as a Buffer.
  const TEXT_TYPES = new Set([1082, 1083, 1114, 1184, 1186, 1266]);
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    user: c.user,
    password: c.password,
    database: c.database,
    application_name: 'sluice validate',
    options: '-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3',
    connectionTimeoutMillis: t.connectMs,
    query_timeout: t.statementMs,
    statement_timeout: t.statementMs,
    types: { getTypeParser: (oid: number, format?: string) => (TEXT_TYPES.has(oid) ? (v: string) => v : pg.types.getTypeParser(oid, format as never)) } as never,
  } as never);
  client.on('error', () => {});
  const where = `${c.host}:${c.port}/${c.database}`;
  try {
    await client.connect();
  } catch (e) {
    throw readFailure('PostgreSQL', where, e);
  }
  const q = async (sql: string, params: unknown[] = []): Promise<Row[]> => {
    try {
      return (await client.query(sql, params)).rows.map(plainRow);
    } catch (e) {
      throw readFailure('PostgreSQL', where, e);
    }
  };
  return {
    label: 'PostgreSQL',
    ref: (table) => {
      const r = split(table, defaultSchema);
      return { ...r, display: `${r.schema}.${r.name}` };
    },
    columns: async (r) => (await q('SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position', [r.schema, r.name])).map((x) => ({ name: String(x.name), type: String(x.type) })),
    primaryKey: async (r) =>
      (
        await q(
          `SELECT a.attname AS name FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
          [r.schema, r.name],
        )
      ).map((x) => String(x.name)),
    sql: (r) => `${ansiQi(r.schema)}.${ansiQi(r.name)}`,
    qi: ansiQi,
    query: (sql) => q(sql),
    lit: (v) => (typeof v === 'number' || typeof v === 'bigint' ? String(v) : typeof v === 'boolean' ? String(v) : ansiQl(String(v))),
    close: () => client.end().catch(() => {}),
  };
}

async function mysqlDb(c: ConnectionConfig): Promise<TableDb> {
  const mysql = await import('mysql2/promise');
  const t = timeoutsOf(c);
  const where = `${c.host}:${c.port}/${c.database}`;
  let conn: Awaited<ReturnType<typeof mysql.createConnection>>;
  try {
    conn = await mysql.createConnection({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, connectTimeout: t.connectMs });
  } catch (e) {
    throw readFailure('MySQL', where, e);
  }
  conn.on('error', () => {});
  const q = async (sql: string, params: unknown[] = []): Promise<Row[]> => {
    try {
      const rows = (await conn.query({ sql, timeout: t.statementMs }, params))[0];
      return Array.isArray(rows) ? (rows as Row[]).map(plainRow) : [];
    } catch (e) {
      throw readFailure('MySQL', where, e);
    }
  };
  await q(`SET time_zone = '+00:00'`);
  return {
    label: 'MySQL',
    ref: (table) => {
      const r = split(table, c.database);
      return { ...r, display: `${r.schema}.${r.name}` };
    },
    columns: async (r) => (await q('SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION', [r.schema, r.name])).map((x) => ({ name: String(x.name), type: String(x.type) })),
    primaryKey: async (r) => (await q("SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", [r.schema, r.name])).map((x) => String(x.name)),
    sql: (r) => '`' + r.schema.replace(/`/g, '``') + '`.`' + r.name.replace(/`/g, '``') + '`',
    qi: (s) => '`' + s.replace(/`/g, '``') + '`',
    query: (sql) => q(sql),
    lit: (v) => (typeof v === 'number' || typeof v === 'bigint' ? String(v) : conn.escape(v)),
    close: () => conn.end().catch(() => {}),
  };
}

async function duckdbDb(path: string): Promise<TableDb> {
  const { DuckDBInstance } = await loadDriver('@duckdb/node-api', 'a scheduled validation of a duckdb sink', () => import('@duckdb/node-api'));
  let conn: Awaited<ReturnType<Awaited<ReturnType<typeof DuckDBInstance.fromCache>>['connect']>>;
  try {
    // The cached instance: inside `sluice run` the sink's own (DuckDB lets one process open a file).
    conn = await (await DuckDBInstance.fromCache(path)).connect();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw validationError('VALIDATION_READ', /lock/i.test(msg) ? `the DuckDB file ${path} is open in another process (${msg}): DuckDB lets one process open it, so validate it inside the running pipeline (its schedule), or stop the pipeline first` : `cannot open the DuckDB file ${path}: ${msg}`, { cause: e });
  }
  const q = async (sql: string): Promise<Row[]> => {
    try {
      return (await conn.runAndReadAll(sql)).getRowObjectsJson() as Row[];
    } catch (e) {
      throw readFailure('DuckDB', path, e);
    }
  };
  await q(`SET TimeZone = 'UTC'`);
  return {
    label: 'DuckDB',
    ref: (table) => {
      const r = split(table, 'main');
      return { ...r, display: `${r.schema}.${r.name}` };
    },
    columns: async (r) => (await q(`SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = ${ansiQl(r.schema)} AND table_name = ${ansiQl(r.name)} ORDER BY ordinal_position`)).map((x) => ({ name: String(x.name), type: String(x.type) })),
    primaryKey: async (r) => {
      const rows = await q(`SELECT constraint_column_names AS cols FROM duckdb_constraints() WHERE schema_name = ${ansiQl(r.schema)} AND table_name = ${ansiQl(r.name)} AND constraint_type = 'PRIMARY KEY'`);
      return rows.length ? (rows[0].cols as string[]).map(String) : [];
    },
    sql: (r) => `${ansiQi(r.schema)}.${ansiQi(r.name)}`,
    qi: ansiQi,
    query: q,
    lit: (v) => (typeof v === 'number' || typeof v === 'bigint' ? String(v) : typeof v === 'boolean' ? String(v) : ansiQl(String(v))),
    close: async () => conn.closeSync(),
  };
}

/** Opens the database of a sink's config (a validated `postgres`, `mysql` or `duckdb` sink). */
export function openTableDb(sink: { type: string; name: string } & Record<string, unknown>): Promise<TableDb> {
  if (sink.type === 'postgres') return postgresDb(sink.connection as ConnectionConfig, String(sink.schema ?? 'public'));
  if (sink.type === 'mysql') return mysqlDb(sink.connection as ConnectionConfig);
  if (sink.type === 'duckdb') return duckdbDb(resolve(String(sink.path)));
  throw new Error(`bug: sink ${sink.name} (${sink.type}) passed validation as a table to validate`);
}

/** `(k1, k2) > (v1, v2)` spelled out, which every engine takes (and plans as an index range). */
export function after(db: TableDb, keys: string[], values: unknown[]): string {
  const parts: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const eq = keys.slice(0, i).map((k, j) => `${db.qi(k)} = ${db.lit(values[j])}`);
    parts.push([...eq, `${db.qi(keys[i])} > ${db.lit(values[i])}`].join(' AND '));
  }
  return `(${parts.map((p) => `(${p})`).join(' OR ')})`;
}
