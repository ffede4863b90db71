/**
 * bench/reconcile: `sluice reconcile` of one PostgreSQL table against its copy in another
 * PostgreSQL database (the pipeline stopped: a plain scan, no re-check waits), beside two references
 * measured in the same run, round after round in alternating order:
 * - `COPY … TO STDOUT` of both tables (psql, output to /dev/null): reading the rows and nothing else;
 * - `md5(string_agg(t::text, '' ORDER BY id))` on each side: the checksum a user could write in SQL,
 *   which works only between two PostgreSQL databases and names no differing key.
 * Prints rows/s (source rows per second of wall time) as the median and range.
 *
 *   node --import tsx bench/reconcile/run.ts [--rows 500000] [--rounds 3] [--chunk 10000]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../../src/config/index.ts';
import { reconcile } from '../../src/quality/reconcile/run.ts';
import { orderFor, pgClient, PG_CONN, showSpread, spread, summarize, timedChild } from '../common.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '500000' }, rounds: { type: 'string', default: '3' }, chunk: { type: 'string', default: '10000' } } });
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

type Tool = 'sluice reconcile' | 'COPY TO STDOUT ×2' | 'md5(string_agg) ×2';
const TOOLS: Tool[] = ['sluice reconcile', 'COPY TO STDOUT ×2', 'md5(string_agg) ×2'];

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
  - name: copy
    type: postgres
    connection: { host: ${PG_CONN.host}, port: ${PG_CONN.port}, user: ${PG_CONN.user}, database: ${TGT} }
`;
  writeFileSync(join(work, 'p.yaml'), yaml);
  const cfg = parseConfig(yaml, join(work, 'p.yaml'), process.env);
  const results = new Map<Tool, number[]>(TOOLS.map((t) => [t, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const tool of orderFor(r, TOOLS)) {
        const t0 = performance.now();
        if (tool === 'sluice reconcile') {
          const rep = await reconcile(cfg, { chunk: CHUNK });
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
    const a = await pgClient('postgres');
    for (const db of [SRC, TGT]) await a.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await a.end();
  }
  process.stdout.write(`\nreconcile of ${ROWS.toLocaleString('en-US')} rows (9 columns of common types), PostgreSQL → PostgreSQL, chunk ${CHUNK}, ${ROUNDS} rounds, alternating order\nrows/s, median (min – max):\n`);
  for (const t of TOOLS) process.stdout.write(`  ${t.padEnd(22)} ${showSpread(spread(results.get(t)!))}\n`);
  const rec = spread(results.get('sluice reconcile')!).median;
  const copy = spread(results.get('COPY TO STDOUT ×2')!).median;
  process.stdout.write(`  reconcile / COPY: ${(rec / copy).toFixed(2)}×\n`);
  summarize([{ bench: 'reconcile', what: 'rows/s compared', figure: rec, reference: { name: 'COPY TO STDOUT of both tables', figure: copy }, target: 'reported', met: true }]);
}

await main();
