/**
 * Node Kafka client comparison for the kafka log backend: @platformatic/kafka against kafkajs,
 * measured on a real broker (scripts/kafka-server.sh start, 127.0.0.1:9092).
 *
 * The clients are not dependencies of Sluice: install them in a scratch folder outside the
 * repository and point KCLIENT_DIR at it (default /tmp/kclient):
 *   mkdir -p /tmp/kclient && cd /tmp/kclient && echo '{"type":"module"}' > package.json
 *   npm install @platformatic/kafka@1.35.0 kafkajs@2.2.4 kafkajs-lz4 tsx
 * (@platformatic/kafka 2.x needs Node >= 22.22: on Node 20 it fails on Promise.withResolvers.)
 * Then, from the repository (or from /tmp/kclient with a copy of this file):
 *   scripts/kafka-server.sh start
 *   node --import tsx bench/kafka-client/measure.ts all [rounds=3] [records=1000000] [txn=5000]
 *   node --import tsx bench/kafka-client/measure.ts produce|consume plt|kjs <topic> [records] [txn]
 *   node --import tsx bench/kafka-client/measure.ts check plt|kjs
 * `all` runs every measurement in a child process of its own (so the peak RSS is that client's),
 * in alternating client order per round, and prints the median and range of each figure.
 *
 * produce: `records` JSON values of ~300 bytes, keyed, into a 4-partition topic, in transactions
 *   of `txn` records, each transaction also writing one checkpoint record to a compacted topic;
 *   acks=all, idempotent, no compression. consume: a read_committed group consumer reading them
 *   all back from the earliest offset (time includes joining the group). PLT_CONSUMER_OPTS /
 *   KJS_CONSUMER_OPTS (JSON) add consumer options. check: the feature probes (fencing of a
 *   transactional id taken over by a second producer, read_committed after that, offsets, manual
 *   offsets, rebalance events, compression), one finding per line.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const KCLIENT_DIR = process.env.KCLIENT_DIR ?? '/tmp/kclient';
const BROKER = process.env.KAFKA_BROKER ?? '127.0.0.1:9092';
type Client = 'plt' | 'kjs';

async function load(client: Client): Promise<any> {
  const entry = client === 'plt' ? 'node_modules/@platformatic/kafka/dist/index.js' : 'node_modules/kafkajs/index.js';
  const mod = await import(pathToFileURL(join(KCLIENT_DIR, entry)).href);
  return mod.default && client === 'kjs' ? mod.default : mod;
}

const rssMiB = () => Math.round(process.resourceUsage().maxRSS / 1024);

/** The i-th record: a Debezium-like change event of about 300 bytes. */
function record(i: number): { key: Buffer; value: Buffer } {
  const value = JSON.stringify({
    before: null,
    after: { id: i, customer_id: i % 9973, status: 'shipped', amount_cents: (i * 37) % 100000, sku: `SKU-${(i * 7919) % 100000}`, note: 'x'.repeat(40) },
    source: { connector: 'postgresql', db: 'shop', schema: 'public', table: 'orders', lsn: 1000000 + i, txId: 5000 + (i >> 4) },
    op: 'c',
    ts_ms: 1767225600000 + i,
  });
  return { key: Buffer.from(`order-${i}`), value: Buffer.from(value) };
}

async function createTopics(client: Client, kafka: any, topic: string): Promise<void> {
  const ckpt = `${topic}-ckpt`;
  if (client === 'plt') {
    const admin = new kafka.Admin({ clientId: 'bench-admin', bootstrapBrokers: [BROKER] });
    await admin.createTopics({ topics: [topic], partitions: 4, replicas: 1 });
    await admin.createTopics({ topics: [ckpt], partitions: 1, replicas: 1, configs: [{ name: 'cleanup.policy', value: 'compact' }] });
    await admin.close();
  } else {
    const admin = new kafka.Kafka({ clientId: 'bench-admin', brokers: [BROKER], logLevel: kafka.logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }, { topic: ckpt, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] });
    await admin.disconnect();
  }
}

async function produce(client: Client, topic: string, records: number, txnSize: number): Promise<Record<string, number>> {
  const kafka = await load(client);
  await createTopics(client, kafka, topic);
  const ckpt = `${topic}-ckpt`;
  const transactionalId = `bench-${topic}`;
  let sendTxn: (msgs: { key: Buffer; value: Buffer }[], ck: { key: Buffer; value: Buffer }) => Promise<void>;
  let close: () => Promise<void>;
  if (client === 'plt') {
    // producerId/producerEpoch -1: without them the client asks InitProducerId for producer 0
    // epoch 0, which a restart with the same transactional id gets PRODUCER_FENCED for.
    const p = new kafka.Producer({
      clientId: 'bench', bootstrapBrokers: [BROKER], transactionalId, idempotent: true, acks: -1,
      producerId: -1n, producerEpoch: -1, compression: 'none',
    });
    sendTxn = async (msgs, ck) => {
      const tx = await p.beginTransaction();
      const messages = msgs.map((m) => ({ topic, key: m.key, value: m.value }));
      messages.push({ topic: ckpt, key: ck.key, value: ck.value });
      await tx.send({ messages });
      await tx.commit();
    };
    close = () => p.close();
  } else {
    const k = new kafka.Kafka({ clientId: 'bench', brokers: [BROKER], logLevel: kafka.logLevel.NOTHING });
    const p = k.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    sendTxn = async (msgs, ck) => {
      const tx = await p.transaction();
      await tx.sendBatch({ acks: -1, compression: kafka.CompressionTypes.None, topicMessages: [{ topic, messages: msgs }, { topic: ckpt, messages: [ck] }] });
      await tx.commit();
    };
    close = () => p.disconnect();
  }
  const t0 = performance.now();
  for (let i = 0; i < records; i += txnSize) {
    const msgs: { key: Buffer; value: Buffer }[] = [];
    for (let j = i; j < Math.min(records, i + txnSize); j++) msgs.push(record(j));
    await sendTxn(msgs, { key: Buffer.from('checkpoint'), value: Buffer.from(JSON.stringify({ upTo: i + msgs.length })) });
  }
  const secs = (performance.now() - t0) / 1000;
  await close();
  return { records, secs: +secs.toFixed(2), rps: Math.round(records / secs), rssMiB: rssMiB() };
}

async function consume(client: Client, topic: string, records: number): Promise<Record<string, number>> {
  const kafka = await load(client);
  const groupId = `bench-g-${topic}-${Date.now()}`;
  let n = 0, bytes = 0;
  const t0 = performance.now();
  if (client === 'plt') {
    const c = new kafka.Consumer({
      clientId: 'bench-c', groupId, bootstrapBrokers: [BROKER], maxWaitTime: 500,
      isolationLevel: kafka.FetchIsolationLevels.READ_COMMITTED, ...JSON.parse(process.env.PLT_CONSUMER_OPTS ?? '{}'),
    });
    const stream = await c.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('data', (m: { value: Buffer }) => {
        n++; bytes += m.value.length;
        if (n === records) resolve();
      });
    });
    const secs = (performance.now() - t0) / 1000;
    await c.close(true);
    return { records: n, secs: +secs.toFixed(2), rps: Math.round(n / secs), rssMiB: rssMiB(), bytes };
  }
  const k = new kafka.Kafka({ clientId: 'bench-c', brokers: [BROKER], logLevel: kafka.logLevel.NOTHING });
  const c = k.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 500, ...JSON.parse(process.env.KJS_CONSUMER_OPTS ?? '{}') });
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await c.run({
    autoCommit: false,
    eachBatch: async ({ batch }: { batch: { messages: { value: Buffer }[] } }) => {
      for (const m of batch.messages) { n++; bytes += m.value.length; }
      if (n >= records) done();
    },
  });
  await finished;
  const secs = (performance.now() - t0) / 1000;
  await c.disconnect();
  return { records: n, secs: +secs.toFixed(2), rps: Math.round(n / secs), rssMiB: rssMiB(), bytes };
}

async function deleteTopics(topic: string): Promise<void> {
  const kafka = await load('kjs');
  const admin = new kafka.Kafka({ clientId: 'bench-admin', brokers: [BROKER], logLevel: kafka.logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, `${topic}-ckpt`] });
  await admin.disconnect();
}

function child(args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line)); else reject(new Error(`${args.join(' ')} exited ${code}: ${out}`));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function all(rounds: number, records: number, txn: number): Promise<void> {
  const clients: Client[] = ['plt', 'kjs'];
  const res: Record<string, Record<string, number[]>> = { plt: {}, kjs: {} };
  const put = (c: Client, k: string, v: number) => (res[c][k] ??= []).push(v);
  const stamp = Date.now().toString(36);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? clients : [...clients].reverse();
    for (const c of order) {
      const topic = `bench-${c}-${stamp}-${r}`;
      const p = await child(['produce', c, topic, String(records), String(txn)]);
      const q = await child(['consume', c, topic, String(records)]);
      if (q.records !== records) throw new Error(`${c} consumed ${q.records} records, expected ${records}`);
      console.log(`round ${r + 1} ${c}: produce ${p.rps} rec/s (${p.secs} s, peak RSS ${p.rssMiB} MiB), consume ${q.rps} rec/s (${q.secs} s, peak RSS ${q.rssMiB} MiB)`);
      put(c, 'produce rec/s', p.rps); put(c, 'produce peak RSS MiB', p.rssMiB);
      put(c, 'consume rec/s', q.rps); put(c, 'consume peak RSS MiB', q.rssMiB);
      await deleteTopics(topic);
    }
  }
  console.log(`\n${records} records, transactions of ${txn}, ${rounds} rounds: median [min-max]`);
  for (const k of Object.keys(res.plt)) {
    console.log(`${k.padEnd(22)} ${clients.map((c) => `${c} ${median(res[c][k])} [${Math.min(...res[c][k])}-${Math.max(...res[c][k])}]`).join('   ')}`);
  }
}


// ---- feature checks (`check plt|kjs`): each line printed is one finding ----
const run = Date.now().toString(36);
const ok = (k: string, v: string) => console.log(`${k}: ${v}`);
const errText = (e: any) => `${e.type ?? e.code ?? ''} ${e.message ?? e}`.slice(0, 160);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function checkPlt(): Promise<void> {
  const { Admin, Consumer, Producer, stringSerializers, stringDeserializers, FetchIsolationLevels, ListOffsetTimestamps } = await load('plt');
  const bootstrapBrokers = [BROKER];
  const admin = new Admin({ clientId: 'chk-admin', bootstrapBrokers });
  const T = `chk-plt-${run}`, C = `chk-plt-ckpt-${run}`;
  await admin.createTopics({ topics: [T], partitions: 4, replicas: 1 });
  await admin.createTopics({ topics: [C], partitions: 1, replicas: 1, configs: [{ name: 'cleanup.policy', value: 'compact' }] });
  const cfg = await admin.describeConfigs({ resources: [{ resourceType: 2, resourceName: C, configurationKeys: ['cleanup.policy'] }] });
  ok('admin create topic with configs', JSON.stringify(cfg[0]?.configs?.map((c: { name: string; value: string | null }) => [c.name, c.value])));

  // Fencing: A begins a txn, B with the same transactional id starts, A's commit must fail.
  const mk = (id: string) => new Producer({ clientId: id, bootstrapBrokers, transactionalId: `txn-${run}`, idempotent: true, acks: -1, serializers: stringSerializers, ...(process.env.PLT_PID_WORKAROUND === '0' ? {} : { producerId: -1n, producerEpoch: -1 }) });
  const a = mk('A');
  const ta = await a.beginTransaction();
  await ta.send({ messages: [{ topic: T, key: 'k', value: 'from-A', partition: 0 }] });
  const b = mk('B');
  const tb = await b.beginTransaction();
  await tb.send({ messages: [{ topic: T, key: 'k', value: 'from-B', partition: 0 }, { topic: C, key: 'ckpt', value: '1' }] });
  try { await ta.commit(); ok('fencing', 'FAILED: A committed after B started'); } catch (e) { ok('fencing', `A's commit rejected: ${errText(e)}`); }
  await tb.commit();
  try { const t2 = await a.beginTransaction(); await t2.send({ messages: [{ topic: T, key: 'k', value: 'A-again', partition: 0 }] }); await t2.commit(); ok('fenced producer reuse', 'FAILED: A could commit again'); } catch (e) { ok('fenced producer reuse', `rejected: ${errText(e)}`); }
  // Abort path
  const tb2 = await b.beginTransaction();
  await tb2.send({ messages: [{ topic: T, key: 'k', value: 'aborted', partition: 0 }] });
  await tb2.abort();

  // listOffsets earliest/latest, read_committed
  const cons = new Consumer({ clientId: 'chk-c', groupId: `chk-g-${run}`, bootstrapBrokers, deserializers: stringDeserializers, isolationLevel: FetchIsolationLevels.READ_COMMITTED, maxWaitTime: 500 });
  const latest = await cons.listOffsets({ topics: [T], timestamp: ListOffsetTimestamps.LATEST, isolationLevel: FetchIsolationLevels.READ_COMMITTED });
  const earliest = await cons.listOffsets({ topics: [T], timestamp: ListOffsetTimestamps.EARLIEST });
  const latestU = await cons.listOffsets({ topics: [T], timestamp: ListOffsetTimestamps.LATEST, isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED });
  ok('listOffsets', `earliest ${[...earliest.get(T)!]} latest(committed) ${[...latest.get(T)!]} latest(uncommitted) ${[...latestU.get(T)!]}`);
  const stream = await cons.consume({ topics: [T], mode: 'earliest', autocommit: false });
  const seen: string[] = [];
  const timer0 = setTimeout(() => stream.close(), 4000);
  for await (const m of stream) { seen.push(`${m.partition}@${m.offset}:${m.value}`); }
  clearTimeout(timer0);
  ok('read_committed', `saw ${JSON.stringify(seen)} (A's and the aborted record must be absent)`);
  await cons.close(true);

  // fetch from an arbitrary offset: MANUAL mode (inside a group) ...
  const c2 = new Consumer({ clientId: 'chk-c2', groupId: `chk-g2-${run}`, bootstrapBrokers, deserializers: stringDeserializers, maxWaitTime: 500 });
  const s2 = await c2.consume({ topics: [T], mode: 'manual', offsets: [{ topic: T, partition: 0, offset: 1n }], autocommit: false });
  const seen2: string[] = [];
  const t0 = Date.now();
  const timer = setTimeout(() => s2.close(), 4000);
  for await (const m of s2) { seen2.push(`${m.partition}@${m.offset}:${m.value}`); }
  clearTimeout(timer);
  ok('manual offsets (group member)', `${JSON.stringify(seen2)} in ${Date.now() - t0} ms`);
  await c2.close(true);

  // ... and the low-level fetch (no group): raw Fetch API against the leader
  const c3 = new Consumer({ clientId: 'chk-c3', groupId: `unused-${run}`, bootstrapBrokers, maxWaitTime: 200 });
  const md = await c3.metadata({ topics: [T] });
  const topicMd = md.topics.get(T)!;
  const leader = topicMd.partitions[0].leader;
  const resp = await c3.fetch({ node: leader, topics: [{ topicId: topicMd.id, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20, currentLeaderEpoch: -1, lastFetchedEpoch: -1, logStartOffset: -1n }] }], isolationLevel: FetchIsolationLevels.READ_COMMITTED } as never);
  const p0 = resp.responses[0].partitions[0];
  ok('low-level fetch (no group)', `hw ${p0.highWatermark} lso ${p0.lastStableOffset} abortedTxns ${p0.abortedTransactions?.length} batches ${(p0.records as unknown[] | undefined)?.length ?? 'n/a'}`);
  await c3.close();

  // group membership and rebalance events
  const events: string[] = [];
  const g = `chk-g3-${run}`;
  const m1 = new Consumer({ clientId: 'm1', groupId: g, bootstrapBrokers, maxWaitTime: 200, sessionTimeout: 10000, heartbeatInterval: 500 });
  for (const ev of ['consumer:group:join', 'consumer:group:rebalance', 'consumer:group:leave']) m1.on(ev, (p: { assignments?: { topic: string; partitions: number[] }[] }) => events.push(`m1 ${ev} ${JSON.stringify(p?.assignments ?? '')}`));
  const ms1 = await m1.consume({ topics: [T], mode: 'earliest' });
  ms1.on('data', () => {});
  const m2 = new Consumer({ clientId: 'm2', groupId: g, bootstrapBrokers, maxWaitTime: 200, sessionTimeout: 10000, heartbeatInterval: 500 });
  m2.on('consumer:group:join', (p: { assignments?: unknown }) => events.push(`m2 join ${JSON.stringify(p?.assignments ?? '')}`));
  const ms2 = await m2.consume({ topics: [T], mode: 'earliest' });
  ms2.on('data', () => {});
  await sleep(3000);
  ok('group rebalance events', events.join(' | '));
  await m2.close(true); await m1.close(true);

  for (const comp of ['lz4', 'none']) {
    const p = new Producer({ clientId: 'cmp', bootstrapBrokers, compression: comp as 'lz4', serializers: stringSerializers });
    try { await p.send({ messages: [{ topic: C, key: 'z', value: 'x'.repeat(500) }] }); ok(`compression ${comp}`, 'produce ok'); } catch (e) { ok(`compression ${comp}`, errText(e)); }
    await p.close();
  }
  await a.close(); await b.close(); if (!process.env.KEEP) await admin.deleteTopics({ topics: [T, C] }); await admin.close();
}

async function checkKjs(): Promise<void> {
  const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = await load('kjs');
  const require = createRequire(join(KCLIENT_DIR, 'package.json'));
  CompressionCodecs[CompressionTypes.LZ4] = new (require('kafkajs-lz4'))().codec;
  const kafka = new Kafka({ clientId: 'chk', brokers: [BROKER], logLevel: logLevel.NOTHING });
  const admin = kafka.admin(); await admin.connect();
  const T = `chk-kjs-${run}`, C = `chk-kjs-ckpt-${run}`;
  await admin.createTopics({ topics: [{ topic: T, numPartitions: 4, replicationFactor: 1 }, { topic: C, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] });
  const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: C, configNames: ['cleanup.policy'] }] });
  ok('admin create topic with configs', JSON.stringify(cfg.resources[0].configEntries.map((c: any) => [c.configName, c.configValue])));

  const mk = () => kafka.producer({ transactionalId: `txn-${run}`, idempotent: true, maxInFlightRequests: 1 });
  const a = mk(); await a.connect();
  const ta = await a.transaction();
  await ta.send({ topic: T, messages: [{ key: 'k', value: 'from-A', partition: 0 }] });
  const b = mk(); await b.connect();
  const tb = await b.transaction();
  await tb.send({ topic: T, messages: [{ key: 'k', value: 'from-B', partition: 0 }] });
  await tb.send({ topic: C, messages: [{ key: 'ckpt', value: '1' }] });
  try { await ta.commit(); ok('fencing', 'FAILED: A committed after B started'); } catch (e) { ok('fencing', `A's commit rejected: ${errText(e)}`); }
  await tb.commit();
  try { const t2 = await a.transaction(); await t2.send({ topic: T, messages: [{ key: 'k', value: 'A-again', partition: 0 }] }); await t2.commit(); ok('fenced producer reuse', 'FAILED: A could commit again'); } catch (e) { ok('fenced producer reuse', `rejected: ${errText(e)}`); }
  const tb2 = await b.transaction();
  await tb2.send({ topic: T, messages: [{ key: 'k', value: 'aborted', partition: 0 }] });
  await tb2.abort();

  const off = await admin.fetchTopicOffsets(T);
  ok('listOffsets', JSON.stringify(off.map((o: any) => `${o.partition}:${o.low}-${o.high}`)));

  const cons = kafka.consumer({ groupId: `chk-g-${run}`, readUncommitted: false, maxWaitTimeInMs: 500 });
  await cons.connect(); await cons.subscribe({ topic: T, fromBeginning: true });
  const seen: string[] = [];
  await cons.run({ eachMessage: async ({ partition, message }: any) => { seen.push(`${partition}@${message.offset}:${message.value}`); } });
  await sleep(4000);
  ok('read_committed', `saw ${JSON.stringify(seen)}`);
  await cons.disconnect();

  // seek to an arbitrary offset (kafkajs has no assign(): seek works inside a group after run())
  const c2 = kafka.consumer({ groupId: `chk-g2-${run}`, maxWaitTimeInMs: 200 });
  await c2.connect(); await c2.subscribe({ topic: T, fromBeginning: true });
  const seen2: string[] = [];
  await c2.run({ eachMessage: async ({ partition, message }: any) => { seen2.push(`${partition}@${message.offset}:${message.value}`); } });
  c2.seek({ topic: T, partition: 0, offset: '1' });
  await sleep(3000);
  ok('seek to offset (group member)', JSON.stringify(seen2));
  await c2.disconnect();

  const events: string[] = [];
  const g = `chk-g3-${run}`;
  const m1 = kafka.consumer({ groupId: g, maxWaitTimeInMs: 200, heartbeatInterval: 500, sessionTimeout: 10000, rebalanceTimeout: 5000 });
  m1.on(m1.events.GROUP_JOIN, (e: any) => events.push(`m1 join ${JSON.stringify(e.payload.memberAssignment)}`));
  m1.on(m1.events.REBALANCING, () => events.push('m1 rebalancing'));
  await m1.connect(); await m1.subscribe({ topic: T, fromBeginning: true }); await m1.run({ eachMessage: async () => {} });
  await sleep(2000);
  const m2 = kafka.consumer({ groupId: g, maxWaitTimeInMs: 200, heartbeatInterval: 500, sessionTimeout: 10000, rebalanceTimeout: 5000 });
  m2.on(m2.events.GROUP_JOIN, (e: any) => events.push(`m2 join ${JSON.stringify(e.payload.memberAssignment)}`));
  await m2.connect(); await m2.subscribe({ topic: T, fromBeginning: true }); await m2.run({ eachMessage: async () => {} });
  await sleep(5000);
  ok('group rebalance events', events.join(' | '));
  await m2.disconnect(); await m1.disconnect();

  for (const [name, c] of [['lz4', CompressionTypes.LZ4], ['none', CompressionTypes.None]] as const) {
    const p = kafka.producer(); await p.connect();
    try { await p.send({ topic: C, compression: c, messages: [{ key: 'z', value: 'x'.repeat(500) }] }); ok(`compression ${name}`, 'produce ok'); } catch (e) { ok(`compression ${name}`, errText(e)); }
    await p.disconnect();
  }
  await a.disconnect(); await b.disconnect(); if (!process.env.KEEP) await admin.deleteTopics({ topics: [T, C] }); await admin.disconnect();
}

const [cmd, a1, a2, a3, a4] = process.argv.slice(2);
if (cmd === 'all') await all(Number(a1 ?? 3), Number(a2 ?? 1_000_000), Number(a3 ?? 5000));
else if (cmd === 'produce') console.log(JSON.stringify(await produce(a1 as Client, a2, Number(a3 ?? 1_000_000), Number(a4 ?? 5000))));
else if (cmd === 'check') await (a1 === 'kjs' ? checkKjs() : checkPlt());
else if (cmd === 'consume') console.log(JSON.stringify(await consume(a1 as Client, a2, Number(a3 ?? 1_000_000))));
else { console.error('usage: measure.ts all [rounds] [records] [txn] | check <plt|kjs> | produce <plt|kjs> <topic> [records] [txn] | consume <plt|kjs> <topic> [records]'); process.exit(2); }
process.exit(0);
