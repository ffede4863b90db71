/**
 * bench/capture-mysql: drains the same binlog backlog with `mariadb-binlog --read-from-remote-server`
 * (the reference, run twice: `--raw`, which only copies the binlog to a file, and decoding rows to
 * text with `--verbose --base64-output=DECODE-ROWS`) and with Sluice (decoding, converting,
 * serializing to Debezium JSON and committing to the durable embedded log, in a process of its
 * own), round after round in alternating order, and prints rows/s, MB/s and peak RSS of each as
 * the median and range. Each round's pipeline has its own name, state and log, and starts at the
 * binlog position recorded before the backlog was written.
 *
 *   node --import tsx bench/capture-mysql/run.ts [--rows 1000000] [--workload small|mixed|both] [--rounds 3] [--compression auto|lz4|brotli|none]
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parseConfig } from '../../src/config/index.ts';
import { dirBytes, drainInChild, orderFor, peakRssOf, showSpread, spread, startOnce, writeConfig, summarize, sizeOptions, logCompressionYaml } from '../common.ts';

const { rows: ROWS, workload: WORKLOAD, rounds: ROUNDS, compression: COMPRESSION } = sizeOptions({ rows: '1000000', workload: 'both' });
const DB = 'sluice_bench';
const conn = { host: '127.0.0.1', port: 3306, user: 'root' };
const RAW = 'mariadb-binlog --raw';
const DECODE = 'mariadb-binlog -v decode';
const SLUICE = 'sluice → durable log';
const TOOLS = [RAW, DECODE, SLUICE];

interface Run { workload: string; tool: string; round: number; order: number; rows: number; seconds: number; perSec: number; mbPerSec: number; rssMiB: number; loadedRssMiB?: number }

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

/** mariadb-binlog from the server, from `start` to `stop` in one file; returns seconds and peak RSS. */
async function reference(args: string[], out: string): Promise<{ seconds: number; rss: number }> {
  const t0 = process.hrtime.bigint();
  const child = spawn('mariadb-binlog', args, { stdio: ['ignore', 'pipe', 'inherit'], cwd: out });
  const sink = createWriteStream(join(out, 'decoded.txt'));
  const closed = new Promise<void>((r) => sink.once('close', () => r()));
  child.stdout!.pipe(sink);
  let done = false;
  const rssP = peakRssOf(child.pid!, () => done);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  await closed;
  done = true;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`mariadb-binlog ${args.join(' ')} exited ${code}`);
  return { seconds, rss: await rssP };
}

async function benchWorkload(workload: string): Promise<Run[]> {
  const admin = await mysql.createConnection({ ...conn, multipleStatements: true });
  await admin.query(`DROP DATABASE IF EXISTS ${DB}; CREATE DATABASE ${DB}`);
  const db = await mysql.createConnection({ ...conn, database: DB });
  if (workload === 'small') await db.query(`CREATE TABLE small (id INT PRIMARY KEY, v INT, name VARCHAR(40))`);
  else await db.query(`CREATE TABLE mixed (id INT PRIMARY KEY, qty BIGINT, amount DECIMAL(12,2), note TEXT, at DATETIME(6), doc JSON, ref CHAR(36), flag BOOLEAN, raw VARBINARY(16), day DATE, tier ENUM('basic','gold'))`);
  const work = join(tmpdir(), `sluice-bench-mysql-${workload}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  // A fresh binlog file holds the whole backlog (max_binlog_size is far above it).
  await admin.query('FLUSH BINARY LOGS');
  const [[start]] = (await admin.query('SHOW MASTER STATUS')) as any;
  // Each round's pipeline records its starting position (the end of the binlog now), then stops.
  const rounds: { configPath: string; logDir: string }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const dir = join(work, `round${r}`);
    mkdirSync(dir, { recursive: true });
    const yaml = `name: benchm_${workload}_r${r}\nsource:\n  type: mysql\n  connection: mysql://root@127.0.0.1:3306/${DB}\n  tables: [${DB}.${workload}]\n  snapshot: never\n  heartbeatIntervalMs: 0\nstate:\n  dir: ${dir}/state\nlog:\n  dir: ${dir}/log\n${logCompressionYaml(COMPRESSION)}logging:\n  level: warn\n`;
    await startOnce(parseConfig(yaml, 'bench.yaml', process.env));
    rounds.push({ configPath: writeConfig(dir, yaml), logDir: join(dir, 'log') });
  }
  const t0 = Date.now();
  const { rows, records } = await generate(db, workload);
  const [[end]] = (await admin.query('SHOW MASTER STATUS')) as any;
  if (end.File !== start.File) throw new Error(`the backlog spans binlog files ${start.File}..${end.File}: raise max_binlog_size or lower --rows`);
  const binlogBytes = end.Position - start.Position;
  process.stderr.write(`[bench] ${workload}: ${rows} row changes in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${(binlogBytes / 1e6).toFixed(0)} MB of binlog (${start.File} ${start.Position}..${end.Position}); ${ROUNDS} rounds\n`);

  const common = ['--read-from-remote-server', '-h', '127.0.0.1', '-P', '3306', '-u', 'root', `--start-position=${start.Position}`, `--stop-position=${end.Position}`];
  const args: Record<string, string[]> = {
    // --raw ignores --stop-position and copies to the end of the file, which is the backlog's end.
    [RAW]: [...common.filter((a) => !a.startsWith('--stop-position')), '--raw', '--result-file=raw-', start.File],
    [DECODE]: [...common, '--verbose', '--base64-output=DECODE-ROWS', start.File],
  };
  const runs: Run[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const [order, tool] of orderFor(r, TOOLS).entries()) {
      if (tool === SLUICE) {
        const x = await drainInChild(rounds[r].configPath, records);
        const logBytes = dirBytes(rounds[r].logDir);
        rmSync(rounds[r].logDir, { recursive: true, force: true });
        runs.push({ workload, tool, round: r, order, rows, seconds: x.seconds, perSec: rows / x.seconds, mbPerSec: binlogBytes / x.seconds / 1e6, rssMiB: x.peakRssMiB, loadedRssMiB: x.loadedRssMiB });
        process.stderr.write(`[bench] ${workload} round ${r + 1}: sluice wrote ${(logBytes / 1e6).toFixed(0)} MB of Debezium JSON\n`);
      } else {
        const out = join(work, tool.replace(/\W+/g, '_'));
        mkdirSync(out, { recursive: true });
        const x = await reference(args[tool], out);
        rmSync(out, { recursive: true, force: true });
        runs.push({ workload, tool, round: r, order, rows, seconds: x.seconds, perSec: rows / x.seconds, mbPerSec: binlogBytes / x.seconds / 1e6, rssMiB: x.rss });
      }
      const last = runs[runs.length - 1];
      process.stderr.write(`[bench] ${workload} round ${r + 1}: ${tool} ${Math.round(last.perSec)} rows/s, peak RSS ${last.rssMiB.toFixed(0)} MiB\n`);
    }
  }
  await db.end();
  await admin.query(`DROP DATABASE IF EXISTS ${DB}`);
  await admin.end();
  rmSync(work, { recursive: true, force: true });
  return runs;
}

const workloads = WORKLOAD === 'both' ? ['small', 'mixed'] : [WORKLOAD];
const runs: Run[] = [];
for (const w of workloads) runs.push(...(await benchWorkload(w)));
console.log(`\ncapture-mysql: ${ROWS} row changes per workload, ${ROUNDS} rounds in alternating order, ${process.platform} ${cpus().length} cores, Node ${process.version}`);
console.log('median (min – max) over the rounds; MB/s = binlog bytes drained per second; RSS = peak of the tool\'s own process');
for (const w of workloads) {
  for (const tool of TOOLS) {
    const xs = runs.filter((r) => r.workload === w && r.tool === tool);
    const loaded = xs[0].loadedRssMiB === undefined ? '' : `, ${showSpread(spread(xs.map((x) => x.loadedRssMiB!)))} MiB of it once loaded`;
    console.log(`${w.padEnd(6)} ${tool.padEnd(25)} ${showSpread(spread(xs.map((x) => x.perSec))).padStart(38)} rows/s  ${showSpread(spread(xs.map((x) => x.mbPerSec)), 1).padStart(22)} MB/s  peak RSS ${showSpread(spread(xs.map((x) => x.rssMiB)))} MiB${loaded}`);
  }
  const ratio = (ref: string) =>
    showSpread(spread([...new Set(runs.map((r) => r.round))].map((r) => {
      const [a, s] = [ref, SLUICE].map((t) => runs.find((x) => x.workload === w && x.round === r && x.tool === t)!);
      return s.perSec / a.perSec;
    })), 2);
  console.log(`${w}: sluice / ${RAW} = ${ratio(RAW)}×, sluice / ${DECODE} = ${ratio(DECODE)}× (pair by pair, per round)`);
  const med = (tool: string, f: (x: Run) => number) => spread(runs.filter((r) => r.workload === w && r.tool === tool).map(f)).median;
  const rows = med(SLUICE, (x) => x.perSec);
  const want = w === 'mixed' ? 150_000 : 100_000;
  summarize([{ bench: 'capture-mysql', what: `${w}: rows/s`, figure: rows, reference: { name: DECODE, figure: med(DECODE, (x) => x.perSec) }, target: `≥ ${want.toLocaleString('en-US')} rows/s`, met: rows >= want }]);
}
mkdirSync('bench/capture-mysql/out', { recursive: true });
writeFileSync('bench/capture-mysql/out/results.json', JSON.stringify(runs, null, 2));
