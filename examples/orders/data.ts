/**
 * The orders example's event table and order service: each change of an order (created, paid,
 * shipped, delivered or cancelled, an amended amount) is a row with its change_id; 5% of changes
 * are written twice, as a service that retries after a timeout does. The check (check.ts) says
 * with SQL what the unique changes and each order's state are.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS order_events (
  id bigint PRIMARY KEY,
  change_id uuid NOT NULL,
  order_id int NOT NULL,
  status text NOT NULL,
  amount numeric(10,2) NOT NULL,
  ts timestamptz NOT NULL
);`;

const FLOW = ['created', 'paid', 'shipped', 'delivered'];

/** Writes `changes` changes to `orders` open orders, continuing from the table's last id. */
export async function service(client: pg.Client, changes: number, seed: number): Promise<void> {
  let x = (seed * 2654435761) >>> 0 || 1;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  const last = (await client.query('SELECT coalesce(max(id), 0) AS id, coalesce(max(order_id), 0) AS o FROM order_events')).rows[0];
  let id = Number(last.id);
  let nextOrder = Number(last.o) + 1;
  const state = new Map<number, { status: string; amount: string }>();
  for (const r of (await client.query(`SELECT DISTINCT ON (order_id) order_id, status, amount::text FROM order_events ORDER BY order_id, id DESC`)).rows) state.set(r.order_id, { status: r.status, amount: r.amount });
  const clock = Date.UTC(2026, 11, 1, 12, 0, 0) + id * 1000;
  const rows: unknown[][] = [];
  for (let i = 0; i < changes; i++) {
    const open = [...state].filter(([, s]) => s.status !== 'delivered' && s.status !== 'cancelled');
    let order: number;
    let s: { status: string; amount: string };
    if (open.length < 20 || rnd() < 0.3) {
      order = nextOrder++;
      s = { status: 'created', amount: (10 + Math.floor(rnd() * 50_000) / 100).toFixed(2) };
    } else {
      const [o, cur] = open[Math.floor(rnd() * open.length)];
      order = o;
      const r = rnd();
      s = r < 0.1 ? { ...cur, status: 'cancelled' } : r < 0.2 ? { ...cur, amount: (Number(cur.amount) * 0.9).toFixed(2) } : { ...cur, status: FLOW[Math.min(FLOW.indexOf(cur.status) + 1, FLOW.length - 1)] };
    }
    state.set(order, s);
    const change = randomUUID();
    const ts = new Date(clock + i * 1000).toISOString();
    rows.push([++id, change, order, s.status, s.amount, ts]);
    // A retry: the same change again, as its own row.
    if (rnd() < 0.05) rows.push([++id, change, order, s.status, s.amount, ts]);
  }
  for (let i = 0; i < rows.length; i += 200) {
    const b = rows.slice(i, i + 200);
    await client.query(`INSERT INTO order_events SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::int[], $4::text[], $5::numeric[], $6::timestamptz[])`, [0, 1, 2, 3, 4, 5].map((c) => b.map((r) => r[c])));
  }
}

/** The first row of each change: what the unique changes are. */
export const UNIQUE_SQL = `SELECT DISTINCT ON (change_id) id, change_id::text, order_id FROM order_events ORDER BY change_id, id`;

/** Each order's state after its unique changes, in the order they were written. */
export const ORDERS_SQL = `
WITH u AS (${UNIQUE_SQL.replace('id, change_id::text, order_id', '*')})
SELECT order_id, (array_agg(status ORDER BY id DESC))[1] AS status, (array_agg(amount::text ORDER BY id DESC))[1] AS amount, count(*)::int AS changes
FROM u GROUP BY order_id ORDER BY order_id`;
