/**
 * The lakehouse example's workload: creates the databases and tables if missing (PostgreSQL and
 * MariaDB/MySQL), then runs `--steps` steps of customers and orders on both (data.ts).
 *
 *   npx tsx examples/lakehouse/workload.ts [--steps 20] [--from 1]   (LAKEHOUSE_PG_DB, LAKEHOUSE_MY_DB, PG*, MYSQL_*)
 */
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { MYSQL_SCHEMA, PG_SCHEMA, step } from './data.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '20' }, from: { type: 'string', default: '1' } } });
const pgDb = process.env.LAKEHOUSE_PG_DB ?? 'lakehouse';
const myDb = process.env.LAKEHOUSE_MY_DB ?? 'lakehouse';
const pgConn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres', password: process.env.PGPASSWORD };
const admin = new pg.Client({ ...pgConn, database: 'postgres' });
await admin.connect();
if (!(await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [pgDb])).rowCount) await admin.query(`CREATE DATABASE "${pgDb.replace(/"/g, '""')}"`);
await admin.end();
const pgc = new pg.Client({ ...pgConn, database: pgDb });
await pgc.connect();
await pgc.query(PG_SCHEMA);
const my = await mysql.createConnection({ host: process.env.MYSQL_HOST ?? '127.0.0.1', port: Number(process.env.MYSQL_PORT ?? 3306), user: process.env.MYSQL_USER ?? 'root', password: process.env.MYSQL_PASSWORD, multipleStatements: true });
await my.query(`CREATE DATABASE IF NOT EXISTS \`${myDb.replace(/`/g, '``')}\``);
await my.query(`USE \`${myDb.replace(/`/g, '``')}\`; ${MYSQL_SCHEMA}`);
const from = Number(values.from);
for (let n = from; n < from + Number(values.steps); n++) {
  await step((sql, params = []) => {
    let i = 0;
    return pgc.query(sql.replace(/\?/g, () => `$${++i}`), params);
  }, n);
  await step((sql, params = []) => my.query(sql, params), n);
  process.stderr.write(`\rstep ${n}`);
}
process.stderr.write('\n');
await pgc.end();
await my.end();
