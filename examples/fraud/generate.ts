/**
 * Writes card transactions to the fraud example's database (creating it and the table if needed).
 *
 *   npx tsx examples/fraud/generate.ts [--transactions 20000] [--customers 200] [--seed 7]
 *
 * FRAUD_DB (default fraud), PGHOST, PGPORT, PGUSER as for the pipeline. Run it again to add more:
 * it continues after the table's last id and time.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DEFAULTS, generate, SCHEMA } from './data.ts';

const { values } = parseArgs({ options: { transactions: { type: 'string', default: String(DEFAULTS.transactions) }, customers: { type: 'string', default: String(DEFAULTS.customers) }, seed: { type: 'string', default: String(DEFAULTS.seed) }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npx tsx examples/fraud/generate.ts [--transactions N] [--customers N] [--seed N]');
  process.exit(0);
}
const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };
const db = process.env.FRAUD_DB ?? 'fraud';
const admin = new pg.Client({ ...conn, database: 'postgres' });
await admin.connect();
if ((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 0) await admin.query(`CREATE DATABASE "${db}"`);
await admin.end();
const client = new pg.Client({ ...conn, database: db });
await client.connect();
await client.query(SCHEMA);
const last = Number((await client.query('SELECT coalesce(max(id), 0) AS id FROM transactions')).rows[0].id);
const t0 = Date.now();
const end = await generate(client, { transactions: Number(values.transactions), customers: Number(values.customers), seed: Number(values.seed) + last, firstId: last + 1 });
await client.end();
console.log(`wrote transactions ${last + 1}–${end} to ${db} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
