/**
 * MariaDB → embedded log, end to end against the machine's real server: consistent snapshot tied
 * to a binlog position, streaming of insert/update/delete/key change/truncate, ALTER TABLE between
 * rows, restarts resuming by GTID and by file/position with nothing lost or repeated, Debezium's
 * MySQL `source` fields, and the errors a user meets (missing table, purged binlog).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runPipeline } from '../../../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../../../src/log/open.ts';
import { mysqlPipelineConfig, mysqlPipelineYaml, quietLogger, runUntil, useMysqlDatabase } from '../../helpers/mysql.ts';
import { readAll, waitUntil, logDirOf } from '../../helpers/pipeline.ts';

async function rawValue(logDir: string, topic: string, partition: number, offset: number): Promise<string> {
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  try {
    return (await log.read(topic, partition, offset, 1 << 16)).records[0].value!.toString();
  } finally {
    await log.close();
  }
}

const quiet = quietLogger;

describe('mysql source → embedded log', () => {
  const f = useMysqlDatabase(`
    CREATE TABLE customers (
      customer_id INT PRIMARY KEY AUTO_INCREMENT, first_name VARCHAR(100) NOT NULL, email VARCHAR(255) UNIQUE,
      balance DECIMAL(15,2) DEFAULT 0.00, status ENUM('ACTIVE','INACTIVE','SUSPENDED'), born DATE,
      created_at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6), seen DATETIME(3), big BIGINT UNSIGNED, doc JSON);
    CREATE TABLE order_lines (order_id INT, line INT, qty INT, PRIMARY KEY (order_id, line));
    CREATE TABLE nokey (a INT, b VARCHAR(10));
    CREATE TABLE ignored (id INT PRIMARY KEY);
    INSERT INTO customers (first_name, email, balance, status, born, created_at, seen, big, doc)
      SELECT CONCAT('first', seq), CONCAT('c', seq, '@example.com'), seq * 1.5, 'ACTIVE', '1969-12-31', '2024-01-15 10:30:00.123456', '2024-01-15 10:30:00.250', 18446744073709551615 - seq, '{"a": 1}'
      FROM seq_1_to_300;
    INSERT INTO order_lines SELECT seq DIV 3, seq MOD 3, seq FROM seq_1_to_30;
  `);

  it('snapshots, streams every kind of change, and resumes after a stop (by GTID) with nothing lost or repeated', async () => {
    const tables = `tables: [${f.name}.customers, ${f.name}.order_lines, ${f.name}.nokey]\ntransactionMetadata: true`;
    const cfg = mysqlPipelineConfig('m1', f.name, f.tmp.dir, tables);
    const logDir = logDirOf(cfg);
    const count = async (pred: (r: any) => boolean) => (await readAll(logDir, 'm1.')).filter(pred).length;
    await runUntil(cfg, 'snapshot of 330 rows then streamed changes', async () => (await count((r) => r.value?.op === 't')) >= 3, async () => {
      await waitUntil('snapshot', async () => (await count((r) => r.value?.op === 'r')) === 330);
      await f.q(`INSERT INTO customers (customer_id, first_name, balance, big, seen) VALUES (1001, 'Ann', -12.5, 18446744073709551615, '2024-02-29 23:59:59.999')`);
      await f.q(`UPDATE customers SET email = 'ann@example.com', status = 'SUSPENDED' WHERE customer_id = 1001`);
      await f.q(`DELETE FROM customers WHERE customer_id = 2`);
      await f.q(`BEGIN; INSERT INTO nokey VALUES (1, 'x'); UPDATE order_lines SET qty = 99 WHERE order_id = 1 AND line = 1; INSERT INTO ignored VALUES (1); COMMIT`);
      await f.q(`UPDATE order_lines SET line = 7 WHERE order_id = 2 AND line = 0`);
      await f.q(`TRUNCATE TABLE nokey`);
    });

    const recs = await readAll(logDir, 'm1.');
    assert.equal(recs.filter((r) => r.topic.endsWith('.ignored')).length, 0, 'a table not listed is not captured');
    const cust = recs.filter((r) => r.topic === `m1.${f.name}.customers`);
    const snap = cust.filter((r) => r.value?.op === 'r');
    assert.equal(snap.length, 300);
    const s1 = snap.find((r) => r.key.customer_id === 1)!;
    assert.deepEqual(
      { ...s1.value.after },
      { customer_id: 1, first_name: 'first1', email: 'c1@example.com', balance: '1.50', status: 'ACTIVE', born: -1, created_at: '2024-01-15T10:30:00.123456Z', seen: 1705314600250, big: s1.value.after.big, doc: '{"a": 1}' },
    );
    assert.equal(s1.value.source.connector, 'mariadb', 'a MariaDB server: connector mariadb, as Debezium 3 names it');
    assert.equal(s1.value.source.db, f.name);
    assert.match(s1.value.source.file, /\.\d+$/);
    const marks = recs.filter((r) => r.value?.op === 'r').map((r) => r.value.source.snapshot);
    assert.deepEqual(marks.filter((m: string) => m !== 'true').sort(), ['first', 'first_in_data_collection', 'last', 'last_in_data_collection']);

    const ins = cust.find((r) => r.value?.op === 'c')!;
    assert.deepEqual(ins.key, { customer_id: 1001 });
    assert.equal(ins.value.after.balance, '-12.50');
    // BIGINT UNSIGNED stays exact in the bytes (JSON.parse would round it).
    assert.match(await rawValue(logDir, `m1.${f.name}.customers`, ins.partition, ins.offset), /"big":18446744073709551615,/);
    assert.match(await rawValue(logDir, `m1.${f.name}.customers`, s1.partition, s1.offset), /"big":18446744073709551614,/);
    assert.equal(ins.value.after.seen, Date.UTC(2024, 1, 29, 23, 59, 59, 999));
    // Debezium MySQL source block: server_id, gtid, file, pos, row, thread.
    const src = ins.value.source;
    assert.deepEqual(Object.keys(src), ['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'ts_us', 'ts_ns', 'table', 'server_id', 'gtid', 'file', 'pos', 'row', 'thread', 'query']);
    assert.equal(src.snapshot, 'false');
    assert.equal(src.table, 'customers');
    assert.equal(src.server_id, 1);
    assert.match(src.gtid, /^\d+-1-\d+$/);
    assert.ok(src.pos > 4);
    assert.equal(src.row, 0);
    // MariaDB logs no BEGIN query (whose thread id MySQL's events carry) for transactions with a GTID.
    assert.equal(src.thread, null);
    assert.ok(Math.abs(src.ts_ms - Date.now()) < 120_000 && src.ts_ms % 1000 === 0, 'binlog time has second precision');
    const upd = cust.find((r) => r.value?.op === 'u')!;
    assert.equal(upd.value.before.email, null);
    assert.equal(upd.value.after.email, 'ann@example.com');
    assert.equal(upd.value.after.status, 'SUSPENDED');
    const del = cust.filter((r) => r.key?.customer_id === 2 && r.value?.op !== 'r');
    assert.equal(del.length, 2, 'a delete event then a tombstone');
    assert.equal(del[0].value.op, 'd');
    assert.equal(del[0].value.before.first_name, 'first2');
    assert.equal(del[1].value, null);

    // One transaction across tables: one transaction id, orders counted per table; the table not
    // captured is not counted.
    const lines = recs.filter((r) => r.topic === `m1.${f.name}.order_lines` && r.value && r.value.op !== 'r');
    const q99 = lines.find((r) => r.value.after?.qty === 99)!;
    const nk = recs.find((r) => r.topic === `m1.${f.name}.nokey` && r.value?.op === 'c')!;
    assert.equal(q99.value.transaction.id, nk.value.transaction.id);
    assert.equal(nk.key, null, 'a table without a primary key has null keys');
    const end = recs.find((r) => r.topic === 'm1.transaction' && r.value.status === 'END' && r.value.id === nk.value.transaction.id)!;
    assert.equal(end.value.event_count, 2);
    // A primary-key change: delete of the old key (+ tombstone) and create of the new one.
    const moved = lines.filter((r) => r.value.source.snapshot === 'false' && (r.key.line === 7 || (r.key.order_id === 2 && r.key.line === 0)));
    assert.deepEqual(moved.map((r) => [r.value.op, r.key.line]), [['d', 0], ['c', 7]]);
    // TRUNCATE → a truncate event on every partition.
    const trunc = recs.filter((r) => r.topic === `m1.${f.name}.nokey` && r.value?.op === 't');
    assert.deepEqual(trunc.map((r) => r.partition).sort(), [0, 1, 2]);

    // Changes while stopped arrive on restart (resuming by GTID); nothing earlier is repeated.
    await f.q(`UPDATE customers SET first_name = 'while-stopped' WHERE customer_id = 10`);
    const before = recs.length;
    // (the change plus its BEGIN/END records; a repeat of anything earlier would make more)
    await runUntil(cfg, 'the change made while stopped', async () => (await readAll(logDir, 'm1.')).length >= before + 3);
    const again = await readAll(logDir, 'm1.');
    const key = (r: { topic: string; partition: number; offset: number }) => `${r.topic}/${r.partition}/${r.offset}`;
    const old = new Set(recs.map(key));
    const added = again.filter((r) => !old.has(key(r))).map((r) => (r.topic === 'm1.transaction' ? r.value.status : `${r.value.op}:${r.value.after.first_name}`));
    assert.deepEqual(added, ['u:while-stopped', 'BEGIN', 'END'], 'exactly the one new change (and its transaction boundaries); nothing repeated');
    assert.equal(again.length, before + 3);
  });

  it('resumes by file and position (gtid: off), and rows before and after an ALTER TABLE keep their own columns', async () => {
    await f.q(`CREATE TABLE evolving (id INT PRIMARY KEY, a VARCHAR(10))`);
    const cfg = mysqlPipelineConfig('m2', f.name, f.tmp.dir + '/m2', `tables: [${f.name}.evolving]\ngtid: off\nsnapshot: never`);
    const logDir = logDirOf(cfg);
    const evs = async () => (await readAll(logDir, 'm2.')).filter((r) => r.value);
    await runUntil(cfg, 'first row', async () => (await evs()).length === 1, async () => {
      await waitUntil('the pipeline started', async () => existsSync(cfg.state.dir + '/status.json'));
      await new Promise((r) => setTimeout(r, 500));
      await f.q(`INSERT INTO evolving VALUES (1, 'one')`);
    });
    // While stopped: a row, the ALTER, a row with the new column, a dropped column.
    await f.q(`INSERT INTO evolving VALUES (2, 'two')`);
    await f.q(`ALTER TABLE evolving ADD COLUMN b DECIMAL(5,1) DEFAULT 1.5`);
    await f.q(`INSERT INTO evolving VALUES (3, 'three', 3.3)`);
    await f.q(`ALTER TABLE evolving DROP COLUMN a`);
    await f.q(`INSERT INTO evolving VALUES (4, 4.4)`);
    await runUntil(cfg, 'rows 2-4', async () => (await evs()).length === 4);
    const rows = (await evs()).map((r) => r.value.after).sort((a, b) => a.id - b.id);
    assert.deepEqual(rows, [{ id: 1, a: 'one' }, { id: 2, a: 'two' }, { id: 3, a: 'three', b: '3.3' }, { id: 4, b: '4.4' }]);
    // Each shape is a schema record in the log, which sinks use to evolve their tables.
    const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
    try {
      const schemas = (await log.read('m2.__schemas', 0, 0, 1 << 20)).records;
      const cols = schemas.map((s) => JSON.parse(s.value!.toString()).columns.map((c: any) => `${c.name}:${c.sourceType}`).join(','));
      assert.deepEqual(cols, ['id:int,a:varchar(10)', 'id:int,a:varchar(10),b:decimal(5,1)', 'id:int,b:decimal(5,1)']);
    } finally {
      await log.close();
    }
  });

  it('sluice status shows the binlog position it stands at and the server\'s binlog', async () => {
    const dir = f.tmp.dir + '/m2';
    const cfgPath = join(dir, 'pipeline.yaml');
    writeFileSync(cfgPath, mysqlPipelineYaml('m2', f.name, dir, `tables: [${f.name}.evolving]\ngtid: off\nsnapshot: never`));
    const r = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--config', cfgPath], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /source: phase stream, binlog mariadb-bin\.\d+:\d+, gtid \d+-\d+-\d+/);
    assert.match(r.stdout, /binlog: server at mariadb-bin\.\d+:\d+, oldest kept mariadb-bin\.\d+\n/);
    assert.match(r.stdout, new RegExp(`m2\\.${f.name}\\.evolving`));
  });

  it('names a configured table the server does not have', async () => {
    const cfg = mysqlPipelineConfig('m3', f.name, f.tmp.dir + '/m3', `tables: [${f.name}.nosuch, ${f.name}.customers]`);
    await assert.rejects(runPipeline(cfg, { logger: quiet() }), (e: any) => e.code === 'MYSQL_TABLE_MISSING' && e.message.includes(`${f.name}.nosuch`) && !e.message.includes('customers'));
  });

  it('stops with MYSQL_BINLOG_GONE when the binlog it resumes from was purged', async () => {
    await f.q(`CREATE TABLE purged (id INT PRIMARY KEY)`);
    const cfg = mysqlPipelineConfig('m4', f.name, f.tmp.dir + '/m4', `tables: [${f.name}.purged]\ngtid: off`);
    await runUntil(cfg, 'snapshot committed', async () => existsSync(cfg.state.dir + '/status.json') && JSON.parse(readFileSync(cfg.state.dir + '/status.json', 'utf8')).source?.phase === 'stream');
    const resumeFile = JSON.parse(readFileSync(cfg.state.dir + '/status.json', 'utf8')).source.position.split(':')[0];
    await f.q(`FLUSH BINARY LOGS`);
    const [[cur]] = (await f.conn.query('SHOW MASTER STATUS')) as any;
    // The server keeps a file while a (just closed) dump connection still reads it: retry.
    await waitUntil(`${resumeFile} purged`, async () => {
      await f.q(`PURGE BINARY LOGS TO '${cur.File}'`);
      return !((await f.q('SHOW BINARY LOGS')) as any[]).some((l) => l.Log_name === resumeFile);
    });
    await assert.rejects(runPipeline(cfg, { logger: quiet(), signal: AbortSignal.timeout(30_000) }), (e: any) => e.code === 'MYSQL_BINLOG_GONE' && e.message.includes(resumeFile) && /move .* away/.test(e.message));
  });
});
