/**
 * Seed 002's nightly chain inside `sluice run`: a `snapshot` schedule reads a source table again
 * (an incremental snapshot through the signal table) and waits until the source has read it to
 * its end, then a `reconcile` step after it compares the source with the sink. A snapshot of a
 * keyless table is refused by the source: its run fails (SCHEDULE_SNAPSHOT, the source's reason)
 * and the step after it is skipped. The truth is the database (its row count) and the log (the
 * incremental snapshot's reads of the table).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openLog } from '../../src/log/open.ts';
import { readHistory } from '../../src/schedules/history.ts';
import type { RunEntry } from '../../src/schedules/types.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { embeddedLogAt } from '../../src/log/open.ts';

describe('snapshot schedules', () => {
  const f = useDatabase(`
    CREATE TABLE a (id int PRIMARY KEY, v int NOT NULL);
    INSERT INTO a SELECT g, g FROM generate_series(1, 700) g;
    CREATE TABLE loose (v int);
    INSERT INTO loose SELECT g FROM generate_series(1, 10) g;`);

  it('runs snapshot → reconcile as a chain, and fails the chain when the source refuses a table', async () => {
    const target = await freshDatabase('sluice_t');
    const cfg = join(f.tmp.dir, 'p.yaml');
    writeFileSync(
      cfg,
      pipelineYaml(
        'snapsched',
        f.db.name,
        f.tmp.dir,
        'tables: [public.a, public.loose]\nsignalTable: public.sluice_signal\nincrementalChunkSize: 100',
        `sinks:
  - { name: pg, type: postgres, tables: [public.a], connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} } }
schedules:
  - { name: snap, cron: "*/4 * * * * *", snapshot: { tables: [public.a], waitMs: 30s } }
  - { name: recon, after: [snap], reconcile: { sinks: [pg] } }
  - { name: bad, cron: "*/4 * * * * *", snapshot: { tables: [public.loose], waitMs: 30s } }
  - { name: after_bad, after: [bad], reconcile: { sinks: [pg] } }
`,
      ),
    );
    const child = startPipelineProcess(cfg);
    const logDir = join(f.tmp.dir, 'log');
    const history = async (): Promise<RunEntry[]> => {
      const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
      try {
        return await readHistory(log, 'snapsched');
      } finally {
        await log.close();
      }
    };
    try {
      let h: RunEntry[] = [];
      await waitUntil(
        'a snapshot with its reconcile, and a refused one with its step skipped',
        async () => {
          h = await history().catch(() => []);
          const snap = h.find((e) => e.schedule === 'snap' && e.status === 'ok');
          const bad = h.find((e) => e.schedule === 'bad' && e.status === 'failed');
          return !!snap && h.some((e) => e.schedule === 'recon' && e.fireTime === snap.fireTime) && !!bad && h.some((e) => e.schedule === 'after_bad' && e.fireTime === bad.fireTime);
        },
        60_000,
      );
      const snap = h.find((e) => e.schedule === 'snap' && e.status === 'ok')!;
      const rows = Number((await f.db.client.query('SELECT count(*) FROM a')).rows[0].count);
      assert.equal(snap.records, rows, 'the run counts the rows the source read');
      const recon = h.find((e) => e.schedule === 'recon' && e.fireTime === snap.fireTime)!;
      assert.equal(recon.status, 'ok', JSON.stringify(recon));
      assert.equal(recon.trigger, 'after');
      assert.ok(Date.parse(recon.startedAt) >= Date.parse(snap.endedAt), 'reconcile started once the snapshot had ended');
      // The log holds the snapshot's reads of every row of a (op r, snapshot incremental).
      const reads = (await readAll(logDir, 'snapsched')).filter((r) => r.topic.endsWith('.a') && r.value?.op === 'r' && r.value.source.snapshot === 'incremental');
      assert.ok(new Set(reads.map((r) => Number(r.key.id))).size === rows, `the incremental snapshot read every row (${reads.length} reads)`);
      const bad = h.find((e) => e.schedule === 'bad' && e.status === 'failed')!;
      assert.equal(bad.error?.code, 'SCHEDULE_SNAPSHOT');
      assert.match(bad.error!.message, /public\.loose was refused \(public\.loose: it has no primary key/);
      const skipped = h.find((e) => e.schedule === 'after_bad' && e.fireTime === bad.fireTime)!;
      assert.equal(skipped.status, 'skipped');
      assert.match(skipped.reason!, /^bad failed for this fire time \(SCHEDULE_SNAPSHOT: /);
      assert.equal(child.exitCode, null, 'the pipeline goes on');
    } finally {
      await stopProcess(child);
      await target.drop();
    }
  });
});
