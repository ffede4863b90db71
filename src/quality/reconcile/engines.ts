/**
 * The databases reconcile reads, as one small interface: run a query and get rows of text, quote
 * names and values, read a column as text. PostgreSQL (source and sink), MySQL/MariaDB (source and
 * sink) and DuckDB (sink). Every read is one autocommit statement: no transaction stays open, no
 * lock is held past the statement.
 */
import type { Family } from './canon.ts';

export interface Engine {
  /** `PostgreSQL`, `MySQL`, `DuckDB`. */
  readonly label: string;
  rows(sql: string): Promise<unknown[][]>;
  qi(name: string): string;
  /** A literal of `value` (text as read) for a column of family `f`. */
  lit(value: string, f: Family): string;
  /** The expression reading column `col` (quoted) as text. */
  text(col: string, f: Family): string;
  /** `NOT deleted` for a soft-delete flag column (quoted). */
  notDeleted(col: string): string;
  close(): Promise<void>;
}

const ansiQi = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
const ansiQl = (s: string): string => "'" + s.replace(/'/g, "''") + "'";

function numericLit(v: string, f: Family): string | null {
  if ((f === 'int' || f === 'decimal') && /^-?\d+(\.\d+)?$/.test(v.trim())) return v.trim();
  return null;
}

export async function postgresEngine(conn: { host: string; port: number; user: string; password?: string; database: string }): Promise<Engine> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    host: conn.host,
    port: conn.port,
    user: conn.user,
    password: conn.password,
    database: conn.database,
    application_name: 'sluice reconcile',
    options: '-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3 -c statement_timeout=300000',
    types: { getTypeParser: () => (v: string) => v } as never,
  });
  await client.connect();
  client.on('error', () => {});
  return {
    label: 'PostgreSQL',
    async rows(sql) {
      return (await client.query({ text: sql, rowMode: 'array' })).rows;
    },
    qi: ansiQi,
    lit: (v, f) => numericLit(v, f) ?? ansiQl(v),
    text: (c, f) => (f === 'bytes' ? `encode(${c}, 'hex')` : `${c}::text`),
    notDeleted: (c) => `(${c} IS NULL OR ${c} = false)`,
    close: () => client.end().catch(() => {}),
  };
}

export async function mysqlEngine(conn: { host: string; port: number; user: string; password?: string; database: string }): Promise<Engine> {
  const { default: mysql } = await import('mysql2/promise');
  const c = await mysql.createConnection({ host: conn.host, port: conn.port, user: conn.user, password: conn.password, database: conn.database, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
  c.on('error', () => {});
  await c.query(`SET time_zone = '+00:00'`);
  return {
    label: 'MySQL',
    async rows(sql) {
      return (await c.query({ sql, rowsAsArray: true }))[0] as unknown[][];
    },
    qi: (s) => '`' + s.replace(/`/g, '``') + '`',
    lit: (v, f) => numericLit(v, f) ?? c.escape(v),
    text: (col, f) => (f === 'bytes' ? `LOWER(HEX(${col}))` : `CAST(${col} AS CHAR)`),
    notDeleted: (col) => `(${col} IS NULL OR ${col} = 0)`,
    close: () => c.end().catch(() => {}),
  };
}

/** A DuckDB file's engine, or (`path` null) a database in memory of its own (lake tables are read into it). */
export async function duckdbEngine(path: string | null): Promise<Engine> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  // The cached instance: inside `sluice run` this is the sink's own (DuckDB lets one process open the file).
  const conn = await (path === null ? await DuckDBInstance.create(':memory:') : await DuckDBInstance.fromCache(path)).connect();
  await conn.run(`SET TimeZone = 'UTC'`);
  return {
    label: 'DuckDB',
    async rows(sql) {
      return (await conn.runAndReadAll(sql)).getRows() as unknown[][];
    },
    qi: ansiQi,
    lit: (v, f) => numericLit(v, f) ?? ansiQl(v),
    text: (col, f) => (f === 'bytes' ? `lower(hex(${col}))` : `CAST(${col} AS VARCHAR)`),
    notDeleted: (col) => `(${col} IS NULL OR ${col} = false)`,
    close: async () => conn.closeSync(),
  };
}

/** `(k1, k2) > (v1, v2)` spelled out (`op` `>` or `<=`), which every engine takes. */
export function keyCompare(e: Engine, keys: { col: string; family: Family }[], values: readonly string[], op: '>' | '<='): string {
  const parts: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const eq = keys.slice(0, i).map((k, j) => `${e.qi(k.col)} = ${e.lit(values[j], k.family)}`);
    const last = i === keys.length - 1;
    const cmp = `${e.qi(keys[i].col)} ${op === '>' ? '>' : last ? '<=' : '<'} ${e.lit(values[i], keys[i].family)}`;
    parts.push([...eq, cmp].join(' AND '));
  }
  return `(${parts.map((p) => `(${p})`).join(' OR ')})`;
}

/** `k1 = v1 AND k2 = v2`. */
export function keyEquals(e: Engine, keys: { col: string; family: Family }[], values: readonly string[]): string {
  return keys.map((k, i) => `${e.qi(k.col)} = ${e.lit(values[i], k.family)}`).join(' AND ');
}
