/**
 * What a sink does when things go wrong around it: the target drops its connection (it reconnects
 * and resumes from the offsets stored in the target), and the log is recreated under a filled
 * target (it refuses to skip, with a message that says how to recover). `sluice status` shows it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { PostgresSourceConfig } from '../../src/config/types.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { adminClient, freshDatabase } from '../helpers/pg.ts';
import { pipelineYaml, tempDir, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets, sourceRows, type ColKind, type Targets } from '../helpers/targets.ts';

const COLS: [string, ColKind][] = [['id', 'int'], ['n', 'int']];

describe('sink recovery', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let targets: Targets;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    db = await freshDatabase();
    tmp = tempDir();
    targets = await freshTargets(tmp.dir);
    await db.client.query(`CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g`);
  });
  after(async () => {
    await targets.drop();
    await db.drop();
    tmp.remove();
  });

  it('reconnects after the target drops its connection, and refuses a recreated log', async () => {
    const yaml = pipelineYaml('recov', db.name, tmp.dir, '', targets.sinksYaml());
    const cfg = parseConfig(yaml, 'test.yaml', process.env);
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'error' }) });
    const admin = await adminClient(targets.pgDb);
    try {
      await waitUntil('snapshot applied', async () => (await targets.rows('postgres', 't', COLS).catch(() => [])).length === 100);
      // Kill the PostgreSQL sink's connection three times while changes keep coming.
      for (let i = 0; i < 3; i++) {
        const sinkConnections = `SELECT pid FROM pg_stat_activity WHERE application_name = 'sluice sink pg'`;
        await waitUntil('the sink connected (again)', async () => (await admin.query(sinkConnections)).rowCount === 1, 20_000);
        await admin.query(`SELECT pg_terminate_backend(pid) FROM (${sinkConnections}) s`);
        await db.client.query(`UPDATE t SET n = n + 1000 WHERE id % 4 = $1`, [i]);
        await new Promise((r) => setTimeout(r, 300));
      }
      const want = await sourceRows(db.client, 't', COLS);
      await waitUntil('the PostgreSQL sink caught up after reconnecting', async () => JSON.stringify(await targets.rows('postgres', 't', COLS)) === JSON.stringify(want), 30_000);
      let pgSink: { state: string; error: { message: string } | null } = { state: '', error: null };
      await waitUntil('status.json shows the sink running again', async () => {
        pgSink = JSON.parse(readFileSync(join(tmp.dir, 'state', 'status.json'), 'utf8')).sinks.find((s: { name: string }) => s.name === 'pg');
        return pgSink.state === 'running';
      }, 10_000);
      assert.match(pgSink.error?.message ?? '', /^lost the connection to PostgreSQL 127\.0\.0\.1:5432\/sluice_t_\w+: (terminating connection due to administrator command|Connection terminated unexpectedly|read ECONNRESET); reconnecting$/, 'the last transient error, with its cause, is kept for status');
    } finally {
      ac.abort();
      await run;
      await admin.end();
    }
    const st = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--log-dir', join(tmp.dir, 'log'), '--state-dir', join(tmp.dir, 'state')], { encoding: 'utf8' });
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /^ {2}sink pg \(postgres\): stopped, \d+ changes applied this run, 0 records behind the log/m);
    assert.match(st.stdout, /^ {2}sink dk \(duckdb\): stopped, /m);

    // The log is deleted and rebuilt by a new run (new slot): the targets hold offsets beyond it.
    rmSync(join(tmp.dir, 'log'), { recursive: true, force: true });
    await db.client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [(cfg.source as PostgresSourceConfig).slot]);
    const ac2 = new AbortController();
    const run2 = runPipeline(cfg, { signal: ac2.signal, logger: createLogger({ level: 'error' }) });
    try {
      let sinks: { name: string; state: string; error: { code: string; message: string } | null }[] = [];
      await waitUntil('every sink refused the recreated log', async () => {
        sinks = JSON.parse(readFileSync(join(tmp.dir, 'state', 'status.json'), 'utf8')).sinks;
        return sinks.length === 3 && sinks.every((s) => s.state === 'failed');
      }, 30_000);
      for (const s of sinks) {
        assert.equal(s.error?.code, 'SINK_OFFSETS_AHEAD', s.name);
        assert.match(s.error!.message, /the log was recreated after the target was filled\. Empty the target tables and delete the sink's rows from its sluice_offsets table/, s.name);
      }
    } finally {
      ac2.abort();
      await run2;
    }
    // Nothing already applied was touched.
    assert.deepEqual(await targets.rows('postgres', 't', COLS), await sourceRows(db.client, 't', COLS));
  });
});
