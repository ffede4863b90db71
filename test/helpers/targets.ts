/**
 * The three sink targets of the conformance and crash tests — a PostgreSQL database, a MariaDB
 * database and a DuckDB file — created fresh per test, with readers that return each table's rows
 * as comparable text (one canonical spelling per value kind, whatever the database prints).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { DuckDBInstance } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import { freshDatabase, isStale, PG_HOST, PG_PORT, PG_USER, stampNow } from './pg.ts';

export const MYSQL_HOST = process.env.MYSQL_HOST_TEST ?? '127.0.0.1';
export const MYSQL_PORT = Number(process.env.MYSQL_PORT_TEST ?? 3306);
export const MYSQL_USER = process.env.MYSQL_USER_TEST ?? 'root';

export type Target = 'postgres' | 'mysql' | 'duckdb';
export const TARGETS: Target[] = ['postgres', 'mysql', 'duckdb'];

/** How to read and normalize a column: the source's PostgreSQL type decides. */
export type ColKind = 'text' | 'int' | 'bool' | 'decimal' | 'float' | 'bytes' | 'date' | 'time' | 'timestamp' | 'timestamptz' | 'json' | 'array' | 'uuid';

export interface Targets {
  pgDb: string;
  mysqlDb: string;
  duckPath: string;
  /** YAML for `sinks:` with the three targets; `extra` is added to each sink. */
  sinksYaml(extra?: string): string;
  /** Rows of `table` in `target` as canonical text, sorted. */
  rows(target: Target, table: string, cols: [string, ColKind][], where?: string): Promise<string[][]>;
  count(target: Target, sql: string): Promise<number>;
  /** Rows of any query in `target`, as the driver returns them (MySQL: `"` quotes become backticks, unless `raw`). */
  query(target: Target, sql: string, raw?: boolean): Promise<unknown[][]>;
  drop(): Promise<void>;
}

export async function freshTargets(dir: string): Promise<Targets> {
  const pgt = await freshDatabase('sluice_t');
  const mysqlDb = `sluice_t_${stampNow()}_${randomBytes(3).toString('hex')}`;
  const my = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true }).catch((e: Error) => {
    throw new Error(`MariaDB is not reachable at ${MYSQL_HOST}:${MYSQL_PORT} as ${MYSQL_USER} (${e.message}). Start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; then run: bash scripts/setup.sh`, { cause: e });
  });
  // Remove databases left by earlier killed runs (over two hours old: a concurrent run may use newer ones).
  const [old] = await my.query(`SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'sluice\\_t\\_%'`);
  for (const o of old as { n: string }[]) if (isStale(o.n)) await my.query(`DROP DATABASE IF EXISTS \`${o.n}\``);
  await my.query(`SET time_zone = '+00:00'`);
  const duckPath = join(dir, 'warehouse.duckdb');
  const read = async (target: Target, sql: string, raw = false): Promise<unknown[][]> => {
    if (target === 'postgres') return (await pgt.client.query({ text: sql, rowMode: 'array' })).rows;
    if (target === 'mysql') {
      await my.query(`USE \`${mysqlDb}\``); // created by the sink
      return (await my.query({ sql: raw ? sql : sql.replace(/"/g, '`'), rowsAsArray: true }))[0] as unknown[][];
    }
    const conn = await (await DuckDBInstance.fromCache(duckPath)).connect();
    try {
      await conn.run(`SET TimeZone = 'UTC'`);
      return (await conn.runAndReadAll(sql)).getRows() as unknown[][];
    } finally {
      conn.closeSync();
    }
  };
  return {
    pgDb: pgt.name,
    mysqlDb,
    duckPath,
    sinksYaml(extra = '') {
      const ex = extra.split('\n').filter(Boolean).map((l) => '    ' + l).join('\n');
      return `sinks:
  - name: pg
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${pgt.name} }
${ex}
  - name: my
    type: mysql
    connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${mysqlDb} }
${ex}
  - name: dk
    type: duckdb
    path: ${duckPath}
${ex}
`;
    },
    async rows(target, table, cols, where) {
      const exprs = cols.map(([c, k]) => readExpr(target, `"${c}"`, k));
      const data = await read(target, `SELECT ${exprs.join(', ')} FROM "${table}"${where ? ` WHERE ${where}` : ''}`);
      return data.map((r) => r.map((v, i) => normalize(cols[i][1], v))).sort(compareRows);
    },
    async count(target, sql) {
      const r = await read(target, sql);
      return Number(r[0][0]);
    },
    query: read,
    async drop() {
      await my.query(`DROP DATABASE IF EXISTS \`${mysqlDb}\``).catch(() => {});
      await my.end();
      await pgt.drop();
    },
  };
}

/** SQL reading column `c` as text in `target`. */
function readExpr(target: Target, c: string, k: ColKind): string {
  if (k === 'bytes') return target === 'postgres' ? `encode(${c}, 'hex')` : target === 'mysql' ? `LOWER(HEX(${c}))` : `lower(hex(${c}))`;
  if (target === 'postgres') return `${c}::text`;
  if (target === 'mysql') return `CAST(${c} AS CHAR)`;
  return `${c}::VARCHAR`;
}

/** One spelling per value, whatever database printed it. */
export function normalize(k: ColKind, v: unknown): string {
  if (v === null || v === undefined) return '∅';
  let s = typeof v === 'string' ? v : String(v);
  switch (k) {
    case 'bool':
      return /^(t|true|1)$/i.test(s) ? 'true' : 'false';
    case 'decimal':
      if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
      return s === '-0' ? '0' : s;
    case 'float':
      return String(Number(s));
    case 'time':
    case 'timestamp':
    case 'timestamptz':
      s = s.replace('T', ' ').replace(/(\+00(:00)?|Z)$/, '');
      if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
      return s;
    case 'json':
      return JSON.stringify(sortKeys(JSON.parse(s)));
    case 'array': {
      // PostgreSQL {a,b}; MySQL/DuckDB JSON-ish [a, b]
      const inner = s.replace(/^[{[]|[}\]]$/g, '');
      return inner === '' ? '[]' : '[' + inner.split(',').map((x) => x.trim().replace(/^["']|["']$/g, '')).join(',') + ']';
    }
    default:
      return s;
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

function compareRows(a: string[], b: string[]): number {
  const x = a.join('\u0001');
  const y = b.join('\u0001');
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Rows of a PostgreSQL source table as canonical text, sorted. */
export async function sourceRows(client: pg.Client, table: string, cols: [string, ColKind][]): Promise<string[][]> {
  const exprs = cols.map(([c, k]) => readExpr('postgres', `"${c}"`, k));
  const r = await client.query({ text: `SET TimeZone = 'UTC'; SELECT ${exprs.join(', ')} FROM "${table}"`, rowMode: 'array' });
  const res = Array.isArray(r) ? r[r.length - 1] : r;
  return (res.rows as unknown[][]).map((row) => row.map((v, i) => normalize(cols[i][1], v))).sort(compareRows);
}

/** Row count and an order-independent checksum (sum of per-row hashes) of canonical rows. */
export function checksum(rows: string[][]): { count: number; sum: string } {
  let sum = 0n;
  for (const r of rows) sum += BigInt('0x' + createHash('sha256').update(r.join('\u0001')).digest('hex').slice(0, 16));
  return { count: rows.length, sum: (sum & ((1n << 64n) - 1n)).toString(16) };
}
