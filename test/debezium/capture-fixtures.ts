/**
 * Captures the fixture of test/core/debezium.unit.test.ts from Debezium's own PostgreSQL connector
 * (harness.ts): a `customers` table (the one of Debezium's documentation) gets a create, an update
 * under the default replica identity and one under REPLICA IDENTITY FULL, a delete, a transaction of
 * two creates and a truncate; every record Debezium writes (JsonConverter, schemas on and off) goes
 * to test/fixtures/debezium/postgres/events.jsonl unchanged.
 *
 *   node --import tsx test/debezium/capture-fixtures.ts
 */
import { copyFileSync } from 'node:fs';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { debeziumVersion, startDebezium } from './harness.ts';

const OUT = 'test/fixtures/debezium/postgres/events.jsonl';
const db = await freshDatabase();
try {
  const c = db.client;
  await c.query(`CREATE TABLE customers (id int PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL, email text NOT NULL); CREATE TABLE stop (id int PRIMARY KEY)`);
  const tmp = `/tmp/sluice-capture-${process.pid}.jsonl`;
  const slot = `capture_${db.name.slice(-6)}`;
  const peer = startDebezium(tmp, 'PostgreSQL_server.public.stop', {
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'database.hostname': PG_HOST,
    'database.port': String(PG_PORT),
    'database.user': PG_USER,
    'database.password': '',
    'database.dbname': db.name,
    'topic.prefix': 'PostgreSQL_server',
    'plugin.name': 'pgoutput',
    'slot.name': slot,
    'publication.name': slot,
    'publication.autocreate.mode': 'filtered',
    'table.include.list': 'public.customers,public.stop',
    'provide.transaction.metadata': 'true',
    'skipped.operations': 'none',
  });
  // Streaming once its slot exists and its (empty) snapshot is done.
  for (let i = 0; i < 300; i++) {
    if ((await c.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot])).rowCount) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 3000));
  await c.query(`INSERT INTO customers VALUES (1, 'Anne', 'Kretchmar', 'annek@noanswer.org')`);
  await c.query(`UPDATE customers SET first_name = 'Anne Marie' WHERE id = 1`);
  await c.query(`ALTER TABLE customers REPLICA IDENTITY FULL`);
  await c.query(`UPDATE customers SET first_name = 'Anne' WHERE id = 1`);
  await c.query(`ALTER TABLE customers REPLICA IDENTITY DEFAULT`);
  await c.query(`DELETE FROM customers WHERE id = 1`);
  await c.query(`BEGIN; INSERT INTO customers VALUES (2, 'Sally', 'Thomas', 'sally.thomas@acme.com'); INSERT INTO customers VALUES (3, 'George', 'Bailey', 'gbailey@foobar.com'); COMMIT`);
  await c.query(`TRUNCATE customers`);
  await c.query(`INSERT INTO stop VALUES (1)`);
  await peer.done;
  copyFileSync(tmp, OUT);
  console.log(`wrote ${OUT} from Debezium ${debeziumVersion()}`);
} finally {
  await db.drop();
}
