/**
 * bench/snapshot: the initial snapshot of one PostgreSQL table into the durable embedded log, beside
 * `COPY … TO STDOUT` of the same table (psql, its output to /dev/null) in the same run, round after
 * round in alternating order. Prints rows/s of each as the median and range, the ratio pair by pair,
 * the pipeline's peak RSS and the log's size beside the table's.
 *
 * Workloads: `small` (id int, v int, name text) and `mixed` (the 11 columns of common types of
 * bench/capture-postgres). Each round is a new pipeline (its own slot, state and log).
 *
 *   node --import tsx bench/snapshot/run.ts [--rows 5000000] [--workload small|mixed|both] [--rounds 3] [--compression auto|lz4|brotli|none]
 *
 * `--compression` sets the pipeline log's `log.compression` (default: the log's default, `auto`).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirBytes, drainInChild, orderFor, showSpread, spread, summarize, writeConfig, sizeOptions, pgClient, PG_CONN, timedChild, logCompressionYaml } from '../common.ts';

const { rows: ROWS, workload: WORKLOAD, rounds: ROUNDS, compression: COMPRESSION } = sizeOptions({ rows: '5000000', workload: 'small' });
const DB = 'sluice_bench_snap';
const REF = 'COPY TO STDOUT (psql)';
const SLUICE = 'sluice snapshot → log';

interface Run { workload: string; tool: string; round: number; seconds: number; perSec: number; rssMiB: number; logBytes?: number }

async function dropAll(): Promise<void> {
  const a = await pgClient('postgres');
  await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
  await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await a.end();
}

const TABLES: Record<string, { ddl: string; fill: string }> = {
  small: { ddl: 'CREATE TABLE small (id int PRIMARY KEY, v int, name text)', fill: `INSERT INTO small SELECT g, g % 1000, 'name-' || g FROM generate_series($1::int, $2::int) g` },
  mixed: {
    ddl: 'CREATE TABLE mixed (id int8 PRIMARY KEY, qty int8, amount numeric(12,2), note text, at timestamptz, doc jsonb, ref uuid, flag bool, raw bytea, day date, tags text[])',
    fill: `INSERT INTO mixed SELECT g, g * 7, (g % 100000)::numeric / 100, 'text ' || g, now(), jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')), gen_random_uuid(), g % 2 = 0, decode(lpad(to_hex(g), 8, '0'), 'hex'), current_date - (g % 365), ARRAY['x', g::text] FROM generate_series($1::int, $2::int) g`,
  },
};

/** psql's `COPY <table> TO STDOUT`, its output thrown away: the seconds and psql's peak RSS. */
function copyOut(table: string): Promise<{ seconds: number; rss: number }> {
  return timedChild('psql', ['-h', PG_CONN.host, '-U', PG_CONN.user, '-d', DB, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `COPY ${table} TO STDOUT`]);
}

async function benchWorkload(workload: string): Promise<{ runs: Run[]; tableBytes: number }> {
  await dropAll();
  const a = await pgClient('postgres');
  await a.query(`CREATE DATABASE ${DB}`);
  await a.end();
  const db = await pgClient(DB);
  const t = TABLES[workload];
  await db.query(t.ddl);
  process.stderr.write(`[bench] ${workload}: loading ${ROWS} rows…\n`);
  const t0 = Date.now();
  for (let i = 0; i < ROWS; i += 500_000) await db.query(t.fill, [i + 1, Math.min(i + 500_000, ROWS)]);
  await db.query(`VACUUM ANALYZE ${workload}`);
  const tableBytes = Number((await db.query(`SELECT pg_table_size($1::regclass) AS n`, [workload])).rows[0].n);
  process.stderr.write(`[bench] ${workload}: ${ROWS} rows (${(tableBytes / 1e6).toFixed(0)} MB) in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${ROUNDS} rounds\n`);
  const work = join(tmpdir(), `sluice-bench-snapshot-${workload}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const runs: Run[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const tool of orderFor(r, [REF, SLUICE])) {
        if (tool === REF) {
          const x = await copyOut(workload);
          runs.push({ workload, tool, round: r, seconds: x.seconds, perSec: ROWS / x.seconds, rssMiB: x.rss });
        } else {
          const dir = join(work, `round${r}`);
          mkdirSync(dir, { recursive: true });
          const yaml = `name: bsnap_${workload}_r${r}\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1:5432/${DB}\n  tables: [public.${workload}]\n  snapshot: initial\n  heartbeatIntervalMs: 0\nstate:\n  dir: ${dir}/state\nlog:\n  dir: ${dir}/log\n${logCompressionYaml(COMPRESSION)}logging:\n  level: warn\n`;
          const x = await drainInChild(writeConfig(dir, yaml), ROWS);
          const logBytes = dirBytes(join(dir, 'log'));
          rmSync(dir, { recursive: true, force: true });
          await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [DB]);
          runs.push({ workload, tool, round: r, seconds: x.seconds, perSec: ROWS / x.seconds, rssMiB: x.peakRssMiB, logBytes });
        }
        const last = runs[runs.length - 1];
        process.stderr.write(`[bench] ${workload} round ${r + 1}: ${tool} ${Math.round(last.perSec)} rows/s, peak RSS ${last.rssMiB.toFixed(0)} MiB${last.logBytes ? `, log ${(last.logBytes / 1e6).toFixed(0)} MB` : ''}\n`);
      }
    }
  } finally {
    await db.end();
    await dropAll();
    rmSync(work, { recursive: true, force: true });
  }
  return { runs, tableBytes };
}

const workloads = WORKLOAD === 'both' ? ['small', 'mixed'] : [WORKLOAD];
const all: Run[] = [];
const sizes: Record<string, number> = {};
for (const w of workloads) {
  const { runs, tableBytes } = await benchWorkload(w);
  all.push(...runs);
  sizes[w] = tableBytes;
}
console.log(`\nsnapshot: ${ROWS} rows per table, ${ROUNDS} rounds in alternating order, ${process.platform} ${cpus().length} cores, Node ${process.version}`);
console.log('median (min – max) over the rounds; RSS = peak of the tool\'s own process; sluice\'s time runs from the pipeline\'s start to the last row durable in its log');
for (const w of workloads) {
  for (const tool of [REF, SLUICE]) {
    const xs = all.filter((r) => r.workload === w && r.tool === tool);
    console.log(`${w.padEnd(6)} ${tool.padEnd(24)} ${showSpread(spread(xs.map((x) => x.perSec))).padStart(34)} rows/s  peak RSS ${showSpread(spread(xs.map((x) => x.rssMiB)))} MiB`);
  }
  const ratios = [...new Set(all.map((r) => r.round))].map((r) => {
    const [ref, s] = [REF, SLUICE].map((t) => all.find((x) => x.workload === w && x.round === r && x.tool === t)!);
    return s.perSec / ref.perSec;
  });
  const logBytes = spread(all.filter((r) => r.workload === w && r.logBytes).map((r) => r.logBytes!)).median;
  console.log(`${w}: sluice / COPY = ${showSpread(spread(ratios), 2)}× (pair by pair); log ${(logBytes / 1e6).toFixed(0)} MB = ${(logBytes / sizes[w]).toFixed(1)}× the table (${(sizes[w] / 1e6).toFixed(0)} MB)`);
  const med = (tool: string) => spread(all.filter((r) => r.workload === w && r.tool === tool).map((x) => x.perSec)).median;
  const ratio = spread(ratios).median;
  summarize([
    { bench: 'snapshot', what: `${w}: rows/s`, figure: med(SLUICE), reference: { name: REF, figure: med(REF) }, target: '≥ 0.5× reference and ≥ 200k', met: ratio >= 0.5 && med(SLUICE) >= 200_000 },
    { bench: 'snapshot', what: `${w}: log size / table size`, figure: logBytes / sizes[w], target: '≤ 1.5×', met: logBytes / sizes[w] <= 1.5 },
  ]);
}
mkdirSync('bench/snapshot/out', { recursive: true });
writeFileSync('bench/snapshot/out/results.json', JSON.stringify(all, null, 2));
