/**
 * Runs the orders example's order service: creates the database and table if needed, then writes
 * `--changes` order changes (5% of them twice, as retries), in `--rounds` rounds `--interval` ms apart.
 *
 *   npx tsx examples/orders/service.ts [--changes 2000] [--rounds 5] [--interval 500]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { SCHEMA, service } from './data.ts';

const { values } = parseArgs({ options: { changes: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '5' }, interval: { type: 'string', default: '500' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npx tsx examples/orders/service.ts [--changes N] [--rounds N] [--interval ms]   (ORDERS_DB, PGHOST, PGPORT, PGUSER)');
  process.exit(0);
}
const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };
const db = process.env.ORDERS_DB ?? 'orders';
const admin = new pg.Client({ ...conn, database: 'postgres' });
await admin.connect();
if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 0) await admin.query(`CREATE DATABASE "${db}"`);
await admin.end();
const client = new pg.Client({ ...conn, database: db });
await client.connect();
await client.query(SCHEMA);
const rounds = Number(values.rounds);
for (let r = 0; r < rounds; r++) {
  await service(client, Math.ceil(Number(values.changes) / rounds), Date.now() + r);
  await new Promise((res) => setTimeout(res, Number(values.interval)));
}
await client.end();
console.log(`wrote ${values.changes} order changes to ${db}`);
