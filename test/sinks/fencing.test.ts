/**
 * The fence between workers of one sink's consumer group (scale-out on Kafka): a batch that says
 * where its writer believes the target stands (`OffsetPosition.from`) is applied only if the target
 * stands exactly there. Two sink instances on one real PostgreSQL (and MariaDB) target play a worker
 * that was dropped from its group and the one that took its partition over: the stale one's batch
 * fails with SINK_FENCED, retriable, and none of its rows is in the target.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { SchemaRecord } from '../../src/core/schemas.ts';
import { buildTables } from '../../src/engine/batch-reader.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import type { Sink, SinkBatch, SinkRecord } from '../../src/sinks/types.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../helpers/targets.ts';

const quiet = createLogger({ level: 'error' });
const TOPIC = 'fence.public.f';
const schema: SchemaRecord = {
  id: 'fence0000000000',
  connector: 'postgresql',
  topic: TOPIC,
  schema: 'public',
  table: 'f',
  keyColumns: ['id'],
  columns: [{ name: 'id', sourceType: 'integer', optional: false, key: true, connect: { type: 'int32', optional: false, field: 'id' } }],
};
/** A batch creating rows `ids` at offsets `from`…, moving partition 0 (or `partition` of table `table`) from `from` to past them. */
function batch(ids: number[], from: number, table = 'f', partition = 0): SinkBatch {
  const topic = `fence.public.${table}`;
  const sch: SchemaRecord = { ...schema, id: `fence${table}`.padEnd(15, '0'), topic, table };
  const records: SinkRecord[] = ids.map((id, i) => ({
    topic,
    partition,
    offset: from + i,
    key: JSON.stringify({ id }),
    value: JSON.stringify({ before: null, after: { id }, source: { version: 't', connector: 'postgresql', name: 'fence', ts_ms: 1, db: 'd', schema: 'public', table }, op: 'c', ts_ms: 1 }),
    op: 'c',
    schema: sch,
  }));
  return { tables: buildTables(records, new Map()), offsets: [{ topic, partition, next: from + ids.length, from }], records: ids.length, bytes: 0 };
}

describe('the fence between workers of a sink group', () => {
  let pgTarget: Awaited<ReturnType<typeof freshDatabase>>;
  const myDb = `sluice_fence_${process.pid}`;
  let my: mysql.Connection;
  before(async () => {
    pgTarget = await freshDatabase('sluice_fence');
    my = await mysql.createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER });
    await my.query(`DROP DATABASE IF EXISTS ${myDb}`);
    await my.query(`CREATE DATABASE ${myDb}`);
  });
  after(async () => {
    await pgTarget?.drop();
    await my?.query(`DROP DATABASE IF EXISTS ${myDb}`);
    await my?.end();
  });

  const cases = () => [
    { name: 'PostgreSQL', sink: `type: postgres\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${pgTarget.name} }`, rows: async () => (await pgTarget.client.query('SELECT id FROM f ORDER BY id')).rows.map((r: { id: number }) => r.id) },
    { name: 'MariaDB', sink: `type: mysql\n    connection: { host: ${MYSQL_HOST}, port: ${MYSQL_PORT}, user: ${MYSQL_USER}, database: ${myDb} }`, rows: async () => ((await my.query(`SELECT id FROM ${myDb}.f ORDER BY id`))[0] as { id: number }[]).map((r) => r.id) },
  ];

  /** One worker of the sink `t` (its `type` and `connection` lines given), opened. */
  const openSink = async (sink: string): Promise<Sink> => {
    const cfg = parseConfig(`name: fence\nlog: { backend: kafka }\nsinks:\n  - name: t\n    topics: ['fence.*']\n    ${sink}\n`, 'fence.yaml', {});
    const s = await sinkSpec(cfg.sinks[0].type).create(cfg.sinks[0], { pipeline: 'fence', logger: quiet, id: 'fence/t' });
    await s.open();
    return s;
  };

  for (const i of [0, 1]) {
    it(`${['PostgreSQL', 'MariaDB'][i]}: a stale worker's batch fails with SINK_FENCED and leaves nothing in the target`, async () => {
      const c = cases()[i];
      const [stale, current] = [await openSink(c.sink), await openSink(c.sink)];
      try {
        await stale.apply(batch([1, 2], 0)); // the first worker applies offsets 0-1, then stalls
        await current.apply(batch([3, 4], 2)); // its partition's new owner read offset 2 and goes on
        await assert.rejects(stale.apply(batch([5, 6], 2)), (e: Error & { code?: string; retriable?: boolean }) => {
          assert.equal(e.code, 'SINK_FENCED');
          assert.equal(e.retriable, true);
          assert.match(e.message, /^fence\.public\.f\/0: the target holds it up to offset 4, not 2 as this worker knew: another worker of the sink's group applied it meanwhile/);
          return true;
        });
        assert.deepEqual(await c.rows(), [1, 2, 3, 4], "none of the stale worker's rows is in the target");
        assert.deepEqual((await current.storedOffsets!()).get(TOPIC)?.get(0), 4);
        await current.apply(batch([5], 4));
        assert.deepEqual(await c.rows(), [1, 2, 3, 4, 5]);
      } finally {
        await stale.close();
        await current.close();
      }
    });
  }

  it('PostgreSQL: two workers meeting a new table at once both apply, one of them creating it', async () => {
    const [a, b] = [await openSink(cases()[0].sink), await openSink(cases()[0].sink)];
    try {
      // Each table is new to both; each worker holds one partition of it, and both apply at once.
      for (let n = 0; n < 8; n++) await Promise.all([a.apply(batch([1, 2], 0, `new${n}`, 0)), b.apply(batch([3, 4], 0, `new${n}`, 1))]);
      for (let n = 0; n < 8; n++) assert.deepEqual((await pgTarget.client.query(`SELECT id FROM new${n} ORDER BY id`)).rows.map((r: { id: number }) => r.id), [1, 2, 3, 4], `table new${n}`);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
