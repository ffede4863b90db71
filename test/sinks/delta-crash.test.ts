/**
 * Crash safety of the Delta Lake sink: a workload keeps committing inserts, updates and deletes
 * to PostgreSQL while the pipeline process (source → log → Delta sink, small batches, a commit
 * each) is killed with SIGKILL ten times. At the end Delta Kernel reads the table: it holds every
 * change the workload committed exactly once (counted by the workload itself), its rows fold to
 * the source table value for value, and the only Parquet files no version references are those a
 * kill left between writing a file and committing it (at most one per kill).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const KILLS = 10;
const READER = new URL('../../scripts/delta-reader.sh', import.meta.url).pathname;

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
    }
  }
  return { commits: names.length, referenced, records };
}

describe('Delta Lake sink through kill -9', () => {
  const f = useDatabase(`CREATE TABLE acc (id bigint PRIMARY KEY, v int NOT NULL, balance numeric(12,2), note text);
    INSERT INTO acc SELECT g, 1, g * 10.5, 'opened ' || g FROM generate_series(1, 2000) g;`);

  it(`holds every committed change once after ${KILLS} kills, and folds to the source table`, async () => {
    const lake = join(f.tmp.dir, 'lake');
    const cfgPath = join(f.tmp.dir, 'delta.yaml');
    writeFileSync(cfgPath, pipelineYaml('dc', f.db.name, f.tmp.dir, '', `sinks:\n  - {name: bronze, type: delta, path: ${lake}, batch: {maxRecords: 100, maxDelayMs: 5}}\n`));
    const table = join(lake, 'acc');
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
        n += (await c.query(`UPDATE acc SET v = v + 1, balance = balance + 0.01 WHERE id IN (SELECT id FROM acc ORDER BY random() LIMIT 3)`)).rowCount!;
        n += (await c.query(`INSERT INTO acc VALUES ($1, 1, 0.5, NULL)`, [next++])).rowCount!;
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
    let have = 0;
    try {
      await waitUntil('every change in the Delta table', async () => (have = kernelRows(table).length) >= changes, 120_000).catch((e) => {
        throw new Error(`${(e as Error).message}: ${have} of ${changes} rows\n${child.stderrText().slice(-3000)}`, { cause: e });
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
    const source = (await c.query(`SELECT id::text, v, balance::text, note FROM acc ORDER BY acc.id`)).rows.map((r) => [r.id, r.v, r.balance, r.note]);
    assert.deepEqual(folded, source, 'the folded table equals the source');
    // Files: every referenced one is there (Kernel read them); unreferenced ones only from kills.
    const { referenced } = commitsOf(table);
    const onDisk = readdirSync(table).filter((n) => n.endsWith('.parquet'));
    const orphans = onDisk.filter((n) => !referenced.has(n));
    assert.ok(orphans.length <= KILLS, `${orphans.length} Parquet files no version references (at most one per kill)`);
  });
});
