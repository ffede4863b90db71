/**
 * A topic written by someone else: a source-less pipeline's PostgreSQL sink reads a Kafka topic
 * where Debezium's records (Kafka Connect JSON with schemas, from Debezium's own PostgreSQL
 * connector: test/fixtures/debezium/postgres) are followed by a record that is no change event at
 * all, then by more changes. With `onError: stop` the sink stops at it with SINK_BAD_RECORD naming
 * where it is, and the target holds no change from after it; with `onError: dlq` the record goes to
 * the dead-letter topic with its reason and the changes after it are applied. The expected rows
 * are the `after` images Debezium wrote.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { tempDir, waitUntil } from '../helpers/pipeline.ts';

const BROKER = '127.0.0.1:9092';
const PREFIX = `fr${randomBytes(3).toString('hex')}.`;

interface PeerRecord { topic: string; key: string | null; value: string | null }
/** Debezium's records of the customers table, as its connector wrote them (JsonConverter, schemas on). */
const customers = readFileSync('test/fixtures/debezium/postgres/events.jsonl', 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as PeerRecord)
  .filter((r) => r.topic === 'PostgreSQL_server.public.customers' && !(r.value ?? '').includes('"op":"t"'));

/** A change for id 4: Debezium's create of id 3 with another id and name. */
const create4 = (() => {
  const c3 = customers.find((r) => r.value?.includes('"op":"c"') && r.value.includes('"id":3,'))!;
  const v = JSON.parse(c3.value!);
  v.payload.after = { ...v.payload.after, id: 4, first_name: 'Zed' };
  const k = JSON.parse(c3.key!);
  k.payload.id = 4;
  return { key: JSON.stringify(k), value: JSON.stringify(v) };
})();

describe('a Kafka topic with records that are no change events', () => {
  const tmp = tempDir();
  let kafka: Kafka;
  before(async () => {
    kafka = new Kafka({ brokers: [BROKER], clientId: 'foreign-test', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: `${PREFIX}dbz.public.customers`, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    // Someone else's producer: Debezium's changes, a foreign record, one more change.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: `${PREFIX}dbz.public.customers`,
      messages: [
        ...customers.map((r) => ({ key: r.key, value: r.value })),
        { key: 'not-a-key', value: '{"hello":"this is no change event"}' },
        create4,
      ],
    });
    await producer.disconnect();
  });
  after(() => tmp.remove());

  const run = async (onError: 'stop' | 'dlq') => {
    const target = await freshDatabase(`sluice_fr${onError}`);
    const dir = join(tmp.dir, onError);
    const cfg = join(tmp.dir, `${onError}.yaml`);
    writeFileSync(
      cfg,
      `name: foreign_${onError}\nlog:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\nstate:\n  dir: ${dir}\nlogging:\n  level: warn\nsinks:\n  - name: pg\n    type: postgres\n    onError: ${onError}\n    topics: ['dbz.public.*']\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n`,
    );
    const child = startPipelineProcess(cfg);
    const rows = async () => (await target.client.query('SELECT id, first_name FROM customers ORDER BY id').catch(() => ({ rows: [] }))).rows.map((r: { id: number; first_name: string }) => `${r.id}:${r.first_name}`);
    return { target, child, rows, status: () => JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')) };
  };

  it('onError: stop — the sink stops at the record, names it, and applies nothing after it', async () => {
    const { target, child, rows, status } = await run('stop');
    try {
      await waitUntil('the sink to stop', async () => status().sinks[0]?.state === 'failed', 60_000);
      const s = status().sinks[0];
      assert.equal(s.error.code, 'SINK_BAD_RECORD');
      assert.match(s.error.message, /^record dbz\.public\.customers\/0@7 \(\d+ bytes\) has no "op" field/, 'the message says where the record is');
      assert.match(s.error.message, /not written by a Sluice source|not a Debezium change event/);
      assert.ok(!(await rows()).includes('4:Zed'), 'nothing after the record is applied');
      const stored = await target.client.query('SELECT next_offset FROM sluice_offsets').catch(() => ({ rows: [] }));
      for (const r of stored.rows as { next_offset: string }[]) assert.ok(Number(r.next_offset) <= 7, `stored offsets stop before the record (${r.next_offset})`);
    } finally {
      await stopProcess(child);
      await target.drop();
    }
  });

  it('onError: dlq — the record is dead-lettered with its reason, the changes around it applied', async () => {
    const { target, child, rows } = await run('dlq');
    try {
      // Debezium's after images: Anne (id 1) was deleted, Sally and George created; then id 4.
      await waitUntil('the changes after the foreign record', async () => (await rows()).join(',') === '2:Sally,3:George,4:Zed', 60_000).catch(async (e) => {
        throw new Error(`${(e as Error).message}: ${(await rows()).join(',')}\n${child.stderrText().slice(-2000)}`);
      });
      const consumer = kafka.consumer({ groupId: `${PREFIX}check`, readUncommitted: false });
      await consumer.connect();
      await consumer.subscribe({ topic: `${PREFIX}foreign_dlq.dlq`, fromBeginning: true });
      const dead: { value: string; headers: Record<string, string> }[] = [];
      await consumer.run({
        eachMessage: async ({ message }) => {
          dead.push({ value: message.value!.toString(), headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) });
        },
      });
      await waitUntil('the dead letter, read by a Kafka consumer', async () => dead.length >= 1, 30_000);
      await consumer.disconnect();
      assert.equal(dead.length, 1);
      assert.match(JSON.stringify(dead[0]), /this is no change event/);
      assert.match(JSON.stringify(dead[0]), /SINK_BAD_RECORD/);
    } finally {
      await stopProcess(child);
      await target.drop();
    }
  });
});
