/**
 * MySQL/MariaDB source: kill -9 of the pipeline process during the snapshot and during streaming, restarted each time,
 * while a workload keeps writing. At the end every row's history in the log must be complete and
 * unrepeated: each update bumps a per-row version `v`, so for every key the log must hold the
 * versions in order with no gap (lost event) and no repeat (duplicate), ending at the table's
 * current state.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startPipelineProcess, stopProcess } from '../../helpers/child.ts';
import { assertHistories, assertTransactionBoundaries } from '../../helpers/history.ts';
import { readAll, waitUntil } from '../../helpers/pipeline.ts';
import { mysqlPipelineYaml, useMysqlDatabase } from '../../helpers/mysql.ts';

const CYCLES = Number(process.env.SLUICE_CRASH_CYCLES ?? 8);

async function kill9(child: ChildProcess): Promise<void> {
  await stopProcess(child, 'SIGKILL');
}

describe('crash safety of mysql → log (kill -9)', () => {
  const f = useMysqlDatabase(`
      CREATE TABLE big (id INT PRIMARY KEY, v INT NOT NULL, pad TEXT);
      CREATE TABLE hot (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20));
      INSERT INTO big SELECT seq, 1, REPEAT('p', 200) FROM seq_1_to_400000;
      INSERT INTO hot SELECT seq, 1, 'n' FROM seq_1_to_200;
    `);

  it(`loses and repeats nothing across ${CYCLES} kills during snapshot and streaming`, async () => {
    const yaml = mysqlPipelineYaml('crash', f.name, f.tmp.dir, 'transactionMetadata: true', 'batch:\n  maxRecords: 500\n  maxDelayMs: 5');
    const cfgPath = join(f.tmp.dir, 'pipeline.yaml');
    writeFileSync(cfgPath, yaml);
    const logDir = join(f.tmp.dir, 'log');

    // Workload: transactions of 1-5 updates/inserts/deletes on `hot`, committed continuously.
    let running = true;
    let nextId = 10_000;
    const workload = (async () => {
      while (running) {
        const n = 1 + Math.floor(Math.random() * 5);
        await f.q('BEGIN');
        for (let i = 0; i < n; i++) {
          const r = Math.random();
          if (r < 0.6) await f.q(`UPDATE hot SET v = v + 1 WHERE id = ?`, [1 + Math.floor(Math.random() * 200)]);
          else if (r < 0.85) await f.q(`INSERT INTO hot VALUES (?, 1, 'new')`, [nextId++]);
          else await f.q(`DELETE FROM hot WHERE id >= 10000 ORDER BY RAND() LIMIT 1`);
        }
        await f.q('COMMIT');
      }
    })();

    let child = startPipelineProcess(cfgPath);
    try {
    // 1) kill during the snapshot of `big` (400k rows: reading them takes well over the 400 ms below).
    await waitUntil('snapshot of big under way', async () => {
      const { existsSync } = await import('node:fs');
      return existsSync(join(logDir, 'topics', `crash.${f.name}.big`, 'topic.json'));
    });
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
    await kill9(child);
    // The kill must have hit the middle of the table: nothing of it is committed yet.
    const afterFirstKill = (await readAll(logDir, `crash.${f.name}.big`)).length;
    assert.equal(afterFirstKill, 0, `the first kill came after the snapshot of big was committed (${afterFirstKill} rows): this run did not test a crash during the snapshot`);

    // 2) kills at random points, possibly still snapshotting; the second half of them once the
    // process is streaming (a slow machine could otherwise spend every cycle in the snapshot).
    for (let i = 0; i < CYCLES; i++) {
      child = startPipelineProcess(cfgPath);
      if (i >= CYCLES / 2) {
        const pid = child.pid;
        await waitUntil('the restarted pipeline streaming', async () => {
          const st = JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
          return st.pid === pid && st.source?.phase === 'stream';
        }, 60_000);
      }
      await new Promise((r) => setTimeout(r, 500 + Math.random() * 1500));
      await kill9(child);
    }

    } finally {
      running = false;
      await workload;
      await kill9(child);
    }
    await f.q(`INSERT INTO hot VALUES (-1, 1, 'end marker')`);
    child = startPipelineProcess(cfgPath);
    try {
      await waitUntil('end marker in the log', async () => (await readAll(logDir, `crash.${f.name}.hot`)).some((r) => r.key?.id === -1), 120_000);
    } finally {
      await stopProcess(child);
    }

    const recs = await readAll(logDir, 'crash.');
    // `big`: snapshot exactly once per row, despite the kill during its snapshot.
    const big = recs.filter((r) => r.topic === `crash.${f.name}.big` && r.value);
    assert.equal(big.length, 400000, 'each big row exactly once');
    assert.equal(new Set(big.map((r) => r.key.id)).size, 400000);

    // `hot`: per key, versions consecutive from first sight to the end, final state = table.
    assertHistories(recs, `crash.${f.name}.hot`, new Map<number, number>(((await f.q(`SELECT id, v FROM hot`)) as any[]).map((r: any) => [r.id, r.v])));
    // Transaction boundaries survive the kills too.
    assertTransactionBoundaries(recs, 'crash.transaction');
  });
});
