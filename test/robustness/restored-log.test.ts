/**
 * Restoring an older copy of the log directory (what a LOG_CORRUPT message may lead an operator to
 * do): the PostgreSQL source finds its slot confirmed past the log's checkpoint and refuses with
 * PG_LOG_BEHIND_SLOT and the way back, instead of silently streaming from the slot's later
 * position; the MySQL source, which keeps no position on the server, re-reads the binlog from
 * the log's position while the server still has it (every change once), and refuses with
 * MYSQL_BINLOG_GONE when that binlog was purged.
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { PipelineConfig } from '../../src/config/types.ts';
import { formatLsn } from '../../src/core/lsn.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { decodeCheckpoint as decodeMysql, encodeCheckpoint as encodeMysql } from '../../src/sources/mysql/position.ts';
import { decodeCheckpoint as decodePg } from '../../src/sources/postgres/position.ts';
import { mysqlAdmin, mysqlPipelineConfig, quietLogger, useMysqlDatabase } from '../helpers/mysql.ts';
import { pipelineConfig, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

/** Runs the pipeline in this process until `until` holds, then stops it. */
async function runUntil(cfg: PipelineConfig, what: string, until: () => Promise<boolean>): Promise<void> {
  const ac = new AbortController();
  let failed: unknown = null;
  const run = runPipeline(cfg, { logger: quietLogger(), signal: ac.signal }).catch((e) => (failed = e));
  try {
    await waitUntil(what, async () => {
      if (failed) throw failed;
      return until();
    }, 90_000);
  } finally {
    ac.abort();
    await run;
  }
  if (failed) throw failed;
}

/** Runs the pipeline expecting it to fail by itself within `ms`; returns the error. */
async function runExpectingFailure(cfg: PipelineConfig, ms = 60_000): Promise<Error & { code?: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    await runPipeline(cfg, { logger: quietLogger(), signal: ac.signal });
  } catch (e) {
    return e as Error & { code?: string };
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`the pipeline ran for ${ms} ms without refusing the restored log`);
}

async function checkpointOf(logDir: string, producer: string): Promise<string> {
  const log = await openLog(embeddedLogAt(logDir));
  try {
    const { producer: p, checkpoint } = await log.openProducer(producer);
    await p.close();
    return checkpoint!;
  } finally {
    await log.close();
  }
}

/** Replaces the source's checkpoint in a (stopped) log: a commit without records. */
async function setCheckpoint(logDir: string, producer: string, checkpoint: string): Promise<void> {
  const log = await openLog(embeddedLogAt(logDir));
  try {
    const { producer: p } = await log.openProducer(producer);
    await p.commit(checkpoint);
    await p.close();
  } finally {
    await log.close();
  }
}

const dataEvents = async (logDir: string, prefix: string) => (await readAll(logDir, prefix)).filter((r) => r.value && r.value.op !== 't');

describe('a restored older log directory: PostgreSQL', () => {
  const f = useDatabase(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g`);

  it('refuses with PG_LOG_BEHIND_SLOT when the slot was confirmed past the restored log, and runs again from the newest copy', async () => {
    const cfg = pipelineConfig('restored', f.db.name, f.tmp.dir);
    const logDir = join(f.tmp.dir, 'log');
    const backup = join(f.tmp.dir, 'log-backup');
    const newest = join(f.tmp.dir, 'log-newest');
    const slot = cfg.source?.type === 'postgres' ? cfg.source.slot : '';
    const confirmed = async () => (await f.db.client.query(`SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0]?.l as string | undefined;
    await runUntil(cfg, 'the snapshot and 5 inserts in the log', async () => {
      if ((await dataEvents(logDir, 'restored.')).length === 20) await f.db.client.query(`INSERT INTO t SELECT g, 'w' || g FROM generate_series(21, 25) g`);
      return (await dataEvents(logDir, 'restored.')).length === 25;
    });
    cpSync(logDir, backup, { recursive: true });
    const old = decodePg(await checkpointOf(backup, 'source:restored'));
    await runUntil(cfg, 'later changes in the log and the slot confirmed past the copy', async () => {
      if ((await dataEvents(logDir, 'restored.')).length === 25) await f.db.client.query(`INSERT INTO t SELECT g, 'x' || g FROM generate_series(26, 40) g; UPDATE t SET v = 'u' WHERE id = 1`);
      const c = await confirmed();
      return (await dataEvents(logDir, 'restored.')).length === 41 && c !== undefined && c !== formatLsn(old.ack);
    });
    cpSync(logDir, newest, { recursive: true });
    const slotAt = (await confirmed())!;
    // The operator restores the older copy.
    rmSync(logDir, { recursive: true, force: true });
    cpSync(backup, logDir, { recursive: true });
    const e = await runExpectingFailure(cfg);
    assert.equal(e.code, 'PG_LOG_BEHIND_SLOT', String(e));
    assert.match(e.message, new RegExp(`the log's checkpoint is at ${formatLsn(old.ack).replace('/', '\\/')} but replication slot "${slot}" was already confirmed up to ${slotAt.replace('/', '\\/')}`));
    assert.match(e.message, /Put back the newest copy of the log directory if you have it; otherwise start over with a new snapshot: move the log directory .* away, and run again/);
    assert.equal((await dataEvents(logDir, 'restored.')).length, 25, 'nothing was added to the restored log');
    // The newest copy works: its checkpoint is where the slot is; nothing lost, nothing twice.
    rmSync(logDir, { recursive: true, force: true });
    cpSync(newest, logDir, { recursive: true });
    await runUntil(cfg, 'a change after the newest copy', async () => {
      if ((await dataEvents(logDir, 'restored.')).length === 41) await f.db.client.query(`INSERT INTO t VALUES (41, 'y')`);
      return (await dataEvents(logDir, 'restored.')).length === 42;
    });
    const ids = (await dataEvents(logDir, 'restored.')).map((r) => `${r.value.op}${r.value.after.id}`);
    assert.equal(new Set(ids).size, 42, 'each change once');
  });
});

describe('a restored older log directory: MySQL/MariaDB', () => {
  const m = useMysqlDatabase(`CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')`);

  it('re-reads the binlog from the restored log\'s position (each change once), and refuses with MYSQL_BINLOG_GONE when that binlog was purged', async () => {
    const cfg = mysqlPipelineConfig('myrestored', m.name, m.tmp.dir);
    const logDir = join(m.tmp.dir, 'log');
    const backup = join(m.tmp.dir, 'log-backup');
    await runUntil(cfg, 'the snapshot and 2 inserts in the log', async () => {
      if ((await dataEvents(logDir, 'myrestored.')).length === 3) await m.q(`INSERT INTO t VALUES (4, 'd'), (5, 'e')`);
      return (await dataEvents(logDir, 'myrestored.')).length === 5;
    });
    cpSync(logDir, backup, { recursive: true });
    await runUntil(cfg, 'later changes in the log', async () => {
      if ((await dataEvents(logDir, 'myrestored.')).length === 5) await m.q(`INSERT INTO t VALUES (6, 'f'), (7, 'g'); UPDATE t SET v = 'u' WHERE id = 1; DELETE FROM t WHERE id = 2`);
      return (await dataEvents(logDir, 'myrestored.')).length === 9;
    });
    const want = (await dataEvents(logDir, 'myrestored.')).map((r) => `${r.value.op}:${JSON.stringify(r.value.after ?? r.value.before)}`).sort();
    rmSync(logDir, { recursive: true, force: true });
    cpSync(backup, logDir, { recursive: true });
    await runUntil(cfg, 'the changes after the copy read again', async () => (await dataEvents(logDir, 'myrestored.')).length >= 9);
    const got = (await dataEvents(logDir, 'myrestored.')).map((r) => `${r.value.op}:${JSON.stringify(r.value.after ?? r.value.before)}`).sort();
    assert.deepEqual(got, want, 'the restored log holds every change once');

    // The binlog of the restored position purged: the server's oldest binlog is after it. The
    // restored checkpoint names a file before the oldest one the server keeps, by file and by
    // GTID. A fresh server still has its first binlog: then the files before the current one are
    // purged (tests run one file at a time, so no other pipeline reads them). The server keeps a
    // file a binlog dump thread still reads, and the dump thread of a client killed earlier (a
    // kill -9 test's pipeline, Debezium's connector) lingers until the server next writes to it:
    // those are ended first.
    const admin = await mysqlAdmin();
    let [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
    let warnings = '';
    // A killed dump thread ends when it next notices (PURGE silently keeps a file one still reads):
    // kill, wait until none is left, purge; a few times over.
    for (let attempt = 0; attempt < 10 && /\.0*1$/.test(logs[0].Log_name); attempt++) {
      const [dumps] = (await admin.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`)) as unknown as [{ ID: number }[]];
      for (const d of dumps) await admin.query(`KILL ${d.ID}`).catch(() => {});
      await admin.query('FLUSH BINARY LOGS');
      const started = Date.now();
      while (Date.now() - started < 5000) {
        const [left] = (await admin.query(`SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`)) as unknown as [{ n: number }[]];
        if (Number(left[0].n) === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
      await admin.query(`PURGE BINARY LOGS TO '${logs[logs.length - 1].Log_name}'`);
      warnings = JSON.stringify((await admin.query('SHOW WARNINGS'))[0]);
      [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
      if (/\.0*1$/.test(logs[0].Log_name)) await new Promise((r) => setTimeout(r, 500));
    }
    await admin.end();
    const oldest = logs[0].Log_name;
    const num = Number(/\.(\d+)$/.exec(oldest)![1]);
    assert.ok(num > 1, `the server keeps its first binlog ${oldest}: no purged file to name (PURGE said: ${warnings})`);
    const purged = oldest.replace(/\d+$/, String(num - 1).padStart(6, '0'));
    for (const gtid of ['', '0-1-1']) {
      rmSync(logDir, { recursive: true, force: true });
      cpSync(backup, logDir, { recursive: true });
      const c = decodeMysql(await checkpointOf(logDir, 'source:myrestored'));
      await setCheckpoint(logDir, 'source:myrestored', encodeMysql({ ...c, file: purged, pos: 4, gtid }));
      const e = await runExpectingFailure(cfg);
      assert.equal(e.code, 'MYSQL_BINLOG_GONE', String(e));
      assert.match(e.message, gtid ? /cannot send the binlog from GTID set 0-1-1/ : new RegExp(`the binlog file ${purged.replace('.', '\\.')} this pipeline resumes from is no longer on the server`));
      assert.match(e.message, /take a new snapshot|to take a new snapshot/);
    }
  });
});
