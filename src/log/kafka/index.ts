/**
 * The kafka log backend: the log's topics are Kafka topics (named `<topicPrefix><topic>`), commits
 * are Kafka transactions, readers read read_committed, consumer groups are Kafka consumer groups.
 * docs/log.md says how and why; producer.ts holds the transactional producer.
 *
 * Reading: `read` sends one Fetch (isolation read_committed, no wait) to the partition leader and
 * keeps the committed records of the batches it returns; offsets are not dense (every transaction
 * leaves a commit marker in each of its partitions, aborted records stay in the log until compacted
 * away), so `next` is past the last batch returned, markers and aborted batches included. A
 * partition's `end` is its last stable offset (LSO): the first offset of the oldest transaction
 * still open in it, or the high watermark when none is — everything below it is decided, so a
 * reader whose position reaches it has read everything committed, and never waits on records an
 * open transaction may still abort. `waitFor` polls the LSO (watcher.ts); `openConsumer` is the
 * generic consumer over `read` and `waitFor` (src/log/consumer.ts), which needs no group
 * membership (kafkajs's group consumer cannot be assigned partitions).
 */
import type { Admin, Kafka } from 'kafkajs';
import { SluiceError } from '../../core/errors.ts';
import { ReadConsumer } from '../consumer.ts';
import { logError } from '../errors.ts';
import { partitionFor } from '../partitioner.ts';
import type { Consumer, GroupMember, Log, LogCapabilities, PartitionOffsets, Producer, ReadResult, StoredRecord, TopicConfig, TopicInfo } from '../types.ts';
import {
  batchEnd,
  committedRecords,
  EARLIEST,
  isCommitMarker,
  kafkaClient,
  kafkaError,
  kafkaType,
  LATEST,
  loadKafkajs,
  lowLevelCluster,
  READ_COMMITTED,
  READ_UNCOMMITTED,
  recordBytes,
  type FetchedPartition,
  type KBroker,
  type KCluster,
} from './client.ts';
import { KafkaProducer } from './producer.ts';
import { KafkaGroupMember } from './group.ts';
import type { KafkaLogSettings } from './spec.ts';
import { EndWatcher, partKey, type WaitedPartition } from './watcher.ts';

const TOPIC_RE = /^[A-Za-z0-9._-]{1,249}$/;
/** Kafka's limit on topic names (the partition directories are `<topic>-<partition>`). */
const MAX_TOPIC = 249;
/** A fetch that returns no whole batch below the end is asked again with more room, up to this. */
const MAX_FETCH_BYTES = 256 << 20;
/** How long a commit waits for its commit markers to make it visible (see waitVisible). */
const VISIBLE_WAIT_MS = 5000;
/** Errors after which the partition leader may have moved: metadata is refreshed and the request sent again. */
const STALE = new Set(['NOT_LEADER_FOR_PARTITION', 'LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION', 'NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'GROUP_LOAD_IN_PROGRESS', 'FENCED_LEADER_EPOCH', 'UNKNOWN_LEADER_EPOCH', 'REPLICA_NOT_AVAILABLE']);

interface TopicMeta {
  partitions: number;
  /** Leader node id per partition (-1: none known). */
  leaders: number[];
}

export interface KafkaLogOptions {
  readOnly: boolean;
  defaultPartitions: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class KafkaLog implements Log {
  readonly backend = 'kafka';
  /**
   * A Kafka transaction spans any topics and partitions and has no size limit of its own (only its
   * duration is bounded, by transactionTimeout); compaction is the brokers' log cleaner; offsets
   * have gaps (markers, aborted records); any number of processes read while one writes.
   */
  readonly capabilities: LogCapabilities = { atomicMultiPartition: true, maxCommitBytes: null, maxCommitRecords: null, compaction: true, denseOffsets: false, concurrentReaders: true, groupMembership: true };
  readonly readOnly: boolean;
  /** @internal */ kafka!: Kafka;
  /** @internal */ kafkajs!: Awaited<ReturnType<typeof loadKafkajs>>;
  private admin!: Admin;
  private cluster!: KCluster;
  private readonly meta = new Map<string, TopicMeta>();
  private readonly producers = new Set<KafkaProducer>();
  private readonly watcher: EndWatcher;
  /** The first fetch of each broker while its fetch connection opens (see fetchVia). */
  private readonly fetchConnecting = new Map<KBroker, Promise<unknown>>();
  private checkpointReady = false;
  private replication: number | undefined;
  private closed = false;

  constructor(readonly cfg: KafkaLogSettings, opts: KafkaLogOptions) {
    this.readOnly = opts.readOnly;
    this.watcher = new EndWatcher((parts) => this.listOffsets(parts, LATEST, READ_COMMITTED));
  }

  // ---------- connecting ----------

  /** Connects within connectTimeout (kafkajs retries inside it), or fails with LOG_KAFKA_UNREACHABLE. */
  async connect(): Promise<void> {
    this.kafkajs = await loadKafkajs();
    this.kafka = kafkaClient(this.kafkajs, {
      brokers: this.cfg.brokers,
      clientId: this.cfg.clientId,
      connectTimeoutMs: this.cfg.connectTimeout,
      requestTimeoutMs: this.cfg.requestTimeout,
      ssl: this.cfg.ssl,
      sasl: this.cfg.sasl,
    });
    this.admin = this.kafka.admin();
    this.cluster = lowLevelCluster(this.kafka);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(logError('LOG_KAFKA_UNREACHABLE', `no Kafka broker of ${this.cfg.brokers.join(', ')} answered within log.connectTimeout (${this.cfg.connectTimeout} ms). Check log.brokers, or start Kafka (for tests: bash scripts/kafka-server.sh start)`)), this.cfg.connectTimeout);
    });
    try {
      await Promise.race([Promise.all([this.admin.connect(), this.refreshMeta()]), deadline]);
    } catch (e) {
      // Not awaited: kafkajs's disconnect waits for the requests in flight, which a broker that
      // accepts connections and never answers holds for the request timeout.
      void this.disconnectAll();
      throw kafkaError(e, 'opening the kafka log', this.cfg.brokers);
    } finally {
      clearTimeout(timer);
    }
  }

  private async disconnectAll(): Promise<void> {
    await Promise.allSettled([this.admin?.disconnect(), this.cluster?.disconnect()]);
  }

  // ---------- names and metadata ----------

  /** The Kafka topic of a log topic. */
  kname(topic: string): string {
    return this.cfg.topicPrefix + topic;
  }

  /** @internal The transactional id of a producer id. */
  transactionalId(id: string): string {
    return `${this.cfg.topicPrefix}sluice-${id}`;
  }

  private get checkpointTopic(): string {
    return this.kname(this.cfg.checkpointTopic);
  }

  private checkName(name: string): void {
    const room = MAX_TOPIC - this.cfg.topicPrefix.length;
    if (!TOPIC_RE.test(name) || name === '.' || name === '..') throw logError('LOG_TOPIC_NAME', `topic name ${JSON.stringify(name)} is not valid: use letters, digits, '.', '_' and '-' (at most ${room}), other than '.' and '..'`);
    if (name.length > room) throw logError('LOG_TOPIC_NAME', `topic name ${name.slice(0, 40)}… has ${name.length} characters: Kafka holds ${MAX_TOPIC} with the prefix, and log.topicPrefix ${JSON.stringify(this.cfg.topicPrefix)} leaves ${room}`);
    if (name === this.cfg.checkpointTopic) throw logError('LOG_TOPIC_NAME', `topic name ${name} is the log's checkpoint topic (log.checkpointTopic); choose another`);
  }

  /** Reloads the metadata of every topic (partitions and leaders). */
  private async refreshMeta(): Promise<void> {
    await this.cluster.connect();
    await this.cluster.refreshMetadata();
    const md = this.cluster.brokerPool.metadata;
    this.meta.clear();
    for (const t of md?.topicMetadata ?? []) {
      if (t.isInternal) continue;
      const leaders: number[] = [];
      for (const p of t.partitionMetadata) leaders[p.partitionId] = p.leader ?? -1;
      this.meta.set(t.topic, { partitions: t.partitionMetadata.length, leaders });
    }
  }

  /** The metadata of a Kafka topic, refreshed once when unknown; null when the topic does not exist. */
  private async metaOf(kname: string, fresh = false): Promise<TopicMeta | null> {
    if (fresh || !this.meta.has(kname)) await this.refreshMeta().catch((e) => this.fail(e, `reading the metadata of ${kname}`));
    return this.meta.get(kname) ?? null;
  }

  private async topicMeta(topic: string): Promise<TopicMeta> {
    const m = TOPIC_RE.test(topic) ? await this.metaOf(this.kname(topic)) : null;
    if (!m) throw this.missing(topic);
    return m;
  }

  private missing(topic: string): SluiceError {
    return logError('LOG_TOPIC_MISSING', `topic ${topic} does not exist in the kafka log (Kafka topic ${this.kname(topic)} on ${this.cfg.brokers.join(', ')})`);
  }

  private async partMeta(topic: string, partition: number): Promise<TopicMeta> {
    const m = await this.topicMeta(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= m.partitions) throw logError('LOG_PARTITION_MISSING', `topic ${topic} has partitions 0..${m.partitions - 1}, not ${partition}`);
    return m;
  }

  /** @internal For appends, which are synchronous: the Kafka topic and partition from what is known already. */
  partitionForAppend(topic: string, key: Buffer | string | null, partition: number | undefined): { kname: string; partition: number } {
    const kname = this.kname(topic);
    const m = TOPIC_RE.test(topic) ? this.meta.get(kname) : undefined;
    if (!m) throw logError('LOG_TOPIC_MISSING', `topic ${topic} does not exist in the kafka log (Kafka topic ${kname}); create it with ensureTopic before appending`);
    const idx = partition ?? partitionFor(key, m.partitions);
    if (!Number.isInteger(idx) || idx < 0 || idx >= m.partitions) throw logError('LOG_PARTITION_MISSING', `topic ${topic} has partitions 0..${m.partitions - 1}, not ${idx}`);
    return { kname, partition: idx };
  }

  /** The leader of a partition, refreshing the metadata when it has none or `fresh`. */
  private async leader(kname: string, partition: number, fresh = false): Promise<KBroker> {
    let m = await this.metaOf(kname, fresh);
    if (m && (m.leaders[partition] ?? -1) < 0 && !fresh) m = await this.metaOf(kname, true);
    const id = m?.leaders[partition] ?? -1;
    if (!m) throw logError('LOG_TOPIC_MISSING', `Kafka topic ${kname} does not exist (deleted while in use?)`);
    if (id < 0) throw logError('LOG_KAFKA_ERROR', `partition ${kname}/${partition} has no leader now (a broker is down?)`, { retriable: true });
    return this.cluster.findBroker({ nodeId: id });
  }

  /** Runs `fn` against current metadata; when Kafka says the leader moved (or a coordinator is loading), refreshes and tries again. */
  private async retrying<T>(what: string, fn: (fresh: boolean) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt > 0);
      } catch (e) {
        if (e instanceof SluiceError) throw e;
        const type = kafkaType(e);
        if (attempt >= 4 || !(type && STALE.has(type)) || this.closed) throw this.fail(e, what);
        await sleep(50 * 2 ** attempt);
      }
    }
  }

  private fail(e: unknown, what: string): never {
    throw kafkaError(e, what, this.cfg.brokers);
  }

  // ---------- low-level requests ----------

  /** One Fetch of one partition, no waiting. */
  private fetchOne(kname: string, partition: number, offset: number, maxBytes: number, isolation: number): Promise<FetchedPartition> {
    return this.retrying(`reading ${kname}/${partition}`, async (fresh) => {
      const broker = await this.leader(kname, partition, fresh);
      const res = await this.fetchVia(broker, {
        isolationLevel: isolation,
        maxWaitTime: 0,
        minBytes: 1,
        maxBytes,
        topics: [{ topic: kname, partitions: [{ partition, fetchOffset: String(offset), maxBytes }] }],
      });
      const p = res.responses.find((r) => r.topicName === kname)?.partitions.find((x) => x.partition === partition);
      if (!p) throw logError('LOG_KAFKA_ERROR', `the leader of ${kname}/${partition} answered a fetch without that partition`, { retriable: true });
      return p;
    });
  }

  /**
   * Sends a Fetch. kafkajs opens a broker's fetch connection on first use without a lock, so
   * concurrent first fetches would each open a socket, and all but one would stay open, unowned,
   * after `close`: while that connection is not up, fetches to the broker go one at a time.
   */
  private async fetchVia(broker: KBroker, req: Parameters<KBroker['fetch']>[0]): ReturnType<KBroker['fetch']> {
    const conn = (broker as { connectionPool?: { pool?: { isConnected(): boolean }[] } }).connectionPool?.pool?.[1];
    for (;;) {
      if (!conn || conn.isConnected()) return broker.fetch(req);
      const pending = this.fetchConnecting.get(broker);
      if (!pending) {
        const p = broker.fetch(req);
        this.fetchConnecting.set(
          broker,
          p.then(
            () => this.fetchConnecting.delete(broker),
            () => this.fetchConnecting.delete(broker),
          ),
        );
        return p;
      }
      await pending;
    }
  }

  /** The offsets at `timestamp` (EARLIEST, LATEST or a time) of partitions, keyed by partKey; one request per leader. */
  private async listOffsets(parts: WaitedPartition[], timestamp: number, isolation: number): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await this.retrying('reading offsets', async (fresh) => {
      const byLeader = new Map<number, { broker: KBroker; topics: Map<string, number[]> }>();
      for (const p of parts) {
        const broker = await this.leader(p.kname, p.partition, fresh);
        let g = byLeader.get(broker.nodeId);
        if (!g) byLeader.set(broker.nodeId, (g = { broker, topics: new Map() }));
        const list = g.topics.get(p.kname) ?? [];
        list.push(p.partition);
        g.topics.set(p.kname, list);
      }
      await Promise.all(
        [...byLeader.values()].map(async ({ broker, topics }) => {
          const res = await broker.listOffsets({ isolationLevel: isolation, topics: [...topics].map(([topic, ps]) => ({ topic, partitions: ps.map((partition) => ({ partition, timestamp })) })) });
          for (const t of res.responses) for (const p of t.partitions) out.set(partKey(t.topic, p.partition), Number(p.offset));
        }),
      );
    });
    return out;
  }

  /**
   * The committed records at or after `offset` (at least one when there are any below the end),
   * at most about `maxBytes`, and where to continue: fetches again from past markers and aborted
   * batches until it has records or reaches the end, so a read below the end always moves on.
   */
  private async readCommitted(topic: string, kname: string, partition: number, offset: number, maxBytes: number): Promise<ReadResult> {
    let pos = offset;
    let room = Math.max(1, Math.min(maxBytes, MAX_FETCH_BYTES));
    for (;;) {
      let p: FetchedPartition;
      try {
        p = await this.fetchOne(kname, partition, pos, room, READ_COMMITTED);
      } catch (e) {
        if (kafkaType(e) !== 'OFFSET_OUT_OF_RANGE') throw e;
        const start = (await this.listOffsets([{ kname, partition }], EARLIEST, READ_UNCOMMITTED)).get(partKey(kname, partition)) ?? 0;
        if (pos < start) throw logError('LOG_OFFSET_OUT_OF_RANGE', `offset ${pos} of ${topic}/${partition} is no longer in the log (retention); the earliest available offset is ${start}`);
        // Past the high watermark: nothing there yet.
        return { records: [], next: pos };
      }
      const r = committedRecords(topic, partition, pos, p, maxBytes);
      if (r.records.length) return r;
      const lso = Number(p.lastStableOffset) >= 0 ? Number(p.lastStableOffset) : Number(p.highWatermark);
      if (r.next > pos) {
        pos = r.next;
        if (pos >= lso) return { records: [], next: pos };
        continue;
      }
      if (pos >= lso) return { records: [], next: pos };
      // No whole batch in the room given (only possible below the end if the room was tiny): more room.
      if (room >= MAX_FETCH_BYTES) throw logError('LOG_KAFKA_ERROR', `a fetch of ${kname}/${partition} at ${pos} returned no record batch in ${room} bytes below the end ${lso}`, { retriable: true });
      room = Math.min(room * 8, MAX_FETCH_BYTES);
    }
  }

  // ---------- topics ----------

  private writable(): void {
    if (this.readOnly) throw logError('LOG_READ_ONLY', 'this log handle is read-only');
    if (this.closed) throw logError('LOG_READ_ONLY', 'this log handle is closed');
  }

  async createTopic(name: string, config: TopicConfig): Promise<void> {
    this.writable();
    this.checkName(name);
    if (!Number.isInteger(config.partitions) || config.partitions < 1) throw logError('LOG_TOPIC_CONFIG', `topic ${name}: partitions must be a positive integer`);
    for (const [k, v] of [['retentionMs', config.retentionMs], ['retentionBytes', config.retentionBytes]] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw logError('LOG_TOPIC_CONFIG', `topic ${name}: ${k} must be a non-negative integer`);
    }
    const policy = config.compaction ? (config.retentionMs !== undefined || config.retentionBytes !== undefined ? 'compact,delete' : 'compact') : 'delete';
    await this.create(this.kname(name), config.partitions, {
      'cleanup.policy': policy,
      // The log's topics keep records until told otherwise (Kafka's default is 7 days).
      'retention.ms': String(config.retentionMs ?? -1),
      'retention.bytes': String(config.retentionBytes ?? -1),
      'max.message.bytes': String(this.cfg.maxMessageBytes),
    });
  }

  private async create(kname: string, partitions: number, configs: Record<string, string>): Promise<void> {
    const replicationFactor = await this.replicationFactor();
    let created: boolean;
    try {
      created = await this.admin.createTopics({
        waitForLeaders: true,
        timeout: this.cfg.requestTimeout,
        topics: [{ topic: kname, numPartitions: partitions, replicationFactor, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
      });
    } catch (e) {
      const type = kafkaType(e);
      // On a cluster of several brokers, kafkajs's waitForLeaders asks a broker for the new topic's
      // metadata before the controller has propagated it there; that broker answers
      // UNKNOWN_TOPIC_OR_PARTITION, which kafkajs does not retry (only LEADER_NOT_AVAILABLE). The
      // topic was created (CreateTopics itself never answers that): wait for it below. Seen with
      // the 3-node cluster of test/peers/kafka-cluster.test.ts; a single broker is its own controller.
      if (type === 'UNKNOWN_TOPIC_OR_PARTITION') {
        await this.waitForLeaders(kname);
        return;
      }
      const text = (e as { errors?: { message?: string }[] }).errors?.[0]?.message ?? (e as Error).message;
      if (type === 'INVALID_TOPIC_EXCEPTION') throw logError('LOG_TOPIC_NAME', `Kafka refused the topic name ${kname}: ${text}`, { cause: e });
      if (type && /^(INVALID_PARTITIONS|INVALID_REPLICATION_FACTOR|INVALID_CONFIG|POLICY_VIOLATION|INVALID_REPLICA_ASSIGNMENT)$/.test(type)) throw logError('LOG_TOPIC_CONFIG', `Kafka refused topic ${kname} (${partitions} partitions, replication ${replicationFactor}, ${JSON.stringify(configs)}): ${type}: ${text}`, { cause: e });
      this.fail(e, `creating topic ${kname}`);
    }
    if (!created) throw logError('LOG_TOPIC_EXISTS', `topic ${kname} already exists`);
    await this.waitForLeaders(kname);
  }

  /**
   * Until the metadata shows topic `kname` with a leader for every partition (within
   * requestTimeout): the broker kafkajs asks for metadata may learn of a topic just created a
   * moment after the controller (see create).
   */
  private async waitForLeaders(kname: string): Promise<void> {
    const deadline = Date.now() + this.cfg.requestTimeout;
    for (;;) {
      const m = await this.metaOf(kname, true);
      if (m && m.leaders.length === m.partitions && m.leaders.every((l) => l >= 0)) return;
      if (Date.now() >= deadline) throw logError('LOG_KAFKA_ERROR', `topic ${kname} was created but its partitions have no leaders after ${this.cfg.requestTimeout} ms`, { retriable: true });
      await sleep(100);
    }
  }

  /** log.replicationFactor, or the brokers' default.replication.factor (CreateTopics v3, the newest kafkajs speaks, cannot ask for the default with -1). */
  private async replicationFactor(): Promise<number> {
    if (this.cfg.replicationFactor) return this.cfg.replicationFactor;
    if (this.replication) return this.replication;
    const brokers = (this.cluster.brokerPool.metadata as { brokers?: { nodeId: number }[] } | null)?.brokers ?? [];
    try {
      const res = await this.admin.describeConfigs({ includeSynonyms: false, resources: [{ type: this.kafkajs.ConfigResourceTypes.BROKER, name: String(brokers[0]?.nodeId ?? 1), configNames: ['default.replication.factor'] }] });
      const v = Number(res.resources[0]?.configEntries.find((c) => c.configName === 'default.replication.factor')?.configValue);
      this.replication = Number.isInteger(v) && v > 0 ? v : Math.min(3, Math.max(1, brokers.length));
    } catch {
      this.replication = Math.min(3, Math.max(1, brokers.length));
    }
    return this.replication;
  }

  async ensureTopic(name: string, config: TopicConfig): Promise<TopicInfo> {
    const have = await this.topicInfo(name);
    if (have) return have;
    try {
      await this.createTopic(name, config);
    } catch (e) {
      if ((e as SluiceError).code !== 'LOG_TOPIC_EXISTS') throw e;
    }
    // Another broker than the one that saw it created may not know the topic yet for a moment
    // (a cluster of several brokers; see create): look again for a while before calling it missing.
    const deadline = Date.now() + this.cfg.requestTimeout;
    for (;;) {
      const info = await this.topicInfo(name);
      if (info) return info;
      if (Date.now() >= deadline) throw this.missing(name);
      await sleep(100);
    }
  }

  async listTopics(): Promise<TopicInfo[]> {
    await this.refreshMeta().catch((e) => this.fail(e, 'listing topics'));
    const p = this.cfg.topicPrefix;
    const names = [...this.meta.keys()].filter((k) => k.startsWith(p) && k !== this.checkpointTopic && TOPIC_RE.test(k.slice(p.length)));
    const infos = await this.infos(names);
    return [...infos.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async topicInfo(name: string): Promise<TopicInfo | null> {
    if (!TOPIC_RE.test(name) || name === this.cfg.checkpointTopic) return null;
    const kname = this.kname(name);
    if (!(await this.metaOf(kname, true))) return null;
    return (await this.infos([kname])).get(kname) ?? null;
  }

  /** Topic infos from the topics' partitions and their cleanup.policy/retention configs. */
  private async infos(knames: string[]): Promise<Map<string, TopicInfo>> {
    const out = new Map<string, TopicInfo>();
    if (!knames.length) return out;
    let res: Awaited<ReturnType<Admin['describeConfigs']>>;
    try {
      res = await this.admin.describeConfigs({ includeSynonyms: false, resources: knames.map((name) => ({ type: this.kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy', 'retention.ms', 'retention.bytes'] })) });
    } catch (e) {
      // A topic deleted between the metadata and this request: look again without it.
      if (kafkaType(e) === 'UNKNOWN_TOPIC_OR_PARTITION' && knames.length > 1) {
        await this.refreshMeta();
        return this.infos(knames.filter((k) => this.meta.has(k)));
      }
      if (kafkaType(e) === 'UNKNOWN_TOPIC_OR_PARTITION') return out;
      this.fail(e, 'reading topic configs');
    }
    for (const r of res.resources) {
      const m = this.meta.get(r.resourceName);
      if (!m) continue;
      const get = (n: string) => r.configEntries.find((c) => c.configName === n)?.configValue;
      const policy = (get('cleanup.policy') ?? 'delete').split(',');
      const info: TopicInfo = { name: r.resourceName.slice(this.cfg.topicPrefix.length), partitions: m.partitions };
      if (policy.includes('delete')) {
        const ms = Number(get('retention.ms'));
        const bytes = Number(get('retention.bytes'));
        if (Number.isFinite(ms) && ms >= 0) info.retentionMs = ms;
        if (Number.isFinite(bytes) && bytes >= 0) info.retentionBytes = bytes;
      }
      if (policy.includes('compact')) info.compaction = true;
      out.set(r.resourceName, info);
    }
    return out;
  }

  async offsets(topic: string): Promise<PartitionOffsets[]> {
    const m = await this.topicMeta(topic);
    const kname = this.kname(topic);
    const parts = Array.from({ length: m.partitions }, (_, partition) => ({ kname, partition }));
    const [starts, ends] = await Promise.all([this.listOffsets(parts, EARLIEST, READ_UNCOMMITTED), this.listOffsets(parts, LATEST, READ_COMMITTED)]);
    return parts.map(({ partition }) => {
      const end = ends.get(partKey(kname, partition)) ?? 0;
      return { partition, start: Math.min(starts.get(partKey(kname, partition)) ?? 0, end), end };
    });
  }

  // ---------- writing ----------

  async openProducer(id: string): Promise<{ producer: Producer; checkpoint: string | null }> {
    this.writable();
    await this.ensureCheckpointTopic();
    // Appends are synchronous and look topics up in the metadata: load what exists now.
    await this.refreshMeta().catch((e) => this.fail(e, `opening producer ${id}`));
    const producer = new KafkaProducer(this, id);
    // Fences an earlier producer of this id: its open transaction is aborted before this returns.
    await producer.open();
    this.producers.add(producer);
    try {
      const checkpoint = await this.readCheckpoint(id);
      producer.lastCommitted = checkpoint;
      return { producer, checkpoint };
    } catch (e) {
      await producer.close();
      throw e;
    }
  }

  /** @internal */ producerClosed(p: KafkaProducer): void {
    this.producers.delete(p);
  }

  /** @internal The Kafka topic of the checkpoints, for the producer. */
  get checkpointKname(): string {
    return this.checkpointTopic;
  }

  /**
   * The compacted topic holding each producer's checkpoint (key: producer id), written in the
   * producer's transactions as Kafka Connect's exactly-once sources write their offsets topic
   * (KIP-618). One partition, so a reader finds an id's record by reading one partition; compacted,
   * with segments rolled every 10 minutes so the cleaner keeps it near one record per id.
   */
  private async ensureCheckpointTopic(): Promise<void> {
    if (this.checkpointReady) return;
    if (!(await this.metaOf(this.checkpointTopic))) {
      try {
        await this.create(this.checkpointTopic, 1, {
          'cleanup.policy': 'compact',
          'segment.ms': '600000',
          'min.cleanable.dirty.ratio': '0.1',
          'max.message.bytes': String(this.cfg.maxMessageBytes),
        });
      } catch (e) {
        if ((e as SluiceError).code !== 'LOG_TOPIC_EXISTS') throw e;
        await this.metaOf(this.checkpointTopic, true);
      }
    }
    this.checkpointReady = true;
  }

  /**
   * The last committed checkpoint of producer `id`: the value of the newest committed record keyed
   * `id` in the checkpoint topic. Read read_committed up to the topic's LSO; past it, another
   * producer's transaction is still open (a writer that died mid-commit holds it open until its
   * transaction timeout), and later transactions of this id may be committed behind it, so the rest
   * up to the high watermark is read uncommitted and each record of `id` taken once its commit
   * marker follows. This producer's own earlier transactions are all decided by now: opening it
   * aborted any that was open.
   */
  /** @internal The checkpoint of producer `id`'s newest committed transaction, for a producer deciding an interrupted commit. */
  checkpointOf(id: string): Promise<string | null> {
    return this.readCheckpoint(id);
  }

  private async readCheckpoint(id: string): Promise<string | null> {
    const kname = this.checkpointTopic;
    const part = [{ kname, partition: 0 }];
    const k = partKey(kname, 0);
    const [start, lso, hw] = await Promise.all([
      this.listOffsets(part, EARLIEST, READ_UNCOMMITTED).then((m) => m.get(k) ?? 0),
      this.listOffsets(part, LATEST, READ_COMMITTED).then((m) => m.get(k) ?? 0),
      this.listOffsets(part, LATEST, READ_UNCOMMITTED).then((m) => m.get(k) ?? 0),
    ]);
    const key = Buffer.from(id);
    let value: string | null = null;
    let pos = start;
    while (pos < lso) {
      const r = await this.readCommitted(this.cfg.checkpointTopic, kname, 0, pos, 4 << 20);
      for (const rec of r.records) if (rec.key?.equals(key)) value = rec.value?.toString() ?? null;
      if (r.next <= pos) break;
      pos = r.next;
    }
    const pending = new Map<string, string | null>();
    while (pos < hw) {
      const p = await this.fetchOne(kname, 0, pos, 4 << 20, READ_UNCOMMITTED);
      if (!p.messages.length) break;
      for (const m of p.messages) {
        if (Number(m.offset) < pos) continue;
        const producer = m.batchContext.producerId;
        if (m.isControlRecord) {
          if (pending.has(producer) && isCommitMarker(m)) value = pending.get(producer)!;
          pending.delete(producer);
        } else if (m.key?.equals(key)) {
          if (m.batchContext.inTransaction) pending.set(producer, m.value?.toString() ?? null);
          else value = m.value?.toString() ?? null;
        }
      }
      const next = batchEnd(p.messages[p.messages.length - 1]);
      if (next <= pos) break;
      pos = next;
    }
    return value;
  }

  /**
   * @internal Resolves once the last stable offset of every partition a commit wrote is past the
   * commit's records. EndTxn returns when the broker has decided the commit; it writes the commit
   * markers, which move the LSO, just after (milliseconds), so without this wait a reader could miss
   * a commit whose `commit()` already resolved. The commit is durable whatever happens here, so this
   * never fails, and it gives up after VISIBLE_WAIT_MS: an older transaction of another producer
   * still open in the partition (one that died mid-commit, until its transaction timeout) holds the
   * LSO back, and no waiting here would help. (The checkpoint partition is not waited for:
   * `readCheckpoint` reads past the LSO.)
   */
  async waitVisible(ends: Map<string, { kname: string; partition: number; last: number }>): Promise<void> {
    const left = new Map(ends);
    const deadline = Date.now() + Math.min(this.cfg.requestTimeout, VISIBLE_WAIT_MS);
    for (let delay = 1; left.size && !this.closed; delay = Math.min(delay * 2, 50)) {
      const lso = await this.listOffsets([...left.values()], LATEST, READ_COMMITTED).catch(() => null);
      if (lso) for (const [k, e] of left) if ((lso.get(k) ?? -1) > e.last) left.delete(k);
      if (!left.size || Date.now() > deadline) break;
      await sleep(delay);
    }
    this.watcher.kick();
  }

  // ---------- reading ----------

  async read(topic: string, partition: number, offset: number, maxBytes = 1 << 20): Promise<ReadResult> {
    await this.partMeta(topic, partition);
    return this.readCommitted(topic, this.kname(topic), partition, offset, maxBytes);
  }

  async waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<void> {
    await this.partMeta(topic, partition);
    return this.watcher.wait(this.kname(topic), partition, offset, timeoutMs);
  }

  openConsumer(): Consumer {
    return new ReadConsumer(this);
  }

  // ---------- consumer groups ----------

  private groupId(group: string): string {
    return this.cfg.topicPrefix + group;
  }

  /**
   * Commits with OffsetCommit as a consumer outside group management does (generation -1, no
   * member id), which Kafka accepts for a group without active members: Sluice's groups never have
   * members, they only hold offsets. (kafkajs's admin.setOffsets would run a whole group consumer.)
   */
  async commitOffsets(group: string, offsets: { topic: string; partition: number; offset: number }[]): Promise<void> {
    if (!offsets.length) return;
    const groupId = this.groupId(group);
    const topics = new Map<string, { partition: number; offset: string }[]>();
    for (const o of offsets) {
      const list = topics.get(this.kname(o.topic)) ?? [];
      list.push({ partition: o.partition, offset: String(o.offset) });
      topics.set(this.kname(o.topic), list);
    }
    await this.retrying(`committing offsets of group ${group}`, async () => {
      const coordinator = await this.cluster.findGroupCoordinator({ groupId });
      await coordinator.offsetCommit({ groupId, groupGenerationId: -1, memberId: '', topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) });
    });
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const m = TOPIC_RE.test(topic) ? await this.metaOf(this.kname(topic)) : null;
    if (!m) return out;
    const groupId = this.groupId(group);
    const res = await this.retrying(`reading offsets of group ${group}`, async () => {
      const coordinator = await this.cluster.findGroupCoordinator({ groupId });
      return coordinator.offsetFetch({ groupId, topics: [{ topic: this.kname(topic), partitions: Array.from({ length: m.partitions }, (_, partition) => ({ partition })) }] });
    });
    for (const t of res.responses) for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(p.partition, Number(p.offset));
    return out;
  }

  /** A member of a consumer group with membership (the sinks' scale-out; group.ts). */
  joinGroup(group: string): GroupMember {
    return new KafkaGroupMember(
      this.kafkajs,
      this.cluster,
      this.groupId(group),
      group,
      this.cfg.brokers,
      { sessionTimeoutMs: this.cfg.groupSessionTimeout, rebalanceTimeoutMs: this.cfg.groupRebalanceTimeout, heartbeatMs: Math.max(200, Math.floor(this.cfg.groupSessionTimeout / 5)) },
      (t) => this.kname(t),
      (kn) => (kn.startsWith(this.cfg.topicPrefix) ? kn.slice(this.cfg.topicPrefix.length) : null),
      async (t) => (await this.metaOf(this.kname(t), true))?.partitions ?? null,
    );
  }

  async listGroups(): Promise<string[]> {
    let groups: { groupId: string }[];
    try {
      groups = (await this.admin.listGroups()).groups;
    } catch (e) {
      this.fail(e, 'listing consumer groups');
    }
    const p = this.cfg.topicPrefix;
    return groups.filter((g) => g.groupId.startsWith(p)).map((g) => g.groupId.slice(p.length));
  }

  // ---------- retention ----------

  /**
   * Applies retention now, with DeleteRecords. The brokers apply each topic's retention.ms and
   * retention.bytes themselves, but only every log.retention.check.interval.ms (5 minutes by
   * default) and a whole segment at a time; this moves each partition's start to the first record
   * retention keeps, counting a record's key, value and headers as its size. The newest record of a
   * partition is always kept (as a broker keeps its active segment), and nothing at or past the
   * LSO is touched. Compaction is the brokers' log cleaner's: nothing to do here.
   */
  async enforceRetention(): Promise<void> {
    if (this.readOnly || this.closed) return;
    const now = Date.now();
    for (const info of await this.listTopics()) {
      if (info.retentionMs === undefined && info.retentionBytes === undefined) continue;
      const kname = this.kname(info.name);
      for (const o of await this.offsets(info.name)) {
        const cut = await this.retentionCut(info, kname, o, now);
        if (cut <= o.start) continue;
        await this.retrying(`deleting records of ${kname}/${o.partition}`, async (fresh) => {
          const broker = await this.leader(kname, o.partition, fresh);
          await broker.deleteRecords({ topics: [{ topic: kname, partitions: [{ partition: o.partition, offset: String(cut) }] }] });
        });
      }
    }
  }

  /** The first offset retention keeps in a partition (its start when nothing goes). */
  private async retentionCut(info: TopicInfo, kname: string, o: PartitionOffsets, now: number): Promise<number> {
    if (o.end <= o.start) return o.start;
    // The newest records, enough of them to hold retentionBytes (or just the newest one), read
    // from windows at the end that grow until they do.
    const want = info.retentionBytes ?? 0;
    let tail: StoredRecord[];
    for (let span = 256; ; span *= 4) {
      const from = Math.max(o.start, o.end - span);
      tail = [];
      for (let pos = from; pos < o.end; ) {
        const r = await this.readCommitted(info.name, kname, o.partition, pos, 1 << 20);
        tail.push(...r.records);
        if (r.next <= pos) break;
        pos = r.next;
      }
      const bytes = tail.reduce((n, r) => n + recordBytes(r), 0);
      if (from === o.start || (tail.length > 0 && bytes > want)) break;
    }
    if (!tail.length) return o.start;
    const newest = tail[tail.length - 1].offset;
    let cut = o.start;
    if (info.retentionBytes !== undefined) {
      let kept = 0;
      for (let i = tail.length - 1; i >= 0; i--) {
        kept += recordBytes(tail[i]);
        if (kept > info.retentionBytes) {
          cut = Math.max(cut, i + 1 < tail.length ? tail[i + 1].offset : newest);
          break;
        }
      }
    }
    if (info.retentionMs !== undefined) {
      // The first record at or after the cutoff time; none: every record is older.
      const at = (await this.listOffsets([{ kname, partition: o.partition }], now - info.retentionMs, READ_COMMITTED)).get(partKey(kname, o.partition)) ?? -1;
      cut = Math.max(cut, at < 0 ? newest : at);
    }
    return Math.min(cut, newest);
  }

  // ---------- closing ----------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    for (const p of [...this.producers]) await p.close().catch(() => {});
    await this.disconnectAll();
  }
}

export async function openKafkaLog(cfg: KafkaLogSettings, opts: KafkaLogOptions): Promise<KafkaLog> {
  const log = new KafkaLog(cfg, opts);
  await log.connect();
  return log;
}
