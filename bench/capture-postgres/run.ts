/**
 * bench/capture-postgres: drains the same WAL backlog with pg_recvlogical (the reference, writing
 * pgoutput to a file) and with Sluice (decoding, converting, serializing to Debezium JSON and
 * committing to the durable embedded log), and prints changes/s, MB/s and peak RSS for both.
 *
 *   node --import tsx bench/capture-postgres/run.ts [--rows 1000000] [--workload small|mixed|both]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseConfig } from '../../src/config/index.ts';
import { dirBytes, drainSeconds, peakRssOf } from '../common.ts';
import type { PostgresSourceConfig } from '../../src/config/types.ts';
import { runPipeline } from '../../src/engine/runner.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, workload: { type: 'string', default: 'both' } } });
const ROWS = Number(values.rows);
const DB = 'sluice_bench';
const conn = { host: '127.0.0.1', port: 5432, user: 'postgres' };

async function client(database: string): Promise<pg.Client> {
  const c = new pg.Client({ ...conn, database });
  await c.connect();
  return c;
}

interface Result { workload: string; tool: string; changes: number; seconds: number; perSec: number; mbPerSec: number; rssMiB: number }

async function resetDb(): Promise<void> {
  const a = await client('postgres');
  await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
  await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await a.query(`CREATE DATABASE ${DB}`);
  await a.end();
}

/** Generates the backlog; returns the number of change events it produced (deletes also give a tombstone record in the log). */
async function generate(db: pg.Client, workload: string): Promise<{ changes: number; records: number }> {
  if (workload === 'small') {
    // 1000-row transactions of single-row inserts into a 3-column table.
    for (let i = 0; i < ROWS; i += 1000) await db.query(`INSERT INTO small SELECT g, g % 1000, 'name-' || g FROM generate_series($1::int, $2::int) g`, [i + 1, Math.min(i + 1000, ROWS)]);
    return { changes: ROWS, records: ROWS };
  }
  // mixed: transactions of 1..1000 rows; inserts, then updates of half, deletes of a tenth.
  let changes = 0;
  let deletes = 0;
  let next = 1;
  while (changes < ROWS) {
    const k = Math.min(1 + Math.floor(Math.random() * 1000), Math.ceil((ROWS - changes) / 1.6));
    await db.query('BEGIN');
    await db.query(
      `INSERT INTO mixed SELECT g, g * 7, (g % 100000)::numeric / 100, 'text ' || g, now(), jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')), gen_random_uuid(), g % 2 = 0, decode(lpad(to_hex(g), 8, '0'), 'hex'), current_date - (g % 365), ARRAY['x', g::text] FROM generate_series($1::int, $2::int) g`,
      [next, next + k - 1],
    );
    const u = await db.query(`UPDATE mixed SET amount = amount + 1, note = note || '!' WHERE id BETWEEN $1 AND $2 AND id % 2 = 0`, [next, next + k - 1]);
    const d = await db.query(`DELETE FROM mixed WHERE id BETWEEN $1 AND $2 AND id % 10 = 0`, [next, next + k - 1]);
    await db.query('COMMIT');
    changes += k + (u.rowCount ?? 0) + (d.rowCount ?? 0);
    deletes += d.rowCount ?? 0;
    next += k;
  }
  return { changes, records: changes + deletes };
}

async function benchWorkload(workload: string): Promise<Result[]> {
  await resetDb();
  const db = await client(DB);
  if (workload === 'small') await db.query(`CREATE TABLE small (id int PRIMARY KEY, v int, name text)`);
  else await db.query(`CREATE TABLE mixed (id int8 PRIMARY KEY, qty int8, amount numeric(12,2), note text, at timestamptz, doc jsonb, ref uuid, flag bool, raw bytea, day date, tags text[])`);
  const work = join(tmpdir(), `sluice-bench-${workload}-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const cfg = parseConfig(
    `name: bench_${workload}\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1:5432/${DB}\n  tables: [public.${workload}]\n  snapshot: never\n  heartbeatIntervalMs: 0\nstate:\n  dir: ${work}/state\nlog:\n  dir: ${work}/log\nlogging:\n  level: warn\n`,
    'bench.yaml',
    process.env,
  );
  // Sluice creates its slot (and records its position), then stops; the reference slot next to it.
  {
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, onCommit: () => ac.abort() });
    await run;
  }
  await db.query(`SELECT pg_create_logical_replication_slot('bench_ref', 'pgoutput')`);
  process.stderr.write(`[bench] ${workload}: generating ${ROWS} changes of backlog…\n`);
  const t0 = Date.now();
  const { changes, records } = await generate(db, workload);
  const endLsn = (await db.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0].l;
  process.stderr.write(`[bench] ${workload}: ${changes} changes in ${((Date.now() - t0) / 1000).toFixed(1)} s, WAL end ${endLsn}\n`);

  // Reference: pg_recvlogical writing pgoutput to a file (fsync at the end).
  const outFile = join(work, 'pg_recvlogical.out');
  const r0 = process.hrtime.bigint();
  const child = spawn('pg_recvlogical', ['-h', '127.0.0.1', '-U', 'postgres', '-d', DB, '--slot', 'bench_ref', '--start', '-E', endLsn, '--no-loop', '-f', outFile, '-o', 'proto_version=1', '-o', `publication_names=${(cfg.source as PostgresSourceConfig).publication}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  let done = false;
  const rssP = peakRssOf(child.pid!, () => done);
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  done = true;
  const refSecs = Number(process.hrtime.bigint() - r0) / 1e9;
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}`);
  const pgoutputBytes = statSync(outFile).size;
  const ref: Result = { workload, tool: 'pg_recvlogical → file', changes, seconds: refSecs, perSec: changes / refSecs, mbPerSec: pgoutputBytes / refSecs / 1e6, rssMiB: await rssP };

  // Sluice: until every change is committed to the log.
  const rssBefore = process.resourceUsage().maxRSS / 1024;
  const sSecs = await drainSeconds(cfg, records);
  const rssAfter = process.resourceUsage().maxRSS / 1024;
  const logBytes = dirBytes(join(work, 'log'));
  const sluice: Result = { workload, tool: 'sluice → durable log', changes, seconds: sSecs, perSec: changes / sSecs, mbPerSec: pgoutputBytes / sSecs / 1e6, rssMiB: rssAfter };
  process.stderr.write(`[bench] ${workload}: sluice wrote ${(logBytes / 1e6).toFixed(0)} MB of Debezium JSON (${(logBytes / sSecs / 1e6).toFixed(1)} MB/s); bench process RSS before the run ${rssBefore.toFixed(0)} MiB\n`);
  await db.end();
  const a = await client('postgres');
  await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
  await a.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await a.end();
  rmSync(work, { recursive: true, force: true });
  return [ref, sluice];
}

const workloads = values.workload === 'both' ? ['small', 'mixed'] : [values.workload!];
const results: Result[] = [];
for (const w of workloads) results.push(...(await benchWorkload(w)));
const pad = (s: string | number, n: number) => String(s).padStart(n);
console.log(`\ncapture-postgres (${ROWS} changes per workload, ${process.platform} ${(await import('node:os')).cpus().length} cores; MB/s = pgoutput bytes drained per second)`);
console.log(`${'workload'.padEnd(9)}${'tool'.padEnd(24)}${pad('changes', 9)}${pad('seconds', 9)}${pad('changes/s', 11)}${pad('MB/s', 7)}${pad('peak RSS MiB', 14)}`);
for (const r of results) console.log(`${r.workload.padEnd(9)}${r.tool.padEnd(24)}${pad(r.changes, 9)}${pad(r.seconds.toFixed(2), 9)}${pad(Math.round(r.perSec), 11)}${pad(r.mbPerSec.toFixed(1), 7)}${pad(r.rssMiB.toFixed(0), 14)}`);
for (const w of workloads) {
  const [ref, s] = results.filter((r) => r.workload === w);
  console.log(`${w}: sluice / pg_recvlogical = ${(s.perSec / ref.perSec).toFixed(2)}×`);
}
mkdirSync('bench/capture-postgres/out', { recursive: true });
writeFileSync('bench/capture-postgres/out/results.json', JSON.stringify(results, null, 2));
