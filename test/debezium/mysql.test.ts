/**
 * Sluice's MySQL-source events from MariaDB against Debezium's own MySQL connector (harness.ts): the
 * same snapshot and the same binlog changes, read by both (each its own replica id), compared event
 * by event, byte for byte, with schemas enabled and disabled. The differences kept on purpose are
 * the `DIFFERENCES` below, each with why (docs/events.md lists them too).
 *
 * Debezium 3 reads MariaDB with its MariaDB connector (`connector` `mariadb`), which Maven Central
 * does not serve in a version that runs here beside the others; its MySQL connector reads MariaDB's
 * binlog the same way. The pipeline compared with schemas runs with `mariadbConnector: mysql`; the
 * one compared without runs with the default, `mariadb`, as Debezium 3 names MariaDB's events. That connector sees no transactions in MariaDB's
 * GTIDs (it knows MySQL's), so neither side writes transaction metadata here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { isStreaming, mysqlAdmin, quietLogger } from '../helpers/mysql.ts';
import { tempDir, waitUntil, logDirOf } from '../helpers/pipeline.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../helpers/targets.ts';
import { both, commonDifferences, compareEvents, readLog, startDebezium, type Difference, type Peer } from './harness.ts';

const PREFIX = 'dbzmy';

const SETUP = `
  CREATE TABLE types (
    id int PRIMARY KEY, ti tinyint, si smallint, mi mediumint, i int, bi bigint, ubi bigint unsigned, ui int unsigned, f float, d double, dec1 decimal(12,3),
    vc varchar(20), ch char(3), tx text, bl blob, vb varbinary(8), dt date, tm time(6), dtm datetime, dt3 datetime(3), dt6 datetime(6),
    ts timestamp NULL, ts3 timestamp(3) NULL, ts6 timestamp(6) NULL, j json, e enum('a','b','c'), st set('x','y'), yr year, b1 bit(1), b8 bit(8),
    req varchar(10) NOT NULL DEFAULT 'dflt', reqi int NOT NULL DEFAULT 42, optd varchar(10) DEFAULT 'od', reqnd int NOT NULL
  );
  -- The key is declared out of column order: (b, a).
  CREATE TABLE comp (a int, b varchar(10), v varchar(10) NOT NULL DEFAULT 'z', n int, PRIMARY KEY (b, a));
  CREATE TABLE stop (id int PRIMARY KEY);
  INSERT INTO types VALUES
    (1, 1, 2, 3, 4, 9223372036854775807, 5, 6, 1.5, 2.25, 1.5, 'snap', 'ab', 'text', X'0001ff', X'ab', '2024-01-02', '03:04:05.5', '2024-01-02 03:04:05', '2024-01-02 03:04:05.1', '2024-01-02 03:04:05.123456',
     '2024-01-02 03:04:05', '2024-01-02 03:04:05.1', '2024-01-02 03:04:05.1', '{"a": 1}', 'b', 'x,y', 2024, b'1', b'10100101', 'r', 1, 'o', 5),
    (2, -1, -2, -3, -4, -9223372036854775808, 18446744073709551615, 4294967295, 0.5, 0.1, -0.5, 'two', null, null, null, null, '1970-01-01', '00:00:00', '1970-01-01 00:00:00', null, null,
     '2024-01-02 03:04:05', '2024-01-02 03:04:05', '2024-01-02 03:04:05', null, null, null, null, null, null, 'r2', 2, null, 6);
  INSERT INTO comp VALUES (1, 'k', 'v', 1);
`;

const CHANGES = [
  `BEGIN;
   INSERT INTO types VALUES (3, 3, 3, 3, 3, 3, 9223372036854775808, 3, 3.25, 4.5, 12.345, 'three', 'xyz', 'tt', X'deadbeef', X'', '2000-02-29', '23:59:59.999999', '2024-06-30 12:00:00', '2024-06-30 12:00:00.12', '2024-06-30 12:00:00.000001',
     '2024-06-30 12:00:00', '2024-06-30 12:00:00.12', '2024-06-30 12:00:00.5', '[1, "x"]', 'c', '', 1999, b'0', b'1', 'req', 3, 'opt', 7);
   UPDATE types SET vc = 'updated', ts6 = '2024-01-02 03:04:05.12' WHERE id = 1;
   DELETE FROM types WHERE id = 2;
   COMMIT`,
  `UPDATE types SET id = 10 WHERE id = 3`,
  `UPDATE comp SET a = 2 WHERE a = 1`,
  `UPDATE comp SET v = 'w'`,
  `INSERT INTO comp (a, b) VALUES (7, 'x')`,
  `TRUNCATE comp`,
  `INSERT INTO types (id, ts, ts3, ts6, reqnd) VALUES (20, '2024-01-02 03:04:05', '2024-01-02 03:04:05', '2024-01-02 03:04:05', 1)`,
];

/** The differences kept on purpose (docs/events.md, "Differences from Debezium"). */
const DIFFERENCES: Difference[] = [
  ...commonDifferences('f|d'),
  {
    why: 'BIGINT UNSIGNED values of 2^63 and more are the true value in Sluice; Debezium (bigint.unsigned.handling.mode=long) wraps them to negative numbers',
    debezium: (s) => s.replace(/"ubi":(-\d+)/g, (_, v: string) => `"ubi":${(BigInt(v) + 2n ** 64n).toString()}`),
  },
  {
    why: "on MariaDB, source.gtid is the transaction's MariaDB GTID; Debezium's MySQL connector knows only MySQL's GTIDs and writes null (its MariaDB connector writes the GTID)",
    sluice: both(/"gtid":"\d+-\d+-\d+"/g, '"gtid":null'),
  },
  {
    why: "the binlog's table metadata carries no column defaults, so the MySQL source's Connect schemas have no `default` (Debezium takes them from the DDL it parses)",
    debezium: both(/"optional":(true|false),"default":("[^"]*"|-?\d+),"field"/g, '"optional":$1,"field"'),
  },
  {
    why: "snapshot rows carry their own connector's snapshot: when it was taken (ts_*) and its binlog position (file, pos)",
    debezium: snapshotSource,
    sluice: snapshotSource,
  },
];

function snapshotSource(s: string): string {
  if (!s.includes('"op":"r"')) return s;
  return s.replace(/"ts_ms":\d+,"snapshot"/, '"ts_ms":S,"snapshot"').replace(/"ts_us":\d+,"ts_ns":\d+,"table"/, '"ts_us":S,"ts_ns":S,"table"').replace(/"file":"[^"]+","pos":\d+,/, '"file":F,"pos":P,');
}

function sluiceYaml(name: string, db: string, dir: string, extra: string, top: string): string {
  return `name: ${name}
source:
  type: mysql
  connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${db} }
  topicPrefix: ${PREFIX}
${extra
  .split('\n')
  .filter(Boolean)
  .map((l) => '  ' + l)
  .join('\n')}
state: { dir: ${join(dir, 'state')} }
log: { dir: ${join(dir, 'log')}, partitions: 1 }
logging: { level: warn }
${top}
`;
}

describe('MySQL-source events (MariaDB) against Debezium', () => {
  const name = `sluice_dbz${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const tmp = tempDir('sluice-dbz-my-');
  const peers: Peer[] = [];
  let conn: Awaited<ReturnType<typeof mysqlAdmin>>;
  before(async () => {
    const admin = await mysqlAdmin();
    await admin.query(`CREATE DATABASE \`${name}\``);
    await admin.end();
    conn = await mysqlAdmin(name);
    await conn.query(SETUP);
  });
  after(async () => {
    for (const p of peers) p.stop();
    await conn?.query(`DROP DATABASE IF EXISTS \`${name}\``).catch(() => {});
    await conn?.end().catch(() => {});
    if (!process.env.SLUICE_TEST_KEEP) tmp.remove();
    else console.log('kept', tmp.dir);
  });

  it('writes what Debezium writes: snapshot, every operation, key changes, truncate, every common type', async () => {
    const dbzProps = (serverId: number, extra: Record<string, string>) => ({
      'connector.class': 'io.debezium.connector.mysql.MySqlConnector',
      'database.hostname': MYSQL_HOST,
      'database.port': String(MYSQL_PORT),
      'database.user': MYSQL_USER,
      'database.password': process.env.MYSQL_PASSWORD_TEST ?? '',
      'database.server.id': String(serverId),
      'topic.prefix': PREFIX,
      'database.include.list': name,
      'schema.history.internal': 'io.debezium.relational.history.MemorySchemaHistory',
      'include.schema.changes': 'false',
      'decimal.handling.mode': 'string',
      ...extra,
    });
    const id = 7000 + Math.floor(Math.random() * 900);
    const dbzAll = startDebezium(join(tmp.dir, 'dbz-all.jsonl'), `${PREFIX}.${name}.stop`, dbzProps(id, { 'skipped.operations': 'none' }));
    const dbzDefault = startDebezium(join(tmp.dir, 'dbz-default.jsonl'), `${PREFIX}.${name}.stop`, dbzProps(id + 1, {}));
    peers.push(dbzAll, dbzDefault);
    const cfgAll = parseConfig(sluiceYaml('dbzma', name, join(tmp.dir, 'a'), `serverId: ${id + 2}\nskippedOperations: []\nmariadbConnector: mysql`, 'serialization: { schemas: true }'), 'a.yaml', process.env);
    const cfgDefault = parseConfig(sluiceYaml('dbzmd', name, join(tmp.dir, 'd'), `serverId: ${id + 3}`, ''), 'd.yaml', process.env);
    const ac = new AbortController();
    const failures: unknown[] = [];
    const runs = [cfgAll, cfgDefault].map((c) => runPipeline(c, { signal: ac.signal, logger: quietLogger() }).catch((e) => failures.push(e)));
    const check = async (cond: () => boolean | Promise<boolean>) => {
      if (failures.length) throw failures[0];
      return cond();
    };
    try {
      const snapshotDone = (p: Peer) => p.records().some((r) => r.valuePlain?.includes('"snapshot":"last"'));
      await waitUntil('both Debezium connectors and both pipelines past their snapshots', () =>
        check(() => snapshotDone(dbzAll) && snapshotDone(dbzDefault) && isStreaming(cfgAll.state.dir) && isStreaming(cfgDefault.state.dir)),
      120_000);
      for (const sql of CHANGES) await conn.query(sql);
      await conn.query(`INSERT INTO stop VALUES (1)`);
      await Promise.all([dbzAll.done, dbzDefault.done]);
      for (const c of [cfgAll, cfgDefault]) {
        await waitUntil('Sluice wrote the stop row', () => check(async () => (await readLog(logDirOf(c), `${PREFIX}.${name}.stop`)).length > 0), 60_000);
      }
    } finally {
      ac.abort();
      await Promise.all(runs);
    }
    if (failures.length) throw failures[0];

    const all = dbzAll.records();
    const dflt = dbzDefault.records();
    assert.ok(all.some((r) => r.valuePlain?.includes('"op":"t"')), 'Debezium wrote a truncate when told not to skip it');
    assert.ok(!dflt.some((r) => r.valuePlain?.includes('"op":"t"')), "Debezium's default skips truncates");
    const withSchema = compareEvents(all, await readLog(logDirOf(cfgAll), PREFIX), DIFFERENCES, false);
    const dfltLog = await readLog(logDirOf(cfgDefault), PREFIX);
    assert.ok(dfltLog.every((r) => r.value === null || r.value.includes('"connector":"mariadb"')), 'by default MariaDB events say connector mariadb, as Debezium 3 does');
    const mariadbName: Difference = { why: "Debezium 3's MariaDB connector says `mariadb` (Sluice's default on MariaDB); the peer here is its MySQL connector", sluice: both(/"connector":"mariadb"/g, '"connector":"mysql"') };
    const plain = compareEvents(dflt, dfltLog, [...DIFFERENCES, mariadbName], true);
    assert.ok(withSchema.compared > 15 && plain.compared > 15, `compared ${withSchema.compared} and ${plain.compared} records`);
  });
});
