/**
 * A topic written by someone else: a source-less pipeline's PostgreSQL sink reads a Kafka topic
 * where Debezium's records (Kafka Connect JSON with schemas, from Debezium's own PostgreSQL
 * connector: test/fixtures/debezium/postgres) are followed by a record that is no change event at
 * all, then by more changes. With `onError: stop` the sink stops at it with SINK_BAD_RECORD naming
 * where it is, and the target holds no change from after it; with `onError: dlq` the record goes to
 * the dead-letter topic with its reason and the changes after it are applied. The expected rows
 * are the `after` images Debezium wrote. A topic that gains partitions while a sink reads it (keys
 * move to other partitions) stops the sink with SINK_TOPIC_PARTITIONS; a change topic that already
 * exists with fewer partitions than `log.partitions` is used as it is, with a warning.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, tempDir, waitUntil } from '../helpers/pipeline.ts';

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

describe('Kafka topics made or written by someone else', () => {
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

  const run = async (onError: 'stop' | 'dlq', topics = 'dbz.public.*', name: string = onError) => {
    const target = await freshDatabase(`sluice_fr${onError}`);
    const dir = join(tmp.dir, name);
    const cfg = join(tmp.dir, `${name}.yaml`);
    writeFileSync(
      cfg,
      `name: foreign_${name}\nlog:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\nstate:\n  dir: ${dir}\nlogging:\n  level: warn\nsinks:\n  - name: pg\n    type: postgres\n    onError: ${onError}\n    topics: ['${topics}']\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n`,
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

  it('a topic that gains partitions while a sink reads it stops the sink with SINK_TOPIC_PARTITIONS', async () => {
    const topic = `${PREFIX}grow.public.customers`;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic, messages: customers.map((r) => ({ key: r.key, value: r.value })) });
      await producer.disconnect();
      const { target, child, rows, status } = await run('stop', 'grow.public.*', 'grow');
      try {
        await waitUntil('the changes applied', async () => (await rows()).join(',') === '2:Sally,3:George', 60_000);
        await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
        await waitUntil('the sink to stop', async () => status().sinks[0]?.state === 'failed', 60_000);
        const e = status().sinks[0].error;
        assert.equal(e.code, 'SINK_TOPIC_PARTITIONS');
        assert.match(e.message, /topic grow\.public\.customers had 1 partition and has 3 now: someone added partitions/);
      } finally {
        await stopProcess(child);
        await target.drop();
      }
    } finally {
      await admin.disconnect();
    }
  });

  it('a change topic that exists with fewer partitions than log.partitions is used as it is, with a warning; a source-less pipeline of another name applies it', async () => {
    const db = await freshDatabase('sluice_frsrc');
    const admin = kafka.admin();
    await admin.connect();
    try {
      await db.client.query('CREATE TABLE narrow (id int PRIMARY KEY, v text); INSERT INTO narrow SELECT g, g::text FROM generate_series(1, 50) g');
      await admin.createTopics({ topics: [{ topic: `${PREFIX}few.public.narrow`, numPartitions: 1 }], waitForLeaders: true });
      const cfg = join(tmp.dir, 'few.yaml');
      const yaml = pipelineYaml('few', db.name, join(tmp.dir, 'few'), 'snapshot: initial_only').replace(/^log:\n(?: {2}.*\n)+/m, `log:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\n  partitions: 3\n`);
      writeFileSync(cfg, yaml);
      const child = startPipelineProcess(cfg);
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      assert.equal(code, 0, child.stderrText());
      assert.match(child.stderrText(), /topic few\.public\.narrow exists with 1 partition, fewer than log\.partitions \(3\): it is used as it is, so at most 1 sink worker share/);
      const offsets = await admin.fetchTopicOffsets(`${PREFIX}few.public.narrow`);
      assert.equal(offsets.length, 1, 'the topic keeps its one partition');
      assert.ok(Number(offsets[0].high) >= 50, `the snapshot is in it (${offsets[0].high})`);

      // A pipeline of another name, without a source, applies those topics: it finds their
      // schemas in the capture pipeline's schema topic (few.__schemas), not under its own name.
      const tgt = await freshDatabase('sluice_frapply');
      try {
        const applier = join(tmp.dir, 'apply.yaml');
        writeFileSync(applier, `name: applier\nlog:\n  backend: kafka\n  brokers: ['${BROKER}']\n  topicPrefix: '${PREFIX}'\nstate:\n  dir: ${join(tmp.dir, 'apply')}\nlogging:\n  level: warn\nsinks:\n  - name: pg\n    type: postgres\n    topics: ['few.public.*']\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${tgt.name} }\n`);
        const child = startPipelineProcess(applier);
        try {
          const sum = (c: typeof tgt.client) => c.query("SELECT count(*) || ':' || sum(hashtext(id || v)) AS s FROM narrow").then((r) => r.rows[0].s as string);
          await waitUntil('the applier to copy the table', async () => (await sum(tgt.client).catch(() => '')) === (await sum(db.client)), 60_000).catch((e) => {
            throw new Error(`${(e as Error).message}\n${child.stderrText().slice(-2000)}`);
          });
        } finally {
          await stopProcess(child);
        }
      } finally {
        await tgt.drop();
      }
    } finally {
      await admin.disconnect();
      await db.drop();
    }
  });
});
