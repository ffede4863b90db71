/**
 * The source conformance suite: what every source must guarantee, run against each source by a
 * harness (test/sources/conformance.test.ts). Today: crash safety. `sluice run` is killed with
 * SIGKILL during the snapshot (the first kill lands mid-table, after some chunks of it are
 * committed) and during streaming, restarted each time, while a workload keeps changing both a small
 * hot table and the big table being read. At the end every row's history in the log must be
 * complete and unrepeated (each update bumps a per-row version `v`: versions in order, no gap, no
 * repeat, ending at the table's state), every big row read exactly once, and every transaction
 * must have exactly one BEGIN and one END that counts its events.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { assertHistories, assertTransactions, WorkloadRecord } from '../helpers/history.ts';
import { countRecords, readAll, waitUntil, type ReadRecord } from '../helpers/pipeline.ts';
import type { LogConfig } from '../../src/config/types.ts';
import { embeddedLogAt } from '../../src/log/open.ts';

/** What the suite needs of a source. */
export interface SourceHarness {
  /** `PostgreSQL`, … for test names. */
  name: string;
  /** Registers the suite's database fixture: tables `big (id, v, pad)` with ids 1..bigRows at v = 1, and `hot (id, v, note)` with ids 1..200. */
  database(bigRows: number): SourceDatabase;
  /** Kill-and-restart cycles (default SLUICE_CRASH_CYCLES or 8). */
  cycles?: number;
  /** Further checks once the log is complete, given what the suite read from it. */
  verify?(db: SourceDatabase, records: ReadRecord[]): Promise<void>;
}

export interface SourceDatabase {
  /** Runs SQL with `?` placeholders. */
  exec(sql: string, params?: unknown[]): Promise<unknown>;
  /** Rows of `SELECT id, v FROM <table>`. */
  versions(table: 'big' | 'hot'): Promise<Map<number, number>>;
  /** A temp directory of the suite. */
  dir(): string;
  /** Pipeline YAML for pipeline `name`, logging into `dir()/log`, keeping state in `dir()/state`; `source` and `top` are added to the source and top level. */
  yaml(name: string, source: string, top: string): string;
  /** The topic of `table` for pipeline `name`. */
  topic(name: string, table: 'big' | 'hot'): string;
  /** The log the pipeline writes, as `yaml` configures it; default the embedded log in `dir()/log`. */
  log?(): LogConfig;
}

const DEFAULT_CYCLES = Number(process.env.SLUICE_CRASH_CYCLES ?? 8);

const kill9 = (child: ChildProcess) => stopProcess(child, 'SIGKILL');

export function sourceConformance(h: SourceHarness): void {
  describe(`${h.name} source conformance: kill -9`, () => {
    const BIG = 300_000;
    const CYCLES = h.cycles ?? DEFAULT_CYCLES;
    const db = h.database(BIG);

    it(`loses and repeats nothing across ${CYCLES} kills during the snapshot and streaming, under a workload`, async () => {
      const cfgPath = join(db.dir(), 'pipeline.yaml');
      writeFileSync(cfgPath, db.yaml('crash', 'transactionMetadata: true', 'batch:\n  maxRecords: 500\n  maxDelayMs: 5'));
      const logDir = db.log?.() ?? embeddedLogAt(join(db.dir(), 'log'));
      const bigTopic = db.topic('crash', 'big');
      const hotTopic = db.topic('crash', 'hot');

      // Workload: transactions of 1-5 changes, on `hot` (updates, inserts, deletes, some rolled
      // back) and on `big` (updates, which land on both sides of wherever a kill stops the snapshot
      // of it). It records what it committed: the truth the log is checked against.
      const work = new WorkloadRecord([
        { table: 'big', ids: range(1, BIG) },
        { table: 'hot', ids: range(1, 200) },
      ]);
      let running = true;
      let nextId = 10_000;
      const workload = (async () => {
        while (running) {
          const n = 1 + Math.floor(Math.random() * 5);
          await db.exec('BEGIN');
          for (let i = 0; i < n; i++) {
            const r = Math.random();
            if (r < 0.4) {
              const id = 1 + Math.floor(Math.random() * 200);
              await db.exec(`UPDATE hot SET v = v + 1 WHERE id = ?`, [id]);
              work.change('hot', 'u', id);
            } else if (r < 0.6) {
              const id = 1 + Math.floor(Math.random() * BIG);
              await db.exec(`UPDATE big SET v = v + 1 WHERE id = ?`, [id]);
              work.change('big', 'u', id);
            } else if (r < 0.85) {
              const id = nextId++;
              await db.exec(`INSERT INTO hot VALUES (?, 1, 'new')`, [id]);
              work.change('hot', 'c', id);
            } else {
              const live = work.created('hot');
              if (!live.length) continue;
              const id = live[Math.floor(Math.random() * live.length)];
              await db.exec(`DELETE FROM hot WHERE id = ?`, [id]);
              work.change('hot', 'd', id);
            }
          }
          if (Math.random() < 0.05) {
            await db.exec('ROLLBACK');
            work.rolledBack();
          } else {
            await db.exec('COMMIT');
            work.committed();
          }
        }
      })();
      /** When the pipeline was first seen streaming (its snapshot done): every transaction after it must be in the log. */
      let streamingSince = Infinity;

      let child = startPipelineProcess(cfgPath);
      try {
        // 1) A kill in the middle of the snapshot of `big`: some chunks committed, not all.
        await waitUntil('the first chunks of big in the log', async () => (await countRecords(logDir, bigTopic)) > 0, 60_000);
        await new Promise((r) => setTimeout(r, Math.random() * 300));
        await kill9(child);
        const afterFirstKill = await countRecords(logDir, bigTopic);
        assert.ok(afterFirstKill > 0 && afterFirstKill < BIG, `the first kill came mid-table (${afterFirstKill} of ${BIG} rows of big in the log): this run did not test a crash during the snapshot`);

        // 2) Kills at random points, possibly still snapshotting; the second half of them once the
        // process is streaming (a slow machine could otherwise spend every cycle in the snapshot).
        for (let i = 0; i < CYCLES; i++) {
          child = startPipelineProcess(cfgPath);
          if (i >= CYCLES / 2) {
            const pid = child.pid;
            await waitUntil('the restarted pipeline streaming', async () => {
              const st = JSON.parse(readFileSync(join(db.dir(), 'state', 'status.json'), 'utf8'));
              return st.pid === pid && st.source?.phase === 'stream';
            }, 90_000);
            streamingSince = Math.min(streamingSince, Date.now());
          }
          await new Promise((r) => setTimeout(r, 500 + Math.random() * 1500));
          await kill9(child);
        }
      } finally {
        running = false;
        await workload;
        await kill9(child);
      }
      assert.ok(work.transactions.length > 20, `the workload committed only ${work.transactions.length} transactions`);
      await db.exec(`INSERT INTO hot VALUES (-1, 1, 'end marker')`);
      work.change('hot', 'c', -1);
      work.committed();
      child = startPipelineProcess(cfgPath);
      try {
        await waitUntil('end marker in the log', async () => (await readAll(logDir, hotTopic)).some((r) => r.key?.id === -1), 180_000);
      } finally {
        await stopProcess(child);
      }

      const recs = await readAll(logDir, 'crash.');
      // `big`: each row read exactly once, despite the kills during its snapshot...
      const reads = recs.filter((r) => r.topic === bigTopic && r.value?.op === 'r');
      assert.equal(new Set(reads.map((r) => r.key.id)).size, BIG, 'every big row read');
      assert.equal(reads.length, BIG, 'no big row read twice');
      // ...and per key, exactly the committed changes after the version it was read at (or its
      // whole history, for rows created after the read), ending at the table's state.
      const before = (max: number) => (id: number) => id >= 1 && id <= max;
      assertHistories(recs, bigTopic, await db.versions('big'), work, 'big', before(BIG));
      assertHistories(recs, hotTopic, await db.versions('hot'), work, 'hot', before(200));
      // Every transaction committed while the source streamed is in the log whole, with its
      // BEGIN and END counting its events, through the kills.
      assertTransactions(recs, 'crash.transaction', work, streamingSince, (t) => (t === 'big' ? bigTopic : hotTopic));
      await h.verify?.(db, recs);
    });
  });
}

function* range(from: number, to: number): Iterable<number> {
  for (let i = from; i <= to; i++) yield i;
}
