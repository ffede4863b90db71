/**
 * The kafka log's own tests (the conformance suite is kafka.conformance.test.ts): fencing of a
 * producer by a second one of the same id, a writer killed with records already sent in its open
 * transaction, checkpoints committed behind another producer's open transaction, and brokers that
 * cannot be reached. What read_committed readers see is checked with this log and with Kafka's own
 * ConsoleConsumer.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { LogConfig } from '../../src/config/types.ts';
import { kafkaClient, loadKafkajs, lowLevelCluster } from '../../src/log/kafka/client.ts';
import { openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { startLogChild } from './conformance.ts';
import { BROKERS, consoleConsume, kafkaConfig, removePrefix, requireKafka, uniquePrefix } from './kafka-helpers.ts';

const prefixes: string[] = [];
const logs: Log[] = [];

before(requireKafka);
after(async () => {
  for (const l of logs) await l.close().catch(() => {});
  for (const p of prefixes) await removePrefix(p).catch(() => {});
});

function fresh(tag: string): { prefix: string; config: LogConfig } {
  const prefix = uniquePrefix(tag);
  prefixes.push(prefix);
  return { prefix, config: kafkaConfig({ topicPrefix: prefix }) };
}

async function open(config: LogConfig, readOnly = false): Promise<Log> {
  const log = await openLog(config, { readOnly });
  logs.push(log);
  return log;
}

/** Every committed value of a partition, read through `log`. */
async function committed(log: Log, topic: string, partition = 0): Promise<string[]> {
  const [o] = (await log.offsets(topic)).filter((x) => x.partition === partition);
  const out: string[] = [];
  for (let pos = o.start; pos < o.end; ) {
    const r = await log.read(topic, partition, pos);
    out.push(...r.records.map((x) => x.value!.toString()));
    pos = r.next;
  }
  return out;
}

/** A partition's high watermark (everything written, open transactions included) and last stable offset. */
async function hwAndLso(kname: string, partition = 0): Promise<{ hw: number; lso: number }> {
  const k = await loadKafkajs();
  const cluster = lowLevelCluster(kafkaClient(k, { brokers: BROKERS, clientId: 'sluice-test', connectTimeoutMs: 5000, requestTimeoutMs: 10_000 }));
  await cluster.connect();
  try {
    await cluster.refreshMetadata();
    const leader = cluster.brokerPool.metadata!.topicMetadata.find((t) => t.topic === kname)!.partitionMetadata.find((p) => p.partitionId === partition)!.leader;
    const broker = await cluster.findBroker({ nodeId: leader });
    const at = async (isolationLevel: number) => Number((await broker.listOffsets({ isolationLevel, topics: [{ topic: kname, partitions: [{ partition, timestamp: -1 }] }] })).responses[0].partitions[0].offset);
    return { hw: await at(0), lso: await at(1) };
  } finally {
    await cluster.disconnect();
  }
}

const values = (lines: string[]) => lines.map((l) => l.split('\t')[1]);

describe('kafka log', () => {
  it('a second producer of the same id fences the first: its open transaction is aborted, its commit fails, and no read_committed reader ever sees its records', async () => {
    const { prefix, config } = fresh('fence');
    const log = await open(config);
    await log.createTopic('t', { partitions: 1 });
    const first = (await log.openProducer('x')).producer;
    first.append('t', { key: 'k', value: 'one', timestamp: Date.now() });
    await first.commit('c1');
    // More than the producer buffers (1 MiB): these are sent into its open transaction now.
    const pad = 'z'.repeat(64 * 1024);
    for (let i = 0; i < 40; i++) first.append('t', { key: 'k', value: `zombie-${i}:${pad}`, timestamp: Date.now() });
    let ends = await hwAndLso(`${prefix}t`);
    for (let i = 0; i < 100 && ends.hw <= ends.lso; i++) {
      await sleep(100);
      ends = await hwAndLso(`${prefix}t`);
    }
    assert.ok(ends.hw > ends.lso, `the first producer's records reached Kafka uncommitted (high watermark ${ends.hw}, last stable offset ${ends.lso})`);
    const reader = await open(config, true);
    assert.deepEqual(await committed(reader, 't'), ['one'], 'a reader sees nothing of an open transaction');

    // Another process opens the same producer id: Kafka aborts the first one's transaction.
    const other = await open(config);
    const second = await other.openProducer('x');
    assert.equal(second.checkpoint, 'c1', 'the second starts from the last commit');
    await assert.rejects(first.commit('zombie'), (e: any) => e.code === 'LOG_PRODUCER_FENCED' && /same id/.test(e.message));
    assert.throws(() => first.append('t', { key: 'k', value: 'late', timestamp: Date.now() }), (e: any) => e.code === 'LOG_PRODUCER_CLOSED');
    second.producer.append('t', { key: 'k', value: 'two', timestamp: Date.now() });
    await second.producer.commit('c2');

    for (const l of [log, reader, other]) assert.deepEqual(await committed(l, 't'), ['one', 'two']);
    const after = await hwAndLso(`${prefix}t`);
    assert.equal(after.lso, after.hw, 'no transaction is left open');
    const again = await open(config);
    assert.equal((await again.openProducer('x')).checkpoint, 'c2', 'the fenced commit moved no checkpoint');

    // Kafka's own reader agrees: read_committed shows the committed records only, while
    // read_uncommitted shows the aborted ones were written.
    const [readCommitted, raw, checkpoints] = await Promise.all([
      consoleConsume(`${prefix}t`, 'read_committed', `${prefix}console-c`),
      consoleConsume(`${prefix}t`, 'read_uncommitted', `${prefix}console-u`),
      consoleConsume(`${prefix}__sluice_checkpoints`, 'read_committed', `${prefix}console-k`),
    ]);
    assert.deepEqual(values(readCommitted), ['one', 'two']);
    assert.ok(values(raw).filter((v) => v.startsWith('zombie-')).length > 0, 'the aborted records are in the log');
    assert.deepEqual(checkpoints, ['x\tc1', 'x\tc2'], 'committed checkpoints only');
  });

  it('a writer killed with records sent in its open transaction: readers see only its commits, and the next writer of its id aborts the rest', async () => {
    const { prefix, config } = fresh('kill');
    const child = startLogChild(config, 'hang', { committed: 10, uncommittedBytes: 3 << 20 });
    try {
      await child.line(/^appended \d+$/, 60_000);
      let ends = await hwAndLso(`${prefix}a`, 0);
      for (let i = 0; i < 100 && ends.hw <= ends.lso; i++) {
        await sleep(100);
        ends = await hwAndLso(`${prefix}a`, 0);
      }
      assert.ok(ends.hw > ends.lso, `the writer's uncommitted records reached Kafka (high watermark ${ends.hw}, last stable offset ${ends.lso})`);
    } finally {
      await child.kill('SIGKILL');
    }
    const want = [['c0', 'c4', 'c8'], ['c1', 'c5', 'c9'], ['c2', 'c6'], ['c3', 'c7']];
    const reader = await open(config, true);
    const seen = async (l: Log) => [...(await Promise.all([0, 1, 2].map((p) => committed(l, 'a', p)))), await committed(l, 'b', 0)];
    assert.deepEqual(await seen(reader), want, 'while the dead writer holds its transaction open');
    const log = await open(config);
    const { producer, checkpoint } = await log.openProducer('crash');
    assert.equal(checkpoint, 'one');
    assert.deepEqual(await seen(reader), want, 'after the next writer aborted it');
    const ends = await hwAndLso(`${prefix}a`, 0);
    assert.equal(ends.lso, ends.hw, 'the dead writer\'s transaction is closed');
    producer.append('b', { key: null, value: 'next', timestamp: Date.now() });
    await producer.commit('two');
    assert.deepEqual(await committed(reader, 'b'), ['c3', 'c7', 'next']);
    const lines = values(await consoleConsume(`${prefix}a`, 'read_committed', `${prefix}console`));
    assert.deepEqual(lines.sort(), want.slice(0, 3).flat().sort(), 'Kafka\'s read_committed reader sees the commit only');
  });

  it('records already sent into the open transaction are dropped by abort and by close; a commit after them holds only its own', async () => {
    const { prefix, config } = fresh('abort');
    const log = await open(config);
    await log.createTopic('t', { partitions: 2 });
    let { producer } = await log.openProducer('p');
    const pad = 'a'.repeat(64 * 1024);
    // More than the producer buffers, over both partitions: sent before the abort.
    for (let i = 0; i < 40; i++) producer.append('t', { key: null, value: `aborted-${i}:${pad}`, timestamp: Date.now() }, i % 2);
    await sleep(500);
    await producer.abort();
    producer.append('t', { key: null, value: 'kept', timestamp: Date.now() }, 0);
    await producer.commit('one');
    assert.deepEqual([await committed(log, 't', 0), await committed(log, 't', 1)], [['kept'], []]);
    for (let i = 0; i < 40; i++) producer.append('t', { key: null, value: `closed-${i}:${pad}`, timestamp: Date.now() }, i % 2);
    // Until the producer has sent them (the machine may be loaded: a fixed sleep was not always enough).
    for (const until = Date.now() + 30_000; Date.now() < until; await sleep(100)) {
      if ((await hwAndLso(`${prefix}t`, 0)).hw > 21 && (await hwAndLso(`${prefix}t`, 1)).hw > 21) break;
    }
    await producer.close();
    for (const p of [0, 1]) {
      const ends = await hwAndLso(`${prefix}t`, p);
      assert.equal(ends.lso, ends.hw, `t/${p}: no transaction is left open`);
      assert.ok(ends.hw > 21, `t/${p}: the dropped records had reached Kafka (high watermark ${ends.hw})`);
    }
    ({ producer } = await log.openProducer('p'));
    producer.append('t', { key: null, value: 'later', timestamp: Date.now() }, 1);
    await producer.commit('two');
    assert.deepEqual([await committed(log, 't', 0), await committed(log, 't', 1)], [['kept'], ['later']]);
  });

  it('a record larger than the topic accepts fails its commit with LOG_RECORD_TOO_LARGE, leaving nothing of it, and the id can be opened again', async () => {
    const { config } = fresh('large');
    const log = await open({ ...config, maxMessageBytes: 1 << 20 } as LogConfig);
    await log.createTopic('t', { partitions: 1 });
    const { producer } = await log.openProducer('p');
    producer.append('t', { key: null, value: 'small', timestamp: Date.now() });
    producer.append('t', { key: null, value: Buffer.alloc(2 << 20, 1), timestamp: Date.now() });
    await assert.rejects(producer.commit('one'), (e: any) => e.code === 'LOG_RECORD_TOO_LARGE' && /max\.message\.bytes/.test(e.message));
    assert.throws(() => producer.append('t', { key: null, value: 'x', timestamp: Date.now() }), (e: any) => e.code === 'LOG_PRODUCER_CLOSED');
    const again = await log.openProducer('p');
    assert.equal(again.checkpoint, null);
    again.producer.append('t', { key: null, value: 'after', timestamp: Date.now() });
    await again.producer.commit('two');
    assert.deepEqual(await committed(log, 't'), ['after']);
  });

  it('a checkpoint committed behind another producer\'s open transaction in the checkpoint topic is found', async () => {
    const { prefix, config } = fresh('ckpt');
    const log = await open(config);
    await log.createTopic('t', { partitions: 1 });
    const y = (await log.openProducer('y')).producer;
    y.append('t', { key: null, value: 'y1', timestamp: Date.now() });
    await y.commit('y-1');
    // A producer that died mid-commit: its record in the checkpoint topic, its transaction open.
    const k = await loadKafkajs();
    const kafka = kafkaClient(k, { brokers: BROKERS, clientId: 'sluice-test', connectTimeoutMs: 5000, requestTimeoutMs: 10_000 });
    const stuck = kafka.producer({ transactionalId: `${prefix}stuck`, idempotent: true, maxInFlightRequests: 1, createPartitioner: k.Partitioners.DefaultPartitioner });
    await stuck.connect();
    const tx = await stuck.transaction();
    try {
      await tx.send({ topic: `${prefix}__sluice_checkpoints`, messages: [{ key: 'stuck', value: 'never', partition: 0 }] });
      y.append('t', { key: null, value: 'y2', timestamp: Date.now() });
      const t0 = Date.now();
      await y.commit('y-2');
      assert.ok(Date.now() - t0 < 4000, 'a commit does not wait for the other transaction in the checkpoint topic');
      const ends = await hwAndLso(`${prefix}__sluice_checkpoints`);
      assert.ok(ends.lso < ends.hw, 'the checkpoint topic\'s last stable offset is held back');
      await y.close();
      const again = await open(config);
      assert.equal((await again.openProducer('y')).checkpoint, 'y-2', 'the checkpoint past the last stable offset');
      assert.equal((await again.openProducer('stuck')).checkpoint, null, 'an open transaction\'s checkpoint is not taken');
      assert.deepEqual(await committed(again, 't'), ['y1', 'y2']);
    } finally {
      await tx.abort().catch(() => {});
      await stuck.disconnect();
    }
  });

  it('credentials the brokers refuse: LOG_KAFKA_AUTH, not retriable, without the password', async () => {
    // The test broker has no SASL listener, so a SASL handshake is refused as a bad credential would be.
    await assert.rejects(openLog(kafkaConfig({ connectTimeout: 5000, topicPrefix: 'auth.', sasl: { mechanism: 'plain', username: 'sluice', password: 'pw-never-shown' } })), (e: any) => {
      assert.equal(e.code, 'LOG_KAFKA_AUTH', String(e.stack));
      assert.equal(e.retriable, false);
      assert.match(e.message, /log\.sasl/);
      assert.doesNotMatch(e.message, /pw-never-shown/);
      return true;
    });
  });

  it('brokers that cannot be reached fail the open within connectTimeout with a retriable LOG_KAFKA_UNREACHABLE naming them', async () => {
    // A port that accepts connections and never answers.
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentAt = `127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      for (const brokers of [['127.0.0.1:1'], ['no-such-host.invalid:9092'], [silentAt]]) {
        const t0 = Date.now();
        await assert.rejects(openLog(kafkaConfig({ brokers, connectTimeout: 3000, topicPrefix: 'unreachable.' })), (e: any) => {
          assert.equal(e.code, 'LOG_KAFKA_UNREACHABLE', String(e.stack));
          assert.equal(e.retriable, true);
          assert.ok(e.message.includes(brokers[0]), e.message);
          assert.match(e.message, /log\.brokers/);
          assert.match(e.message, /kafka-server\.sh start/);
          return true;
        });
        assert.ok(Date.now() - t0 < 3000 + 2000, `${brokers}: failed after ${Date.now() - t0} ms with connectTimeout 3000`);
      }
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
