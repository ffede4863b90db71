/**
 * Sluice → Kafka → Debezium's JDBC sink connector: `sluice run` captures a PostgreSQL database into
 * the Kafka broker (log.backend kafka, `serialization.schemas: true`: Kafka Connect JsonConverter's
 * form with schemas), and Debezium's own JDBC sink (io.debezium:debezium-connector-jdbc, in Kafka
 * Connect standalone from scripts/kafka-connect.sh) consumes those topics into a fresh PostgreSQL
 * database: upserts by the record key, deletes from delete events and tombstones, tables created and
 * evolved by the sink itself. Each target table must equal its source table: row count and, column
 * by column, an order-independent checksum computed by SQL on both sides, after a snapshot, inserts,
 * updates, key changes and deletes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { BROKER, connectVersions, prepareConnect, startConnect, taskErrors, type Worker } from './kafka-connect.ts';

/** Kafka topics of this run start with it (the broker is shared and keeps its data). */
const PREFIX = `js${randomBytes(3).toString('hex')}.`;
const NAME = 'src';

/** The tables and their columns as text (the same SQL on source and target). */
const TABLES: Record<string, string[]> = {
  items: ['id', 'big', 'amount', 'name', 'code', 'flag', 'created', 'at', 'day', 'uid', 'f8', 'small'],
  pairs: ['a', 'b', 'qty', 'note'],
};

const SETUP = `
  CREATE TABLE items (
    id int PRIMARY KEY, big bigint, amount numeric(12,3), name text, code varchar(20), flag boolean,
    created timestamp, at timestamptz, day date, uid uuid, f8 double precision, small smallint
  );
  -- A composite key declared out of column order.
  CREATE TABLE pairs (a int, b varchar(10), qty int NOT NULL, note text, PRIMARY KEY (b, a));
  INSERT INTO items SELECT g, g * 1000000000000, g * 1.125, 'name ' || g, 'c' || g, g % 2 = 0,
    '2024-01-02 03:04:05.123456'::timestamp + g * interval '1 hour', '2024-01-02 03:04:05.5+02'::timestamptz + g * interval '1 day',
    '2024-01-02'::date + g, md5(g::text)::uuid, g / 3.0, g
    FROM generate_series(1, 200) g;
  INSERT INTO items (id) VALUES (1000);  -- every other column NULL
  INSERT INTO pairs SELECT g, 'k' || (g % 7), g, 'n' FROM generate_series(1, 50) g;
`;

const CHANGES = [
  `INSERT INTO items VALUES (201, -9223372036854775808, -12345678.5, 'ünï ''quoted'' "x"', 'new', true, '1999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '0001-01-01', '00000000-0000-0000-0000-000000000001', -0.0001, -32768)`,
  `INSERT INTO items VALUES (202, 9223372036854775807, 999999999.999, '', '', false, '2038-01-19 03:14:08', '2262-04-11 23:47:16.854775+00', '9999-12-31', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 1e300, 32767)`,
  `UPDATE items SET name = 'updated ' || id, amount = amount + 1, flag = NOT flag WHERE id % 10 = 0`,
  `UPDATE items SET created = NULL, at = NULL, uid = NULL WHERE id BETWEEN 11 AND 15`,
  `DELETE FROM items WHERE id % 17 = 0`,
  `UPDATE items SET id = id + 5000 WHERE id BETWEEN 100 AND 104`,
  `BEGIN; INSERT INTO items (id, name) VALUES (300, 'in tx'); UPDATE items SET name = 'tx again' WHERE id = 300; DELETE FROM items WHERE id = 1; COMMIT`,
  `UPDATE pairs SET qty = qty * 2, note = NULL WHERE a % 3 = 0`,
  `DELETE FROM pairs WHERE a % 5 = 0`,
  `UPDATE pairs SET a = a + 100 WHERE a BETWEEN 1 AND 4`,
  `INSERT INTO pairs VALUES (999, 'kz', 1, 'last')`,
];

/** Per column: count and the sum of a hash of (key, column as text); one query per table, run on either side. */
function checksumSql(table: string): string {
  const cols = TABLES[table];
  const key = table === 'pairs' ? `b || ':' || a::text` : 'id::text';
  const parts = cols.map((c) => `coalesce(sum(('x' || substr(md5(${key} || '|' || coalesce(${c}::text, '∅')), 1, 15))::bit(60)::bigint), 0)::text AS ${c}`);
  return `SELECT count(*)::text AS count, ${parts.join(', ')} FROM ${table}`;
}

async function sums(client: pg.Client, table: string): Promise<Record<string, string> | string> {
  try {
    await client.query(`SET TimeZone = 'UTC'`);
    return (await client.query(checksumSql(table))).rows[0];
  } catch (e) {
    return (e as Error).message;
  }
}

describe(`Sluice → Kafka → Debezium's JDBC sink (${connectVersions()})`, { timeout: 240_000 }, () => {
  const f = useDatabase(SETUP);
  let target: Awaited<ReturnType<typeof freshDatabase>>;
  let worker: Worker | undefined;
  before(async () => {
    prepareConnect();
    target = await freshDatabase('sluice_t');
  });
  after(async () => {
    await worker?.stop();
    await target?.drop();
  });

  it('writes tables equal to the source, snapshot and stream, deletes and key changes included', async () => {
    const yaml = pipelineYaml(NAME, f.db.name, f.tmp.dir, '', 'serialization: { schemas: true }\nbatch: { maxDelayMs: 50 }').replace(
      /^log:\n(?: {2}.*\n)+/m,
      `log:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\n  partitions: 3\n`,
    );
    const cfg = join(f.tmp.dir, 'pipeline.yaml');
    writeFileSync(cfg, yaml);
    const sluice = startPipelineProcess(cfg);
    const topic = (t: string) => `${PREFIX}${NAME}.public.${t}`;
    const escaped = (s: string) => s.replace(/[.]/g, '\\.');
    worker = startConnect(f.tmp.dir, {
      [`jdbc-${PREFIX.slice(0, -1)}`]: {
        'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
        'tasks.max': '1',
        'topics.regex': `${escaped(`${PREFIX}${NAME}.public.`)}.*`,
        'connection.url': `jdbc:postgresql://${PG_HOST}:${PG_PORT}/${target.name}`,
        'connection.username': PG_USER,
        'connection.password': '',
        'insert.mode': 'upsert',
        'primary.key.mode': 'record_key',
        'delete.enabled': 'true',
        'schema.evolution': 'basic',
        'collection.name.format': '${source.table}',
        'use.time.zone': 'UTC',
      },
    }, {
      // Sluice writes through Kafka transactions: read only committed records.
      'consumer.isolation.level': 'read_committed',
      'consumer.auto.offset.reset': 'earliest',
      // topics.regex meets Sluice's topics as they are created: look for new ones every second.
      'consumer.metadata.max.age.ms': '1000',
    });
    const failIfDown = () => {
      if (sluice.exitCode !== null) throw new Error(`sluice run exited with ${sluice.exitCode}:\n${sluice.stderrText().slice(-3000)}`);
      if (worker!.child.exitCode !== null) throw new Error(`Kafka Connect exited:\n${worker!.output().slice(-4000)}`);
    };
    let last = '';
    const equal = async () => {
      failIfDown();
      for (const t of Object.keys(TABLES)) {
        const [a, b] = [await sums(f.db.client, t), await sums(target.client, t)];
        if (JSON.stringify(a) !== JSON.stringify(b)) {
          last = `${t}: source ${JSON.stringify(a)}\n target ${JSON.stringify(b)}`;
          return false;
        }
      }
      return true;
    };
    const explain = (e: Error) => new Error(`${e.message}\nlast difference: ${last}\nKafka Connect errors:\n${taskErrors(worker!.output())}\nsluice:\n${sluice.stderrText().slice(-2000)}`);
    try {
      await waitUntil('the snapshot in the JDBC sink\'s tables', equal, 120_000).catch((e) => {
        throw explain(e);
      });
      for (const sql of CHANGES) await f.db.client.query(sql);
      await waitUntil('the stream in the JDBC sink\'s tables', equal, 90_000).catch((e) => {
        throw explain(e);
      });
      const n = await target.client.query(`SELECT count(*)::int AS n FROM items`);
      assert.ok(n.rows[0].n > 150, 'the target holds the rows');
      assert.equal(taskErrors(worker.output()).includes('WorkerSinkTask'), false, `no task failed:\n${taskErrors(worker.output())}`);
      // What the sink created from Sluice's Connect schemas.
      const types = await target.client.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'items' ORDER BY ordinal_position`);
      process.stderr.write(`# the JDBC sink's items table: ${types.rows.map((r) => `${r.column_name} ${r.data_type}`).join(', ')}\n`);
      assert.ok(topic('items').length > 0);
    } finally {
      await stopProcess(sluice);
      await worker.stop();
    }
  });
});
