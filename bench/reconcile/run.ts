/**
 * bench/reconcile: `sluice reconcile` of one PostgreSQL table against its copy in another
 * PostgreSQL database (the pipeline stopped: a plain scan, no re-check waits), beside two references
 * measured in the same run, round after round in alternating order:
 * - `COPY … TO STDOUT` of both tables (psql, output to /dev/null): reading the rows and nothing else;
 * - `md5(string_agg(t::text, '' ORDER BY id))` on each side: the checksum a user could write in SQL,
 *   which works only between two PostgreSQL databases and names no differing key.
 * Prints rows/s (source rows per second of wall time) as the median and range.
 *
 * `--targets` adds other kinds of target, each filled from the source table by a `snapshot:
 * initial_only` run of the pipeline before the rounds: `delta` and `iceberg` (merge-mode lake
 * tables, read into an in-memory DuckDB), `mongodb` (the server at $MONGO_URL, default
 * mongodb://127.0.0.1:27017) and `postgres_jsonb` (documents, read by _id). Each is reconciled
 * alone in each round, beside the same references.
 *
 *   node --import tsx bench/reconcile/run.ts [--rows 500000] [--rounds 3] [--chunk 10000] [--targets postgres,delta,iceberg,mongodb,postgres_jsonb]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../../src/config/index.ts';
import { reconcile } from '../../src/quality/reconcile/run.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { createLogger } from '../../src/core/logger.ts';
import { orderFor, pgClient, PG_CONN, showSpread, spread, summarize, timedChild } from '../common.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '500000' }, rounds: { type: 'string', default: '3' }, chunk: { type: 'string', default: '10000' }, targets: { type: 'string', default: 'postgres' } } });
const KINDS = ['postgres', 'delta', 'iceberg', 'mongodb', 'postgres_jsonb'] as const;
const TARGETS = values.targets!.split(',').map((t) => t.trim()) as (typeof KINDS)[number][];
for (const t of TARGETS) if (!KINDS.includes(t)) throw new Error(`--targets: ${t} is not one of ${KINDS.join(', ')}`);
const MONGO_URL = process.env.MONGO_URL ?? 'mongodb://127.0.0.1:27017';
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const CHUNK = Number(values.chunk);
const SRC = 'sluice_bench_rec_src';
const TGT = 'sluice_bench_rec_tgt';
const DDL = 'CREATE TABLE mixed (id int8 PRIMARY KEY, qty int8, amount numeric(12,2), note text, at timestamptz, doc jsonb, flag bool, raw bytea, day date)';
const FILL = `INSERT INTO mixed SELECT g, g * 7, (g % 100000)::numeric / 100, 'text ' || g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1.5 second', jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')), g % 2 = 0, decode(lpad(to_hex(g), 8, '0'), 'hex'), date '2024-01-01' + (g % 365) FROM generate_series($1::int, $2::int) g`;

async function fresh(db: string): Promise<void> {
  const a = await pgClient('postgres');
  await a.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await a.query(`CREATE DATABASE ${db}`);
  await a.end();
  const c = await pgClient(db);
  await c.query(DDL);
  for (let i = 0; i < ROWS; i += 250_000) await c.query(FILL, [i + 1, Math.min(i + 250_000, ROWS)]);
  await c.query('VACUUM ANALYZE mixed');
  await c.end();
}

const psql = (db: string, sql: string) => timedChild('psql', ['-h', PG_CONN.host, '-U', PG_CONN.user, '-d', db, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql]);

type Tool = string;
const label = (t: string) => (t === 'postgres' ? 'sluice reconcile' : `reconcile → ${t}`);
const TOOLS: Tool[] = [...TARGETS.map(label), 'COPY TO STDOUT ×2', 'md5(string_agg) ×2'];
/** The sink of each target kind (the PostgreSQL copy is the one the bench loads itself). */
const sinkYaml = (work: string): Record<string, string> => ({
  postgres: `  - name: copy\n    type: postgres\n    connection: { host: ${PG_CONN.host}, port: ${PG_CONN.port}, user: ${PG_CONN.user}, database: ${TGT} }\n`,
  delta: `  - { name: delta, type: delta, mode: merge, path: ${join(work, 'delta')} }\n`,
  iceberg: `  - { name: iceberg, type: iceberg, mode: merge, path: ${join(work, 'iceberg')} }\n`,
  mongodb: `  - { name: mongodb, type: mongodb, connection: "${MONGO_URL}/sluice_bench_rec" }\n`,
  postgres_jsonb: `  - { name: postgres_jsonb, type: postgres_jsonb, connection: "postgres://${PG_CONN.user}@${PG_CONN.host}:${PG_CONN.port}/${TGT}", schema: docs }\n`,
});

async function main(): Promise<void> {
  process.stderr.write(`[bench] loading ${ROWS} rows into ${SRC} and ${TGT}…\n`);
  await fresh(SRC);
  await fresh(TGT);
  const work = mkdtempSync(join(tmpdir(), 'sluice-bench-reconcile-'));
  const yaml = `name: recbench
source:
  type: postgres
  connection: { host: ${PG_CONN.host}, port: ${PG_CONN.port}, user: ${PG_CONN.user}, database: ${SRC} }
  tables: [public.mixed]
log:
  dir: ${join(work, 'log')}
state:
  dir: ${join(work, 'state')}
sinks:
${TARGETS.map((t) => sinkYaml(work)[t]).join('')}`;
  writeFileSync(join(work, 'p.yaml'), yaml);
  const cfg = parseConfig(yaml, join(work, 'p.yaml'), process.env);
  const others = TARGETS.filter((t) => t !== 'postgres');
  if (others.length) {
    // The other targets, filled by the pipeline itself: a snapshot of the table, then it stops.
    const { MongoClient } = await import('mongodb');
    const m = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    if (others.includes('mongodb')) await m.connect().then(() => m.db('sluice_bench_rec').dropDatabase());
    await m.close();
    const fill = `${yaml.replace('  tables: [public.mixed]', '  tables: [public.mixed]\n  snapshot: initial_only\n  slot: sluice_bench_rec')}`.replace(/sinks:\n[\s\S]*$/, `sinks:\n${others.map((t) => sinkYaml(work)[t]).join('')}`);
    process.stderr.write(`[bench] filling ${others.join(', ')} with a snapshot of the table…\n`);
    const t0 = performance.now();
    await runPipeline(parseConfig(fill, join(work, 'fill.yaml'), process.env), { logger: createLogger({ level: 'warn' }) });
    process.stderr.write(`[bench] filled in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const results = new Map<Tool, number[]>(TOOLS.map((t) => [t, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const tool of orderFor(r, TOOLS)) {
        const t0 = performance.now();
        const kind = TARGETS.find((t) => label(t) === tool);
        if (kind) {
          const rep = await reconcile(cfg, { chunk: CHUNK, sinks: [kind === 'postgres' ? 'copy' : kind] });
          const x = rep.results[0];
          if (!rep.ok || x.sourceRows !== ROWS || x.targetRows !== ROWS) throw new Error(`reconcile did not agree: ${JSON.stringify(x)}`);
        } else if (tool === 'COPY TO STDOUT ×2') {
          await psql(SRC, 'COPY (SELECT * FROM mixed ORDER BY id) TO STDOUT');
          await psql(TGT, 'COPY (SELECT * FROM mixed ORDER BY id) TO STDOUT');
        } else {
          await psql(SRC, `SELECT md5(string_agg(t::text, '' ORDER BY id)) FROM mixed t`);
          await psql(TGT, `SELECT md5(string_agg(t::text, '' ORDER BY id)) FROM mixed t`);
        }
        const s = (performance.now() - t0) / 1000;
        results.get(tool)!.push(ROWS / s);
        process.stderr.write(`[bench] round ${r + 1} ${tool}: ${s.toFixed(2)} s, ${Math.round(ROWS / s).toLocaleString('en-US')} rows/s\n`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (TARGETS.includes('mongodb')) {
      const { MongoClient } = await import('mongodb');
      const m = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
      await m.connect().then(() => m.db('sluice_bench_rec').dropDatabase()).catch(() => {});
      await m.close();
    }
    const a = await pgClient('postgres');
    await a.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'sluice_bench_rec' AND NOT active`);
    for (const db of [SRC, TGT]) await a.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await a.end();
  }
  process.stdout.write(`\nreconcile of ${ROWS.toLocaleString('en-US')} rows (9 columns of common types), PostgreSQL → ${TARGETS.join(', ')}, chunk ${CHUNK}, ${ROUNDS} rounds, alternating order\nrows/s, median (min – max):\n`);
  for (const t of TOOLS) process.stdout.write(`  ${t.padEnd(26)} ${showSpread(spread(results.get(t)!))}\n`);
  const copy = spread(results.get('COPY TO STDOUT ×2')!).median;
  for (const t of TARGETS) process.stdout.write(`  ${label(t)} / COPY: ${(spread(results.get(label(t))!).median / copy).toFixed(2)}×\n`);
  summarize(TARGETS.map((t) => ({ bench: 'reconcile', what: t === 'postgres' ? 'rows/s compared' : `rows/s compared (${t})`, figure: spread(results.get(label(t))!).median, reference: { name: 'COPY TO STDOUT of both tables', figure: copy }, target: 'reported', met: true })));
}

await main();
