/**
 * The orders example's check: DuckDB holds each change once (the first of its repeats, no two rows
 * with one change_id) and each order's current state, both equal to what the MongoDB collection of
 * events itself says (data.ts `truth`).
 *
 *   npx tsx examples/orders/check.ts     (with the pipeline stopped; ORDERS_MONGO, ORDERS_DB, ORDERS_DIR)
 */
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { MongoClient, type Db } from 'mongodb';
import { truth } from './data.ts';

export interface CheckResult {
  problems: string[];
  changes: number;
  repeats: number;
  orders: number;
}

export async function check(source: Db, dir: string): Promise<CheckResult> {
  const problems: string[] = [];
  const t = await truth(source);
  const inst = await DuckDBInstance.create(join(dir, 'warehouse.duckdb'));
  const db = await inst.connect();
  try {
    const events = (await db.runAndReadAll('SELECT _id, change_id FROM order_events')).getRows().map(([id, c]) => [Number(id), String(c)] as const);
    const ids = new Set(events.map(([id]) => id));
    const changeIds = new Set(events.map(([, c]) => c));
    if (changeIds.size !== events.length) problems.push(`${events.length - changeIds.size} repeated changes in DuckDB's order_events`);
    const wantIds = t.unique.map((u) => u.id);
    const missing = wantIds.filter((id) => !ids.has(id));
    if (missing.length || ids.size !== wantIds.length) problems.push(`order_events holds ${ids.size} rows, the collection has ${wantIds.length} unique changes (missing e.g. ${missing.slice(0, 5).join(', ')})`);
    const want = [...t.orders].map(([o, s]) => JSON.stringify([o, s.status, s.amount, s.changes]));
    const have = (await db.runAndReadAll('SELECT order_id::INTEGER, status, amount::VARCHAR, changes::INTEGER FROM orders ORDER BY order_id')).getRows().map((r) => JSON.stringify(r.map((v) => (typeof v === 'bigint' ? Number(v) : v))));
    const w = new Set(want);
    const h = new Set(have);
    const wrong = want.filter((o) => !h.has(o));
    const extra = have.filter((o) => !w.has(o));
    if (wrong.length) problems.push(`${wrong.length} of ${want.length} orders missing or different, e.g. ${wrong.slice(0, 3).join(' ')} (DuckDB has e.g. ${have.slice(0, 3).join(' ')})`);
    if (extra.length) problems.push(`${extra.length} orders the collection does not have, e.g. ${extra.slice(0, 3).join(' ')}`);
  } finally {
    db.closeSync();
    inst.closeSync();
  }
  return { problems, changes: t.unique.length, repeats: t.all - t.unique.length, orders: t.orders.size };
}

if (process.argv[1]?.endsWith('check.ts')) {
  const client = new MongoClient(`${process.env.ORDERS_MONGO ?? 'mongodb://127.0.0.1:27018'}/?directConnection=true`);
  await client.connect();
  try {
    const r = await check(client.db(process.env.ORDERS_DB ?? 'orders'), process.env.ORDERS_DIR ?? './data/orders');
    console.log(`${r.changes} unique changes (${r.repeats} repeats dropped), ${r.orders} orders`);
    if (r.problems.length) {
      console.log(`MISMATCH:\n  ${r.problems.join('\n  ')}`);
      process.exitCode = 1;
    } else console.log('OK: DuckDB holds each change once and every order as the collection of events says');
  } finally {
    await client.close();
  }
}
