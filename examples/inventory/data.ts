/**
 * The inventory example's tables and workload: stock received per SKU and warehouse (an
 * insert-only event table) and order lines that reserve stock, then ship or are cancelled
 * (updates), or are removed (deletes). The check (check.ts) computes availability with SQL.
 */
import type pg from 'pg';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS inventory_events (id bigint PRIMARY KEY, sku text NOT NULL, warehouse text NOT NULL, qty int NOT NULL);
CREATE TABLE IF NOT EXISTS order_lines (id bigint PRIMARY KEY, order_id bigint NOT NULL, sku text NOT NULL, warehouse text NOT NULL, qty int NOT NULL, status text NOT NULL);
-- Updates and deletes carry the whole row before: the aggregation takes it out.
ALTER TABLE order_lines REPLICA IDENTITY FULL;`;

/** Availability per SKU and warehouse, as SQL over the source tables computes it. */
export const TRUTH_SQL = `
SELECT sku, warehouse, sum(received)::float8 AS received, sum(committed)::float8 AS committed, sum(available)::float8 AS available FROM (
  SELECT sku, warehouse, qty AS received, 0 AS committed, qty AS available FROM inventory_events
  UNION ALL
  SELECT sku, warehouse, 0, CASE WHEN status <> 'cancelled' THEN qty ELSE 0 END, CASE WHEN status <> 'cancelled' THEN -qty ELSE 0 END FROM order_lines
) t GROUP BY sku, warehouse ORDER BY sku, warehouse`;

/** One step of the workload: receipts, new order lines, status changes and a few removals, in one transaction. */
export async function step(client: pg.Client, n: number, seed: number): Promise<void> {
  let x = (seed * 2654435761) >>> 0 || 1;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  const sku = () => `SKU-${String(1 + Math.floor(rnd() * 40)).padStart(3, '0')}`;
  const wh = () => ['HN', 'DN', 'HCM'][Math.floor(rnd() * 3)];
  await client.query('BEGIN');
  const base = n * 1000;
  for (let i = 0; i < 5; i++) await client.query('INSERT INTO inventory_events VALUES ($1, $2, $3, $4)', [base + i, sku(), wh(), 10 + Math.floor(rnd() * 90)]);
  for (let i = 0; i < 20; i++) await client.query("INSERT INTO order_lines VALUES ($1, $2, $3, $4, $5, 'reserved')", [base + i, base + Math.floor(i / 3), sku(), wh(), 1 + Math.floor(rnd() * 5)]);
  await client.query(`UPDATE order_lines SET status = CASE WHEN id % 5 = 0 THEN 'cancelled' ELSE 'shipped' END WHERE status = 'reserved' AND id < $1 AND id % 3 = $2`, [base, n % 3]);
  await client.query(`UPDATE order_lines SET qty = qty + 1 WHERE id = $1`, [base + 7]);
  await client.query(`UPDATE order_lines SET warehouse = 'HCM' WHERE id = $1 AND warehouse <> 'HCM'`, [base + 11]);
  if (n % 4 === 0) await client.query(`DELETE FROM order_lines WHERE id BETWEEN $1 AND $2`, [base - 1000, base - 995]);
  await client.query('COMMIT');
}
