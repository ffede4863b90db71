/**
 * The banking source database: schema, seeded mock data and (re-exported from workload.ts) the
 * live workload. Run directly to (re)build the demo database:
 *
 *   npx tsx examples/banking/generate.ts [--customers 100] [--seed 42] [--keep]
 *
 * Rows carry explicit ids and timestamps (UTC; the session's time_zone is set to +00:00) so that
 * the same seed and day give the same database, whatever the server's time zone.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { buildMockData, type FirstIds, type MockData, type Row } from './mock.ts';

export { startWorkload, type Workload, type WorkloadOptions, type WorkloadStats } from './workload.ts';

const SCHEMA_FILE = fileURLToPath(new URL('./schema.sql', import.meta.url));
const TABLES = ['customers', 'accounts', 'transactions', 'agreements'] as const;
/** Rows per INSERT: a few hundred keeps each statement far below max_allowed_packet. */
const BATCH = 500;

/** schema.sql's statements, comments dropped, split at the `;` ending a line. */
function schemaStatements(): string[] {
  const sql = readFileSync(SCHEMA_FILE, 'utf8')
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('--'))
    .join('\n');
  return sql
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Creates database `banking` and its four tables if missing and makes it the connection's current
 * database. `reset` drops the tables first (children before parents) for a fresh demo.
 */
export async function createSchema(conn: Connection, opts: { reset?: boolean } = {}): Promise<void> {
  if (opts.reset) {
    await conn.query('CREATE DATABASE IF NOT EXISTS banking');
    for (const t of ['transactions', 'agreements', 'accounts', 'customers']) await conn.query(`DROP TABLE IF EXISTS banking.${t}`);
  }
  for (const stmt of schemaStatements()) await conn.query(stmt);
}

export interface GenerateOptions {
  /** Customers to add (seed: 100). */
  customers: number;
  /** Same seed (and same `now` day) → same rows. */
  seed: number;
  /** End of the one-month timeline. Default: the start of the current UTC day, so a rerun the same day is identical. */
  now?: Date;
}

export interface GenerateResult {
  customers: number;
  accounts: number;
  transactions: number;
  agreements: number;
  firstIds: FirstIds;
}

async function nextIds(conn: Connection): Promise<FirstIds> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT (SELECT COALESCE(MAX(customer_id), 0) FROM banking.customers) AS customer,
            (SELECT COALESCE(MAX(account_id), 0) FROM banking.accounts) AS account,
            (SELECT COALESCE(MAX(transaction_id), 0) FROM banking.transactions) AS transaction,
            (SELECT COALESCE(MAX(agreement_id), 0) FROM banking.agreements) AS agreement`,
  );
  const r = rows[0];
  return { customer: Number(r.customer) + 1, account: Number(r.account) + 1, transaction: Number(r.transaction) + 1, agreement: Number(r.agreement) + 1 };
}

async function insertRows(conn: Connection, table: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]);
  for (let i = 0; i < rows.length; i += BATCH) {
    const values = rows.slice(i, i + BATCH).map((r) => columns.map((c) => r[c]));
    await conn.query(`INSERT INTO banking.${table} (${columns.join(', ')}) VALUES ?`, [values]);
  }
}

/**
 * Adds seeded mock data after whatever the tables already hold, in one MySQL transaction (so the
 * CDC source sees it as a unit and a failure leaves nothing half-written).
 */
export async function generate(conn: Connection, opts: GenerateOptions): Promise<GenerateResult> {
  await conn.query("SET time_zone = '+00:00'");
  const now = opts.now ?? new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000);
  const firstIds = await nextIds(conn);
  const data: MockData = buildMockData({ customers: opts.customers, seed: opts.seed, now, firstIds });
  await conn.beginTransaction();
  try {
    for (const t of TABLES) await insertRows(conn, t, data[t]);
    await conn.commit();
  } catch (e) {
    await conn.rollback();
    throw e;
  }
  return { customers: data.customers.length, accounts: data.accounts.length, transactions: data.transactions.length, agreements: data.agreements.length, firstIds };
}

/** Connection options for the demo's MariaDB/MySQL: BANKING_MYSQL_URL or the local root. */
export function bankingConnectionUrl(): string {
  return process.env.BANKING_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { customers: { type: 'string', default: '100' }, seed: { type: 'string', default: '42' }, keep: { type: 'boolean', default: false } } });
  const conn = await mysql.createConnection({ uri: bankingConnectionUrl() });
  try {
    await createSchema(conn, { reset: !values.keep });
    const r = await generate(conn, { customers: Number(values.customers), seed: Number(values.seed) });
    console.log(`banking: ${r.customers} customers, ${r.accounts} accounts, ${r.transactions} transactions, ${r.agreements} agreements`);
  } finally {
    await conn.end();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
