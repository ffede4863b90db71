/**
 * The lakehouse example's check: every layer equals SQL over its source database.
 *
 * - bronze: each key's last change (by `__change_id`), deletes removing it, gives the source table;
 * - silver: the source tables' rows;
 * - analytics: seed 003's customer transform as SQL computes it (full_name, location);
 * - gold (Delta): orders and revenue per customer as SQL's GROUP BY computes them.
 *
 * The lake tables are read by DuckDB over the files `sluice lake files` names (Delta: the latest
 * version's files; Iceberg: the current snapshot's, equality deletes applied).
 *
 *   npx tsx examples/lakehouse/check.ts      (LAKEHOUSE_DIR, LAKEHOUSE_PG_DB, LAKEHOUSE_MY_DB, PG*, MYSQL_*)
 */
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { filesSql } from '../../src/sinks/delta/feed.ts';
import { readTableLog } from '../../src/sinks/delta/log.ts';
import { loadMetadata, snapshotSql } from '../../src/sinks/iceberg/view.ts';
import { TRUTH } from './data.ts';

type Rows = string[];

/** Rows as lines of their values (numbers at two decimals, so a double sum and a numeric agree). */
const lines = (rows: Record<string, unknown>[], cols: string[]): Rows =>
  rows
    .map((r) => cols.map((c) => (r[c] === null || r[c] === undefined ? '∅' : typeof r[c] === 'number' || /^-?\d+(\.\d+)?$/.test(String(r[c])) ? Number(r[c]).toFixed(2) : String(r[c]))).join('|'))
    .sort();

function compare(what: string, want: Rows, have: Rows): string[] {
  const w = new Set(want);
  const h = new Set(have);
  const missing = want.filter((r) => !h.has(r));
  const extra = have.filter((r) => !w.has(r));
  const out: string[] = [];
  if (missing.length) out.push(`${what}: ${missing.length} of the source's ${want.length} rows missing or different, e.g. ${missing.slice(0, 2).join(' ; ')}`);
  if (extra.length) out.push(`${what}: ${extra.length} rows the source does not have, e.g. ${extra.slice(0, 2).join(' ; ')}`);
  return out;
}

const COLS = {
  customers: ['customer_id', 'email', 'city', 'tier'],
  orders: ['order_id', 'customer_id', 'amount', 'status'],
  analytics: ['customer_id', 'email', 'full_name', 'location', 'tier'],
  gold: ['customer_id', 'orders', 'revenue'],
};
const KEY: Record<string, string> = { customers: 'customer_id', orders: 'order_id' };

/** A lake table's rows by SQL over it (null: no such table yet). */
type Reader = (layer: string, table: string) => Promise<string | null>;

async function layerRows(duck: DuckDBConnection, read: Reader, layer: string, table: string, cols: string[], fold: string | null): Promise<Rows> {
  const sql = await read(layer, table).catch(() => null);
  if (!sql) return [];
  const from = fold ? `(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY ${fold} ORDER BY __change_id DESC) AS rn FROM (${sql})) WHERE rn = 1 AND __op <> 'd')` : `(${sql})`;
  const rows = (await duck.runAndReadAll(`SELECT ${cols.map((c) => `${c}::VARCHAR AS ${c}`).join(', ')} FROM ${from}`)).getRowObjectsJson();
  return lines(rows, cols);
}

/** Differences between the lake under `dir` and the sources ([] when every layer equals them). */
export async function check(dir: string, source: { pg?: pg.Client; my?: mysql.Connection }): Promise<string[]> {
  const duck = await (await DuckDBInstance.create(':memory:')).connect();
  await duck.run(`SET TimeZone = 'UTC'`);
  const problems: string[] = [];
  try {
    if (source.pg) {
      const truth = async (sql: string, cols: string[]) => lines((await source.pg!.query(sql)).rows, cols);
      const delta: Reader = async (layer, table) => {
        const t = join(dir, 'delta', layer, table);
        return filesSql(t, await readTableLog(t));
      };
      for (const t of ['customers', 'orders'] as const) {
        const want = await truth(TRUTH[t], COLS[t]);
        problems.push(...compare(`delta bronze ${t}`, want, await layerRows(duck, delta, 'bronze', t, COLS[t], KEY[t])));
        problems.push(...compare(`delta silver ${t}`, want, await layerRows(duck, delta, 'silver', t, COLS[t], null)));
      }
      problems.push(...compare('delta analytics customers', await truth(TRUTH.analytics, COLS.analytics), await layerRows(duck, delta, 'analytics', 'customers', COLS.analytics, null)));
      problems.push(...compare('delta gold customer_revenue', await truth(TRUTH.gold, COLS.gold), await layerRows(duck, delta, 'gold', 'customer_revenue', COLS.gold, null)));
    }
    if (source.my) {
      const truth = async (sql: string, cols: string[]) => lines((await source.my!.query(sql))[0] as Record<string, unknown>[], cols);
      const iceberg: Reader = async (layer, table) => {
        const ns = layer === 'analytics' ? 'analytics' : 'lakehouse';
        return (await snapshotSql((await loadMetadata(join(dir, 'iceberg', layer, ns, table))).metadata)).sql;
      };
      for (const t of ['customers', 'orders'] as const) {
        const want = await truth(TRUTH[t], COLS[t]);
        problems.push(...compare(`iceberg bronze ${t}`, want, await layerRows(duck, iceberg, 'bronze', t, COLS[t], KEY[t])));
        problems.push(...compare(`iceberg silver ${t}`, want, await layerRows(duck, iceberg, 'silver', t, COLS[t], null)));
      }
      problems.push(...compare('iceberg analytics customers', await truth(TRUTH.analytics, COLS.analytics), await layerRows(duck, iceberg, 'analytics', 'customers', COLS.analytics, null)));
    }
  } finally {
    duck.closeSync();
  }
  return problems;
}

if (process.argv[1]?.endsWith('check.ts')) {
  const dir = process.env.LAKEHOUSE_DIR ?? './data/lakehouse';
  const pgc = new pg.Client({ host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres', database: process.env.LAKEHOUSE_PG_DB ?? 'lakehouse' });
  await pgc.connect();
  const my = await mysql.createConnection({ host: process.env.MYSQL_HOST ?? '127.0.0.1', port: Number(process.env.MYSQL_PORT ?? 3306), user: process.env.MYSQL_USER ?? 'root', password: process.env.MYSQL_PASSWORD, database: process.env.LAKEHOUSE_MY_DB ?? 'lakehouse' });
  const problems = await check(dir, { pg: pgc, my });
  await pgc.end();
  await my.end();
  if (problems.length) {
    console.log(`MISMATCH:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('OK: bronze, silver, analytics and gold equal SQL over PostgreSQL (Delta) and MariaDB (Iceberg)');
}
