/**
 * The orders example's check: DuckDB holds each change once (the first of its repeats, no two rows
 * with one change_id) and each order's current state, both equal to SQL over the source's events.
 *
 *   npx tsx examples/orders/check.ts     (with the pipeline stopped; ORDERS_DB, ORDERS_DIR)
 */
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { ORDERS_SQL, UNIQUE_SQL } from './data.ts';

export interface CheckResult {
  problems: string[];
  changes: number;
  repeats: number;
  orders: number;
}

export async function check(source: pg.Client, dir: string): Promise<CheckResult> {
  const problems: string[] = [];
  const unique = (await source.query(UNIQUE_SQL)).rows as { id: string; change_id: string; order_id: number }[];
  const all = Number((await source.query('SELECT count(*) FROM order_events')).rows[0].count);
  const orders = (await source.query(ORDERS_SQL)).rows.map((r) => JSON.stringify([r.order_id, r.status, r.amount, r.changes]));
  const db = await (await DuckDBInstance.create(join(dir, 'warehouse.duckdb'))).connect();
  try {
    const events = (await db.runAndReadAll('SELECT id::BIGINT, change_id::VARCHAR FROM order_events ORDER BY id')).getRows().map(([id, c]) => [Number(id), String(c)] as const);
    const ids = new Set(events.map(([id]) => id));
    const changeIds = new Set(events.map(([, c]) => c));
    if (changeIds.size !== events.length) problems.push(`${events.length - changeIds.size} repeated changes in DuckDB's order_events`);
    const wantIds = unique.map((u) => Number(u.id));
    const missing = wantIds.filter((id) => !ids.has(id));
    if (missing.length || ids.size !== wantIds.length) problems.push(`order_events holds ${ids.size} rows, SQL has ${wantIds.length} unique changes (missing e.g. ${missing.slice(0, 5).join(', ')})`);
    const have = (await db.runAndReadAll('SELECT order_id::INTEGER, status, amount, changes::INTEGER FROM orders ORDER BY order_id')).getRows().map((r) => JSON.stringify(r.map((v) => (typeof v === 'bigint' ? Number(v) : v))));
    const w = new Set(orders);
    const h = new Set(have);
    const wrong = orders.filter((o) => !h.has(o));
    const extra = have.filter((o) => !w.has(o));
    if (wrong.length) problems.push(`${wrong.length} of ${orders.length} orders missing or different, e.g. ${wrong.slice(0, 3).join(' ')}`);
    if (extra.length) problems.push(`${extra.length} orders SQL does not have, e.g. ${extra.slice(0, 3).join(' ')}`);
  } finally {
    db.closeSync();
  }
  return { problems, changes: unique.length, repeats: all - unique.length, orders: orders.length };
}

if (process.argv[1]?.endsWith('check.ts')) {
  const client = new pg.Client({ host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres', database: process.env.ORDERS_DB ?? 'orders' });
  await client.connect();
  const r = await check(client, process.env.ORDERS_DIR ?? './data/orders');
  await client.end();
  console.log(`${r.changes} unique changes (${r.repeats} repeats dropped), ${r.orders} orders`);
  if (r.problems.length) {
    console.log(`MISMATCH:\n  ${r.problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('OK: DuckDB holds each change once and every order as SQL over the events says');
}
