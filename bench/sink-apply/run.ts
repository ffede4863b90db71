/**
 * bench/sink-apply: rows/s each sink applies from a pre-filled log, next to a bulk load of the same
 * rows into the same database measured in the same run (PostgreSQL `\copy`, MariaDB
 * `LOAD DATA LOCAL INFILE`, DuckDB `read_csv` into a table with the same primary key).
 *
 * The log holds N creates then N updates of the same keys (Debezium JSON, written by the same
 * serializer the PostgreSQL source uses) for a 6-column table: id bigint, name text, qty int,
 * price numeric(12,2), updated timestamptz, note text. A sink's figure is changes applied per
 * second, end to end: reading the log, batching, the target's upsert, the offsets commit.
 *
 * Each round runs every sink and its reference, in alternating order; figures are the median and
 * range of the rounds, the ratio is taken pair by pair within each round. Each sink runs in a
 * process of its own (child.ts, compiled), so its peak RSS is the sink's own.
 *
 *   node --import tsx bench/sink-apply/run.ts [--rows 200000] [--sinks postgres,mysql,duckdb,delta,delta-merge,iceberg,iceberg-merge] [--rounds 3] [--updates 1]
 *
 * `--updates 0.1`: the creates are followed by updates of every tenth key only (issue 14's merge of 10% updates).
 *
 * `delta`: the Delta Lake sink appending every change as a row; `delta-merge`: merging
 * (copy-on-write), so each batch of updates rewrites the files holding its keys. `iceberg`: the
 * Iceberg sink appending; `iceberg-merge`: merge-on-read (each batch adds its rows and an
 * equality-delete file of its keys). Their reference is DuckDB writing the same rows from the CSV
 * to one Parquet file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { DuckDBInstance } from '@duckdb/node-api';
import { childResult, orderFor, showSpread, spread, summarize } from '../common.ts';
import { fillLog, row } from './workload.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, sinks: { type: 'string', default: 'postgres,mysql,duckdb' }, batch: { type: 'string' }, rounds: { type: 'string', default: '3' }, updates: { type: 'string', default: '1' } } });
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const SINKS = values.sinks!.split(',');
const dir = join(tmpdir(), `sluice-bench-sink-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

function csvFile(): string {
  const f = join(dir, 'rows.csv');
  const lines: string[] = [];
  for (let i = 1; i <= ROWS; i++) {
    const r = row(i, 0);
    lines.push(`${r.id},${r.name},${r.qty},${r.price},${r.updated.replace('T', ' ').replace('Z', '')},${r.note}`);
  }
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** One sink run in a child process of its own (sink-apply/child.ts): seconds, changes, its peak and loaded RSS. */
async function runSink(type: string, logDir: string, target: { pgDb: string; myDb: string; duck: string }): Promise<{ seconds: number; changes: number; peakRssMiB: number; loadedRssMiB: number }> {
  return childResult('sink-apply/child.ts', [type, logDir, JSON.stringify(target), String(CHANGES), ...(values.batch ? [values.batch] : [])], `the ${type} sink`);
}

const logDir = join(dir, 'log');
const UPDATES = Number(values.updates);
if (!(UPDATES > 0 && UPDATES <= 1)) throw new Error(`--updates takes the share of keys updated after the creates, in (0, 1] (got ${values.updates})`);
process.stderr.write(`filling the log with ${ROWS} creates + updates of ${UPDATES * 100}% of the keys…\n`);
const CHANGES = await fillLog(logDir, ROWS, undefined, UPDATES);
const csv = csvFile();
const admin = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });
await admin.connect();
const my = await mysql.createConnection({ host: '127.0.0.1', user: 'root', multipleStatements: true });
const pgDb = 'sluice_bench_sink';
const myDb = 'sluice_bench_sink';

/** Fresh target databases for one run. */
async function freshTargets(): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${pgDb}`);
  await my.query(`DROP DATABASE IF EXISTS ${myDb}; CREATE DATABASE ${myDb}`);
}

/** Issue 12's targets: changes/s, and the least ratio to the reference (0: none). */
const TARGET: Record<string, [number, number]> = { postgres: [150_000, 0.5], mysql: [100_000, 0.4], duckdb: [500_000, 0], delta: [300_000, 0], 'delta-merge': [100_000, 0], iceberg: [300_000, 0], 'iceberg-merge': [100_000, 0] };

const REFERENCE: Record<string, string> = {
  postgres: 'psql \\copy (CSV) into a table with the same primary key',
  mysql: 'LOAD DATA LOCAL INFILE into a table with the same primary key',
  duckdb: 'read_csv into a table with the same primary key',
  delta: "DuckDB's COPY of the CSV rows to a Parquet file",
  'delta-merge': "DuckDB's COPY of the CSV rows to a Parquet file",
  iceberg: "DuckDB's COPY of the CSV rows to a Parquet file",
  'iceberg-merge': "DuckDB's COPY of the CSV rows to a Parquet file",
};

/** The reference bulk load of the same rows into the same kind of target; seconds. */
async function reference(s: string, round: number): Promise<number> {
  await freshTargets();
  if (s === 'postgres') {
    const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: pgDb });
    await c.connect();
    await c.query(`CREATE TABLE ref (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), updated timestamptz, note text)`);
    await c.end();
    return timeIt(async () => {
      execFileSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-d', pgDb, '-q', '-c', `\\copy ref FROM '${csv}' WITH (FORMAT csv)`]);
    });
  }
  if (s === 'mysql') {
    await my.query(`USE ${myDb}; CREATE TABLE ref (id BIGINT PRIMARY KEY, name LONGTEXT, qty INT, price DECIMAL(12,2), updated DATETIME(6), note LONGTEXT)`);
    return timeIt(async () => {
      execFileSync('mariadb', ['-uroot', '-h127.0.0.1', '--local-infile=1', myDb, '-e', `LOAD DATA LOCAL INFILE '${csv}' INTO TABLE ref FIELDS TERMINATED BY ','`]);
    });
  }
  if (s.startsWith('delta') || s.startsWith('iceberg')) {
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    const seconds = await timeIt(async () => {
      await c.run(`COPY (SELECT * FROM read_csv('${csv}', header = false, columns = {id: 'BIGINT', name: 'VARCHAR', qty: 'INTEGER', price: 'DECIMAL(12,2)', updated: 'TIMESTAMPTZ', note: 'VARCHAR'})) TO '${join(dir, `ref-${round}.parquet`)}' (FORMAT parquet, COMPRESSION snappy)`);
    });
    c.closeSync();
    inst.closeSync();
    return seconds;
  }
  const inst = await DuckDBInstance.create(join(dir, `ref-${round}.duckdb`));
  const c = await inst.connect();
  await c.run(`CREATE TABLE ref (id BIGINT PRIMARY KEY, name VARCHAR, qty INTEGER, price DECIMAL(12,2), updated TIMESTAMPTZ, note VARCHAR)`);
  const seconds = await timeIt(async () => {
    await c.run(`INSERT INTO ref SELECT * FROM read_csv('${csv}', header = false, columns = {id: 'BIGINT', name: 'VARCHAR', qty: 'INTEGER', price: 'DECIMAL(12,2)', updated: 'TIMESTAMPTZ', note: 'VARCHAR'})`);
  });
  c.closeSync();
  inst.closeSync();
  return seconds;
}

// Each round runs, per sink, the sink and its reference; the order alternates between rounds.
const runs: { sink: string; round: number; perSec: number; refPerSec: number; rssMiB: number; loadedMiB: number }[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const s of SINKS) {
    let perSec = 0;
    let refPerSec = 0;
    let rssMiB = 0;
    let loadedMiB = 0;
    for (const which of orderFor(r, ['sluice', 'reference'])) {
      if (which === 'sluice') {
        await freshTargets();
        const x = await runSink(s, logDir, { pgDb, myDb, duck: join(dir, `w-${s}-${r}.duckdb`) });
        perSec = x.changes / x.seconds;
        rssMiB = x.peakRssMiB;
        loadedMiB = x.loadedRssMiB;
      } else refPerSec = ROWS / (await reference(s, r));
    }
    process.stderr.write(`round ${r + 1}: ${s} ${Math.round(perSec)} changes/s (peak RSS ${Math.round(rssMiB)} MiB), reference ${Math.round(refPerSec)} rows/s\n`);
    runs.push({ sink: s, round: r, perSec, refPerSec, rssMiB, loadedMiB });
  }
}
await admin.query(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`);
await admin.end();
await my.query(`DROP DATABASE IF EXISTS ${myDb}`);
await my.end();
if (!process.env.SLUICE_BENCH_KEEP) rmSync(dir, { recursive: true, force: true });

console.log(`\nsink-apply: ${ROWS} creates then ${CHANGES - ROWS} updates of the same keys (6 columns), ${CHANGES} changes per sink; ${ROUNDS} rounds in alternating order, median (min – max)\n`);
console.log('| sink | Sluice: changes/s applied | reference (same run) | reference rows/s | ratio (pair by pair) | sink peak RSS (once loaded) |');
console.log('| --- | ---: | --- | ---: | ---: | ---: |');
for (const s of SINKS) {
  const xs = runs.filter((x) => x.sink === s);
  console.log(`| ${s} | **${showSpread(spread(xs.map((x) => x.perSec)))}** | ${REFERENCE[s]} | ${showSpread(spread(xs.map((x) => x.refPerSec)))} | ${showSpread(spread(xs.map((x) => x.perSec / x.refPerSec)), 2)}× | ${showSpread(spread(xs.map((x) => x.rssMiB)))} MiB (${showSpread(spread(xs.map((x) => x.loadedMiB)))}) |`);
  const figure = spread(xs.map((x) => x.perSec)).median;
  const ratio = spread(xs.map((x) => x.perSec / x.refPerSec)).median;
  const [rate, times] = TARGET[s];
  summarize([{ bench: 'sink-apply', what: `${s}: changes/s`, figure, reference: { name: REFERENCE[s].split(' into')[0], figure: spread(xs.map((x) => x.refPerSec)).median }, target: `≥ ${rate.toLocaleString('en-US')}/s${times ? ` and ≥ ${times}× reference` : ''}`, met: figure >= rate && ratio >= times }]);
  const rss = spread(xs.map((x) => x.rssMiB)).median;
  summarize([{ bench: 'sink-apply', what: `${s}: peak RSS MiB`, figure: rss, target: '≤ 128 MiB', met: rss <= 128 }]);
}
process.exit(0);
