/**
 * bench/capture-postgres: drains the same WAL backlog with pg_recvlogical (the reference, writing
 * pgoutput to a file) and with Sluice (decoding, converting, serializing to Debezium JSON and
 * committing to the durable embedded log, in a process of its own), round after round in
 * alternating order, and prints changes/s, MB/s and peak RSS of each as the median and range.
 *
 * Every round has its own pair of slots, all created before the backlog is written, so each
 * round drains exactly the same WAL.
 *
 *   node --import tsx bench/capture-postgres/run.ts [--rows 1000000] [--workload small|mixed|both] [--rounds 3] [--compression auto|lz4|brotli|none]
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/index.ts';
import type { PostgresSourceConfig } from '../../src/config/types.ts';
import { generate } from './workload.ts';
import { dirBytes, drainInChild, orderFor, showSpread, spread, startOnce, summarize, writeConfig, sizeOptions, pgClient, timedChild, logCompressionYaml } from '../common.ts';

const { rows: ROWS, workload: WORKLOAD, rounds: ROUNDS, compression: COMPRESSION } = sizeOptions({ rows: '1000000', workload: 'both' });
const DB = 'sluice_bench';
const REF = 'pg_recvlogical → file';
const SLUICE = 'sluice → durable log';

interface Run { workload: string; tool: string; round: number; order: number; changes: number; seconds: number; perSec: number; mbPerSec: number; rssMiB: number; loadedRssMiB?: number }

async function resetDb(): Promise<void> {
  const a = await pgClient('postgres');
  await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
  await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await a.query(`CREATE DATABASE ${DB}`);
  await a.end();
}

function recvlogical(slot: string, endLsn: string, publication: string, outFile: string): Promise<{ seconds: number; rss: number }> {
  return timedChild('pg_recvlogical', ['-h', '127.0.0.1', '-U', 'postgres', '-d', DB, '--slot', slot, '--start', '-E', endLsn, '--no-loop', '-f', outFile, '-o', 'proto_version=1', '-o', `publication_names=${publication}`]);
}

async function benchWorkload(workload: string): Promise<Run[]> {
  await resetDb();
  const db = await pgClient(DB);
  if (workload === 'small') await db.query(`CREATE TABLE small (id int PRIMARY KEY, v int, name text)`);
  else await db.query(`CREATE TABLE mixed (id int8 PRIMARY KEY, qty int8, amount numeric(12,2), note text, at timestamptz, doc jsonb, ref uuid, flag bool, raw bytea, day date, tags text[])`);
  const work = join(tmpdir(), `sluice-bench-${workload}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  // One pipeline (its own name, slot, state and log) and one reference slot per round, all
  // positioned before the backlog exists.
  const rounds: { configPath: string; logDir: string; refSlot: string; publication: string }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const dir = join(work, `round${r}`);
    mkdirSync(dir, { recursive: true });
    const yaml = `name: bench_${workload}_r${r}\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1:5432/${DB}\n  tables: [public.${workload}]\n  snapshot: never\n  heartbeatIntervalMs: 0\nstate:\n  dir: ${dir}/state\nlog:\n  dir: ${dir}/log\n${logCompressionYaml(COMPRESSION)}logging:\n  level: warn\n`;
    const cfg = parseConfig(yaml, 'bench.yaml', process.env);
    await startOnce(cfg);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [`bench_ref_r${r}`]);
    rounds.push({ configPath: writeConfig(dir, yaml), logDir: join(dir, 'log'), refSlot: `bench_ref_r${r}`, publication: (cfg.source as PostgresSourceConfig).publication });
  }
  process.stderr.write(`[bench] ${workload}: generating ${ROWS} changes of backlog…\n`);
  const t0 = Date.now();
  const { changes, records } = await generate(db, workload, ROWS);
  const endLsn = (await db.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0].l;
  process.stderr.write(`[bench] ${workload}: ${changes} changes in ${((Date.now() - t0) / 1000).toFixed(1)} s, WAL end ${endLsn}; ${ROUNDS} rounds\n`);

  const runs: Run[] = [];
  let pgoutputBytes = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const round = rounds[r];
    for (const [order, tool] of orderFor(r, [REF, SLUICE]).entries()) {
      if (tool === REF) {
        const outFile = join(work, `round${r}`, 'pg_recvlogical.out');
        const x = await recvlogical(round.refSlot, endLsn, round.publication, outFile);
        pgoutputBytes = statSync(outFile).size;
        rmSync(outFile);
        runs.push({ workload, tool, round: r, order, changes, seconds: x.seconds, perSec: changes / x.seconds, mbPerSec: 0, rssMiB: x.rss });
      } else {
        const x = await drainInChild(round.configPath, records);
        const logBytes = dirBytes(round.logDir);
        rmSync(round.logDir, { recursive: true, force: true });
        runs.push({ workload, tool, round: r, order, changes, seconds: x.seconds, perSec: changes / x.seconds, mbPerSec: 0, rssMiB: x.peakRssMiB, loadedRssMiB: x.loadedRssMiB });
        process.stderr.write(`[bench] ${workload} round ${r + 1}: sluice wrote ${(logBytes / 1e6).toFixed(0)} MB of Debezium JSON\n`);
      }
      const last = runs[runs.length - 1];
      process.stderr.write(`[bench] ${workload} round ${r + 1}: ${tool} ${Math.round(last.perSec)} changes/s, peak RSS ${last.rssMiB.toFixed(0)} MiB\n`);
    }
  }
  // MB/s: pgoutput bytes (pg_recvlogical's output) drained per second, for both tools.
  for (const x of runs) x.mbPerSec = pgoutputBytes / x.seconds / 1e6;
  await db.end();
  const a = await pgClient('postgres');
  await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
  await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await a.end();
  rmSync(work, { recursive: true, force: true });
  return runs;
}

const workloads = WORKLOAD === 'both' ? ['small', 'mixed'] : [WORKLOAD];
const runs: Run[] = [];
for (const w of workloads) runs.push(...(await benchWorkload(w)));
console.log(`\ncapture-postgres: ${ROWS} changes per workload, ${ROUNDS} rounds in alternating order, ${process.platform} ${cpus().length} cores, Node ${process.version}`);
console.log(`median (min – max) over the rounds; MB/s = pgoutput bytes drained per second; RSS = peak of the tool's own process`);
for (const w of workloads) {
  for (const tool of [REF, SLUICE]) {
    const xs = runs.filter((r) => r.workload === w && r.tool === tool);
    const loaded = xs[0].loadedRssMiB === undefined ? '' : `, ${showSpread(spread(xs.map((x) => x.loadedRssMiB!)))} MiB of it once loaded`;
    console.log(`${w.padEnd(6)} ${tool.padEnd(22)} ${showSpread(spread(xs.map((x) => x.perSec))).padStart(34)} changes/s  ${showSpread(spread(xs.map((x) => x.mbPerSec)), 1).padStart(20)} MB/s  peak RSS ${showSpread(spread(xs.map((x) => x.rssMiB)))} MiB${loaded}`);
  }
  const ratios = [...new Set(runs.map((r) => r.round))].map((r) => {
    const [ref, s] = [REF, SLUICE].map((t) => runs.find((x) => x.workload === w && x.round === r && x.tool === t)!);
    return s.perSec / ref.perSec;
  });
  console.log(`${w}: sluice / pg_recvlogical = ${showSpread(spread(ratios), 2)}× (pair by pair, per round)`);
  const med = (tool: string, f: (x: Run) => number) => spread(runs.filter((r) => r.workload === w && r.tool === tool).map(f)).median;
  const ratio = spread(ratios).median;
  const want = w === 'small' ? 1.1 : 1.0;
  const rss = med(SLUICE, (x) => x.rssMiB);
  summarize([
    { bench: 'capture-postgres', what: `${w}: changes/s`, figure: med(SLUICE, (x) => x.perSec), reference: { name: REF, figure: med(REF, (x) => x.perSec) }, target: `≥ ${want.toFixed(1)}× reference`, met: ratio >= want },
    { bench: 'capture-postgres', what: `${w}: peak RSS MiB`, figure: rss, target: '≤ 128 MiB (issue 12; ≤ 256 at the least)', met: rss <= 128 },
  ]);
}
mkdirSync('bench/capture-postgres/out', { recursive: true });
writeFileSync('bench/capture-postgres/out/results.json', JSON.stringify(runs, null, 2));
