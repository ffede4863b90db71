/**
 * Incremental snapshots on both database sources, through `sluice run` processes: a table added to
 * source.tables is back-filled while a workload keeps changing it, the pipeline is killed -9 in the
 * middle of that back-fill and continues after the last chunk in the log, and `sluice snapshot`
 * re-reads another table on request. The truth is the database: the log folded per key must equal
 * the table, and no key may be read twice by one incremental snapshot.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runSluice, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { mysqlPipelineYaml, useMysqlDatabase } from '../helpers/mysql.ts';
import { countRecords, pipelineYaml, readAll, useDatabase, waitUntil, type ReadRecord } from '../helpers/pipeline.ts';
import { statusFile } from '../../src/engine/status.ts';
import { tableTopic } from '../../src/sources/common/names.ts';

const N = 60_000;
const CHUNK = 500;

interface Dialect {
  /** schema (PostgreSQL) or database (MySQL) of the tables. */
  schema: string;
  dir: string;
  yaml(tables: string[]): string;
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** One random change to `big` (update, delete, insert, key change). */
  change(i: number): Promise<void>;
}

/** The log's records of a topic folded per key: id → row (deleted keys absent). */
function fold(recs: ReadRecord[]): Map<number, { v: number; pad: string }> {
  const m = new Map<number, { v: number; pad: string }>();
  for (const r of recs) {
    if (!r.value) continue;
    const id = Number(r.key.id);
    if (r.value.op === 'd') m.delete(id);
    else m.set(id, { v: Number(r.value.after.v), pad: String(r.value.after.pad) });
  }
  return m;
}

async function tableRows(d: Dialect, table: string): Promise<Map<number, { v: number; pad: string }>> {
  const rows = await d.query(`SELECT id, v, pad FROM ${table}`);
  return new Map(rows.map((r) => [Number(r.id), { v: Number(r.v), pad: String(r.pad) }]));
}

function sameRows(log: Map<number, { v: number; pad: string }>, db: Map<number, { v: number; pad: string }>): string | null {
  if (log.size !== db.size) return `the log holds ${log.size} rows, the table ${db.size}`;
  for (const [id, row] of db) {
    const l = log.get(id);
    if (!l || l.v !== row.v || l.pad !== row.pad) return `key ${id}: log ${JSON.stringify(l)}, table ${JSON.stringify(row)}`;
  }
  return null;
}

const incremental = (recs: ReadRecord[]) => recs.filter((r) => r.value?.op === 'r' && r.value.source.snapshot === 'incremental');

function status(dir: string): any {
  try {
    return JSON.parse(readFileSync(statusFile(join(dir, 'state')), 'utf8')).source ?? null;
  } catch {
    return null;
  }
}

async function scenario(d: Dialect): Promise<void> {
  const cfg = join(d.dir, 'pipeline.yaml');
  const topicA = tableTopic('inc', d.schema, 'a');
  const topicBig = tableTopic('inc', d.schema, 'big');
  const logDir = join(d.dir, 'log');

  // 1. The pipeline captures only `a`: initial snapshot, then streaming.
  writeFileSync(cfg, d.yaml([`${d.schema}.a`]));
  let child = startPipelineProcess(cfg);
  await waitUntil('the initial snapshot of a', async () => (await countRecords(logDir, topicA)) >= 300, 60_000);
  await stopProcess(child);
  assert.equal(await countRecords(logDir, topicBig), 0, 'big is not captured yet');

  // 2. `big` and `quiet` are added to source.tables; a workload changes big throughout, nothing
  // changes quiet (its topic exists only once its first chunk is appended).
  writeFileSync(cfg, d.yaml([`${d.schema}.a`, `${d.schema}.big`, `${d.schema}.quiet`]));
  let changes = 0;
  let working = true;
  const workload = (async () => {
    while (working) {
      await d.change(changes++);
      if (changes % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
  })();
  child = startPipelineProcess(cfg);
  // 3. kill -9 in the middle of the back-fill.
  // Records of big less what the workload's changes can account for (at most 3 each: a key change
  // is a delete, its tombstone and an insert): a fast workload alone can put N / 3 records there.
  await waitUntil('a third of big back-filled', async () => (await countRecords(logDir, topicBig)) - 3 * changes >= N / 3, 90_000);
  await stopProcess(child, 'SIGKILL');
  const atKill = incremental(await readAll(logDir, 'inc')).filter((r) => r.topic === topicBig).length;
  assert.ok(atKill > 0 && atKill < N - CHUNK, `the kill landed in the middle of the back-fill (${atKill} of ~${N} rows in the log)`);
  const changesAtKill = changes;

  child = startPipelineProcess(cfg);
  await waitUntil('the back-fill of big to finish', async () => (status(d.dir)?.incrementalSnapshot?.done ?? []).some((x: { table: string }) => x.table.endsWith('big')), 120_000);
  working = false;
  await workload;
  assert.ok(changes > changesAtKill + 50, `the workload kept changing big during the back-fill (${changes - changesAtKill} changes after the kill)`);

  // 4. `sluice snapshot` re-reads `a` (and says what to set when the source has no signal table).
  const bare = join(d.dir, 'no-signal.yaml');
  writeFileSync(bare, d.yaml([`${d.schema}.a`]).replace(/^ *signalTable:.*$/m, ''));
  const refused = await runSluice(['snapshot', '--config', bare, `${d.schema}.a`]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /source\.signalTable is empty: set it/);
  const r = await runSluice(['snapshot', '--config', cfg, `${d.schema}.a`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /asked pipeline inc for an incremental snapshot of/);
  await waitUntil('the incremental snapshot of a', async () => incremental(await readAll(logDir, topicA)).length >= 300, 60_000);

  // The log equals the tables once the stream has caught up.
  const big = await tableRows(d, `${d.schema}.big`);
  let diff: string | null = 'not compared';
  await waitUntil('the log of big to equal the table', async () => {
    diff = sameRows(fold((await readAll(logDir, 'inc')).filter((x) => x.topic === topicBig)), big);
    return diff === null;
  }, 60_000).catch((e) => assert.fail(`${(e as Error).message}: ${diff}`));
  await stopProcess(child);

  const recs = await readAll(logDir, 'inc');
  const bigRecs = recs.filter((x) => x.topic === topicBig);
  const reads = new Map<number, number>();
  for (const x of incremental(bigRecs)) reads.set(Number(x.key.id), (reads.get(Number(x.key.id)) ?? 0) + 1);
  const twice = [...reads].filter(([, n]) => n > 1);
  assert.deepEqual(twice.slice(0, 5), [], 'no key of big is read twice (the back-fill continued after the kill, it did not start over)');
  assert.ok(reads.size > N / 2, `the back-fill read big (${reads.size} keys)`);
  // Streamed changes of big were appended between chunks, in the same partitions.
  const interleaved = [0, 1, 2].some((p) => {
    const ops = bigRecs.filter((x) => x.partition === p && x.value).map((x) => (x.value.source.snapshot === 'incremental' ? 'r' : 's'));
    const first = ops.indexOf('r');
    const last = ops.lastIndexOf('r');
    return ops.slice(first, last).includes('s');
  });
  assert.ok(interleaved, 'changes streamed while the back-fill ran');
  const quiet = recs.filter((x) => x.topic === tableTopic('inc', d.schema, 'quiet'));
  assert.equal(incremental(quiet).length, 100, 'the quiet table is back-filled');
  assert.equal(sameRows(fold(quiet), await tableRows(d, `${d.schema}.quiet`)), null);
  const aRecs = recs.filter((x) => x.topic === topicA);
  assert.equal(new Set(incremental(aRecs).map((x) => Number(x.key.id))).size, 300, 'sluice snapshot re-read every row of a');
  assert.equal(sameRows(fold(aRecs), await tableRows(d, `${d.schema}.a`)), null);
  assert.equal(recs.filter((x) => x.topic.includes('sluice_signal')).length, 0, 'the signal table is not captured');
}

describe('incremental snapshots: PostgreSQL', () => {
  const f = useDatabase(`
    CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
    INSERT INTO a SELECT g, 1, 'a' FROM generate_series(1, 300) g;
    CREATE TABLE quiet (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
    INSERT INTO quiet SELECT g, 5, 'q' FROM generate_series(1, 100) g;
    CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
    INSERT INTO big SELECT g, 1, repeat('x', 40) FROM generate_series(1, ${N}) g;`);

  it('back-fills an added table under a workload, across kill -9, and re-reads a table on sluice snapshot', async () => {
    const pick = () => 1 + Math.floor(Math.random() * N);
    await scenario({
      schema: 'public',
      dir: f.tmp.dir,
      yaml: (tables) => pipelineYaml('inc', f.db.name, f.tmp.dir, `tables: [${tables.join(', ')}]\nsignalTable: public.sluice_signal\nincrementalChunkSize: ${CHUNK}`),
      query: async (sql, params) => (await f.db.client.query(sql, params as unknown[])).rows,
      change: async (i) => {
        const k = i % 4;
        if (k === 0) await f.db.client.query('UPDATE big SET v = v + 1 WHERE id = $1', [pick()]);
        else if (k === 1) await f.db.client.query('DELETE FROM big WHERE id = $1', [pick()]);
        else if (k === 2) await f.db.client.query(`INSERT INTO big VALUES ($1, 7, 'new') ON CONFLICT (id) DO NOTHING`, [pick()]);
        else await f.db.client.query('UPDATE big SET id = $2, pad = $3 WHERE id = $1', [pick(), N + 1 + i, 'moved']);
      },
    });
  });
});

describe('incremental snapshots: MariaDB', () => {
  const f = useMysqlDatabase(`
    CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL, pad varchar(64) NOT NULL);
    INSERT INTO a SELECT seq, 1, 'a' FROM seq_1_to_300;
    CREATE TABLE quiet (id int PRIMARY KEY, v int NOT NULL, pad varchar(64) NOT NULL);
    INSERT INTO quiet SELECT seq, 5, 'q' FROM seq_1_to_100;
    CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad varchar(64) NOT NULL);
    INSERT INTO big SELECT seq, 1, repeat('x', 40) FROM seq_1_to_${N};`);

  it('back-fills an added table under a workload, across kill -9, and re-reads a table on sluice snapshot', async () => {
    const pick = () => 1 + Math.floor(Math.random() * N);
    await scenario({
      schema: f.name,
      dir: f.tmp.dir,
      yaml: (tables) => mysqlPipelineYaml('inc', f.name, f.tmp.dir, `tables: [${tables.join(', ')}]\nsignalTable: sluice_signal\nincrementalChunkSize: ${CHUNK}\nserverId: ${6400 + (process.pid % 500)}`),
      query: async (sql, params) => (await f.q(sql, params)) as Record<string, unknown>[],
      change: async (i) => {
        const k = i % 4;
        if (k === 0) await f.q('UPDATE big SET v = v + 1 WHERE id = ?', [pick()]);
        else if (k === 1) await f.q('DELETE FROM big WHERE id = ?', [pick()]);
        else if (k === 2) await f.q(`INSERT IGNORE INTO big VALUES (?, 7, 'new')`, [pick()]);
        else await f.q('UPDATE IGNORE big SET id = ?, pad = ? WHERE id = ?', [N + 1 + i, 'moved', pick()]);
      },
    });
  });
});

describe('incremental snapshots: tables that cannot be read by key', () => {
  const f = useDatabase(`
    CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
    INSERT INTO a SELECT g, 1, 'a' FROM generate_series(1, 50) g;
    CREATE TABLE loose (v int, pad text);
    INSERT INTO loose SELECT g, 'l' FROM generate_series(1, 20) g;`);

  it('refuses a keyless table and one the source does not capture, says why in status, and goes on', async () => {
    const cfg = join(f.tmp.dir, 'pipeline.yaml');
    const logDir = join(f.tmp.dir, 'log');
    writeFileSync(cfg, pipelineYaml('inc', f.db.name, f.tmp.dir, `tables: [public.a, public.loose]\nsignalTable: public.sluice_signal\nincrementalChunkSize: 20`));
    const child = startPipelineProcess(cfg);
    try {
      await waitUntil('streaming', async () => status(f.tmp.dir)?.phase === 'stream', 60_000);
      const before = (await readAll(logDir, 'inc')).length;
      const keyless = await runSluice(['snapshot', '--config', cfg, 'public.loose']);
      assert.equal(keyless.status, 0, keyless.stderr);
      await waitUntil('the keyless table refused', async () => /public\.loose: it has no primary key/.test(status(f.tmp.dir)?.incrementalSnapshot?.lastError ?? ''), 30_000);
      assert.match(status(f.tmp.dir).incrementalSnapshot.lastError, /restart the pipeline with a new log to snapshot it whole/);
      await f.db.client.query('DROP TABLE IF EXISTS gone');
      const gone = await runSluice(['snapshot', '--config', cfg, 'public.gone']);
      assert.equal(gone.status, 0, gone.stderr);
      await waitUntil('the uncaptured table refused', async () => /public\.gone: it is not in publication/.test(status(f.tmp.dir)?.incrementalSnapshot?.lastError ?? ''), 30_000);
      // Nothing was read for them, and the pipeline goes on: a change and a snapshot of `a` still land.
      assert.equal(incremental(await readAll(logDir, 'inc')).length, 0);
      await f.db.client.query(`INSERT INTO a VALUES (51, 1, 'after')`);
      const ok = await runSluice(['snapshot', '--config', cfg, 'public.a']);
      assert.equal(ok.status, 0, ok.stderr);
      await waitUntil('the snapshot of a', async () => incremental(await readAll(logDir, 'inc')).length === 51, 30_000);
      assert.ok((await readAll(logDir, 'inc')).length > before + 51, 'the insert streamed too');
      assert.equal(child.exitCode, null, 'the pipeline is still running');
    } finally {
      await stopProcess(child);
    }
  });
});
