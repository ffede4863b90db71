/**
 * bench/incremental: an incremental snapshot (a table added to a running pipeline's
 * `source.tables`, back-filled in chunks while the stream keeps flowing) beside the initial
 * snapshot of the same table by the same engine, for PostgreSQL and for MariaDB, round after round
 * in alternating order.
 *
 * - reference (`initial`): a fresh pipeline with `snapshot: initial` capturing only the table;
 *   the time from the pipeline's start to the table's last row durable in its log.
 * - figure (`incremental`): a fresh pipeline first captures a tiny table (run until the tiny
 *   table's snapshot is in its log), then the same pipeline (same state and log, same slot or
 *   server id) is started again with `tables: [tiny, big]`; the time from that start to big's last
 *   row durable in the log. Afterwards the log is read back: big's topic must hold each key once,
 *   every record `op: r` with `source.snapshot: incremental`, and status.json must list big as done.
 *
 * Each pipeline runs in a process of its own (the compiled drain child of bench/common.ts), so its
 * peak RSS is the pipeline's. Table: (id int PRIMARY KEY, v int, name text / varchar(64)).
 *
 *   node --import tsx bench/incremental/run.ts [--source postgres|mysql|both] [--rows 1000000] [--rounds 3] [--chunk 4096]
 *
 * Progress goes to stderr, the summary to stdout, every run to bench/incremental/out/results.json
 * and each pipeline's stderr to bench/incremental/out/logs/.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { loadConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { compiledChild, orderFor, pgClient, showSpread, spread, summarize, writeConfig, type Drained } from '../common.ts';

const { values } = parseArgs({
  options: {
    source: { type: 'string', default: 'both' },
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '4096' },
  },
});
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const CHUNK = Number(values.chunk);
if (!['postgres', 'mysql', 'both'].includes(values.source!)) throw new Error(`--source must be postgres, mysql or both, not ${values.source}`);
if (!(ROWS > 0) || !(ROUNDS > 0) || !(CHUNK > 0)) throw new Error('--rows, --rounds and --chunk must be positive numbers');
const SOURCES = values.source === 'both' ? (['postgres', 'mysql'] as const) : ([values.source] as ('postgres' | 'mysql')[]);

const DB = 'sluice_bench_inc';
const TINY_ROWS = 100;
const INITIAL = 'initial snapshot';
const INCREMENTAL = 'incremental snapshot';
const OUT = 'bench/incremental/out';
const LOGS = join(OUT, 'logs');
const MYSQL_CONN = { host: '127.0.0.1', port: 3306, user: 'root' };

type Source = 'postgres' | 'mysql';

interface Run {
  source: Source;
  tool: string;
  round: number;
  chunk: number | null;
  /** From the pipeline's start in its process (code loaded) to the last row of big durable in its log. */
  seconds: number;
  perSec: number;
  /** The pipeline process's wall time as the benchmark saw it (process start to exit). */
  processSeconds: number;
  rssMiB: number;
  loadedRssMiB: number;
  /** Records in big's topic afterwards. */
  records: number;
  /** incremental only: the first run (tiny table) took this long; it is not part of the figure. */
  tinySeconds?: number;
  distinctKeys?: number;
  notIncrementalReads?: number;
  statusDone?: { table: string; rows: number; at: string } | null;
  /** From the log line `incremental snapshot: table done`. */
  doneLine?: { chunks?: number; rereads?: number; seconds?: number };
  /** Lines of the pipeline's stderr at level warn or error. */
  warnings: string[];
}

const say = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);

/** The compiled drain child on `configPath` until `records` records are durable: its result, wall time and stderr. */
async function drain(configPath: string, records: number, logName: string): Promise<Drained & { processSeconds: number; stderr: string }> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [compiledChild('drain-child.ts'), configPath, String(records)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  const processSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  writeFileSync(join(LOGS, `${logName}.stderr.log`), err);
  if (code !== 0) throw new Error(`the pipeline (${logName}) exited ${code}:\n${err.slice(-4000)}`);
  return { ...(JSON.parse(out) as Drained), processSeconds, stderr: err };
}

/**
 * Runs the pipeline of `configPath` in this process until a commit carries a checkpoint in the
 * stream phase (its initial snapshot done and durable), then stops it; the seconds that took. A
 * pipeline stopped earlier, with its snapshot's last rows durable but not the snapshot's end,
 * would resume its initial snapshot at the next start and read an added table in it.
 */
async function untilStreaming(configPath: string): Promise<number> {
  const cfg = await loadConfig(configPath);
  const ac = new AbortController();
  const t0 = process.hrtime.bigint();
  let streaming = false;
  const guard = setTimeout(() => ac.abort(), 120_000);
  try {
    await runPipeline(cfg, {
      signal: ac.signal,
      onCommit: ({ checkpoint }) => {
        if (/"phase":\s*"stream"/.test(checkpoint) && !ac.signal.aborted) {
          streaming = true;
          ac.abort();
        }
      },
    });
  } finally {
    clearTimeout(guard);
  }
  if (!streaming) throw new Error(`the pipeline of ${configPath} did not commit a checkpoint in the stream phase within 120 s`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Lines of a pipeline's stderr at level warn or error (text or JSON log format). */
function warningsIn(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /\b(warn|WARN|error|ERROR|fatal|FATAL)\b/.test(l) || /"level":"(warn|error|fatal)"/.test(l));
}

/** The `incremental snapshot: table done` line's figures, whatever the log format. */
function doneLineOf(stderr: string): Run['doneLine'] {
  const line = stderr.split('\n').find((l) => l.includes('incremental snapshot: table done'));
  if (!line) return undefined;
  const num = (k: string) => {
    const m = new RegExp(`"?${k}"?[=:]\\s*"?([0-9.]+)`).exec(line);
    return m ? Number(m[1]) : undefined;
  };
  return { chunks: num('chunks'), rereads: num('rereads'), seconds: num('seconds') };
}

/** Records of `topic` in the embedded log at `dir`; with `check`, each key's count and the records that are not incremental reads. */
async function readTopic(dir: string, topic: string, check: boolean): Promise<{ records: number; distinctKeys?: number; notIncremental?: number }> {
  const log = await openLog(embeddedLogAt(dir), { readOnly: true });
  try {
    const parts = await log.offsets(topic);
    let records = 0;
    for (const p of parts) records += p.end - p.start;
    if (!check) return { records };
    const keys = new Set<number>();
    let notIncremental = 0;
    for (const p of parts) {
      let off = p.start;
      while (off < p.end) {
        const { records: rs, next } = await log.read(topic, p.partition, off, 4 << 20);
        for (const r of rs) {
          const k = JSON.parse(r.key!.toString('utf8'));
          keys.add(Number((k.payload ?? k).id));
          const v = JSON.parse(r.value!.toString('utf8'));
          const e = v.payload ?? v;
          if (e.op !== 'r' || e.source?.snapshot !== 'incremental') notIncremental++;
        }
        if (next <= off) break;
        off = next;
      }
    }
    return { records, distinctKeys: keys.size, notIncremental };
  } finally {
    await log.close();
  }
}

interface Engine {
  source: Source;
  /** Creates the database and fills `big` (ROWS rows) and `tiny`. */
  setup(): Promise<void>;
  /** A pipeline config. */
  yaml(o: { name: string; dir: string; tables: string[]; serverId: number; level: string }): string;
  table(t: string): string;
  topic(name: string, t: string): string;
  /** After a pipeline's last run. */
  cleanup(): Promise<void>;
  teardown(): Promise<void>;
}

const logYaml = (dir: string, level: string) => `state:\n  dir: ${dir}/state\nlog:\n  dir: ${dir}/log\nlogging:\n  level: ${level}\n`;

const postgres: Engine = {
  source: 'postgres',
  async setup() {
    await this.teardown();
    const a = await pgClient('postgres');
    await a.query(`CREATE DATABASE ${DB}`);
    await a.end();
    const db = await pgClient(DB);
    try {
      for (const t of ['big', 'tiny']) await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v int, name text)`);
      for (let i = 0; i < ROWS; i += 500_000) await db.query(`INSERT INTO big SELECT g, g % 1000, 'name-' || g FROM generate_series($1::int, $2::int) g`, [i + 1, Math.min(i + 500_000, ROWS)]);
      await db.query(`INSERT INTO tiny SELECT g, g % 1000, 'name-' || g FROM generate_series(1, ${TINY_ROWS}) g`);
      await db.query('VACUUM ANALYZE big');
      await db.query('VACUUM ANALYZE tiny');
    } finally {
      await db.end();
    }
  },
  yaml: ({ name, dir, tables, level }) =>
    `name: ${name}\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1:5432/${DB}\n  tables: [${tables.join(', ')}]\n  snapshot: initial\n  heartbeatIntervalMs: 0\n  incrementalChunkSize: ${CHUNK}\n${logYaml(dir, level)}`,
  table: (t) => `public.${t}`,
  topic: (name, t) => `${name}.public.${t}`,
  async cleanup() {
    const a = await pgClient('postgres');
    try {
      // The child has exited; its walsender may take a moment to let go of the slot.
      for (let i = 0; i < 50; i++) {
        await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [DB]);
        const left = await a.query(`SELECT 1 FROM pg_replication_slots WHERE database = $1`, [DB]);
        if (!left.rowCount) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await a.end();
    }
  },
  async teardown() {
    const a = await pgClient('postgres');
    try {
      await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [DB]);
      await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    } finally {
      await a.end();
    }
  },
};

const mariadb: Engine = {
  source: 'mysql',
  async setup() {
    const c = await mysql.createConnection({ ...MYSQL_CONN });
    try {
      await c.query(`DROP DATABASE IF EXISTS ${DB}`);
      await c.query(`CREATE DATABASE ${DB}`);
      await c.query(`USE ${DB}`);
      for (const t of ['big', 'tiny']) await c.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v int, name varchar(64))`);
      const BATCH = 200_000;
      for (let i = 0; i < ROWS; i += BATCH) await c.query(`INSERT INTO big SELECT seq, seq % 1000, CONCAT('name-', seq) FROM seq_${i + 1}_to_${Math.min(i + BATCH, ROWS)}`);
      await c.query(`INSERT INTO tiny SELECT seq, seq % 1000, CONCAT('name-', seq) FROM seq_1_to_${TINY_ROWS}`);
      await c.query('ANALYZE TABLE big, tiny');
    } finally {
      await c.end();
    }
  },
  yaml: ({ name, dir, tables, serverId, level }) =>
    `name: ${name}\nsource:\n  type: mysql\n  connection: mysql://root@127.0.0.1:3306/${DB}\n  tables: [${tables.join(', ')}]\n  snapshot: initial\n  serverId: ${serverId}\n  heartbeatIntervalMs: 0\n  incrementalChunkSize: ${CHUNK}\n${logYaml(dir, level)}`,
  table: (t) => `${DB}.${t}`,
  topic: (name, t) => `${name}.${DB}.${t}`,
  async cleanup() {},
  async teardown() {
    const c = await mysql.createConnection({ ...MYSQL_CONN });
    try {
      await c.query(`DROP DATABASE IF EXISTS ${DB}`);
    } finally {
      await c.end();
    }
  },
};

async function benchSource(e: Engine): Promise<Run[]> {
  say(`${e.source}: loading ${ROWS} rows…`);
  const t0 = Date.now();
  await e.setup();
  say(`${e.source}: loaded in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${ROUNDS} rounds, chunk ${CHUNK}`);
  const work = join(tmpdir(), `sluice-bench-incremental-${e.source}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const runs: Run[] = [];
  // Server ids apart from the defaults (5400–6399) and from other benchmarks; one per pipeline.
  const serverBase = 7400 + (process.pid % 200) * 10;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const tool of orderFor(r, [INITIAL, INCREMENTAL])) {
        const kind = tool === INITIAL ? 'init' : 'inc';
        const name = `binc_${e.source === 'postgres' ? 'pg' : 'my'}_r${r}_${kind}`;
        const dir = join(work, name);
        mkdirSync(dir, { recursive: true });
        const serverId = serverBase + r * 2 + (tool === INITIAL ? 0 : 1);
        const logName = `${e.source}-r${r}-${kind}`;
        let run: Run;
        if (tool === INITIAL) {
          const x = await drain(writeConfig(dir, e.yaml({ name, dir, tables: [e.table('big')], serverId, level: 'warn' })), ROWS, logName);
          const got = await readTopic(join(dir, 'log'), e.topic(name, 'big'), false);
          run = { source: e.source, tool, round: r, chunk: null, seconds: x.seconds, perSec: ROWS / x.seconds, processSeconds: x.processSeconds, rssMiB: x.peakRssMiB, loadedRssMiB: x.loadedRssMiB, records: got.records, warnings: warningsIn(x.stderr) };
        } else {
          // First run (in this process, not measured): only the tiny table, until its snapshot is
          // done and the source streams.
          const tinySeconds = await untilStreaming(writeConfig(dir, e.yaml({ name, dir, tables: [e.table('tiny')], serverId, level: 'warn' })));
          const tinyRecords = (await readTopic(join(dir, 'log'), e.topic(name, 'tiny'), false)).records;
          if (tinyRecords !== TINY_ROWS) say(`${e.source} round ${r + 1}: the tiny table's topic holds ${tinyRecords} records, expected ${TINY_ROWS}`);
          // Second run, same state and log: big added to the tables, back-filled incrementally.
          const config = writeConfig(dir, e.yaml({ name, dir, tables: [e.table('tiny'), e.table('big')], serverId, level: 'info' }));
          const x = await drain(config, ROWS, logName);
          const got = await readTopic(join(dir, 'log'), e.topic(name, 'big'), true);
          const status = JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8'));
          const inc = status.source?.incrementalSnapshot ?? status.sources?.[0]?.incrementalSnapshot ?? null;
          const done = ((inc?.done ?? []) as { table: string; rows: number; at: string }[]).find((d) => d.table === e.table('big')) ?? null;
          run = {
            source: e.source, tool, round: r, chunk: CHUNK, seconds: x.seconds, perSec: ROWS / x.seconds, processSeconds: x.processSeconds, rssMiB: x.peakRssMiB, loadedRssMiB: x.loadedRssMiB,
            records: got.records, tinySeconds, distinctKeys: got.distinctKeys, notIncrementalReads: got.notIncremental, statusDone: done, doneLine: doneLineOf(x.stderr), warnings: warningsIn(x.stderr),
          };
          if (!done) say(`${e.source} round ${r + 1}: status.json lists no finished incremental snapshot of big (incrementalSnapshot: ${JSON.stringify(inc)})`);
          if (got.distinctKeys !== ROWS || got.notIncremental) say(`${e.source} round ${r + 1}: big's topic holds ${got.records} records, ${got.distinctKeys} keys, ${got.notIncremental} not incremental reads (expected ${ROWS} keys)`);
        }
        if (run.records !== ROWS) say(`${e.source} round ${r + 1}: ${tool}: big's topic holds ${run.records} records, expected ${ROWS}`);
        for (const w of run.warnings) say(`${e.source} round ${r + 1}: ${tool}: pipeline stderr: ${w.slice(0, 300)}`);
        runs.push(run);
        rmSync(dir, { recursive: true, force: true });
        await e.cleanup();
        say(`${e.source} round ${r + 1}: ${tool} ${Math.round(run.perSec)} rows/s (${run.seconds.toFixed(2)} s; process ${run.processSeconds.toFixed(2)} s), peak RSS ${run.rssMiB.toFixed(0)} MiB${run.doneLine ? `, ${run.doneLine.chunks} chunks, ${run.doneLine.rereads} read again` : ''}`);
      }
    }
  } finally {
    await e.teardown();
    rmSync(work, { recursive: true, force: true });
  }
  return runs;
}

mkdirSync(LOGS, { recursive: true });
const all: Run[] = [];
for (const s of SOURCES) all.push(...(await benchSource(s === 'postgres' ? postgres : mariadb)));

console.log(`\nincremental: ${ROWS} rows, chunk ${CHUNK}, ${ROUNDS} rounds in alternating order, ${process.platform} ${cpus().length} cores, Node ${process.version}`);
console.log("median (min – max) over the rounds; time from the pipeline's start to big's last row durable in its log; RSS = peak of the pipeline's process");
for (const s of SOURCES) {
  const of = (tool: string) => all.filter((r) => r.source === s && r.tool === tool);
  for (const tool of [INITIAL, INCREMENTAL]) {
    const xs = of(tool);
    console.log(`${s.padEnd(8)} ${tool.padEnd(20)} ${showSpread(spread(xs.map((x) => x.perSec))).padStart(34)} rows/s  peak RSS ${showSpread(spread(xs.map((x) => x.rssMiB)))} MiB`);
  }
  const ratios = [...new Set(all.filter((r) => r.source === s).map((r) => r.round))].map((r) => {
    const [ref, inc] = [INITIAL, INCREMENTAL].map((t) => all.find((x) => x.source === s && x.round === r && x.tool === t)!);
    return inc.perSec / ref.perSec;
  });
  const ratio = spread(ratios).median;
  const med = (tool: string) => spread(of(tool).map((x) => x.perSec)).median;
  const bad = of(INCREMENTAL).filter((x) => x.distinctKeys !== ROWS || x.notIncrementalReads || !x.statusDone || x.statusDone.rows !== ROWS).length;
  console.log(`${s}: incremental / initial = ${showSpread(spread(ratios), 2)}× (pair by pair); ${bad ? `${bad} incremental run(s) FAILED the log/status check` : 'every incremental run: each key once in the log as op r (incremental), status.json done'}`);
  summarize([{ bench: 'incremental', what: `${s}: rows/s (chunk ${CHUNK})`, figure: med(INCREMENTAL), reference: { name: `${s} ${INITIAL}`, figure: med(INITIAL) }, target: '≥ 0.5× reference (self-set)', met: ratio >= 0.5 && bad === 0 }]);
}
writeFileSync(join(OUT, 'results.json'), JSON.stringify({ rows: ROWS, rounds: ROUNDS, chunk: CHUNK, cores: cpus().length, node: process.version, runs: all }, null, 2));
