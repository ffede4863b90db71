/**
 * Sluice's PostgreSQL events against Debezium's own PostgreSQL connector (harness.ts): the same
 * snapshot and the same streamed changes, read by both from one database through their own slots,
 * compared event by event, byte for byte, with schemas enabled and disabled. The differences kept
 * on purpose are the `DIFFERENCES` below, each with why (docs/events.md lists them too).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { quietLogger, isStreaming } from '../helpers/mysql.ts';
import { tempDir, waitUntil, logDirOf } from '../helpers/pipeline.ts';
import { both, commonDifferences, compareEvents, readLog, startDebezium, type Difference, type Peer } from './harness.ts';

const PREFIX = 'dbzpg';
// In the order both read them in their snapshots (Debezium: as listed; Sluice: by name).
const TABLES = ['public.comp', 'public.stop', 'public.types'];

const SETUP = `
  CREATE TABLE types (
    id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f4 real, f8 float8, num numeric(12,3), t text, vc varchar(20), ch char(3), by bytea,
    d date, tm time, ts timestamp(6), tstz timestamptz, tstz3 timestamptz(3), ttz timetz, j json, jb jsonb, u uuid,
    req text NOT NULL DEFAULT 'dflt', reqi int NOT NULL DEFAULT 42, optd text DEFAULT 'od', reqnd int NOT NULL
  );
  -- The key is declared out of column order: (b, a).
  CREATE TABLE comp (a int, b text, v text NOT NULL DEFAULT 'z', n int, PRIMARY KEY (b, a));
  CREATE TABLE stop (id int PRIMARY KEY);
  INSERT INTO types VALUES
    (1, true, 1, 2, 9223372036854775807, 1.5, 2.25, 1.5, 'snap', 'v', 'ab', '\\x0001ff', '2024-01-02', '03:04:05.5', '2024-01-02 03:04:05.1', '2024-01-02 03:04:05.100+00', '2024-01-02 03:04:05.1+00', '03:04:05.5+00', '{"a": 1}', '{"b": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'r', 1, 'o', 5),
    (2, false, -1, -2, -9223372036854775808, 0.1, 0.1, -0.5, 'two', null, null, null, '1970-01-01', '00:00:00', '2024-01-02 03:04:05', '2024-01-02 03:04:05+00', '2024-01-02 03:04:05+00', '03:04:05+00', null, null, null, 'r2', 2, null, 6);
  INSERT INTO types (id, reqnd) VALUES (5, 0);
  INSERT INTO comp VALUES (1, 'k', 'v', 1);
`;

/** Streamed changes: every operation, a key change (simple and composite), transaction metadata, timestamps with and without fractions. */
const CHANGES = [
  `BEGIN;
   INSERT INTO types VALUES (3, true, 3, 4, 5, 3.25, 4.5, 12.345, 'three', 'vc', 'xyz', '\\xdeadbeef', '2000-02-29', '23:59:59.999999', '2024-06-30 12:00:00.000001', '2024-06-30 12:00:00.123456+02', '2024-06-30 12:00:00.12+02', '23:00:00.25-02', '[1, "x"]', '{"k": null}', '00000000-0000-0000-0000-000000000000', 'req', 3, 'opt', 7);
   UPDATE types SET t = 'updated', tstz = '2024-01-02 03:04:05.120+00' WHERE id = 1;
   DELETE FROM types WHERE id = 2;
   COMMIT`,
  `UPDATE types SET id = 10 WHERE id = 3`,
  `UPDATE comp SET a = 2 WHERE a = 1`,
  `UPDATE comp SET v = 'w'`,
  `INSERT INTO comp (a, b) VALUES (7, 'x')`,
  `DELETE FROM types WHERE id = 5`,
  `TRUNCATE comp`,
  `INSERT INTO types (id, tstz, ts, reqnd) VALUES (20, '2024-01-02 03:04:05+00', '2024-01-02 03:04:05', 1), (21, '2024-01-02 03:04:05.000001+00', '2024-01-02 03:04:05.5', 2)`,
];

/** The differences kept on purpose (docs/events.md, "Differences from Debezium"). */
const DIFFERENCES: Difference[] = [
  ...commonDifferences('f4|f8'),
  {
    why: "a transaction's id is `<txId>:<commit LSN>` on all its events and its BEGIN and END records, so they can be grouped by it; Debezium's PostgreSQL connector names each event, the BEGIN and the END by its own LSN (`<txId>:<LSN>`, three different ids for one transaction)",
    debezium: both(/"id":"(\d+):\d+"/g, '"id":"$1:L"'),
    sluice: both(/"id":"(\d+):\d+"/g, '"id":"$1:L"'),
  },
  {
    why: "snapshot rows carry their own connector's snapshot: when it was taken (ts_*), its transaction (txId) and WAL position (lsn, sequence); both fill every one of them",
    debezium: snapshotSource,
    sluice: snapshotSource,
  },
];

function snapshotSource(s: string): string {
  if (!s.includes('"op":"r"')) return s;
  return s
    .replace(/"ts_ms":\d+,"snapshot"/, '"ts_ms":S,"snapshot"')
    .replace(/"sequence":"\[null,\\"\d+\\"\]","ts_us":\d+,"ts_ns":\d+/, '"sequence":"[null,\\"L\\"]","ts_us":S,"ts_ns":S')
    .replace(/"txId":\d+,"lsn":\d+,/, '"txId":X,"lsn":L,');
}

function sluiceYaml(name: string, db: string, dir: string, extra: string, top: string): string {
  return `name: ${name}
source:
  type: postgres
  connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${db} }
  slot: ${name}_${db.slice(-6)}
  topicPrefix: ${PREFIX}
  tables: [${TABLES.join(', ')}]
  transactionMetadata: true
  statusIntervalMs: 500
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

describe('PostgreSQL events against Debezium', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const tmp = tempDir('sluice-dbz-pg-');
  const peers: Peer[] = [];
  before(async () => {
    db = await freshDatabase();
    await db.client.query(SETUP);
    await db.client.query(`CREATE TABLE sluice_heartbeat (id int PRIMARY KEY, ts timestamptz)`);
  });
  after(async () => {
    for (const p of peers) p.stop();
    await db?.drop();
    if (!process.env.SLUICE_TEST_KEEP) tmp.remove();
    else console.log('kept', tmp.dir);
  });

  it('writes what Debezium writes: snapshot, every operation, key changes, truncate, transaction metadata, every common type', async () => {
    const dbzProps = (slot: string, extra: Record<string, string>) => ({
      'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
      'database.hostname': PG_HOST,
      'database.port': String(PG_PORT),
      'database.user': PG_USER,
      'database.password': '',
      'database.dbname': db.name,
      'topic.prefix': PREFIX,
      'plugin.name': 'pgoutput',
      'slot.name': slot,
      'publication.name': slot,
      'publication.autocreate.mode': 'filtered',
      'table.include.list': TABLES.join(','),
      'decimal.handling.mode': 'string',
      'provide.transaction.metadata': 'true',
      ...extra,
    });
    // Debezium as configured for the comparison (truncates not skipped), and with its defaults.
    const dbzAll = startDebezium(join(tmp.dir, 'dbz-all.jsonl'), `${PREFIX}.public.stop`, dbzProps(`peera_${db.name.slice(-6)}`, { 'skipped.operations': 'none' }));
    const dbzDefault = startDebezium(join(tmp.dir, 'dbz-default.jsonl'), `${PREFIX}.public.stop`, dbzProps(`peerd_${db.name.slice(-6)}`, {}));
    peers.push(dbzAll, dbzDefault);
    // Sluice alike: with the schema part and truncates; without it and with the defaults. Its
    // heartbeats run an action query on a table outside the publications, so that Debezium's slot
    // sees no logical messages of Sluice's.
    const hb = `heartbeatIntervalMs: 300\nheartbeatActionQuery: "INSERT INTO sluice_heartbeat VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET ts = now()"`;
    const cfgAll = parseConfig(sluiceYaml('dbza', db.name, join(tmp.dir, 'a'), `skippedOperations: []\n${hb}`, 'serialization: { schemas: true }'), 'a.yaml', process.env);
    const cfgDefault = parseConfig(sluiceYaml('dbzd', db.name, join(tmp.dir, 'd'), hb, ''), 'd.yaml', process.env);
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
      for (const sql of CHANGES) await db.client.query(sql);
      // Heartbeats of the action query ran meanwhile and moved the slots of Sluice.
      await db.client.query(`INSERT INTO stop VALUES (1)`);
      await Promise.all([dbzAll.done, dbzDefault.done]);
      for (const c of [cfgAll, cfgDefault]) {
        await waitUntil('Sluice wrote the stop row', () => check(async () => (await readLog(logDirOf(c), `${PREFIX}.public.stop`)).length > 0), 60_000);
      }
      const hbRow = await db.client.query(`SELECT count(*)::int AS n FROM sluice_heartbeat`);
      assert.equal(hbRow.rows[0].n, 1, 'the heartbeat action query ran');
    } finally {
      ac.abort();
      await Promise.all(runs);
    }
    if (failures.length) throw failures[0];

    const all = dbzAll.records();
    const dflt = dbzDefault.records();
    assert.ok(all.some((r) => r.valuePlain?.includes('"op":"t"')), 'Debezium wrote a truncate when told not to skip it');
    assert.ok(!dflt.some((r) => r.valuePlain?.includes('"op":"t"')), "Debezium's default skips truncates");
    assert.ok(!all.some((r) => r.topic.endsWith('.message')), "Debezium's slot saw no logical message of Sluice's heartbeats");
    // The Debezium peer stops at the stop row; the END record of the stop row's transaction may
    // come after it (it did in a CI rehearsal), and then only Sluice's log has it.
    const stopEnd = (v: string | null) => v !== null && v.includes('"status":"END"') && v.includes('"data_collection":"public.stop"');
    const untilStop = (peer: typeof all, recs: Awaited<ReturnType<typeof readLog>>) =>
      peer.some((r) => r.topic.endsWith('.transaction') && stopEnd(r.valuePlain)) ? recs : recs.filter((r) => !(r.topic.endsWith('.transaction') && stopEnd(r.value)));
    const withSchema = compareEvents(all, untilStop(all, await readLog(logDirOf(cfgAll), PREFIX)), DIFFERENCES, false);
    const plain = compareEvents(dflt, untilStop(dflt, await readLog(logDirOf(cfgDefault), PREFIX)), DIFFERENCES, true);
    assert.ok(withSchema.compared > 20 && plain.compared > 20, `compared ${withSchema.compared} and ${plain.compared} records`);
  });

  it('with heartbeatActionQuery, an idle slot moves on though the heartbeats reach no slot (a table outside the publication)', async () => {
    await db.client.query(`CREATE TABLE idle (id int PRIMARY KEY); CREATE TABLE elsewhere (x text)`);
    const hb = `heartbeatIntervalMs: 200\nheartbeatActionQuery: "INSERT INTO sluice_heartbeat VALUES (2, now()) ON CONFLICT (id) DO UPDATE SET ts = now()"\nsnapshot: never`;
    const cfg = parseConfig(sluiceYaml('hbq', db.name, join(tmp.dir, 'hbq'), hb, '').replace(`tables: [${TABLES.join(', ')}]`, 'tables: [public.idle]'), 'h.yaml', process.env);
    const ac = new AbortController();
    let failed: unknown = null;
    const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() }).catch((e) => (failed = e));
    try {
      const slot = cfg.source?.type === 'postgres' ? cfg.source.slot : '';
      await waitUntil('the slot active', async () => (await db.client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot])).rowCount === 1);
      // WAL that no publication of the slot covers: without confirming keepalive positions, the slot would stay behind it.
      await db.client.query(`INSERT INTO elsewhere SELECT repeat('x', 100) FROM generate_series(1, 2000)`);
      const target = (await db.client.query(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0].l;
      await waitUntil('confirmed_flush_lsn past the WAL written', async () => {
        if (failed) throw failed;
        const r = await db.client.query(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $2`, [target, slot]);
        return r.rows[0]?.ok === true;
      }, 30_000);
      await waitUntil('the action query ran', async () => (await db.client.query(`SELECT 1 FROM sluice_heartbeat WHERE id = 2`)).rowCount === 1, 10_000);
      assert.equal((await readLog(logDirOf(cfg), PREFIX)).length, 0, 'and wrote no event');
    } finally {
      ac.abort();
      await run;
    }
    if (failed) throw failed;
  });
});
