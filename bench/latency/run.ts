/**
 * bench/latency: end-to-end latency under sustained load, per change, from the source commit to
 * the row being visible in a PostgreSQL sink target.
 *
 * A workload commits small transactions (one every 5 ms, as many rows as the rate owes by then) at
 * fixed rates into a source table — PostgreSQL and MariaDB — and records, per row, the time its
 * autocommit INSERT was sent (the workload's own record; so the figures include the source's own
 * commit, about a millisecond). Sluice (`sluice run`, a process of its own: source →
 * embedded log → PostgreSQL sink) applies them into a target table created beforehand with one
 * extra column, `applied_at timestamptz DEFAULT clock_timestamp()`, which PostgreSQL fills when the
 * sink's INSERT writes the row (its transaction commits a moment later). Latency per row =
 * applied_at − commit time: p50, p95, p99, max. CPU is the pipeline process's user+system time per
 * 1000 changes over the rate's run; RSS its peak.
 *
 * The same changes are also timed to the moment they are committed to the embedded log: the
 * benchmark follows the pipeline's log read-only (woken by the log's journal as the pipeline commits)
 * and stamps each record when it first sees it. A record is visible only once its commit reached
 * the journal; the journal's fdatasync runs a moment later, so "in the log" is the commit
 * written, a millisecond or so before it is durable.
 *
 * Reference for the PostgreSQL source, in the same run and on the same workload: PostgreSQL's own
 * logical replication (a subscription in another database of the same server, table with the same
 * `applied_at` column), which consumes the same WAL at the same time as Sluice.
 *
 * The last rate, `max`, commits as fast as one workload connection can (transactions of 200 rows).
 *
 * Each rate first runs for `--warmup` seconds (default 5) that are not measured: the figures are
 * of a pipeline under a load it has been running, not of its first second (the cold start, when
 * the code for that load is still being compiled, is reported in docs/benchmarks.md).
 *
 *   node --import tsx bench/latency/run.ts [--rates 1000,5000,10000,20000,max] [--seconds 60] [--warmup 5] [--sources postgres,mysql] [--profile]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { summarize } from '../common.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '1000,5000,10000,20000,max' }, seconds: { type: 'string', default: '60' }, warmup: { type: 'string', default: '5' }, sources: { type: 'string', default: 'postgres,mysql' }, profile: { type: 'boolean', default: false } } });
const RATES = values.rates!.split(',');
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const SOURCES = values.sources!.split(',');
const TICK_MS = 5;
const dir = join(tmpdir(), `sluice-bench-latency-${process.pid}`);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres' };
const SRC = 'sluice_bench_lat_src';
const DST = 'sluice_bench_lat_dst';
const REF = 'sluice_bench_lat_ref';
const TABLE_SQL = 'id bigint PRIMARY KEY, v int, note text';

const now = (): number => performance.timeOrigin + performance.now();

async function pgClient(database: string): Promise<pg.Client> {
  const c = new pg.Client({ ...PG, database });
  await c.connect();
  return c;
}

/** Per row id, the time (ms since the epoch, fractional) its commit returned. */
type Commits = Float64Array;

interface Workload {
  /** Commits `rows` rows (ids from `first`) in one transaction. */
  insert(first: number, rows: number): Promise<void>;
  close(): Promise<void>;
}

async function pgWorkload(): Promise<Workload> {
  const c = await pgClient(SRC);
  return {
    async insert(first, rows) {
      await c.query(`INSERT INTO lat SELECT i, i % 1000, 'note ' || i FROM generate_series($1::int8, $2::int8) i`, [first, first + rows - 1]);
    },
    close: () => c.end(),
  };
}

async function mysqlWorkload(): Promise<Workload> {
  const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: SRC });
  return {
    async insert(first, rows) {
      const vals: string[] = [];
      for (let i = first; i < first + rows; i++) vals.push(`(${i},${i % 1000},'note ${i}')`);
      await c.query(`INSERT INTO lat VALUES ${vals.join(',')}`);
    },
    close: () => c.end(),
  };
}

/**
 * Runs the workload at `rate` changes/s (or as fast as it can, `max`) for SECONDS; returns the
 * ids it wrote ([first, next)) and each one's commit time.
 */
async function drive(w: Workload, first: number, rate: string, commits: Commits, seconds = SECONDS): Promise<number> {
  const start = now();
  const end = start + seconds * 1000;
  let id = first;
  for (let tick = 1; now() < end; tick++) {
    let rows = 200;
    if (rate !== 'max') {
      const wait = start + tick * TICK_MS - now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // What the rate owes by now: a slow commit is made up by the next one, so the rate holds.
      rows = Math.floor((Number(rate) * (now() - start)) / 1000) - (id - first);
      if (rows <= 0) continue;
    }
    // The time the INSERT is sent (it commits on its own): latency includes the source's commit.
    const t = now();
    await w.insert(id, rows);
    for (let i = 0; i < rows; i++) commits[id + i] = t;
    id += rows;
  }
  return id;
}

/** Rows [from, to) of `db`'s lat table, once all are there: id → applied_at (ms). */
async function applied(db: string, from: number, to: number, timeoutMs = 120_000): Promise<Map<number, number>> {
  const c = await pgClient(db);
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await c.query(`SELECT count(*)::int AS n FROM lat WHERE id >= $1 AND id < $2`, [from, to]);
      if (rows[0].n === to - from) break;
      if (Date.now() > until) throw new Error(`${db}: ${rows[0].n} of ${to - from} rows after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const { rows } = await c.query({ text: `SELECT id::float8, extract(epoch FROM applied_at)::float8 * 1000 FROM lat WHERE id >= $1 AND id < $2`, values: [from, to], rowMode: 'array' });
    return new Map(rows.map((r) => [Number(r[0]), Number(r[1])]));
  } finally {
    await c.end();
  }
}

interface Figures {
  changes: number;
  rate: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function figures(commits: Commits, got: Map<number, number>, from: number, to: number): Figures {
  const lat: number[] = [];
  for (let id = from; id < to; id++) lat.push(got.get(id)! - commits[id]);
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { changes: to - from, rate: (to - from) / SECONDS, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: lat[lat.length - 1] };
}

/** user+system CPU seconds of a process so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100/s)
}

function peakRss(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** Drops the reference subscription (without reaching for its slot, dropped with the others). */
async function dropSubscription(): Promise<void> {
  const admin = await pgClient('postgres');
  const { rows } = await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [REF]);
  await admin.end();
  if (!rows.length) return;
  const ref = await pgClient(REF);
  const { rows: subs } = await ref.query(`SELECT 1 FROM pg_subscription WHERE subname = 'lat_ref'`);
  if (subs.length) {
    await ref.query(`ALTER SUBSCRIPTION lat_ref DISABLE`);
    await ref.query(`ALTER SUBSCRIPTION lat_ref SET (slot_name = NONE)`);
    await ref.query(`DROP SUBSCRIPTION lat_ref`);
  }
  await ref.end();
}

async function prepare(source: string): Promise<void> {
  await dropSubscription();
  const admin = await pgClient('postgres');
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'lat_%' AND NOT active`);
  for (const db of [DST, REF, ...(source === 'postgres' ? [SRC] : [])]) {
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${db}`);
  }
  await admin.end();
  const dst = await pgClient(DST);
  await dst.query(`CREATE TABLE lat (${TABLE_SQL}, applied_at timestamptz DEFAULT clock_timestamp())`);
  await dst.end();
  if (source === 'postgres') {
    const src = await pgClient(SRC);
    await src.query(`CREATE TABLE lat (${TABLE_SQL})`);
    await src.query(`CREATE PUBLICATION lat_ref_pub FOR TABLE lat`);
    await src.query(`SELECT pg_create_logical_replication_slot('lat_ref', 'pgoutput')`);
    await src.end();
    const ref = await pgClient(REF);
    await ref.query(`CREATE TABLE lat (${TABLE_SQL}, applied_at timestamptz DEFAULT clock_timestamp())`);
    await ref.query(`CREATE SUBSCRIPTION lat_ref CONNECTION 'host=127.0.0.1 port=5432 user=postgres dbname=${SRC}' PUBLICATION lat_ref_pub WITH (create_slot = false, slot_name = 'lat_ref', copy_data = false)`);
    await ref.end();
  } else {
    const my = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
    await my.query(`DROP DATABASE IF EXISTS ${SRC}`);
    await my.query(`CREATE DATABASE ${SRC}`);
    await my.query(`CREATE TABLE ${SRC}.lat (id BIGINT PRIMARY KEY, v INT, note TEXT)`);
    await my.end();
  }
}

async function cleanup(): Promise<void> {
  await dropSubscription();
  const admin = await pgClient('postgres');
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE (slot_name LIKE 'lat_%' OR database = $1) AND NOT active`, [SRC]);
  for (const db of [SRC, DST, REF]) await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await admin.end();
  const my = await mysql.createConnection({ host: '127.0.0.1', user: 'root' });
  await my.query(`DROP DATABASE IF EXISTS ${SRC}`);
  await my.end();
}

function startPipeline(source: string): ChildProcess {
  const srcYaml =
    source === 'postgres'
      ? `  type: postgres\n  connection: postgres://postgres@127.0.0.1:5432/${SRC}\n  tables: [public.lat]\n  slot: lat_sluice\n  snapshot: never`
      : `  type: mysql\n  connection: { host: 127.0.0.1, user: root, database: ${SRC} }\n  tables: [${SRC}.lat]\n  snapshot: never`;
  const yaml = `name: lat_${source}\nsource:\n${srcYaml}\nstate: { dir: ${dir}/${source}/state }\nlog: { dir: ${dir}/${source}/log }\nlogging: { level: warn }\nsinks:\n  - { name: pg, type: postgres, connection: postgres://postgres@127.0.0.1:5432/${DST} }\n`;
  const file = join(dir, `${source}.yaml`);
  writeFileSync(file, yaml);
  // --profile: a CPU profile of the pipeline process, written when it stops (bench/latency/out/profile).
  const prof = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${new URL('./out/profile', import.meta.url).pathname}`] : [];
  return spawn(process.execPath, [...prof, new URL('../../bin/sluice.js', import.meta.url).pathname, 'run', file], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/**
 * Follows the pipeline's log read-only and stamps, per row id, when its record was first seen
 * there (ms since the epoch). Stops when `stop()` says so.
 */
async function followLog(logDir: string, seen: Float64Array, stop: () => boolean): Promise<void> {
  let log: Log | null = null;
  let topic: string | undefined;
  while (!stop()) {
    if (!log) {
      try {
        log = await openLog(embeddedLogAt(logDir), { readOnly: true });
      } catch {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
    }
    topic ??= (await log.listTopics()).map((t) => t.name).find((n) => n.endsWith('.lat'));
    if (!topic) {
      // A read-only handle sees a new topic with the first commit that follows its creation.
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const at = (await log.offsets(topic)).map((o) => o.start);
    for (;;) {
      if (stop()) break;
      await log.waitFor(topic, 0, at[0], 50);
      for (let p = 0; p < at.length; p++) {
        for (;;) {
          const r = await log.read(topic, p, at[p], 1 << 20);
          if (!r.records.length) break;
          const t = now();
          for (const rec of r.records) {
            const m = rec.key && /"id":(\d+)/.exec(rec.key.toString('latin1'));
            if (m && seen[Number(m[1])] === 0) seen[Number(m[1])] = t;
          }
          at[p] = r.next;
        }
      }
    }
  }
  await log?.close();
}

interface Row {
  source: string;
  rate: string;
  sluice: Figures;
  /** Source commit → committed to the embedded log. */
  inLog: Figures;
  ref?: Figures;
  cpuPer1k: number;
  rssMiB: number;
}

const out: Row[] = [];
for (const source of SOURCES) {
  await prepare(source);
  const child = startPipeline(source);
  const w = source === 'postgres' ? await pgWorkload() : await mysqlWorkload();
  const seen = new Float64Array(50_000_000);
  let following = true;
  const follower = followLog(join(dir, source, 'log'), seen, () => !following);
  try {
    // Streaming: a row goes through before the clock starts (rows written before the pipeline's
    // slot or binlog position existed never arrive, so write another until one does).
    const commits: Commits = new Float64Array(50_000_000);
    let id = 1;
    for (const until = Date.now() + 60_000; ; id++) {
      if (Date.now() > until) throw new Error(`the ${source} pipeline applied nothing within 60 s`);
      await w.insert(id, 1);
      if (await applied(DST, id, id + 1, 1000).then(() => true, () => false)) break;
    }
    id++;
    for (const rate of RATES) {
      if (WARMUP > 0) {
        // The same rate for a few seconds first, not measured: the pipeline's code paths for this
        // load compiled (a cold start at 10k changes/s delays the first ~0.75 s of changes by up to
        // 0.6 s, which alone would be the p99 of a 60 s run), its batches at their size.
        const warm = id;
        id = await drive(w, warm, rate, commits, WARMUP);
        await applied(DST, warm, id);
      }
      const cpu0 = cpuSeconds(child.pid!);
      const from = id;
      id = await drive(w, from, rate, commits);
      const got = await applied(DST, from, id);
      const cpu = cpuSeconds(child.pid!) - cpu0;
      const inLog = new Map<number, number>();
      for (let i = from; i < id; i++) if (seen[i] > 0) inLog.set(i, seen[i]);
      if (inLog.size !== id - from) throw new Error(`the log follower saw ${inLog.size} of ${id - from} changes`);
      const row: Row = { source, rate, sluice: figures(commits, got, from, id), inLog: figures(commits, inLog, from, id), cpuPer1k: (cpu / (id - from)) * 1000, rssMiB: peakRss(child.pid!) };
      if (source === 'postgres') row.ref = figures(commits, await applied(REF, from, id), from, id);
      out.push(row);
      process.stderr.write(`${source} ${rate}/s: ${Math.round(row.sluice.rate)} changes/s, p50 ${row.sluice.p50.toFixed(1)} p99 ${row.sluice.p99.toFixed(1)} max ${row.sluice.max.toFixed(1)} ms (in the log: p50 ${row.inLog.p50.toFixed(1)} p99 ${row.inLog.p99.toFixed(1)}), CPU ${(row.cpuPer1k * 1000).toFixed(1)} ms/1k${row.ref ? `; logical replication p50 ${row.ref.p50.toFixed(1)} p99 ${row.ref.p99.toFixed(1)} ms` : ''}\n`);
    }
  } finally {
    following = false;
    await follower;
    await w.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}
await cleanup();
rmSync(dir, { recursive: true, force: true });

const ms = (x: number) => x.toFixed(1);
console.log(`\nlatency: source commit → visible in a PostgreSQL sink target (and → committed to the log), ${SECONDS} s per rate after ${WARMUP} s of warm-up at that rate; transactions every ${TICK_MS} ms (max: 200 rows each, as fast as one connection commits)\n`);
console.log('| source | rate | tool | changes/s | p50 ms | p95 ms | p99 ms | max ms | CPU ms / 1k changes | peak RSS |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of out) {
  const f = r.sluice;
  console.log(`| ${r.source} | ${r.rate} | **Sluice** | ${Math.round(f.rate).toLocaleString('en-US')} | ${ms(f.p50)} | ${ms(f.p95)} | **${ms(f.p99)}** | ${ms(f.max)} | ${(r.cpuPer1k * 1000).toFixed(1)} | ${Math.round(r.rssMiB)} MiB |`);
  const l = r.inLog;
  console.log(`| ${r.source} | ${r.rate} | Sluice, in the log | | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} | | |`);
  if (r.ref) console.log(`| ${r.source} | ${r.rate} | logical replication | ${Math.round(r.ref.rate).toLocaleString('en-US')} | ${ms(r.ref.p50)} | ${ms(r.ref.p95)} | ${ms(r.ref.p99)} | ${ms(r.ref.max)} | | |`);
}
console.log('\nTargets: p99 ≤ 30 ms at 10k changes/s, ≤ 100 ms at 20k changes/s.');
const LIMIT: Record<string, number> = { '10000': 30, '20000': 100 };
summarize(out.filter((r) => LIMIT[r.rate]).map((r) => ({ bench: 'latency', what: `${r.source} ${Number(r.rate) / 1000}k/s: p99 ms`, figure: r.sluice.p99, reference: r.ref ? { name: 'logical replication', figure: r.ref.p99 } : undefined, target: `≤ ${LIMIT[r.rate]} ms`, met: r.sluice.p99 <= LIMIT[r.rate] })));
process.exit(0);
