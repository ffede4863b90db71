/**
 * Debezium → Kafka → Sluice's sinks: Debezium's own PostgreSQL and MySQL connectors run in Kafka
 * Connect standalone (scripts/kafka-connect.sh) with the JsonConverter, schemas enabled, and write
 * their topics to the broker; a source-less Sluice pipeline (`sinks` only, `topics` naming Debezium's
 * topics) applies them to PostgreSQL, MariaDB, DuckDB and MongoDB (documents), reading each record's
 * schema from the record itself (src/core/serde/connect-json.ts). The Sluice process is killed with
 * SIGKILL three times while Debezium streams a workload. Each target table must then equal its
 * source table, row count and order-independent checksum of every column read by SQL on both sides;
 * an append-only table without a key shows any change applied twice or lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MongoClient } from 'mongodb';
import mysql from 'mysql2/promise';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER, stampNow } from '../helpers/pg.ts';
import { tempDir, waitUntil } from '../helpers/pipeline.ts';
import { checksum, freshTargets, MYSQL_HOST, MYSQL_PORT, MYSQL_USER, normalize, sourceRows, TARGETS, type ColKind, type Targets } from '../helpers/targets.ts';
import { BROKER, connectVersions, prepareConnect, startConnect, taskErrors, type Worker } from './kafka-connect.ts';

const MONGO_URL = process.env.MONGO_URL_TEST ?? 'mongodb://127.0.0.1:27017';
const RUN = randomBytes(3).toString('hex');
/** Sluice's log prefix: Sluice's own topics (schemas, dead letters) stay under it on the shared broker. */
const LOG_PREFIX = `cs${RUN}.`;
/** Debezium's topic prefixes, under Sluice's: Sluice reads `dzpg.public.items` as Kafka topic `cs….dzpg.public.items`. */
const PG_PREFIX = 'dzpg';
const MY_PREFIX = 'dzmy';

const PG_TABLES: Record<string, [string, ColKind][]> = {
  items: [['id', 'int'], ['big', 'int'], ['amount', 'decimal'], ['free', 'decimal'], ['name', 'text'], ['code', 'text'], ['flag', 'bool'], ['created', 'timestamp'], ['at', 'timestamptz'], ['day', 'date'], ['uid', 'uuid'], ['f8', 'float'], ['doc', 'json']],
  pairs: [['a', 'int'], ['b', 'text'], ['qty', 'int'], ['note', 'text']],
  events: [['seq', 'int'], ['v', 'text']],
};
const MY_TABLES: Record<string, [string, ColKind][]> = {
  orders: [['id', 'int'], ['amount', 'decimal'], ['name', 'text'], ['qty', 'int'], ['placed', 'timestamp'], ['day', 'date'], ['ratio', 'float']],
};

const PG_SETUP = `
  CREATE TABLE items (id int PRIMARY KEY, big bigint, amount numeric(12,3), free numeric, name text, code varchar(20), flag boolean,
    created timestamp, at timestamptz, day date, uid uuid, f8 double precision, doc jsonb);
  CREATE TABLE pairs (a int, b varchar(10), qty int NOT NULL, note text, PRIMARY KEY (b, a));
  CREATE TABLE events (seq int NOT NULL, v text);  -- no key: changes are appended
  INSERT INTO items SELECT g, g * 1000000000000, g * 1.125, g / 7.0, 'name ' || g, 'c' || g, g % 2 = 0,
    '2024-01-02 03:04:05.123456'::timestamp + g * interval '1 hour', '2024-01-02 03:04:05.5+02'::timestamptz + g * interval '1 day',
    '2024-01-02'::date + g, md5(g::text)::uuid, g / 3.0, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g))
    FROM generate_series(1, 300) g;
  INSERT INTO items (id) VALUES (1000);
  INSERT INTO pairs SELECT g, 'k' || (g % 7), g, 'n' FROM generate_series(1, 60) g;
  INSERT INTO events SELECT g, 'e' || g FROM generate_series(1, 50) g;
`;

const MY_SETUP = [
  `CREATE TABLE orders (id int PRIMARY KEY, amount decimal(12,2), name varchar(40), qty int, placed datetime(6), day date, ratio double)`,
  `INSERT INTO orders SELECT seq, seq * 1.25, CONCAT('o', seq), seq % 9, TIMESTAMP('2024-03-04 05:06:07.250000') + INTERVAL seq MINUTE, DATE('2024-03-04') + INTERVAL seq DAY, seq / 8
     FROM seq_1_to_200`,
];

/** One round of the workload on both sources. */
async function workload(pgc: { query(sql: string): Promise<unknown> }, my: mysql.Connection, round: number): Promise<void> {
  const base = 2000 + round * 20;
  await pgc.query(`INSERT INTO items (id, big, amount, free, name, flag, at, doc) SELECT g, -g, g * -0.5, 1.0 / g, 'r${round}', true, now(), '{"r": ${round}}' FROM generate_series(${base}, ${base + 9}) g`);
  await pgc.query(`UPDATE items SET amount = amount + 1, name = 'u${round}', free = NULL WHERE id % 13 = ${round % 13}`);
  await pgc.query(`DELETE FROM items WHERE id % 29 = ${round % 29} AND id < 1000`);
  await pgc.query(`UPDATE pairs SET qty = qty + 1 WHERE a % 4 = ${round % 4}`);
  await pgc.query(`INSERT INTO events SELECT g, 'r${round}' FROM generate_series(${1000 + round * 10}, ${1000 + round * 10 + 9}) g`);
  await my.query(`INSERT INTO orders VALUES (${1000 + round}, ${round}.5, 'n${round}', ${round}, '2025-01-01 00:00:00.5', '2025-01-01', 0.5)`);
  await my.query(`UPDATE orders SET qty = qty + 1, amount = amount - 0.01 WHERE id % 11 = ${round % 11}`);
  await my.query(`DELETE FROM orders WHERE id % 31 = ${round % 31} AND id < 1000`);
}

async function mysqlRows(my: mysql.Connection, db: string, table: string, cols: [string, ColKind][]): Promise<string[][]> {
  const [rows] = await my.query({ sql: `SELECT ${cols.map(([c]) => `CAST(\`${c}\` AS CHAR)`).join(', ')} FROM \`${db}\`.\`${table}\``, rowsAsArray: true });
  return (rows as unknown[][]).map((r) => r.map((v, i) => normalize(cols[i][1], v)));
}

describe(`Debezium (Kafka Connect) → Kafka → Sluice's sinks (${connectVersions()})`, { timeout: 300_000 }, () => {
  const tmp = tempDir();
  let src: Awaited<ReturnType<typeof freshDatabase>>;
  let my: mysql.Connection;
  const myDb = `sluice_t_${stampNow()}_${RUN}`;
  let targets: Targets;
  let mongo: MongoClient;
  const mongoDb = `sluice_t_${RUN}`;
  let worker: Worker | undefined;
  const slot = `dzslot_${RUN}`;

  before(async () => {
    prepareConnect();
    src = await freshDatabase('sluice_t');
    await src.client.query(PG_SETUP);
    my = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, multipleStatements: false, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
    await my.query(`CREATE DATABASE \`${myDb}\``);
    await my.query(`USE \`${myDb}\``);
    for (const s of MY_SETUP) await my.query(s);
    targets = await freshTargets(tmp.dir);
    mongo = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000 });
    await mongo.connect().catch((e: Error) => {
      throw new Error(`no MongoDB-compatible server at ${MONGO_URL} (${e.message}); start it with: bash scripts/mongo-server.sh start`, { cause: e });
    });
  });
  after(async () => {
    await worker?.stop();
    await mongo?.db(mongoDb).dropDatabase().catch(() => {});
    await mongo?.close();
    await my?.query(`DROP DATABASE IF EXISTS \`${myDb}\``).catch(() => {});
    await my?.end();
    await targets?.drop();
    await src?.drop(); // drops Debezium's slot too
    tmp.remove();
  });

  it('applies Debezium\'s topics exactly once to PostgreSQL, MariaDB, DuckDB and MongoDB, through kill -9', async () => {
    const topicCreation = { 'topic.creation.default.replication.factor': '1', 'topic.creation.default.partitions': '3' };
    worker = startConnect(tmp.dir, {
      [`dzpg-${RUN}`]: {
        'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
        'database.hostname': PG_HOST,
        'database.port': String(PG_PORT),
        'database.user': PG_USER,
        'database.password': '',
        'database.dbname': src.name,
        'topic.prefix': LOG_PREFIX + PG_PREFIX,
        'plugin.name': 'pgoutput',
        'slot.name': slot,
        'publication.name': slot,
        'publication.autocreate.mode': 'filtered',
        'table.include.list': 'public.items,public.pairs,public.events',
        // Debezium's defaults otherwise: exact decimals as Connect Decimal bytes (precise).
        'column.propagate.source.type': '.*',
        ...topicCreation,
      },
      [`dzmy-${RUN}`]: {
        'connector.class': 'io.debezium.connector.mysql.MySqlConnector',
        'database.hostname': MYSQL_HOST,
        'database.port': String(MYSQL_PORT),
        'database.user': MYSQL_USER,
        'database.password': process.env.MYSQL_PASSWORD_TEST ?? '',
        'database.server.id': String(8000 + Math.floor(Math.random() * 900)),
        'topic.prefix': LOG_PREFIX + MY_PREFIX,
        'database.include.list': myDb,
        'schema.history.internal': 'io.debezium.storage.file.history.FileSchemaHistory',
        'schema.history.internal.file.filename': join(tmp.dir, 'mysql-history.dat'),
        'include.schema.changes': 'false',
        'decimal.handling.mode': 'string',
        ...topicCreation,
      },
    }, {
      // A NULL stays NULL (the converter's default writes a column's default in its place).
      'value.converter.replace.null.with.default': 'false',
    });

    const yaml = `name: dzsinks${RUN}
state:
  dir: ${join(tmp.dir, 'state')}
log:
  backend: kafka
  brokers: ['${BROKER}']
  topicPrefix: '${LOG_PREFIX}'
  partitions: 3
logging:
  level: warn
batch: { maxDelayMs: 50 }
${targets.sinksYaml(`topics: ['${PG_PREFIX}.*', '${MY_PREFIX}.*']`)}
  - name: docs
    type: mongodb
    connection: ${MONGO_URL}/${mongoDb}
    topics: ['${PG_PREFIX}.*', '${MY_PREFIX}.*']
    collections:
      - table: public.items
        collection: items
      - table: ${myDb}.orders
        collection: orders
`;
    const cfg = join(tmp.dir, 'sinks.yaml');
    writeFileSync(cfg, yaml);

    let sluice = startPipelineProcess(cfg);
    const failIfDown = () => {
      if (sluice.exitCode !== null && sluice.signalCode === null) throw new Error(`sluice run exited with ${sluice.exitCode}:\n${sluice.stderrText().slice(-3000)}`);
      if (worker!.child.exitCode !== null) throw new Error(`Kafka Connect exited:\n${taskErrors(worker!.output())}`);
    };
    let last = '';
    // DuckDB's file is locked while the sink holds it: it is compared once the sink has stopped.
    let live: typeof TARGETS = TARGETS.filter((t) => t !== 'duckdb');
    const equal = async () => {
      if (live.length === TARGETS.length - 1) failIfDown();
      for (const [t, cols] of Object.entries(PG_TABLES)) {
        const want = checksum(await sourceRows(src.client, t, cols));
        for (const target of live) {
          const got = await targets.rows(target, t, cols).then(checksum, (e: Error) => e.message);
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            last = `${target} ${t}: source ${JSON.stringify(want)}, target ${JSON.stringify(got)}`;
            return false;
          }
        }
      }
      for (const [t, cols] of Object.entries(MY_TABLES)) {
        const want = checksum(await mysqlRows(my, myDb, t, cols));
        for (const target of live) {
          const got = await targets.rows(target, t, cols).then(checksum, (e: Error) => e.message);
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            last = `${target} ${t} (MariaDB source): source ${JSON.stringify(want)}, target ${JSON.stringify(got)}`;
            return false;
          }
        }
      }
      if (live.includes('duckdb')) return true;
      const docs = await mongo.db(mongoDb).collection('items').countDocuments();
      const rows = Number((await src.client.query(`SELECT count(*) FROM items`)).rows[0].count);
      if (docs !== rows) {
        last = `mongodb items: source ${rows} rows, ${docs} documents`;
        return false;
      }
      return true;
    };
    const explain = (e: Error) => new Error(`${e.message}\nlast difference: ${last}\nKafka Connect errors:\n${taskErrors(worker!.output())}\nsluice:\n${sluice.stderrText().slice(-3000)}`);
    try {
      await waitUntil('the snapshots of both Debezium connectors in every target', equal, 150_000).catch((e) => {
        throw explain(e);
      });
      // The stream, with the sink process killed mid-stream three times.
      for (let round = 0; round < 12; round++) {
        await workload(src.client, my, round);
        if (round % 4 === 1) {
          await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
          await stopProcess(sluice, 'SIGKILL');
          sluice = startPipelineProcess(cfg);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await waitUntil('the stream in every target after the kills', equal, 120_000).catch((e) => {
        throw explain(e);
      });
      await stopProcess(sluice);
      live = TARGETS;
      assert.ok(await equal(), `DuckDB equals the sources: ${last}`);
      const n = await targets.count('postgres', `SELECT count(*) FROM "events"`);
      assert.equal(n, 50 + 12 * 10, 'the keyless table holds each insert once');
    } finally {
      await stopProcess(sluice);
    }
  });
});
