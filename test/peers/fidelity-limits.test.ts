/**
 * Rows at the targets' size limits, from a PostgreSQL source: a row of 50 MB of text and 25 MB of
 * bytea (over 16 MB of JSON: DuckDB's reader refused such lines) arrives whole in PostgreSQL and
 * DuckDB, and stops the MariaDB sink, whose server takes 16 MB statements, with a coded error that
 * says what to raise; a table of 1600 columns (PostgreSQL's most) arrives in PostgreSQL and DuckDB,
 * and stops MariaDB (1017 columns at most) with a coded error naming the table.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { tempDir, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets, type Targets } from '../helpers/targets.ts';
import { runFidelity, type SourceDb } from '../fidelity/harness.ts';

const quiet = createLogger({ level: (process.env.SLUICE_TEST_LOG as 'error') ?? 'error' });
const WIDE = 1600;

describe('fidelity at the size limits (PostgreSQL source)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  let targets: Targets;
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
  });
  after(async () => {
    await targets?.drop();
    await db?.drop();
    tmp?.remove();
  });

  const source = (slot: string, extra = ''): SourceDb => ({
    kind: 'postgres',
    schema: 'public',
    exec: async (sql) => void (await db.client.query(sql)),
    rows: async (sql) => (await db.client.query({ text: sql, rowMode: 'array' })).rows,
    quote: (n) => `"${n}"`,
    sourceYaml: (tables) => `  type: postgres
  connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${db.name} }
  slot: ${slot}
  publication: ${slot}
  tables: [${tables.map((t) => `public.${t}`).join(', ')}]
${extra}`,
  });

  it('a row of 50 MB of text and 25 MB of bytea arrives whole in PostgreSQL and DuckDB', async () => {
    // md5 text does not compress: the row is really that big in the WAL and in the log.
    const text = `(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 50 * 1024 * 1024 / 32) g)`;
    const bytes = `(SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 25 * 1024 * 1024 / 16) g)`;
    await runFidelity({
      source: source('fid_big'),
      targets,
      dir: join(tmp.dir, 'big'),
      sinks: ['postgres', 'duckdb'],
      cases: [
        { name: 'big_text', type: 'text', canon: 'text', values: [{ sql: text }] },
        { name: 'big_bytea', type: 'bytea', canon: 'bytes', values: [{ sql: bytes }] },
      ],
    });
  });

  it('the same row stops the MariaDB sink with a coded error naming table and column, saying to raise max_allowed_packet', async () => {
    const dir = join(tmp.dir, 'bigmy');
    const yaml = `name: bigmy
source:
${source('fid_bigmy').sourceYaml(['fid_big_text'])}
state: { dir: ${join(dir, 'state')} }
log: { dir: ${join(dir, 'log')} }
logging: { level: error }
${targets.sinksYaml().split('  - name: dk')[0].replace(/name: (pg|my)\b/g, 'name: $1_big')}`;
    const statusFile = join(dir, 'state', 'status.json');
    const ac = new AbortController();
    const run = runPipeline(parseConfig(yaml, 'big.yaml', process.env), { signal: ac.signal, logger: quiet }).catch((e) => e);
    try {
      await waitUntil('the MariaDB sink to stop', async () => existsSync(statusFile) && JSON.parse(readFileSync(statusFile, 'utf8')).sinks.find((s: { name: string }) => s.name === 'my_big')?.state === 'failed', 120_000);
    } finally {
      ac.abort();
      await run;
    }
    const err = JSON.parse(readFileSync(statusFile, 'utf8')).sinks.find((s: { name: string }) => s.name === 'my_big').error;
    assert.equal(err.code, 'SINK_VALUE_UNREPRESENTABLE', err.message);
    assert.match(err.message, /table public\.fid_big_text/);
    assert.match(err.message, /column v /);
    assert.match(err.message, /max_allowed_packet/);
    assert.match(err.message, /SET GLOBAL max_allowed_packet = \d+/);
  });

  it(`a table of ${WIDE} columns arrives in PostgreSQL and DuckDB; MariaDB, which holds 1017, stops with a coded error naming it`, async () => {
    const dir = join(tmp.dir, 'wide');
    const cols = Array.from({ length: WIDE - 1 }, (_, i) => `c${i + 1}`);
    await db.client.query(`CREATE TABLE wide (id int PRIMARY KEY, ${cols.map((c) => `${c} int`).join(', ')})`);
    const row = (id: number) => `(${id}, ${cols.map((_, i) => id * 10_000 + i).join(', ')})`;
    await db.client.query(`INSERT INTO wide VALUES ${row(1)}`);
    const yaml = `name: wide
source:
${source('fid_wide').sourceYaml(['wide'])}
state: { dir: ${join(dir, 'state')} }
log: { dir: ${join(dir, 'log')} }
logging: { level: error }
${targets.sinksYaml()}`;
    const statusFile = join(dir, 'state', 'status.json');
    const status = () => (existsSync(statusFile) ? JSON.parse(readFileSync(statusFile, 'utf8')) : null);
    const ac = new AbortController();
    const run = runPipeline(parseConfig(yaml, 'wide.yaml', process.env), { signal: ac.signal, logger: quiet }).catch((e) => e);
    const sum = `SELECT count(*), sum(c${WIDE - 1}) FROM "wide"`;
    try {
      await waitUntil('the snapshot in PostgreSQL and DuckDB', async () => (await targets.count('postgres', sum).catch(() => 0)) === 1 && (await targets.count('duckdb', sum).catch(() => 0)) === 1, 120_000);
      await db.client.query(`INSERT INTO wide VALUES ${row(2)}`);
      await waitUntil('the stream in PostgreSQL and DuckDB, MariaDB stopped', async () => {
        const st = status();
        const failed = st?.sinks.find((s: { state: string; name: string }) => s.state === 'failed' && s.name !== 'my');
        if (failed) throw new Error(`sink ${failed.name} stopped: ${JSON.stringify(failed.error)}`);
        return (await targets.count('postgres', sum)) === 2 && (await targets.count('duckdb', sum)) === 2 && st?.sinks.find((s: { name: string }) => s.name === 'my')?.state === 'failed';
      }, 120_000);
    } finally {
      ac.abort();
      await run;
    }
    // Every column of every row, against the source.
    const want = (await db.client.query({ text: `SELECT * FROM wide ORDER BY id`, rowMode: 'array' })).rows.map((r) => r.map(String));
    for (const t of ['postgres', 'duckdb'] as const) {
      const got = (await targets.query(t, `SELECT ${['id', ...cols].map((c) => `"${c}"`).join(', ')} FROM "wide" ORDER BY id`)).map((r) => r.map(String));
      assert.deepEqual(got, want, t);
    }
    const err = status().sinks.find((s: { name: string }) => s.name === 'my').error;
    assert.equal(err.code, 'SINK_REJECTED', err.message);
    assert.match(err.message, /table public\.wide/);
    assert.match(err.message, /Too many columns/i);
  });
});
