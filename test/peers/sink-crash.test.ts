/**
 * Crash-safety proof of the sinks: a workload keeps writing to PostgreSQL while the pipeline
 * process (source → log → PostgreSQL, MariaDB and DuckDB sinks) is killed with SIGKILL at random
 * points, at least 20 times. At the end every sink's table equals the source table — row count and
 * an order-independent checksum of all columns — and the DuckDB change table holds, per key,
 * exactly the changes the workload committed (each update bumps a per-row version `v`) after the
 * version its snapshot row shows: nothing lost, nothing twice, compared with the workload's own
 * record, not with the log the same pipeline wrote.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase } from '../helpers/pg.ts';
import { pipelineYaml, tempDir, waitUntil, type ReadRecord } from '../helpers/pipeline.ts';
import { assertHistories, WorkloadRecord } from '../helpers/history.ts';
import { DuckDBInstance } from '@duckdb/node-api';
import { checksum, freshTargets, sourceRows, TARGETS, type ColKind, type Targets } from '../helpers/targets.ts';

const CYCLES = Number(process.env.SLUICE_SINK_CRASH_CYCLES ?? 20);
const COLS: [string, ColKind][] = [['id', 'int'], ['v', 'int'], ['balance', 'decimal'], ['note', 'text'], ['updated', 'timestamptz'], ['flags', 'array']];

describe('crash safety of the sinks (SIGKILL)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let targets: Targets;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    await db.client.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, v int NOT NULL, balance numeric(12,2), note text, updated timestamptz, flags text[]);
      INSERT INTO accounts SELECT g, 1, g * 10.5, 'opened ' || g, now(), ARRAY['a'] FROM generate_series(1, 20000) g;`);
  });
  after(async () => {
    await targets.drop();
    await db.drop();
    tmp.remove();
  });

  it(`every sink equals the source after ${CYCLES} kills, and no change is applied twice`, async () => {
    const yaml = pipelineYaml('sinkcrash', db.name, tmp.dir, 'snapshotFetchSize: 2000', `batch:\n  maxRecords: 300\n  maxDelayMs: 5\n${targets.sinksYaml('batch: { maxRecords: 400, maxDelayMs: 5 }')}`);
    const cfgPath = join(tmp.dir, 'pipeline.yaml');
    writeFileSync(cfgPath, yaml);

    // Workload: transactions of 1–6 inserts/updates/deletes, committed continuously, recorded as
    // committed: the change table is checked against that record, not against the log.
    const work = new WorkloadRecord([{ table: 'accounts', ids: Array.from({ length: 20000 }, (_, i) => i + 1) }]);
    let running = true;
    let nextId = 100_000;
    let txs = 0;
    const c = db.client;
    const workload = (async () => {
      while (running) {
        const n = 1 + Math.floor(Math.random() * 6);
        await c.query('BEGIN');
        for (let i = 0; i < n; i++) {
          const r = Math.random();
          if (r < 0.6) {
            const id = 1 + Math.floor(Math.random() * 20000);
            await c.query(`UPDATE accounts SET v = v + 1, balance = round((random() * 100000)::numeric, 2), note = md5(random()::text), updated = now(), flags = array_append(flags, 'u') WHERE id = $1`, [id]);
            work.change('accounts', 'u', id);
          } else if (r < 0.85) {
            const id = nextId++;
            await c.query(`INSERT INTO accounts VALUES ($1, 1, 0, 'new', now(), '{}')`, [id]);
            work.change('accounts', 'c', id);
          } else {
            const live = work.created('accounts');
            if (!live.length) continue;
            const id = live[Math.floor(Math.random() * live.length)];
            await c.query(`DELETE FROM accounts WHERE id = $1`, [id]);
            work.change('accounts', 'd', id);
          }
        }
        await c.query('COMMIT');
        work.committed();
        txs++;
      }
    })();

    let child = startPipelineProcess(cfgPath);
    try {
      for (let i = 0; i < CYCLES; i++) {
        // The first kill lands in the initial snapshot / first sink batches, the next anywhere;
        // every third of the second half once the restarted process streams, so that sinks apply
        // streamed changes under kills even on a machine too slow to get past the snapshot between
        // early kills.
        if (i >= CYCLES / 2 && (i - CYCLES / 2) % 3 === 0) {
          const pid = child.pid;
          await waitUntil('the restarted pipeline streaming', async () => {
            const st = JSON.parse(readFileSync(join(tmp.dir, 'state', 'status.json'), 'utf8'));
            return st.pid === pid && st.source?.phase === 'stream';
          }, 90_000);
        }
        await new Promise((r) => setTimeout(r, i === 0 ? 900 + Math.random() * 400 : 600 + Math.random() * 1400));
        await stopProcess(child, 'SIGKILL');
        child = startPipelineProcess(cfgPath);
      }
    } finally {
      running = false;
      await workload;
    }
    assert.ok(txs > 100, `the workload ran (${txs} transactions)`);
    try {
      const want = await sourceRows(c, 'accounts', COLS);
      // PostgreSQL and MariaDB can be read while the pipeline runs: once they equal the source,
      // the source has captured the whole workload.
      await waitUntil('PostgreSQL and MariaDB sinks equal to the source', async () => {
        for (const t of ['postgres', 'mysql'] as const) {
          const got = await targets.rows(t, 'accounts', COLS).catch(() => null);
          if (!got || JSON.stringify(checksum(got)) !== JSON.stringify(checksum(want))) return false;
        }
        return true;
      }, 120_000).catch(() => {});
      // DuckDB allows one process at a time: wait for its sink to reach the log's end (its status),
      // read it after the pipeline stops.
      const log = await openLog(embeddedLogAt(join(tmp.dir, 'log')), { readOnly: true });
      await waitUntil('the DuckDB sink at the end of the log', async () => {
        const ends = await log.offsets('sinkcrash.public.accounts');
        const st = JSON.parse(readFileSync(join(tmp.dir, 'state', 'status.json'), 'utf8'));
        const dk = st.sinks?.find((x: { name: string }) => x.name === 'dk');
        return st.pid === child.pid && ends.every((o) => (dk?.offsets?.[`sinkcrash.public.accounts/${o.partition}`] ?? 0) >= o.end);
      }, 120_000).finally(() => log.close());
      await stopProcess(child, 'SIGTERM');
      await waitUntil('every sink equal to the source', async () => {
        for (const t of TARGETS) {
          const got = await targets.rows(t, 'accounts', COLS).catch(() => null);
          if (!got || got.length !== want.length || JSON.stringify(checksum(got)) !== JSON.stringify(checksum(want))) return false;
        }
        return true;
      }, 120_000).catch(async (e: Error) => {
        const lines: string[] = [];
        const wantKeys = new Map(want.map((r) => [r[0], r.join(' | ')]));
        for (const t of TARGETS) {
          const got = (await targets.rows(t, 'accounts', COLS).catch(() => [])) as string[][];
          const gotKeys = new Map(got.map((r) => [r[0], r.join(' | ')]));
          const diff = [...new Set([...wantKeys.keys(), ...gotKeys.keys()])].filter((k) => wantKeys.get(k) !== gotKeys.get(k)).slice(0, 3);
          lines.push(`${t}: ${got.length} rows vs ${want.length}; e.g. ${diff.map((k) => `source ${wantKeys.get(k) ?? '(none)'} / sink ${gotKeys.get(k) ?? '(none)'}`).join('; ')}`);
        }
        throw new Error(`${e.message}\n${lines.join('\n')}\n--- pipeline stderr ---\n${child.stderrText().slice(-3000)}`);
      });
      for (const t of TARGETS) {
        const got = await targets.rows(t, 'accounts', COLS);
        assert.deepEqual(checksum(got), checksum(want), `${t}: row count and checksum equal the source's`);
      }
    } finally {
      await stopProcess(child, 'SIGTERM');
    }
    // The change table against what the source committed: per key, a snapshot read of a committed
    // version, then exactly the committed changes after it, each once, ending at the table's state.
    const conn = await (await DuckDBInstance.fromCache(targets.duckPath)).connect();
    let changes: ReadRecord[];
    try {
      const rows = (await conn.runAndReadAll(`SELECT __change_id, __op, id, v FROM accounts_changes ORDER BY __change_id`)).getRows();
      changes = rows.map(([cid, op, id, v]) => {
        const image = { id: Number(id), v: v === null ? null : Number(v) };
        return { topic: 'accounts', partition: 0, offset: Number(cid), key: { id: Number(id) }, value: { op, before: op === 'd' ? image : null, after: op === 'd' ? null : image } };
      });
    } finally {
      conn.closeSync();
    }
    const table = new Map<number, number>((await c.query('SELECT id, v FROM accounts')).rows.map((r: any) => [Number(r.id), r.v]));
    assertHistories(changes, 'accounts', table, work, 'accounts', (id) => id >= 1 && id <= 20000);
    const updates = changes.filter((r) => r.value.op === 'u').length;
    assert.ok(updates > 100, `the change table saw the workload's updates (${updates})`);
  });
});
