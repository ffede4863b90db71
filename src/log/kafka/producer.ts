/**
 * The kafka log's producer: a Kafka transactional producer whose transactional id is derived from
 * the producer id (`<topicPrefix>sluice-<id>`).
 *
 * - Opening it (InitProducerId) fences any earlier producer of the same id, in this process or
 *   another: Kafka aborts the earlier one's open transaction and refuses everything it sends later,
 *   so a restarted writer never races a zombie. The fenced one's next commit fails with
 *   LOG_PRODUCER_FENCED and it is closed.
 * - `commit(checkpoint)` sends what was appended plus one record {key: producer id, value:
 *   checkpoint} to the log's compacted checkpoint topic, then commits the Kafka transaction: records
 *   and checkpoint become durable together or not at all, as Kafka Connect's exactly-once source
 *   connectors store their offsets (KIP-618). It resolves once the commit is visible to readers
 *   (see KafkaLog.waitVisible).
 * - Records are buffered as they are appended and sent, inside the open transaction, once more
 *   than FLUSH_BYTES wait: memory stays bounded by that, not by the commit size, and nothing is
 *   visible before the commit. Sends and commits run one after another in call order (`chain`);
 *   records appended while a commit is in flight go to the next transaction.
 * - Any failure of Kafka while sending or committing leaves the transaction's outcome to Kafka (it
 *   is aborted, or found committed when the id is opened again and its checkpoint read), so the
 *   producer reports the failure once (coded) and is closed: the writer reopens and resumes from
 *   the checkpoint `openProducer` returns.
 */
import type { Message, Producer as KjsProducer, Transaction } from 'kafkajs';
import type { SluiceError } from '../../core/errors.ts';
import { logError } from '../errors.ts';
import type { AppendRecord, Producer } from '../types.ts';
import { kafkaError, TS_HEADER } from './client.ts';
import type { KafkaLog } from './index.ts';
import { partKey } from './watcher.ts';

/** Appended bytes sent into the open transaction once this many wait. */
const FLUSH_BYTES = 1 << 20;
/**
 * Bytes per produce request. kafkajs puts a request's records for one partition into one record
 * batch, which a broker refuses above the topic's max.message.bytes (1 MiB by default for topics
 * Sluice did not create); a single larger record goes alone.
 */
const CHUNK_BYTES = 512 << 10;

interface Pending {
  kname: string;
  message: Message & { partition: number };
  bytes: number;
}

/** The records of one commit: appended since the previous `commit` call. */
class Batch {
  unsent: Pending[] = [];
  unsentBytes = 0;
  /** Some of its records went to Kafka already (the transaction must be aborted to drop them). */
  inKafka = false;
  /** Dropped by `abort`: sends not yet made are skipped. */
  dropped = false;
  /** The last offset written per partition (partKey), to wait for the commit to become visible. */
  readonly ends = new Map<string, { kname: string; partition: number; last: number }>();
}

export class KafkaProducer implements Producer {
  pendingBytes = 0;
  pendingRecords = 0;
  private batch = new Batch();
  /** Kafka work (sends, commits, aborts) in call order. */
  private chain: Promise<void> = Promise.resolve();
  private kp!: KjsProducer;
  private txn: Transaction | null = null;
  private closed = false;
  private failure: { error: SluiceError; reported: boolean } | null = null;

  constructor(
    private readonly log: KafkaLog,
    readonly id: string,
  ) {}

  /** Connects and initializes the transactional id, fencing any earlier producer of it. */
  async open(): Promise<void> {
    const k = this.log.kafkajs;
    this.kp = this.log.kafka.producer({
      transactionalId: this.log.transactionalId(this.id),
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.log.cfg.transactionTimeout,
      allowAutoTopicCreation: false,
      // Sluice always names the partition (Kafka's murmur2 of the key, src/log/partitioner.ts).
      createPartitioner: k.Partitioners.DefaultPartitioner,
    });
    try {
      await this.kp.connect();
      this.txn = await this.kp.transaction();
    } catch (e) {
      await this.kp.disconnect().catch(() => {});
      throw kafkaError(e, `opening producer ${this.id}`, this.log.cfg.brokers);
    }
  }

  append(topic: string, record: AppendRecord, partition?: number): number {
    this.usable();
    const { kname, partition: p } = this.log.partitionForAppend(topic, record.key, partition);
    const message = toMessage(record, p);
    const bytes = appendedBytes(record);
    const b = this.batch;
    b.unsent.push({ kname, message, bytes });
    b.unsentBytes += bytes;
    this.pendingBytes += bytes;
    this.pendingRecords++;
    if (b.unsentBytes >= FLUSH_BYTES) this.flush(b);
    return p;
  }

  /** Sends the batch's waiting records into the open transaction, after whatever is queued. */
  private flush(b: Batch): void {
    const records = b.unsent;
    b.unsent = [];
    b.unsentBytes = 0;
    this.chain = this.chain
      .then(() => (this.failure || b.dropped || this.closed ? undefined : this.send(b, records)))
      .catch((e) => this.fail(e));
  }

  async commit(checkpoint: string): Promise<void> {
    this.usable();
    const b = this.batch;
    this.batch = new Batch();
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    const done = this.chain.then(() => this.commitBatch(b, checkpoint));
    this.chain = done.catch(() => {});
    await done;
  }

  private async commitBatch(b: Batch, checkpoint: string): Promise<void> {
    if (this.failure) throw this.report();
    try {
      const ckpt: Pending = {
        kname: this.log.checkpointKname,
        message: { key: this.id, value: checkpoint, partition: 0, timestamp: String(Date.now()) },
        bytes: Buffer.byteLength(this.id) + Buffer.byteLength(checkpoint),
      };
      await this.send(b, [...b.unsent, ckpt]);
      await this.txn!.commit();
      this.txn = null;
    } catch (e) {
      this.fail(e);
      throw this.report();
    }
    b.ends.delete(partKey(this.log.checkpointKname, 0));
    await this.log.waitVisible(b.ends);
  }

  /** Sends records in the open transaction (beginning one when none is), in requests of about CHUNK_BYTES. */
  private async send(b: Batch, records: Pending[]): Promise<void> {
    this.txn ??= await this.kp.transaction();
    b.inKafka = true;
    for (let i = 0; i < records.length; ) {
      const byTopic = new Map<string, Message[]>();
      const counts = new Map<string, number>();
      let bytes = 0;
      for (; i < records.length && (bytes === 0 || bytes + records[i].bytes <= CHUNK_BYTES); i++) {
        const r = records[i];
        bytes += r.bytes + 1;
        const list = byTopic.get(r.kname) ?? [];
        list.push(r.message);
        byTopic.set(r.kname, list);
        const k = partKey(r.kname, r.message.partition);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      const res = await this.txn.sendBatch({
        acks: -1,
        timeout: this.log.cfg.requestTimeout,
        compression: this.log.kafkajs.CompressionTypes.None,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      for (const r of res) {
        const k = partKey(r.topicName, r.partition);
        const last = Number(r.baseOffset) + (counts.get(k) ?? 1) - 1;
        const prev = b.ends.get(k);
        if (!prev || prev.last < last) b.ends.set(k, { kname: r.topicName, partition: r.partition, last });
      }
    }
  }

  async abort(): Promise<void> {
    const b = this.batch;
    this.batch = new Batch();
    b.dropped = true;
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    // After the commits in flight: only what was appended since the last commit call is dropped.
    const done = this.chain.then(async () => {
      if (!b.inKafka || this.failure || !this.txn) return;
      try {
        await this.txn.abort();
        this.txn = null;
      } catch (e) {
        this.fail(e);
      }
    });
    this.chain = done.catch(() => {});
    await done;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.abort();
    this.closed = true;
    this.log.producerClosed(this);
    await this.kp.disconnect().catch(() => {});
  }

  /** Throws when the producer may not be used: closed, or failed (the failure itself the first time). */
  private usable(): void {
    if (this.closed) throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} is closed`);
    if (this.failure) throw this.report();
  }

  private report(): SluiceError {
    const f = this.failure!;
    if (!f.reported) {
      f.reported = true;
      return f.error;
    }
    return logError('LOG_PRODUCER_CLOSED', `producer ${this.id} is closed after an error: ${f.error.message}`);
  }

  /** Records the first failure; the transaction is aborted if Kafka still lets this producer (a fenced one it does not). */
  private fail(e: unknown): void {
    if (this.failure) return;
    this.failure = { error: kafkaError(e, `producer ${this.id}`, this.log.cfg.brokers), reported: false };
    const txn = this.txn;
    this.txn = null;
    if (txn?.isActive()) this.chain = this.chain.then(() => txn.abort()).catch(() => {});
  }
}

const lengthOf = (v: Buffer | string | null): number => (v === null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);

/** What an appended record counts for in pendingBytes: key, value and headers, as recordBytes counts a stored one. */
function appendedBytes(r: AppendRecord): number {
  let n = lengthOf(r.key) + lengthOf(r.value);
  if (r.headers) for (const [k, v] of Object.entries(r.headers)) n += k.length + v.length;
  return n;
}

/**
 * A kafkajs message for a record. Kafka timestamps are whole milliseconds from 1970; a timestamp
 * that is not (Sluice's sources write none) is kept exactly in header `sluice.ts`, which the log's
 * reads turn back into the record's timestamp.
 */
function toMessage(r: AppendRecord, partition: number): Message & { partition: number } {
  const ts = r.timestamp;
  const whole = Number.isSafeInteger(ts) && ts >= 0;
  const headers: Record<string, string> | undefined = whole ? r.headers : { ...r.headers, [TS_HEADER]: String(ts) };
  const m: Message & { partition: number } = { key: r.key, value: r.value, partition, timestamp: String(whole ? ts : Number.isFinite(ts) && ts > 0 ? Math.floor(ts) : 0) };
  if (headers && Object.keys(headers).length) m.headers = headers;
  return m;
}
