/**
 * The Delta sink's Change Data Feed read by Delta's own CDF reader: Delta Spark in Spark local mode
 * (scripts/delta-spark.sh). A pipeline merges a PostgreSQL table into a Delta table partitioned by
 * region, with the feed on, under inserts, updates (some moving rows between partitions), deletes
 * and an added column; then:
 *
 * - Spark's feed between the version after the snapshot and the last one, applied to the source as
 *   it was after the snapshot, gives the source now (every delete and preimage is the row as it
 *   was), and holds all four change types;
 * - `sluice lake changes` (our reader) gives the same rows, change types and commit versions;
 * - Spark's snapshot of the latest version equals the source.
 *
 * Peers lane (`npm run test:peers`): a Spark call costs 5–10 s.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { filesSql } from '../../src/sinks/delta/feed.ts';
import { readTableLog } from '../../src/sinks/delta/log.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const SPARK = new URL('../../scripts/delta-spark.sh', import.meta.url).pathname;
type Row = Record<string, unknown>;

function spark<T>(...args: string[]): T {
  const r = spawnSync('bash', [SPARK, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`Delta Spark failed (${args.join(' ')}; exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const line = (r: Row) => [r.id, r.region, r.balance, r.note].map((v) => (v === null || v === undefined ? '∅' : String(v))).join('|');
const SOURCE = `SELECT id::text AS id, region, balance::text AS balance, NOTE AS note FROM accounts ORDER BY id`;

describe('Delta sink Change Data Feed, read by Delta Spark', () => {
  const f = useDatabase(`CREATE TABLE accounts (id bigint PRIMARY KEY, region text, balance numeric(12,2));
    INSERT INTO accounts SELECT g, (ARRAY['eu', 'us', 'ap'])[g % 3 + 1], g * 1.25 FROM generate_series(1, 60) g;`);

  it("Spark's change feed leads from the source after the snapshot to the source now, and equals sluice lake changes", async () => {
    const lake = join(f.tmp.dir, 'silver');
    const table = join(lake, 'accounts');
    const yaml = pipelineYaml('dcs', f.db.name, f.tmp.dir, '', `sinks:\n  - {name: silver, type: delta, mode: merge, path: ${lake}, partitionBy: [region], checkpointInterval: 5, batch: {maxRecords: 20, maxDelayMs: 5}}\n`);
    const c = f.db.client;
    const source = async (note: boolean) => ((await c.query(SOURCE.replace('NOTE', note ? 'note' : 'NULL::text'))).rows as Row[]).map(line);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const live = async (note: boolean) => {
      const sql = filesSql(table, await readTableLog(table));
      return sql ? (await duck.runAndReadAll(`SELECT id::VARCHAR AS id, region, balance::VARCHAR AS balance, ${note ? 'note' : 'NULL'} AS note FROM (${sql}) ORDER BY id`)).getRowObjectsJson().map(line) : [];
    };
    const ac = new AbortController();
    const done = runPipeline(parseConfig(yaml, 'dcs.yaml', {}), { signal: ac.signal, logger: createLogger({ level: 'error' }) });
    done.catch(() => {});
    let first: string[];
    let second: string[];
    let v1: number;
    try {
      first = await source(false);
      await waitUntil('the snapshot in the Delta table', async () => existsSync(join(table, '_delta_log')) && JSON.stringify(await live(false)) === JSON.stringify(first), 90_000);
      v1 = (await readTableLog(table)).version;
      for (let i = 0; i < 12; i++) {
        await c.query('BEGIN');
        await c.query(`UPDATE accounts SET balance = balance + 1 WHERE id % 6 = $1`, [i % 6]);
        await c.query(`UPDATE accounts SET region = CASE WHEN region = 'eu' THEN 'us' ELSE 'eu' END WHERE id = $1`, [i * 4 + 1]);
        await c.query(`INSERT INTO accounts VALUES ($1, 'ap', 0.5)`, [100 + i]);
        if (i % 3 === 0) await c.query(`DELETE FROM accounts WHERE id = $1`, [i * 3 + 2]);
        await c.query('COMMIT');
        if (i === 5) await c.query(`ALTER TABLE accounts ADD COLUMN note text`);
        if (i >= 5) await c.query(`UPDATE accounts SET note = 'n' || $1 WHERE id = $2`, [i, 100 + i - 1]);
      }
      second = await source(true);
      await waitUntil('the workload in the Delta table', async () => JSON.stringify(await live(true)) === JSON.stringify(second), 90_000);
    } finally {
      ac.abort();
      await done;
    }
    const v2 = (await readTableLog(table)).version;
    const feed = spark<{ rows: Row[] }>('cdf', table, '--from', String(v1! + 1), '--to', String(v2)).rows;
    const state = new Map(first!.map((l) => [l.split('|')[0], l]));
    for (const v of [...new Set(feed.map((r) => Number(r._commit_version)))].sort((a, b) => a - b)) {
      const at = feed.filter((r) => Number(r._commit_version) === v);
      for (const r of at.filter((x) => x._change_type === 'delete' || x._change_type === 'update_preimage')) {
        assert.equal(state.get(String(r.id)), line(r), `version ${v}: Spark's ${r._change_type} of ${r.id} is the row as it was`);
        state.delete(String(r.id));
      }
      for (const r of at.filter((x) => x._change_type === 'insert' || x._change_type === 'update_postimage')) state.set(String(r.id), line(r));
    }
    assert.deepEqual([...state.values()].sort(), [...second!].sort(), "Spark's change feed leads from the source after the snapshot to the source now");
    assert.deepEqual([...new Set(feed.map((r) => r._change_type))].sort(), ['delete', 'insert', 'update_postimage', 'update_preimage']);
    // Our reader: the same changes.
    const ours = spawnSync(process.execPath, ['bin/sluice.js', 'lake', 'changes', table, '--from', String(v1! + 1), '--to', String(v2)], { encoding: 'utf8' });
    assert.equal(ours.status, 0, ours.stderr);
    const key = (r: Row) => `${r._commit_version}|${r._change_type}|${line(r)}`;
    const oursRows = ours.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row).map((r) => ({ ...r, id: String(r.id), balance: r.balance === null ? null : String(r.balance) }));
    assert.deepEqual(oursRows.map(key).sort(), feed.map(key).sort(), 'sluice lake changes gives the rows Spark gives');
    // Spark's snapshot of the latest version.
    assert.deepEqual(spark<{ rows: Row[] }>('snapshot', table).rows.map(line).sort(), [...second!].sort(), "Spark's snapshot equals the source");
    duck.closeSync();
  });
});
