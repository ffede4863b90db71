/**
 * Crash safety of the lake sinks: a workload keeps committing inserts, updates and deletes to
 * PostgreSQL while the pipeline process (source → log → two Delta and two Iceberg sinks, small
 * batches, a commit each) is killed with SIGKILL ten times. At the end Delta Kernel reads both
 * Delta tables:
 *
 * - bronze (append): every change the workload committed exactly once (counted by the workload
 *   itself), its rows folding to the source table value for value;
 * - silver (merge, partitioned by region, Change Data Feed on, a checkpoint every 5 commits, so
 *   that Kernel reads it from a checkpoint written between kills): exactly the source rows, and its whole change feed,
 *   applied from an empty table, gives the same rows: no change lost or doubled by a kill between
 *   writing the change-data files and committing them.
 *
 * No file is added twice, every referenced file is there, and the only Parquet files no version
 * references are those kills left between writing files and committing them.
 *
 * Iceberg Java reads the two Iceberg tables: the appended one holds every change once and folds to
 * the source; the merged one (equality deletes, partitioned by region) equals the source; no live
 * file is listed twice, every one is there, and files no snapshot references are only kills'.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { changeFeed, feedSql, filesSql } from '../../src/sinks/delta/feed.ts';
import { readTableLog } from '../../src/sinks/delta/log.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const KILLS = 10;
const READER = new URL('../../scripts/delta-reader.sh', import.meta.url).pathname;
const ICEBERG = new URL('../../scripts/iceberg-reader.sh', import.meta.url).pathname;

function icebergRead<T>(mode: string, dir: string): T {
  const r = spawnSync('bash', [ICEBERG, mode, '--table', dir], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`Iceberg Java could not read ${dir} (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** An Iceberg table's current snapshot: the log offsets its summary holds, and the records all snapshots added. */
function icebergState(dir: string): { offsets: string; records: number } {
  let names: string[] = [];
  try {
    names = readdirSync(join(dir, 'metadata')).filter((n) => /^v\d+\.metadata\.json$/.test(n));
  } catch {
    /* not yet */
  }
  if (!names.length) return { offsets: '', records: 0 };
  const m = JSON.parse(readFileSync(join(dir, 'metadata', `v${Math.max(...names.map((n) => Number(/\d+/.exec(n)![0])))}.metadata.json`), 'utf8'));
  const snap = m.snapshots.find((s: { 'snapshot-id': number }) => s['snapshot-id'] === m['current-snapshot-id']);
  const offsets = Object.entries(snap.summary as Record<string, string>)
    .filter(([k]) => k.startsWith('sluice:'))
    .map(([k, v]) => `${k.split(':').slice(-2).join(':')}=${v}`)
    .sort()
    .join(',');
  return { offsets, records: m.snapshots.reduce((n: number, s: { summary: Record<string, string> }) => n + Number(s.summary['added-records'] ?? 0), 0) };
}

/** Parquet files under a table directory (partition directories and _change_data included), relative. */
function parquetFiles(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === '_delta_log' ? [] : parquetFiles(dir, rel ? `${rel}/${e.name}` : e.name)) : e.name.endsWith('.parquet') ? [rel ? `${rel}/${e.name}` : e.name] : []));
}

function kernelRows(table: string): Record<string, string | null>[] {
  const r = spawnSync('bash', [READER, table], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`Delta Kernel could not read ${table} (exit ${r.status}):\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { rows: Record<string, string | null>[] }).rows;
}

/** The table's commits and the data files they reference, read from the log's JSON. */
function commitsOf(table: string): { commits: number; referenced: Set<string>; records: number } {
  let names: string[] = [];
  try {
    names = readdirSync(join(table, '_delta_log')).filter((n) => /^\d{20}\.json$/.test(n));
  } catch {
    /* not yet */
  }
  const referenced = new Set<string>();
  let records = 0;
  for (const n of names) {
    for (const line of readFileSync(join(table, '_delta_log', n), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const a = JSON.parse(line);
      if (a.add) {
        assert.ok(!referenced.has(a.add.path), `${a.add.path} added twice`);
        referenced.add(a.add.path);
        records += JSON.parse(a.add.stats).numRecords;
      }
      if (a.cdc) {
        assert.ok(!referenced.has(a.cdc.path), `${a.cdc.path} referenced twice`);
        referenced.add(a.cdc.path);
      }
    }
  }
  return { commits: names.length, referenced, records };
}

/** The rows a change feed leaves, applied in commit order from an empty table (a removal must find its row as it was), as sorted JSON of [id, v, balance, note, region]. */
async function rowsOfFeed(duck: import('@duckdb/node-api').DuckDBConnection, sql: string): Promise<string[]> {
  const rows = (await duck.runAndReadAll(`SELECT id::VARCHAR, v, balance::VARCHAR, note, region, _change_type, _commit_version FROM (${sql}) ORDER BY _commit_version`)).getRows();
  const state = new Map<string, string>();
  for (const v of [...new Set(rows.map((r) => Number(r[6])))]) {
    const at = rows.filter((r) => Number(r[6]) === v);
    const key = (r: unknown[]) => JSON.stringify([r[0], Number(r[1]), r[2], r[3], r[4]]);
    for (const r of at.filter((x) => x[5] === 'delete' || x[5] === 'update_preimage')) {
      assert.equal(state.get(String(r[0])), key(r), `version ${v}: the ${r[5]} of ${r[0]} is the row as it was`);
      state.delete(String(r[0]));
    }
    for (const r of at.filter((x) => x[5] === 'insert' || x[5] === 'update_postimage')) {
      assert.ok(!state.has(String(r[0])), `version ${v}: ${r[0]} inserted while present`);
      state.set(String(r[0]), key(r));
    }
  }
  return [...state.values()].sort();
}

describe('Lake sinks (Delta, Iceberg) through kill -9', () => {
  const f = useDatabase(`CREATE TABLE acc (id bigint PRIMARY KEY, v int NOT NULL, balance numeric(12,2), note text, region text);
    INSERT INTO acc SELECT g, 1, g * 10.5, 'opened ' || g, (ARRAY['eu', 'us', 'ap'])[g % 3 + 1] FROM generate_series(1, 2000) g;`);

  it(`holds every committed change once after ${KILLS} kills, and folds to the source table`, async () => {
    const lake = join(f.tmp.dir, 'lake');
    const cfgPath = join(f.tmp.dir, 'delta.yaml');
    writeFileSync(cfgPath, pipelineYaml('dc', f.db.name, f.tmp.dir, '', `sinks:\n  - {name: bronze, type: delta, path: ${lake}, batch: {maxRecords: 100, maxDelayMs: 5}}\n  - {name: silver, type: delta, mode: merge, path: ${join(f.tmp.dir, 'silver')}, partitionBy: [region], checkpointInterval: 5, batch: {maxRecords: 100, maxDelayMs: 5}}\n  - {name: ice_bronze, type: iceberg, path: ${join(f.tmp.dir, 'ice')}, batch: {maxRecords: 100, maxDelayMs: 5}}\n  - {name: ice_silver, type: iceberg, mode: merge, path: ${join(f.tmp.dir, 'ice_silver')}, partitionBy: [region], batch: {maxRecords: 100, maxDelayMs: 5}}\n`));
    const table = join(lake, 'acc');
    const silver = join(f.tmp.dir, 'silver', 'acc');
    const iceBronze = join(f.tmp.dir, 'ice', 'public', 'acc');
    const iceSilver = join(f.tmp.dir, 'ice_silver', 'public', 'acc');
    // The workload's own count of what it committed: the snapshot's rows, then each statement's rows.
    let changes = 2000;
    let running = true;
    let next = 10_000;
    const c = f.db.client;
    let child = startPipelineProcess(cfgPath);
    // The snapshot first (its rows are the table as of the slot, not the changes before it): the
    // workload's changes all come after it.
    await waitUntil('the snapshot in the Delta table', async () => commitsOf(table).records >= 2000, 90_000);
    const workload = (async () => {
      while (running) {
        await c.query('BEGIN');
        let n = 0;
        n += (await c.query(`UPDATE acc SET v = v + 1, balance = balance + 0.01, region = CASE WHEN random() < 0.2 THEN 'us' ELSE region END WHERE id IN (SELECT id FROM acc ORDER BY random() LIMIT 3)`)).rowCount!;
        n += (await c.query(`INSERT INTO acc VALUES ($1, 1, 0.5, NULL, 'ap')`, [next++])).rowCount!;
        if (Math.random() < 0.3) n += (await c.query(`DELETE FROM acc WHERE id = (SELECT id FROM acc ORDER BY random() LIMIT 1)`)).rowCount!;
        await c.query('COMMIT');
        changes += n;
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    try {
      ({ child } = await killRepeatedly(child, () => startPipelineProcess(cfgPath), { kills: KILLS, what: 'Delta commits', progress: async () => commitsOf(table).commits }));
    } finally {
      running = false;
      await workload;
    }
    const source = (await c.query(`SELECT id::text, v, balance::text, note, region FROM acc ORDER BY acc.id`)).rows.map((r) => [r.id, r.v, r.balance, r.note, r.region]);
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    /** Rows as [id, v, balance, note, region], sorted by id. */
    const rowsOf = async (sql: string) => (await duck.runAndReadAll(`SELECT id::VARCHAR, v, balance::VARCHAR, note, region FROM (${sql}) ORDER BY id`)).getRows().map((r) => [r[0], Number(r[1]), r[2], r[3], r[4]]);
    try {
      const caughtUp = async () => {
        if (commitsOf(table).records < changes || JSON.stringify(await rowsOf(filesSql(silver, await readTableLog(silver))!)) !== JSON.stringify(source)) return false;
        const ib = icebergState(iceBronze);
        return ib.records >= changes && ib.offsets === icebergState(iceSilver).offsets;
      };
      await waitUntil('every change in the lake tables', caughtUp, 120_000).catch((e) => {
        throw new Error(`${(e as Error).message}: ${commitsOf(table).records} of ${changes} rows\n${child.stderrText().slice(-3000)}`, { cause: e });
      });
    } finally {
      await stopProcess(child);
    }
    const rows = kernelRows(table);
    assert.equal(rows.length, changes, 'one row per committed change');
    assert.equal(new Set(rows.map((r) => r.__change_id)).size, changes, 'no change twice');
    // Each key's last change (by log position) folds to the source row; a delete removes it.
    const last = new Map<string, Record<string, string | null>>();
    for (const r of rows.sort((a, b) => Number(BigInt(a.__change_id!) - BigInt(b.__change_id!)))) last.set(r.id!, r);
    const folded = [...last.values()].filter((r) => r.__op !== 'd').map((r) => [r.id, Number(r.v), r.balance, r.note]);
    folded.sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(folded, source.map((r) => r.slice(0, 4)), 'the folded table equals the source');
    // Files: every referenced one is there (Kernel read them); unreferenced ones only from kills.
    const { referenced } = commitsOf(table);
    const onDisk = readdirSync(table).filter((n) => n.endsWith('.parquet'));
    const orphans = onDisk.filter((n) => !referenced.has(n));
    assert.ok(orphans.length <= KILLS, `${orphans.length} Parquet files no version references (at most one per kill)`);
    // Silver: Kernel reads exactly the source rows (from a checkpoint and the commits after it).
    const merged = kernelRows(silver).map((r) => [r.id, Number(r.v), r.balance, r.note, r.region]);
    merged.sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(merged, source, 'the merged table equals the source');
    assert.ok(existsSync(join(silver, '_delta_log', '_last_checkpoint')), 'checkpoints were written');
    assert.ok(commitsOf(silver).commits > 2 * KILLS, `the merged table committed throughout (${commitsOf(silver).commits} commits)`);
    // Its whole change feed, applied from nothing, gives the same rows.
    const log = await readTableLog(silver);
    const feed = await rowsOfFeed(duck, feedSql(await changeFeed(silver, 0, log.version))!);
    assert.deepEqual(feed, source.map((r) => JSON.stringify(r)).sort(), 'the change feed from version 0 gives the source rows');
    const silverFiles = commitsOf(silver);
    const silverDisk = parquetFiles(silver);
    for (const p of silverFiles.referenced) assert.ok(!decodeURIComponent(p).startsWith('_change_data/') || silverDisk.includes(decodeURIComponent(p)), `change file ${p} is there`);
    const silverOrphans = silverDisk.filter((n) => !silverFiles.referenced.has(n.split('/').map(encodeURIComponent).join('/')));
    // Each kill can leave a batch's files uncommitted: a data and a change file per region.
    assert.ok(silverOrphans.length <= KILLS * 6, `${silverOrphans.length} silver Parquet files no version references`);
    duck.closeSync();

    // Iceberg: the appended table holds every change once and folds to the source; the merged one equals it.
    const iceRows = icebergRead<{ rows: Record<string, string | null>[] }>('scan', iceBronze).rows;
    assert.equal(iceRows.length, changes, 'Iceberg bronze: one row per committed change');
    assert.equal(new Set(iceRows.map((r) => r.__change_id)).size, changes, 'Iceberg bronze: no change twice');
    const iceLast = new Map<string, Record<string, string | null>>();
    for (const r of iceRows.sort((a, b) => Number(BigInt(a.__change_id!) - BigInt(b.__change_id!)))) iceLast.set(r.id!, r);
    const iceFolded = [...iceLast.values()].filter((r) => r.__op !== 'd').map((r) => [r.id, Number(r.v), r.balance, r.note, r.region]);
    iceFolded.sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(iceFolded, source, 'Iceberg bronze folds to the source');
    const iceMerged = icebergRead<{ rows: Record<string, string | null>[] }>('scan', iceSilver).rows.map((r) => [r.id, Number(r.v), r.balance, r.note, r.region]);
    iceMerged.sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(iceMerged, source, 'Iceberg silver equals the source');
    for (const dir of [iceBronze, iceSilver]) {
      const live = icebergRead<{ files: { path: string }[] }>('files', dir).files.map((x) => x.path);
      assert.equal(new Set(live).size, live.length, `${dir}: no file listed twice`);
      for (const p of live) assert.ok(existsSync(p), `${p} is there`);
      const onDisk = parquetFiles(join(dir, 'data')).map((p) => join(dir, 'data', p));
      const unreferenced = onDisk.filter((p) => !live.includes(p));
      // Each kill can leave a batch's files uncommitted: a data file per region and a delete file.
      assert.ok(unreferenced.length <= KILLS * 4, `${dir}: ${unreferenced.length} Parquet files no snapshot references`);
    }
  });
});
