/**
 * bench/capture-mysql: drains the same binlog backlog with `mariadb-binlog --read-from-remote-server`
 * (the reference, run twice: `--raw`, which only copies the binlog to a file, and decoding rows to
 * text with `--verbose --base64-output=DECODE-ROWS`) and with Sluice (decoding, converting,
 * serializing to Debezium JSON and committing to the durable embedded log), and prints rows/s,
 * MB/s and peak RSS for each.
 *
 *   node --import tsx bench/capture-mysql/run.ts [--rows 1000000] [--workload small|mixed|both]
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { parseConfig } from '../../src/config/index.ts';
import { dirBytes, drainSeconds, peakRssOf } from '../common.ts';
import { runPipeline } from '../../src/engine/runner.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, workload: { type: 'string', default: 'both' } } });
const ROWS = Number(values.rows);
const DB = 'sluice_bench';
const conn = { host: '127.0.0.1', port: 3306, user: 'root' };

interface Result { workload: string; tool: string; rows: number; seconds: number; perSec: number; mbPerSec: number; rssMiB: number }

/** Generates the backlog; returns the row changes it produced and the log records (deletes add a tombstone). */
async function generate(db: mysql.Connection, workload: string): Promise<{ rows: number; records: number }> {
  if (workload === 'small') {
    // 1000-row transactions of inserts into a 3-column table.
    for (let i = 0; i < ROWS; i += 1000) {
      await db.query(`INSERT INTO small SELECT seq, seq % 1000, CONCAT('name-', seq) FROM seq_${i + 1}_to_${Math.min(i + 1000, ROWS)}`);
    }
    return { rows: ROWS, records: ROWS };
  }
  // mixed: transactions of 1..1000 rows of 11 typed columns; inserts, then updates of half, deletes of a tenth.
  let rows = 0;
  let deletes = 0;
  let next = 1;
  while (rows < ROWS) {
    const k = Math.min(1 + Math.floor(Math.random() * 1000), Math.ceil((ROWS - rows) / 1.6));
    await db.query('BEGIN');
    await db.query(
      `INSERT INTO mixed SELECT seq, seq * 7, (seq % 100000) / 100, CONCAT('text ', seq), NOW(6), JSON_OBJECT('k', seq, 'tags', JSON_ARRAY('a', 'b')), UUID(), seq % 2 = 0, UNHEX(LPAD(HEX(seq), 8, '0')), CURDATE() - INTERVAL (seq % 365) DAY, IF(seq % 3 = 0, 'gold', 'basic') FROM seq_${next}_to_${next + k - 1}`,
    );
    const [u] = (await db.query(`UPDATE mixed SET amount = amount + 1, note = CONCAT(note, '!') WHERE id BETWEEN ? AND ? AND id % 2 = 0`, [next, next + k - 1])) as any;
    const [d] = (await db.query(`DELETE FROM mixed WHERE id BETWEEN ? AND ? AND id % 10 = 0`, [next, next + k - 1])) as any;
    await db.query('COMMIT');
    rows += k + u.affectedRows + d.affectedRows;
    deletes += d.affectedRows;
    next += k;
  }
  return { rows, records: rows + deletes };
}

/** mariadb-binlog from the server, from `start` to `stop` in one file; returns seconds, bytes written, peak RSS. */
async function reference(args: string[], out: string): Promise<{ seconds: number; bytes: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  const child = spawn('mariadb-binlog', args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: out });
  const file = join(out, 'decoded.txt');
  const sink = createWriteStream(file);
  const closed = new Promise<void>((r) => sink.once('close', () => r()));
  child.stdout!.pipe(sink);
  let done = false;
  const rssP = peakRssOf(child.pid!, () => done);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  await closed;
  done = true;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`mariadb-binlog ${args.join(' ')} exited ${code}`);
  return { seconds, bytes: dirBytes(out), rss: await rssP };
}

async function benchWorkload(workload: string): Promise<Result[]> {
  const admin = await mysql.createConnection({ ...conn, multipleStatements: true });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}`);
  const db = await mysql.createConnection({ ...conn, database: DB });
  if (workload === 'small') await db.query(`CREATE TABLE small (id INT PRIMARY KEY, v INT, name VARCHAR(40))`);
  else await db.query(`CREATE TABLE mixed (id INT PRIMARY KEY, qty BIGINT, amount DECIMAL(12,2), note TEXT, at DATETIME(6), doc JSON, ref CHAR(36), flag BOOLEAN, raw VARBINARY(16), day DATE, tier ENUM('basic','gold'))`);
  const work = join(tmpdir(), `sluice-bench-mysql-${workload}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const cfg = parseConfig(
    `name: benchm_${workload}\nsource:\n  type: mysql\n  connection: mysql://root@127.0.0.1:3306/${DB}\n  tables: [${DB}.${workload}]\n  snapshot: never\n  heartbeatIntervalMs: 0\nstate:\n  dir: ${work}/state\nlog:\n  dir: ${work}/log\nlogging:\n  level: warn\n`,
    'bench.yaml',
    process.env,
  );
  // A fresh binlog file holds the whole backlog (max_binlog_size is far above it).
  await admin.query('FLUSH BINARY LOGS');
  const [[start]] = (await admin.query('SHOW MASTER STATUS')) as any;
  // Sluice records its starting position (the end of the binlog now), then stops.
  {
    const ac = new AbortController();
    await runPipeline(cfg, { signal: ac.signal, onCommit: () => ac.abort() });
  }
  const t0 = Date.now();
  const { rows, records } = await generate(db, workload);
  const [[end]] = (await admin.query('SHOW MASTER STATUS')) as any;
  if (end.File !== start.File) throw new Error(`the backlog spans binlog files ${start.File}..${end.File}: raise max_binlog_size or lower --rows`);
  const binlogBytes = end.Position - start.Position;
  process.stderr.write(`[bench] ${workload}: ${rows} row changes in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${(binlogBytes / 1e6).toFixed(0)} MB of binlog (${start.File} ${start.Position}..${end.Position})\n`);

  const results: Result[] = [];
  const common = ['--read-from-remote-server', '-h', '127.0.0.1', '-P', '3306', '-u', 'root', `--start-position=${start.Position}`, `--stop-position=${end.Position}`];
  for (const [tool, args] of [
    // --raw ignores --stop-position and copies to the end of the file, which is the backlog's end.
    ['mariadb-binlog --raw', [...common.filter((a) => !a.startsWith('--stop-position')), '--raw', '--result-file=' + join(work, 'raw-'), start.File]],
    ['mariadb-binlog -v decode', [...common, '--verbose', '--base64-output=DECODE-ROWS', start.File]],
  ] as [string, string[]][]) {
    const out = join(work, tool.replace(/\W+/g, '_'));
    mkdirSync(out, { recursive: true });
    const r = await reference(args, out);
    results.push({ workload, tool, rows, seconds: r.seconds, perSec: rows / r.seconds, mbPerSec: binlogBytes / r.seconds / 1e6, rssMiB: r.rss });
    rmSync(out, { recursive: true, force: true });
  }

  // Sluice: until every change is committed to the log.
  const sSecs = await drainSeconds(cfg, records);
  const logBytes = dirBytes(join(work, 'log'));
  results.push({ workload, tool: 'sluice → durable log', rows, seconds: sSecs, perSec: rows / sSecs, mbPerSec: binlogBytes / sSecs / 1e6, rssMiB: process.resourceUsage().maxRSS / 1024 });
  process.stderr.write(`[bench] ${workload}: sluice wrote ${(logBytes / 1e6).toFixed(0)} MB of Debezium JSON (${(logBytes / sSecs / 1e6).toFixed(1)} MB/s)\n`);
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
  rmSync(work, { recursive: true, force: true });
  return results;
}

const workloads = values.workload === 'both' ? ['small', 'mixed'] : [values.workload!];
const results: Result[] = [];
for (const w of workloads) results.push(...(await benchWorkload(w)));
const pad = (s: string | number, n: number) => String(s).padStart(n);
console.log(`\ncapture-mysql (${ROWS} row changes per workload, ${process.platform} ${cpus().length} cores; MB/s = binlog bytes drained per second; sluice RSS is the bench process's)`);
console.log(`${'workload'.padEnd(9)}${'tool'.padEnd(27)}${pad('rows', 9)}${pad('seconds', 9)}${pad('rows/s', 10)}${pad('MB/s', 7)}${pad('peak RSS MiB', 14)}`);
for (const r of results) console.log(`${r.workload.padEnd(9)}${r.tool.padEnd(27)}${pad(r.rows, 9)}${pad(r.seconds.toFixed(2), 9)}${pad(Math.round(r.perSec), 10)}${pad(r.mbPerSec.toFixed(1), 7)}${pad(r.rssMiB.toFixed(0), 14)}`);
for (const w of workloads) {
  const [raw, dec, s] = results.filter((r) => r.workload === w);
  console.log(`${w}: sluice / mariadb-binlog --raw = ${(s.perSec / raw.perSec).toFixed(2)}×, sluice / mariadb-binlog -v decode = ${(s.perSec / dec.perSec).toFixed(2)}×`);
}
mkdirSync('bench/capture-mysql/out', { recursive: true });
writeFileSync('bench/capture-mysql/out/results.json', JSON.stringify(results, null, 2));
