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
import { isRetriable, type SluiceError } from '../../core/errors.ts';
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
  private closing = false;
  /**
   * The first failure since the producer was last (re)opened. `recoverable`: Kafka said it may pass
   * (a broker or the transaction coordinator down, leaders moving), so the producer opens itself
   * again in place instead of staying closed (see recover).
   */
  private failure: { error: SluiceError; reported: boolean; recoverable: boolean } | null = null;
  /** @internal The checkpoint of the last commit known durable (set by openProducer, then by commits). */
  lastCommitted: string | null = null;

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
    if (this.failure) {
      // A send of this batch failed: its transaction is lost (opening again aborts it), the
      // commit fails; the producer is usable again if it could be reopened.
      const f = this.failure;
      if (f.recoverable && !this.closing) await this.recover();
      f.reported = true;
      throw f.error;
    }
    let committing = false;
    try {
      const ckpt: Pending = {
        kname: this.log.checkpointKname,
        message: { key: this.id, value: checkpoint, partition: 0, timestamp: String(Date.now()) },
        bytes: Buffer.byteLength(this.id) + Buffer.byteLength(checkpoint),
      };
      await this.send(b, [...b.unsent, ckpt]);
      committing = true;
      await this.txn!.commit();
      this.txn = null;
    } catch (e) {
      this.fail(e);
      const f = this.failure!;
      if (f.recoverable && !this.closing) {
        // Why: with one broker of a cluster killed, a commit fails with a connection error and
        // the engine retries its source with this same producer (test/peers/kafka-cluster.test.ts);
        // a producer that stayed closed failed that retry with LOG_PRODUCER_CLOSED and `sluice
        // run` exited. So the producer opens itself again (InitProducerId: Kafka completes this
        // transaction if the coordinator got its commit, aborts it otherwise) and reads its
        // checkpoint back to learn which: committed, the commit resolves; aborted, it fails
        // retriably and the writer resumes from its previous checkpoint, as it would after an
        // abort. Undecidable (reopening kept failing, or the checkpoint is the previous one
        // again), it stays closed as before: the outcome is found when the id is opened again.
        const reopened = await this.recover();
        if (reopened && committing && checkpoint !== this.lastCommitted) {
          let now: string | null | undefined;
          try {
            now = await this.log.checkpointOf(this.id);
          } catch {
            now = undefined;
          }
          if (now === checkpoint) {
            this.lastCommitted = checkpoint;
            b.ends.delete(partKey(this.log.checkpointKname, 0));
            await this.log.waitVisible(b.ends);
            return;
          }
          if (now === this.lastCommitted) {
            f.reported = true;
            throw f.error;
          }
        } else if (reopened && !committing) {
          f.reported = true;
          throw f.error;
        }
        f.recoverable = false;
        this.failure = f;
      }
      throw this.report();
    }
    this.lastCommitted = checkpoint;
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
      // One request per partition, so one broker per sendBatch. Why: kafkajs's sendMessages sends
      // a multi-broker batch as one request per leader and, when one of them fails retriably (a
      // broker that does not know a just-created topic yet, a leader moving), refreshes the
      // metadata and sends again to the brokers it has no response from, keyed by broker object,
      // which the refresh may replace: partitions already written go out again with new
      // sequence numbers, and Kafka keeps both copies in the transaction. On the 3-node cluster
      // of test/peers/kafka-cluster.test.ts that put hundreds of changes twice into the topics.
      // A failed single-partition request is resent with the same sequence, which the partition
      // (its leader, old or new) deduplicates.
      const res = [];
      for (const [topic, messages] of byTopic) {
        const byPartition = new Map<number, Message[]>();
        for (const m of messages as (Message & { partition: number })[]) {
          const list = byPartition.get(m.partition);
          if (list) list.push(m);
          else byPartition.set(m.partition, [m]);
        }
        for (const part of byPartition.values()) {
          res.push(
            ...(await this.txn.sendBatch({
              acks: -1,
              timeout: this.log.cfg.requestTimeout,
              compression: this.log.kafkajs.CompressionTypes.None,
              topicMessages: [{ topic, messages: part }],
            })),
          );
        }
      }
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
      // A send failed and Kafka may get over it: open again (which aborts the transaction), so the
      // writer's retry can use this producer.
      if (this.failure?.recoverable && !this.closing) await this.recover();
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
    this.closing = true;
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
    // Recoverable: the next abort opens the producer again; until then each use fails retriably.
    if (!f.reported || f.recoverable) {
      f.reported = true;
      return f.error;
    }
    return logError('LOG_PRODUCER_CLOSED', `producer ${this.id} is closed after an error: ${f.error.message}`);
  }

  /** Records the first failure; the transaction is aborted if Kafka still lets this producer (a fenced one it does not). */
  private fail(e: unknown): void {
    if (this.failure) return;
    const error = kafkaError(e, `producer ${this.id}`, this.log.cfg.brokers);
    const recoverable = error.code === 'LOG_KAFKA_UNREACHABLE' || (error.code === 'LOG_KAFKA_ERROR' && isRetriable(error));
    this.failure = { error, reported: false, recoverable };
    const txn = this.txn;
    this.txn = null;
    if (txn?.isActive()) this.chain = this.chain.then(() => txn.abort()).catch(() => {});
  }

  /**
   * Opens the producer again in place after a recoverable failure (a new kafkajs producer of the
   * same transactional id: InitProducerId decides the transaction left open), retrying for up to
   * log.transactionTimeout while the coordinator moves to another broker. True when it is open
   * and the failure cleared; false when it could not be (still unreachable, or fenced).
   */
  private async recover(): Promise<boolean> {
    const deadline = Date.now() + this.log.cfg.transactionTimeout;
    void this.kp.disconnect().catch(() => {});
    this.txn = null;
    for (;;) {
      try {
        await this.open();
        this.failure = null;
        return true;
      } catch (e) {
        const code = (e as SluiceError).code;
        if (this.closing || Date.now() >= deadline || !(code === 'LOG_KAFKA_UNREACHABLE' || isRetriable(e))) return false;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
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
