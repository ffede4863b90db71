/**
 * The Delta sink's table features, end to end from PostgreSQL, read back by Delta Kernel: a merged
 * (silver) table partitioned by two columns, with the Change Data Feed on and a checkpoint every 4
 * commits, under a workload of updates (some moving rows between partitions), inserts, deletes
 * and an added column; then `sluice lake optimize` and `sluice lake vacuum` on it.
 *
 * Truths: the source database at two moments (after the snapshot, after the workload). Kernel
 * reads each version equal to the source at its moment; the change feed between them, applied to
 * the first, gives the second (a delete or preimage must match the row it removes exactly); a copy
 * of the table whose commits up to the last checkpoint are deleted still reads equal (the
 * checkpoint holds the whole state); optimize changes no row, vacuum deletes only unused files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { changeFeed, feedSql, filesSql } from '../../src/sinks/delta/feed.ts';
import { readTableLog } from '../../src/sinks/delta/log.ts';
import { vacuum } from '../../src/sinks/delta/maintenance.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const quiet = createLogger({ level: 'error' });
const READER = new URL('../../scripts/delta-reader.sh', import.meta.url).pathname;

interface Snapshot {
  version: number;
  partitionColumns: string[];
  rows: Record<string, unknown>[];
}

function kernelRead(table: string, version?: number): Snapshot {
  const r = spawnSync('bash', [READER, table, ...(version === undefined ? [] : ['--version', String(version)])], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`Delta Kernel could not read ${table}${version === undefined ? '' : ` at version ${version}`} (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Snapshot;
}

const sluice = (...args: string[]) => spawnSync(process.execPath, ['bin/sluice.js', 'lake', ...args], { encoding: 'utf8' });

/** A row as `id|region|opened|balance|note2`, the forms PostgreSQL's text and the readers agree on. */
const line = (r: Record<string, unknown>) => [r.id, r.region, r.opened, r.balance, r.note2].map((v) => (v === null || v === undefined ? '∅' : String(v))).join('|');
const SOURCE = `SELECT id::text AS id, region, opened::text AS opened, balance::text AS balance, NOTE2 AS note2 FROM accounts ORDER BY id`;

/** The live rows DuckDB reads over the files of the latest version (`sluice lake files --sql`'s view, built in this process: polled). */
async function duckRows(duck: DuckDBConnection, table: string, note2: boolean): Promise<string[]> {
  const sql = filesSql(table, await readTableLog(table));
  if (!sql) return [];
  const rows = (await duck.runAndReadAll(`SELECT id::VARCHAR AS id, region, opened::VARCHAR AS opened, balance::VARCHAR AS balance, ${note2 ? 'note2' : 'NULL'} AS note2 FROM (${sql}) ORDER BY id`)).getRowObjectsJson();
  return rows.map(line);
}

const lastVersion = (table: string) => Math.max(...readdirSync(join(table, '_delta_log')).filter((n) => /^\d{20}\.json$/.test(n)).map((n) => Number(n.slice(0, 20))));

describe('Delta sink: partitions, Change Data Feed, checkpoints, optimize and vacuum', () => {
  const f = useDatabase(`CREATE TABLE accounts (id bigint PRIMARY KEY, region text, opened date, balance numeric(12,2));
    INSERT INTO accounts SELECT g, (ARRAY['eu', 'us', 'ap/south', NULL])[g % 4 + 1], DATE '2026-01-01' + g % 3, g * 1.25 FROM generate_series(1, 120) g;`);

  it('Kernel reads each version as the source was, the change feed leads from one to the other, a checkpoint holds the state, optimize and vacuum keep the rows', async () => {
    const lake = join(f.tmp.dir, 'silver');
    const table = join(lake, 'accounts');
    const yaml = pipelineYaml(
      'dlf',
      f.db.name,
      f.tmp.dir,
      '',
      `sinks:
  - {name: silver, type: delta, mode: merge, path: ${lake}, partitionBy: [region, opened], checkpointInterval: 4, batch: {maxRecords: 25, maxDelayMs: 5}}
`,
    );
    const c = f.db.client;
    const source = async (note2: boolean) => ((await c.query(SOURCE.replace('NOTE2', note2 ? 'note2' : 'NULL::text'))).rows as Record<string, unknown>[]).map(line);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const ac = new AbortController();
    const done = runPipeline(parseConfig(yaml, 'dlf.yaml', {}), { signal: ac.signal, logger: quiet });
    done.catch(() => {});
    let v1: number;
    let first: string[];
    let second: string[];
    try {
      first = await source(false);
      await waitUntil('the snapshot in the Delta table', async () => existsSync(join(table, '_delta_log')) && JSON.stringify(await duckRows(duck, table, false)) === JSON.stringify(first), 90_000);
      v1 = lastVersion(table);
      for (let i = 0; i < 24; i++) {
        await c.query('BEGIN');
        await c.query(`UPDATE accounts SET balance = balance + 0.01 * $1 WHERE id % 12 = $2`, [i + 1, i % 12]);
        // Rows moving to another partition: their old file is rewritten, a new partition's file written.
        await c.query(`UPDATE accounts SET region = CASE WHEN region = 'eu' THEN 'us' ELSE 'eu' END WHERE id = $1`, [i * 5 + 3]);
        await c.query(`INSERT INTO accounts VALUES ($1, $2, DATE '2026-02-01', 0.99)`, [500 + i, i % 2 ? 'eu' : 'ap/south']);
        if (i % 3 === 0) await c.query(`DELETE FROM accounts WHERE id = $1`, [i * 4 + 2]);
        await c.query('COMMIT');
        if (i === 11) await c.query(`ALTER TABLE accounts ADD COLUMN note2 text`);
        if (i >= 11) await c.query(`UPDATE accounts SET note2 = 'n' || $1 WHERE id = $2`, [i, 500 + i - 1]);
      }
      second = await source(true);
      await waitUntil('the workload in the Delta table', async () => JSON.stringify(await duckRows(duck, table, true)) === JSON.stringify(second), 90_000);
    } finally {
      ac.abort();
      await done;
    }
    const v2 = lastVersion(table);
    assert.ok(v2 >= v1! + 8, `many commits after the snapshot (${v1!} → ${v2})`);

    // Kernel: the latest version and, by time travel, the snapshot's version equal the source then.
    const now = kernelRead(table);
    assert.deepEqual(now.partitionColumns, ['region', 'opened']);
    assert.deepEqual(now.rows.map(line).sort(), [...second!].sort(), 'the latest version equals the source');
    const then = kernelRead(table, v1!);
    assert.deepEqual(then.rows.map(line).sort(), [...first!].sort(), `version ${v1!} equals the source after the snapshot`);
    // Partition directories as Hive names them (the slash of 'ap/south' escaped, null as Hive's marker).
    const dirs = readdirSync(table).filter((n) => n.startsWith('region=')).sort();
    assert.deepEqual(dirs, ['region=__HIVE_DEFAULT_PARTITION__', 'region=ap%2Fsouth', 'region=eu', 'region=us']);

    // The change feed of the versions after v1, applied to the source at v1, gives the source now.
    const feed = sluice('changes', table, '--from', String(v1! + 1), '--to', String(v2), '--sql', 'feed');
    assert.equal(feed.status, 0, feed.stderr);
    await duck.run(feed.stdout);
    assert.match(feed.stdout, /^CREATE OR REPLACE VIEW feed AS /);
    const changes = (await duck.runAndReadAll(`SELECT id::VARCHAR AS id, region, opened::VARCHAR AS opened, balance::VARCHAR AS balance, note2, _change_type, _commit_version::INTEGER AS v FROM feed ORDER BY _commit_version, _change_type`)).getRowObjectsJson();
    const state = new Map(first!.map((l) => [l.split('|')[0], l]));
    const types = new Set<string>();
    for (const v of [...new Set(changes.map((r) => Number(r.v)))]) {
      const at = changes.filter((r) => Number(r.v) === v);
      // Removals first (deletes, preimages), then additions, each exact.
      for (const r of at.filter((x) => x._change_type === 'delete' || x._change_type === 'update_preimage')) {
        assert.equal(state.get(String(r.id)), line(r), `version ${v}: the ${r._change_type} of ${r.id} is the row as it was`);
        state.delete(String(r.id));
      }
      for (const r of at.filter((x) => x._change_type === 'insert' || x._change_type === 'update_postimage')) {
        assert.ok(!state.has(String(r.id)), `version ${v}: ${r.id} inserted while present`);
        state.set(String(r.id), line(r));
      }
      assert.equal(at.filter((x) => x._change_type === 'update_preimage').length, at.filter((x) => x._change_type === 'update_postimage').length, `version ${v}: each preimage has its postimage`);
      for (const r of at) types.add(String(r._change_type));
    }
    assert.deepEqual([...types].sort(), ['delete', 'insert', 'update_postimage', 'update_preimage']);
    assert.deepEqual([...state.values()].sort(), [...second!].sort(), 'the change feed leads from the source at the snapshot to the source now');

    // Checkpoints every 4 commits; a copy without the commits before the last one (as log clean-up leaves a table) reads the same.
    const last = JSON.parse(readFileSync(join(table, '_delta_log', '_last_checkpoint'), 'utf8')) as { version: number };
    assert.equal(last.version, Math.floor(v2 / 4) * 4);
    const copy = join(f.tmp.dir, 'copy');
    cpSync(table, copy, { recursive: true });
    for (const n of readdirSync(join(copy, '_delta_log'))) if (/^\d{20}\.json$/.test(n) && Number(n.slice(0, 20)) < last.version) rmSync(join(copy, '_delta_log', n));
    assert.deepEqual(kernelRead(copy).rows.map(line).sort(), [...second!].sort(), 'the checkpoint and the commits after it give the latest version');

    // optimize: fewer files, one commit, the same rows, nothing in the change feed.
    const before = await readTableLog(table);
    const opt = sluice('optimize', table);
    assert.equal(opt.status, 0, opt.stderr);
    const after = await readTableLog(table);
    assert.equal(after.version, v2 + 1, opt.stdout);
    const m = new RegExp(`^version ${v2 + 1}: (\\d+) files compacted into (\\d+) \\(\\d+ rows\\)`).exec(opt.stdout);
    assert.ok(m && before.files.size - Number(m[1]) + Number(m[2]) === after.files.size, `optimize says what it did: ${opt.stdout}`);
    const partitions = new Set(second!.map((l) => l.split('|').slice(1, 3).join('|'))).size;
    assert.ok(after.files.size < before.files.size && after.files.size === partitions, `compacted ${before.files.size} files into ${after.files.size}, one per partition (${partitions})`);
    assert.equal(feedSql(await changeFeed(table, after.version, after.version)), null, 'no changes in the change feed from optimize');

    // vacuum: the retention check, then a dry run and a vacuum with retention 0 that delete exactly
    // the unused files (a planted orphan, as a killed write leaves, among them).
    writeFileSync(join(table, 'part-orphan.c000.snappy.parquet'), 'not referenced');
    const refused = sluice('vacuum', table, '--retain', '0');
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /DELTA_RETENTION.*--no-retention-check/s);
    const listed = (await vacuum(table, { retainMs: 0, check: false, dryRun: true })).files;
    const live = new Set([...after.files.keys()].map((p) => decodeURIComponent(p)));
    assert.ok(listed.includes('part-orphan.c000.snappy.parquet') && listed.some((p) => p.startsWith('_change_data/')) && listed.length > before.files.size, `dry run lists the unused files (${listed.length})`);
    assert.ok(listed.every((p) => !live.has(p)), 'no live file listed');
    assert.ok(listed.every((p) => existsSync(join(table, p))), 'the dry run deleted nothing');
    const vac = sluice('vacuum', table, '--retain', '0', '--no-retention-check');
    assert.equal(vac.status, 0, vac.stderr);
    assert.deepEqual(vac.stdout.split('\n').filter(Boolean), listed);
    assert.ok(listed.every((p) => !existsSync(join(table, p))), 'vacuum deleted them');
    assert.deepEqual(kernelRead(table).rows.map(line).sort(), [...second!].sort(), 'the latest version (optimize\'s) reads the same rows after vacuum');
    duck.closeSync();
  });
});
