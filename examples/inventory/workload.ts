/**
 * Runs the inventory example's workload: creates the databases and tables if needed, then one step
 * (receipts, order lines, shipments, cancellations, removals) every `--interval` ms.
 *
 *   npx tsx examples/inventory/workload.ts [--steps 50] [--interval 200]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { SCHEMA, step } from './data.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '50' }, interval: { type: 'string', default: '200' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npx tsx examples/inventory/workload.ts [--steps N] [--interval ms]   (INVENTORY_DB, INVENTORY_DW, PGHOST, PGPORT, PGUSER)');
  process.exit(0);
}
const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };
const admin = new pg.Client({ ...conn, database: 'postgres' });
await admin.connect();
for (const db of [process.env.INVENTORY_DB ?? 'inventory', process.env.INVENTORY_DW ?? 'inventory_dw']) {
  if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 0) await admin.query(`CREATE DATABASE "${db}"`);
}
await admin.end();
const client = new pg.Client({ ...conn, database: process.env.INVENTORY_DB ?? 'inventory' });
await client.connect();
await client.query(SCHEMA);
const first = Number((await client.query('SELECT coalesce(max(id) / 1000, 0) + 1 AS n FROM order_lines')).rows[0].n);
for (let n = first; n < first + Number(values.steps); n++) {
  await step(client, n, n);
  await new Promise((r) => setTimeout(r, Number(values.interval)));
}
await client.end();
console.log(`ran steps ${first}–${first + Number(values.steps) - 1}`);
