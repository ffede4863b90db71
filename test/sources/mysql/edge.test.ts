/**
 * The MySQL source where binlogs get awkward: a stop in the middle of a table's snapshot, TRUNCATE
 * right after a restart and behind comments, composite keys declared out of column order, XA
 * transactions, and sessions that write rows the source cannot capture (MINIMAL images,
 * statement-based DML) — which must stop the pipeline with an error that says what to do rather
 * than put wrong rows in the log.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPipeline } from '../../../src/engine/runner.ts';
import { isStreaming, mysqlAdmin, mysqlPipelineConfig, quietLogger, runUntil as runUntilStreaming, useMysqlDatabase } from '../../helpers/mysql.ts';
import { countRecords, readAll, waitUntil } from '../../helpers/pipeline.ts';
import { assertResumedSnapshot, changesAcrossTheBoundary } from '../../helpers/snapshot-resume.ts';

const quiet = quietLogger;
type Cfg = ReturnType<typeof mysqlPipelineConfig>;
const runUntil = (cfg: Cfg, what: string, cond: () => Promise<boolean>, act?: () => Promise<void>) => runUntilStreaming(cfg, what, cond, act, { afterStreaming: true });

/** Runs the pipeline while `act` writes, and expects it to stop by itself with `code`. */
async function expectStop(cfg: Cfg, act: () => Promise<void>, code: string, message: RegExp): Promise<void> {
  const ac = new AbortController();
  const run = runPipeline(cfg, { signal: AbortSignal.any([ac.signal, AbortSignal.timeout(60_000)]), logger: quiet() });
  const outcome = run.then(
    () => null,
    (e) => e,
  );
  await waitUntil('streaming', async () => isStreaming(cfg.state.dir));
  await act();
  const e = await outcome;
  assert.ok(e, `the pipeline should have stopped with ${code}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, message);
}

describe('mysql source: awkward binlogs', () => {
  const f = useMysqlDatabase(`
    CREATE TABLE big (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(20));
    INSERT INTO big SELECT seq, 1, 'x' FROM seq_1_to_300000;
    CREATE TABLE ck (a INT, b INT, v INT, PRIMARY KEY (b, a));
    INSERT INTO ck VALUES (1, 2, 0), (3, 4, 0);
  `);

  it('a stop in the middle of a snapshot keeps its committed chunks; the restart reads the rest, and the stream leaves out exactly what the second read holds', async () => {
    const n = 300_000;
    const cfg = mysqlPipelineConfig('e1', f.name, f.tmp.dir + '/e1', `tables: [${f.name}.big]`);
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: quiet() });
    const topic = `e1.${f.name}.big`;
    // Stop as soon as the first chunks are committed: well inside the table.
    await waitUntil('the first chunks of big in the log', async () => (await countRecords(cfg.log, topic)) > 0);
    ac.abort();
    await run;
    const first = await readAll(cfg.log, topic);
    const k = first.length;
    assert.ok(k > 0 && k < n - 10, `the stop came mid-table (${k} of ${n} rows in the log)`);
    assert.deepEqual(first.map((r) => r.key.id).sort((a, b) => a - b), Array.from({ length: k }, (_, i) => i + 1), 'chunks hold a prefix of the table in key order');
    for (const sql of changesAcrossTheBoundary('big', k, n)) await f.q(sql);
    // The last change made while stopped creates key -7: once it is in, everything before it is.
    await runUntil(cfg, 'the rest of the table and the changes', async () => (await readAll(cfg.log, topic)).some((r) => r.key?.id === -7));
    const table = new Map<number, number>(((await f.q('SELECT id, v FROM big')) as any[]).map((r: any) => [r.id, r.v]));
    assertResumedSnapshot(await readAll(cfg.log, topic), k, n, table);
  });

  it('composite keys keep the primary key order in snapshot and stream; TRUNCATE after a restart and behind a comment is captured', async () => {
    const cfg = mysqlPipelineConfig('e2', f.name, f.tmp.dir + '/e2', `tables: [${f.name}.ck]`);
    const topic = `e2.${f.name}.ck`;
    await runUntil(cfg, 'snapshot and an update', async () => (await readAll(cfg.log, topic)).some((r) => r.value?.op === 'u'), () => f.q(`UPDATE ck SET v = 1 WHERE a = 1 AND b = 2`));
    const recs = await readAll(cfg.log, topic);
    const snap = recs.find((r) => r.value?.op === 'r' && r.key.a === 1)!;
    const upd = recs.find((r) => r.value?.op === 'u')!;
    assert.deepEqual(Object.keys(snap.key), ['b', 'a'], 'key in PRIMARY KEY (b, a) order');
    assert.deepEqual(Object.keys(upd.key), ['b', 'a']);
    assert.equal(snap.partition, upd.partition, 'the same row lands in the same partition from snapshot and stream');
    // A restart, then a TRUNCATE before any row change of the table (no table map seen yet).
    await runUntil(cfg, 'the truncate', async () => (await readAll(cfg.log, topic)).filter((r) => r.value?.op === 't').length === 3, () => f.q(`/* maintenance */ TRUNCATE TABLE ck`));
  });

  it('XA: a committed XA transaction is captured; rolling one back after PREPARE stops with MYSQL_XA_ROLLBACK', async () => {
    await f.q(`CREATE TABLE xat (id INT PRIMARY KEY)`);
    const cfg = mysqlPipelineConfig('e3', f.name, f.tmp.dir + '/e3', `tables: [${f.name}.xat]\nsnapshot: never`);
    const c = await mysqlAdmin(f.name);
    try {
      await expectStop(
        cfg,
        async () => {
          await c.query(`XA START 'ok1'; INSERT INTO xat VALUES (1); XA END 'ok1'; XA PREPARE 'ok1'; XA COMMIT 'ok1'`);
          await waitUntil('the committed XA transaction in the log', async () => (await readAll(cfg.log, `e3.${f.name}.xat`)).some((r) => r.key?.id === 1));
          await c.query(`XA START 'bad1'; INSERT INTO xat VALUES (2); XA END 'bad1'; XA PREPARE 'bad1'; XA ROLLBACK 'bad1'`);
        },
        'MYSQL_XA_ROLLBACK',
        /rolled back .* after its prepared changes .* Re-snapshot/,
      );
    } finally {
      await c.end();
    }
    // The committed one is in the log; the rolled-back one may be too (it was prepared), which is
    // exactly why the pipeline stopped and says to re-snapshot.
    const ids = (await readAll(cfg.log, `e3.${f.name}.xat`)).filter((r) => r.value).map((r) => r.key.id);
    assert.equal(ids[0], 1);
    assert.ok(ids.every((id) => id === 1 || id === 2), `unexpected rows ${ids}`);
    // Restarting does not pass over it silently.
    await assert.rejects(runPipeline(cfg, { logger: quiet(), signal: AbortSignal.timeout(30_000) }), (e: any) => e.code === 'MYSQL_XA_ROLLBACK');
  });

  it('a session writing MINIMAL row images stops the pipeline with MYSQL_ROW_IMAGE', async () => {
    await f.q(`CREATE TABLE mini (id INT PRIMARY KEY, v INT, w INT); INSERT INTO mini VALUES (1, 1, 1)`);
    const cfg = mysqlPipelineConfig('e4', f.name, f.tmp.dir + '/e4', `tables: [${f.name}.mini]\nsnapshot: never`);
    const c = await mysqlAdmin(f.name);
    try {
      await expectStop(cfg, async () => void (await c.query(`SET SESSION binlog_row_image = MINIMAL; UPDATE mini SET v = 2 WHERE id = 1`)), 'MYSQL_ROW_IMAGE', /binlog_row_image=MINIMAL .*re-snapshot/);
    } finally {
      await c.end();
    }
  });

  it('statement-based DML on a captured table stops the pipeline with MYSQL_STATEMENT_FORMAT; on other tables it passes', async () => {
    await f.q(`CREATE TABLE stm (id INT PRIMARY KEY); CREATE TABLE other (id INT PRIMARY KEY)`);
    const cfg = mysqlPipelineConfig('e5', f.name, f.tmp.dir + '/e5', `tables: [${f.name}.stm]\nsnapshot: never`);
    const c = await mysqlAdmin(f.name);
    try {
      await expectStop(
        cfg,
        async () => {
          await c.query(`SET SESSION binlog_format = STATEMENT; INSERT INTO other VALUES (1)`);
          await c.query(`INSERT INTO stm VALUES (1)`);
        },
        'MYSQL_STATEMENT_FORMAT',
        /INSERT on a captured table .* binlog_format=STATEMENT or MIXED/,
      );
    } finally {
      await c.end();
    }
  });

  it('restarts by itself when the server kills its binlog connection, losing and repeating nothing', async () => {
    await f.q(`CREATE TABLE flaky (id INT PRIMARY KEY, v INT)`);
    const cfg = mysqlPipelineConfig('e6', f.name, f.tmp.dir + '/e6', `tables: [${f.name}.flaky]\nsnapshot: never`);
    const topic = `e6.${f.name}.flaky`;
    const killer = await mysqlAdmin();
    try {
      await runUntil(
        cfg,
        'all 300 rows',
        async () => (await readAll(cfg.log, topic)).length >= 300,
        async () => {
          for (let round = 0; round < 3; round++) {
            for (let i = 0; i < 100; i++) await f.q(`INSERT INTO flaky VALUES (?, ?)`, [round * 100 + i, round]);
            // The server drops the pipeline's binlog dump connection (as on a failover or a network cut).
            let dumps: { ID: number }[] = [];
            await waitUntil('the pipeline (re)connected for the binlog', async () => {
              [dumps] = (await killer.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`)) as any;
              return dumps.length >= 1;
            });
            for (const d of dumps) await killer.query(`KILL ${d.ID}`).catch(() => {});
            await new Promise((r) => setTimeout(r, 300));
          }
        },
      );
    } finally {
      await killer.end();
    }
    const recs = await readAll(cfg.log, topic);
    assert.equal(recs.length, 300, 'each row exactly once');
    assert.equal(new Set(recs.map((r) => r.key.id)).size, 300);
  });
});
