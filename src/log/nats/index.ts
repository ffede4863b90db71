/**
 * The NATS JetStream log backend (`log: { backend: nats }`). docs/log.md, section "NATS JetStream",
 * says what it guarantees and why it is built this way; in short:
 *
 * - one JetStream stream per partition (names.ts), so a partition's offsets are its stream's
 *   sequence numbers (offset = sequence − 1) and retention by bytes is per partition, as Kafka's;
 * - one KV bucket per log for topics, producers and consumer groups (state.ts); a commit is one
 *   compare-and-set update of the producer's entry there, and readers stop at open intents, so a
 *   commit is atomic across partitions for every reader that goes through this interface
 *   (producer.ts, view.ts);
 * - offsets have gaps where aborted commits' records were deleted, and where a large value took
 *   several messages (codec.ts): denseOffsets is false;
 * - compaction is the log's own cleaner (compactor.ts), run by enforceRetention: it deletes, with
 *   JetStream's per-message delete, records a later committed record of their key replaces, looking
 *   only below the committed end. (JetStream 2.9's own form of it, a per-subject message limit,
 *   drops a key's older record the moment a newer one is stored, committed or not, so a commit that
 *   is then aborted would take the key's committed value with it.)
 */
import type { KV, StreamInfo } from 'nats';
import { ReadConsumer } from '../consumer.ts';
import { logError } from '../errors.ts';
import type { Consumer, Log, LogCapabilities, PartitionOffsets, Producer, ReadResult, StoredRecord, TopicConfig, TopicInfo } from '../types.ts';
import type { SluiceError } from '../../core/errors.ts';
import { JS_ERR, jsErrCode, NatsClient, type NatsClientOptions, type NatsModule } from './client.ts';
import { decodeMessage, type InMessage } from './codec.ts';
import { Compactor } from './compactor.ts';
import { Cursors, CURSOR_MIN } from './cursor.ts';
import { Names, validTopicName } from './names.ts';
import { NatsProducer } from './producer.ts';
import { encodeJson, parseProducer, parseTxn, type Intent, type ProducerEntry, type TopicEntry } from './state.ts';
import { LogView } from './view.ts';

export interface NatsLogOptions extends NatsClientOptions {
  namespace: string;
  replicas: number;
  defaultPartitions: number;
  /** The largest commit (bytes of keys, values and headers) a producer takes. */
  maxCommitBytes: number;
  /** An intent older than this is aborted by other writers (its producer died or hangs). */
  commitTimeoutMs: number;
  readOnly?: boolean;
  /** How often a writing handle applies time retention and aborts stale intents (0: never by itself). */
  retentionCheckMs?: number;
  /** Keys the compaction cleaner remembers per partition (compactor.ts; default 200,000). */
  compactionMaxKeys?: number;
}

/** A partition stream's state as a reader may use it. */
interface PartState {
  start: number;
  end: number;
  /** First sequence the stream still holds (0 when it never held one). */
  firstSeq: number;
  error?: SluiceError;
}

const NANOS_PER_MS = 1_000_000;
/** How long a compacted topic keeps a tombstone by default (Kafka's delete.retention.ms, as the embedded log). */
const TOMBSTONE_RETENTION_MS = 24 * 3600_000;

export class NatsLog implements Log {
  readonly backend = 'nats';
  readonly capabilities: LogCapabilities;
  readonly names: Names;
  readonly readOnly: boolean;
  readonly maxCommitBytes: number;
  /** Per partition stream: the highest committed end this handle has seen (ends never move back). */
  private readonly endCache = new Map<string, number>();
  private readonly producers = new Set<NatsProducer>();
  /** Deletions of aborted commits' records under way. */
  private readonly background = new Set<Promise<void>>();
  private batch: { streams: Set<string>; done: Promise<Map<string, PartState>> } | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  /** Average bytes per record read, to size read-ahead. */
  private avgRecord = 1024;
  private readonly cursors: Cursors;
  private readonly compactor: Compactor;
  /** The compaction run under way (runs one at a time). */
  private cleaning: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly client: NatsClient,
    readonly kv: KV,
    readonly view: LogView,
    readonly o: NatsLogOptions,
  ) {
    this.names = new Names(o.namespace);
    this.readOnly = o.readOnly ?? false;
    this.maxCommitBytes = o.maxCommitBytes;
    this.cursors = new Cursors(client);
    this.compactor = new Compactor(client, { maxKeys: o.compactionMaxKeys, isAborted: (k, e, c) => view.isAborted(k, e, c) });
    this.capabilities = { atomicMultiPartition: true, maxCommitBytes: o.maxCommitBytes, maxCommitRecords: null, compaction: true, denseOffsets: false, concurrentReaders: true };
  }

  static async open(nats: NatsModule, o: NatsLogOptions): Promise<NatsLog> {
    const client = await NatsClient.connect(nats, o);
    try {
      const names = new Names(o.namespace);
      // A read-only handle creates nothing: no bucket, no log.
      if (o.readOnly && !(await client.streamInfoOrNull(`KV_${names.bucket}`))) {
        throw logError('LOG_MISSING', `no Sluice log in namespace ${o.namespace} on the NATS servers ${client.servers} (its KV bucket ${names.bucket} does not exist): run the pipeline first, or check log.namespace`);
      }
      const kv = await client.kv(names.bucket, { replicas: o.replicas, bindOnly: !!o.readOnly });
      const view = new LogView(client, kv, names.bucket);
      await view.start();
      const log = new NatsLog(client, kv, view, o);
      const every = o.retentionCheckMs ?? 60_000;
      if (!log.readOnly && every > 0) {
        log.retentionTimer = setInterval(() => void log.enforceRetention().catch(() => {}), every);
        log.retentionTimer.unref();
      }
      return log;
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  streamOf(topic: string, partition: number): string {
    return this.names.stream(topic, partition);
  }

  subjectOf(topic: string, partition: number): string {
    return this.names.subject(topic, partition);
  }

  private where(): string {
    return `namespace ${this.o.namespace} on ${this.client.servers}`;
  }

  // ---------- topics ----------

  private checkName(name: string): void {
    if (!validTopicName(name)) throw logError('LOG_TOPIC_NAME', `topic name ${JSON.stringify(name)} is not valid: use letters, digits, '.', '_' and '-' (at most 249), other than '.' and '..'`);
  }

  /** The topic's entry: from this handle's copy, else from the bucket (topics never change once created). */
  private async topicOrNull(name: string): Promise<TopicEntry | null> {
    const key = this.names.topicKey(name);
    const known = this.view.topics.get(key);
    if (known) return known.entry;
    const e = await this.client.call(`looking up topic ${name}`, () => this.kv.get(key));
    if (!e || e.operation !== 'PUT') return null;
    this.view.apply(key, e.value, e.revision);
    return this.view.topics.get(key)?.entry ?? null;
  }

  private async topic(name: string): Promise<TopicEntry> {
    const t = await this.topicOrNull(name);
    if (!t) throw logError('LOG_TOPIC_MISSING', `topic ${name} does not exist in the log (${this.where()}); see the topics with: sluice status`);
    return t;
  }

  /** @internal The topic as the producer appends to it: from this handle's copy only (append is synchronous). */
  topicForAppend(name: string): TopicEntry {
    const t = this.view.topics.get(this.names.topicKey(name));
    if (!t) throw logError('LOG_TOPIC_MISSING', `topic ${name} does not exist in the log (${this.where()}); create it first (ensureTopic)`);
    return t.entry;
  }

  private partitionCheck(t: TopicEntry, partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.partitions) throw logError('LOG_PARTITION_MISSING', `topic ${t.name} has partitions 0..${t.partitions - 1}, not ${partition}`);
  }

  async createTopic(name: string, config: TopicConfig): Promise<void> {
    if (this.readOnly) throw logError('LOG_READ_ONLY', 'this log handle is read-only');
    this.checkName(name);
    if (!Number.isInteger(config.partitions) || config.partitions < 1 || config.partitions > 4096) throw logError('LOG_TOPIC_CONFIG', `topic ${name}: partitions must be an integer from 1 to 4096, not ${config.partitions}`);
    for (const k of ['retentionMs', 'retentionBytes'] as const) {
      const v = config[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw logError('LOG_TOPIC_CONFIG', `topic ${name}: ${k} must be a positive integer, not ${v}`);
    }
    const tomb = config.tombstoneRetentionMs;
    if (tomb !== undefined && (!Number.isInteger(tomb) || tomb < 0)) throw logError('LOG_TOPIC_CONFIG', `topic ${name}: tombstoneRetentionMs must be an integer of 0 or more, not ${tomb}`);
    if (await this.topicOrNull(name)) throw logError('LOG_TOPIC_EXISTS', `topic ${name} already exists`);
    const entry: TopicEntry = { name, partitions: config.partitions };
    if (config.retentionMs !== undefined) entry.retentionMs = config.retentionMs;
    if (config.retentionBytes !== undefined) entry.retentionBytes = config.retentionBytes;
    if (config.compaction) entry.compaction = true;
    if (config.compaction && tomb !== undefined) entry.tombstoneRetentionMs = tomb;
    // The streams first, the entry last: a topic is listed once all its partitions exist (a
    // creation cut short leaves streams that the next attempt takes over).
    await Promise.all(Array.from({ length: config.partitions }, (_, p) => this.ensureStream(name, p)));
    const key = this.names.topicKey(name);
    const value = encodeJson(entry);
    let rev: number;
    try {
      rev = await this.client.call(`creating topic ${name}`, () => this.kv.create(key, value));
    } catch (e) {
      if (jsErrCode((e as SluiceError).cause) === JS_ERR.WRONG_LAST_SEQUENCE) throw logError('LOG_TOPIC_EXISTS', `topic ${name} already exists (created by another writer just now)`);
      throw e;
    }
    this.view.apply(key, value, rev);
  }

  private async ensureStream(topic: string, partition: number): Promise<StreamInfo> {
    const cfg = {
      name: this.streamOf(topic, partition),
      subjects: [this.subjectOf(topic, partition)],
      description: `sluice log ${this.o.namespace}: topic ${topic}, partition ${partition}`,
      retention: 'limits' as const,
      storage: 'file' as const,
      num_replicas: this.o.replicas,
      discard: 'old' as const,
      // Retention is enforceRetention's, not the server's max_bytes and max_age: those would also
      // remove records of a commit in flight, and a partition's newest record.
      max_bytes: -1,
      max_age: 0,
      max_msgs: -1,
      max_msgs_per_subject: -1,
      max_msg_size: -1,
      duplicate_window: 120_000 * NANOS_PER_MS,
      allow_direct: false,
      deny_delete: false,
      deny_purge: false,
    };
    try {
      return await this.client.addStream(cfg as never);
    } catch (e) {
      // A stream left by a creation that was cut short, with other settings: take it over.
      if (jsErrCode((e as SluiceError).cause) === JS_ERR.STREAM_NAME_IN_USE) return this.client.updateStream(cfg as never);
      throw e;
    }
  }

  async ensureTopic(name: string, config: TopicConfig): Promise<TopicInfo> {
    this.checkName(name);
    const t = await this.topicOrNull(name);
    if (t) return { ...t };
    try {
      await this.createTopic(name, config);
    } catch (e) {
      if ((e as SluiceError).code !== 'LOG_TOPIC_EXISTS') throw e;
    }
    return { ...(await this.topic(name)) };
  }

  async listTopics(): Promise<TopicInfo[]> {
    await this.view.sync();
    return [...this.view.topics.values()].map((t) => ({ ...t.entry })).sort((a, b) => a.name.localeCompare(b.name));
  }

  async topicInfo(name: string): Promise<TopicInfo | null> {
    const t = await this.topicOrNull(name);
    return t ? { ...t } : null;
  }

  // ---------- committed ends ----------

  /**
   * The states of partition streams. Calls made in the same tick share one round of requests and
   * one look at the producers' intents, so the ends they return are of one moment (a commit is in
   * all of them or in none).
   */
  private partStates(streams: string[]): Promise<Map<string, PartState>> {
    if (!this.batch) {
      const b = { streams: new Set<string>(), done: null as unknown as Promise<Map<string, PartState>> };
      b.done = new Promise<void>((r) => setImmediate(r)).then(() => {
        this.batch = null;
        return this.fetchStates([...b.streams]);
      });
      this.batch = b;
    }
    for (const s of streams) this.batch.streams.add(s);
    return this.batch.done;
  }

  private async fetchStates(streams: string[]): Promise<Map<string, PartState>> {
    const infos = await Promise.all(streams.map((s) => this.client.streamInfoOrNull(s).catch((e: SluiceError) => e)));
    // Sync after the stream infos: every intent covering records they count is then known.
    let grew = false;
    for (let i = 0; i < streams.length; i++) {
      const info = infos[i];
      if (info && !(info instanceof Error) && info.state.last_seq > (this.endCache.get(streams[i]) ?? 0)) grew = true;
    }
    if (grew) await this.view.sync();
    // The infos are not taken at one instant: a commit may complete after one stream's info and
    // before another's, and the ends would then show part of it. Streams whose info predates the
    // end of a completed commit the view now knows are asked again (and the view synced again,
    // for intents stored meanwhile), until the infos agree with every completed commit; bounded.
    for (let round = 0; round < 5; round++) {
      const stale = streams.flatMap((s, i) => {
        const info = infos[i];
        return info && !(info instanceof Error) && this.view.doneEnd(s) > info.state.last_seq ? [i] : [];
      });
      if (!stale.length) break;
      const again = await Promise.all(stale.map((i) => this.client.streamInfoOrNull(streams[i]).catch((e: SluiceError) => e)));
      stale.forEach((i, j) => (infos[i] = again[j]));
      await this.view.sync();
    }
    const out = new Map<string, PartState>();
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i];
      const info = infos[i];
      if (info instanceof Error) {
        out.set(s, { start: 0, end: 0, firstSeq: 0, error: info as SluiceError });
        continue;
      }
      if (!info) {
        out.set(s, { start: 0, end: 0, firstSeq: 0, error: logError('LOG_CORRUPT', `the JetStream stream ${s} (${this.where()}) is missing though its topic exists: it was deleted outside Sluice, and its records with it. Recreate the log (a new log.namespace) and re-snapshot the source`) });
        continue;
      }
      const last = info.state.last_seq;
      // Not past an open intent, nor into a commit that completed between the info and the sync.
      const end = Math.max(this.endCache.get(s) ?? 0, Math.min(last, this.view.intentStart(s), this.view.halfCommitStart(s, last)));
      this.endCache.set(s, end);
      const first = info.state.first_seq;
      out.set(s, { start: Math.min(Math.max(first - 1, 0), end), end, firstSeq: first });
    }
    return out;
  }

  private async partState(stream: string): Promise<PartState> {
    const st = (await this.partStates([stream])).get(stream)!;
    if (st.error) throw st.error;
    return st;
  }

  /** @internal The committed end this handle last saw for a stream (0 when none). */
  visibleEnd(stream: string): number {
    return this.endCache.get(stream) ?? 0;
  }

  /** @internal Each stream's current end (its last sequence), committed or not. */
  async currentEnds(streams: string[]): Promise<Map<string, number>> {
    const infos = await Promise.all(streams.map((s) => this.client.streamInfo(s)));
    return new Map(streams.map((s, i) => [s, infos[i].state.last_seq]));
  }

  async offsets(topic: string): Promise<PartitionOffsets[]> {
    const t = await this.topic(topic);
    const streams = Array.from({ length: t.partitions }, (_, p) => this.streamOf(topic, p));
    const states = await this.partStates(streams);
    return streams.map((s, partition) => {
      const st = states.get(s)!;
      if (st.error) throw st.error;
      return { partition, start: st.start, end: st.end };
    });
  }

  // ---------- writing ----------

  async openProducer(id: string): Promise<{ producer: Producer; checkpoint: string | null }> {
    if (this.readOnly) throw logError('LOG_READ_ONLY', 'this log handle is read-only');
    const key = this.names.producerKey(id);
    const { entry, rev } = await this.takeOver(key);
    const producer = new NatsProducer(this, id, key, entry, rev);
    this.producers.add(producer);
    return { producer, checkpoint: entry.checkpoint };
  }

  /** Opens a producer's entry for a new owner: a new epoch (fencing the old one), its unfinished commit aborted. */
  private async takeOver(key: string): Promise<{ entry: ProducerEntry; rev: number }> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.client.call('reading a producer', () => this.kv.get(key));
      if (cur && cur.operation === 'PUT') {
        const r = await this.abortIntent(key, { fence: true, rev: cur.revision });
        if (r) return r;
      } else {
        const entry: ProducerEntry = { epoch: 1, commit: 0, checkpoint: null, intent: null };
        try {
          const rev = await this.client.call('creating a producer', () => (cur ? this.kv.update(key, encodeJson(entry), cur.revision) : this.kv.create(key, encodeJson(entry))));
          this.view.apply(key, encodeJson(entry), rev);
          return { entry, rev };
        } catch (e) {
          if (jsErrCode((e as SluiceError).cause) !== JS_ERR.WRONG_LAST_SEQUENCE) throw e;
        }
      }
      // Another writer opened the same id at the same moment: read again (the last one wins).
      if (attempt > 20) throw logError('LOG_NATS_ERROR', `producer entry ${key} keeps changing while it is opened: several writers open the same producer id at once`, { retriable: true });
    }
  }

  /**
   * Aborts a producer's unfinished commit. First a compare-and-set update (with `fence`, a new
   * epoch) that keeps the intent, so the old producer can no longer complete it and readers still
   * stop there; then a key marking the commit aborted (readers skip its records); then an update
   * clearing the intent. The commit's records are deleted afterwards, in the background: until
   * then, and for records a fenced producer still publishes, the mark hides them. With `rev`, acts
   * only while the entry is at that revision; with `intent`, only while that commit is the one in
   * flight. Returns the entry and revision reached, or null when the entry changed under it.
   */
  async abortIntent(key: string, o: { fence: boolean; rev?: number; intent?: { epoch: number; commit: number } }): Promise<{ entry: ProducerEntry; rev: number } | null> {
    const cur = await this.client.call('reading a producer', () => this.kv.get(key));
    if (!cur || cur.operation !== 'PUT' || (o.rev !== undefined && cur.revision !== o.rev)) return null;
    let [entry, rev] = [parseProducer(cur.value), cur.revision];
    const intent = entry.intent;
    if (o.intent && !(intent && intent.epoch === o.intent.epoch && intent.commit === o.intent.commit)) return null;
    if (!intent && !o.fence) return { entry, rev };
    if (o.fence) {
      entry = { ...entry, epoch: entry.epoch + 1 };
      const r = await this.cas(key, entry, rev);
      if (r === null) return null;
      rev = r;
    }
    if (intent) {
      const aborted = this.names.abortedKey(key, intent.epoch, intent.commit);
      const value = encodeJson({ at: Date.now(), parts: intent.parts });
      const ar = await this.client.call('marking a commit aborted', () => this.kv.put(aborted, value));
      this.view.apply(aborted, value, ar);
      entry = { ...entry, intent: null };
      const r = await this.cas(key, entry, rev);
      if (r === null) return null;
      rev = r;
      const deleting = this.deleteRecordsOf(key, intent).catch(() => {});
      this.background.add(deleting);
      void deleting.finally(() => this.background.delete(deleting));
    }
    return { entry, rev };
  }

  /** A compare-and-set update of a producer entry; null when the entry is at another revision. */
  private async cas(key: string, entry: ProducerEntry, rev: number): Promise<number | null> {
    const value = encodeJson(entry);
    try {
      const r = await this.client.call('updating a producer', () => this.kv.update(key, value, rev));
      this.view.apply(key, value, r);
      return r;
    } catch (e) {
      if (jsErrCode((e as SluiceError).cause) === JS_ERR.WRONG_LAST_SEQUENCE) return null;
      throw e;
    }
  }

  /** @internal The producer's update: the new revision, or `fenced()` thrown when the entry moved on. */
  async casProducer(key: string, entry: ProducerEntry, rev: number, fenced: () => SluiceError): Promise<number> {
    const r = await this.cas(key, entry, rev);
    if (r === null) throw fenced();
    return r;
  }

  /** Deletes the records an unfinished commit published (they lie after its intent's offsets). */
  private async deleteRecordsOf(key: string, intent: Intent): Promise<void> {
    for (const [stream, start] of Object.entries(intent.parts)) {
      const info = await this.client.streamInfoOrNull(stream);
      if (!info) continue;
      const last = info.state.last_seq;
      const window = 64;
      for (let seq = Math.max(start + 1, info.state.first_seq); seq <= last && !this.closed; seq += window) {
        const seqs = Array.from({ length: Math.min(window, last - seq + 1) }, (_, i) => seq + i);
        await Promise.all(
          seqs.map(async (s) => {
            const m = await this.client.getMessage(stream, s);
            const txn = m ? parseTxn(m.header?.has('Sluice-Txn') ? m.header.get('Sluice-Txn') : undefined) : null;
            // Not the stream's first message: deleting that would move the partition's start, and
            // a reader there would be told its offset went to retention. It stays, skipped.
            if (txn && txn.producerKey === key && txn.epoch === intent.epoch && txn.commit === intent.commit && s !== info.state.first_seq) await this.client.deleteMessage(stream, s);
          }),
        );
      }
    }
  }

  /** @internal */ producerClosed(p: NatsProducer): void {
    this.producers.delete(p);
  }

  // ---------- reading ----------

  async read(topic: string, partition: number, offset: number, maxBytes = 1 << 20): Promise<ReadResult> {
    const t = await this.topic(topic);
    this.partitionCheck(t, partition);
    const stream = this.streamOf(topic, partition);
    const st = await this.partState(stream);
    if (offset < st.start) throw logError('LOG_OFFSET_OUT_OF_RANGE', `offset ${offset} of ${topic}/${partition} is no longer in the log (retention); the earliest available offset is ${st.start}`);
    if (offset >= st.end) return { records: [], next: offset };
    return this.readRange(topic, partition, stream, offset, st.end, maxBytes);
  }

  /** Records at offsets [offset, end) (all committed), at least one if there is any, about maxBytes. */
  private async readRange(topic: string, partition: number, stream: string, offset: number, end: number, maxBytes: number): Promise<ReadResult> {
    const records: StoredRecord[] = [];
    let bytes = 0;
    let pos = offset;
    // Messages by sequence (null: none there): what a cursor kept from the read before, then
    // batches from the cursor, then single gets for whatever it did not cover.
    const cursor = this.cursors.take(stream, offset + 1);
    const fetched = cursor?.buffer ?? new Map<number, InMessage | null>();
    let consumer = cursor;
    const fetch = async (from: number, n: number): Promise<void> => {
      if (!fetched.has(from) && n >= CURSOR_MIN) {
        consumer ??= await this.cursors.open(stream, from).catch(() => undefined);
        if (consumer && consumer.next === from) await this.cursors.fill(consumer, fetched, n, end);
        else consumer = undefined;
      }
      const seqs: number[] = [];
      for (let s = from; s < from + n; s++) if (!fetched.has(s)) seqs.push(s);
      const msgs = await Promise.all(seqs.map((s) => this.client.getMessage(stream, s)));
      seqs.forEach((s, i) => fetched.set(s, msgs[i] ? decodeMessage(msgs[i]!) : null));
    };
    // The cursor, with what it fetched past the records returned, waits for the read at `next`.
    const keep = (next: number): ReadResult => {
      if (consumer) this.cursors.put(stream, consumer, next + 1, fetched);
      return { records, next };
    };
    while (pos < end && (records.length === 0 || bytes < maxBytes)) {
      const n = Math.min(end - pos, Math.max(1, Math.min(128, Math.ceil((maxBytes - bytes) / this.avgRecord))));
      await fetch(pos + 1, n);
      for (let o = pos; o < pos + n; o++) {
        const m = fetched.get(o + 1)!;
        if (m === null || (m.part && m.part.index < m.part.count - 1) || (m.txn && this.view.isAborted(m.txn.producerKey, m.txn.epoch, m.txn.commit))) continue;
        let value = m.value;
        if (m.part) {
          value = await this.joinChunks(stream, m, fetched);
          // Retention removed its first chunks: the record is gone as a whole.
          if (value === null) continue;
        }
        const rec: StoredRecord = { topic, partition, offset: o, key: m.key, value, timestamp: m.timestamp };
        if (m.headers) rec.headers = m.headers;
        records.push(rec);
        const size = (m.key?.length ?? 0) + (value?.length ?? 0);
        bytes += size;
        this.avgRecord = Math.max(16, Math.round(this.avgRecord * 0.9 + size * 0.1));
        if (bytes >= maxBytes) return keep(o + 1);
      }
      pos += n;
    }
    return keep(pos);
  }

  /**
   * The whole value of a record whose value was split: its other chunks come before it, in order
   * (other producers' records may lie between). Null when retention removed the first of them.
   */
  private async joinChunks(stream: string, last: InMessage, fetched: Map<number, InMessage | null>): Promise<Buffer | null> {
    const { count, record } = last.part!;
    const parts: Buffer[] = new Array(count);
    parts[count - 1] = last.value ?? Buffer.alloc(0);
    let want = count - 2;
    const same = (m: InMessage | null | undefined): m is InMessage => !!m?.txn && !!last.txn && m.txn.producerKey === last.txn.producerKey && m.txn.epoch === last.txn.epoch && m.txn.commit === last.txn.commit && m.part?.record === record;
    let first: number | undefined;
    for (let seq = last.seq - 1; want >= 0 && seq >= 1; seq--) {
      let m = fetched.get(seq);
      if (m === undefined) {
        const got = await this.client.getMessage(stream, seq);
        m = got ? decodeMessage(got) : null;
        if (m === null && seq < (first ??= (await this.client.streamInfo(stream)).state.first_seq)) return null;
      }
      if (same(m) && m.part!.index === want) parts[want--] = m.value ?? Buffer.alloc(0);
    }
    if (want >= 0) return null;
    return Buffer.concat(parts);
  }

  async waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<void> {
    const t = await this.topic(topic);
    this.partitionCheck(t, partition);
    const stream = this.streamOf(topic, partition);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await this.partState(stream)).end > offset || this.closed) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      // Commits are updates of the bucket, which the watch delivers; a second is the fallback.
      await this.view.changed(Math.min(left, 1000));
    }
  }

  openConsumer(): Consumer {
    return new ReadConsumer(this);
  }

  // ---------- consumer groups ----------

  async commitOffsets(group: string, offsets: { topic: string; partition: number; offset: number }[]): Promise<void> {
    const byTopic = new Map<string, { partition: number; offset: number }[]>();
    for (const o of offsets) (byTopic.get(o.topic) ?? byTopic.set(o.topic, []).get(o.topic)!).push(o);
    for (const [topic, list] of byTopic) {
      const key = this.names.groupKey(group, topic);
      for (let attempt = 0; ; attempt++) {
        const cur = await this.client.call(`reading offsets of group ${group}`, () => this.kv.get(key));
        const live = cur && cur.operation === 'PUT';
        const value: { group: string; topic: string; offsets: Record<string, number> } = live ? JSON.parse(Buffer.from(cur.value).toString('utf8')) : { group, topic, offsets: {} };
        for (const o of list) value.offsets[String(o.partition)] = o.offset;
        try {
          await this.client.call(`committing offsets of group ${group}`, () => (cur ? this.kv.update(key, encodeJson(value), cur.revision) : this.kv.create(key, encodeJson(value))));
          break;
        } catch (e) {
          // Another member committed meanwhile: merge with what it wrote.
          if (jsErrCode((e as SluiceError).cause) !== JS_ERR.WRONG_LAST_SEQUENCE || attempt > 20) throw e;
        }
      }
    }
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    const cur = await this.client.call(`reading offsets of group ${group}`, () => this.kv.get(this.names.groupKey(group, topic)));
    const m = new Map<number, number>();
    if (!cur || cur.operation !== 'PUT') return m;
    const value = JSON.parse(Buffer.from(cur.value).toString('utf8')) as { offsets: Record<string, number> };
    for (const [p, o] of Object.entries(value.offsets)) m.set(Number(p), o);
    return m;
  }

  async listGroups(): Promise<string[]> {
    await this.view.sync();
    const groups = new Set<string>();
    for (const k of this.view.groupKeys) {
      const g = this.names.groupOfKey(k);
      if (g !== null) groups.add(g);
    }
    return [...groups];
  }

  // ---------- retention ----------

  /**
   * Retention (by time and by bytes, per partition), aborting commits whose producer has left
   * them unfinished for log.commitTimeout, and compaction of compacted topics (compactor.ts).
   * Never removes a partition's last committed record, nor anything after it (a commit in flight);
   * compaction never removes a key's latest committed record (but an aged tombstone).
   */
  async enforceRetention(): Promise<void> {
    if (this.readOnly || this.closed) return;
    await this.view.sync();
    for (const i of this.view.staleIntents(this.o.commitTimeoutMs)) await this.abortIntent(i.key, { fence: true, intent: { epoch: i.epoch, commit: i.commit } });
    const now = Date.now();
    const topics = [...this.view.topics.values()].map((t) => t.entry);
    for (const t of topics) {
      if (t.retentionMs === undefined && t.retentionBytes === undefined) continue;
      for (let p = 0; p < t.partitions; p++) {
        const stream = this.streamOf(t.name, p);
        if (t.retentionMs !== undefined) await this.expire(stream, now - t.retentionMs);
        if (t.retentionBytes !== undefined) await this.trim(stream, t.retentionBytes);
      }
    }
    const compacted = topics.filter((t) => t.compaction);
    if (!compacted.length) return;
    // One run at a time (the periodic one and a caller's): a call returns after a run of its own.
    const run = this.cleaning.then(() => this.compact(compacted, now));
    this.cleaning = run.catch(() => {});
    await run;
  }

  /** Compacts every partition of the topics; the first failure is thrown once all were tried. */
  private async compact(topics: TopicEntry[], now: number): Promise<void> {
    let failure: unknown = null;
    for (const t of topics) {
      for (let p = 0; p < t.partitions && !this.closed; p++) {
        const stream = this.streamOf(t.name, p);
        try {
          // The committed end, as readers see it: nothing of a commit in flight, nor after it.
          const st = await this.partState(stream);
          await this.compactor.clean(stream, st, t.tombstoneRetentionMs ?? TOMBSTONE_RETENTION_MS, now, () => this.closed);
        } catch (e) {
          failure ??= e;
        }
      }
    }
    if (failure !== null) throw failure;
  }

  /** @internal For tests: what the compaction cleaner remembers of a partition. */
  compactionMemory(topic: string, partition: number): { scanned: number; keys: number } | null {
    return this.compactor.memory(this.streamOf(topic, partition));
  }

  /** Removes a partition's records stored before `cutoff`, except its last committed record. */
  private async expire(stream: string, cutoff: number): Promise<void> {
    const st = await this.partState(stream).catch(() => null);
    if (!st || st.end - st.start <= 1) return;
    // The first sequence stored at or after the cutoff, by bisection over [first, end]: the last
    // committed record (sequence `end`) always stays.
    let lo = Math.max(st.firstSeq, 1);
    let hi = st.end;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const t = await this.timeAtOrAfter(stream, mid, hi);
      if (t === null || t >= cutoff) hi = mid;
      else lo = mid + 1;
    }
    if (lo > st.firstSeq) await this.client.purgeBelow(stream, lo);
  }

  /**
   * Removes a partition's oldest records while it holds more than `max` bytes (as JetStream counts
   * them: subject, headers and value), except its last committed record. The stream's average
   * message size says how many of the newest to keep, which asks the server once, not per record.
   */
  private async trim(stream: string, max: number): Promise<void> {
    const info = await this.client.streamInfoOrNull(stream);
    if (!info || info.state.bytes <= max || info.state.messages === 0) return;
    const st = await this.partState(stream).catch(() => null);
    if (!st || st.end - st.start <= 1) return;
    const keep = Math.floor(max / (info.state.bytes / info.state.messages));
    const from = Math.min(info.state.last_seq - keep + 1, st.end);
    if (from > info.state.first_seq) await this.client.purgeBelow(stream, from);
  }

  /** When the first message at or after `seq` (up to `limit`) was stored, or null. */
  private async timeAtOrAfter(stream: string, seq: number, limit: number): Promise<number | null> {
    for (let s = seq; s <= limit; s++) {
      const m = await this.client.getMessage(stream, s);
      if (m) return m.time.getTime();
    }
    return null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    for (const p of [...this.producers]) await p.close().catch(() => {});
    await this.cleaning;
    await Promise.all(this.background);
    await this.cursors.close();
    await this.view.close();
    await this.client.close();
  }
}

export async function openNatsLog(nats: NatsModule, o: NatsLogOptions): Promise<NatsLog> {
  return NatsLog.open(nats, o);
}
