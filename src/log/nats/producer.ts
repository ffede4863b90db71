/**
 * The NATS log's transactional producer. JetStream 2.9 has no transaction and no atomic publish of
 * several messages, so a commit is built from what it has, one KV update being the commit point:
 *
 *   1. intent  — a compare-and-set update of the producer's entry (`p.x<id>`) stores the commit's
 *                number and, for each partition stream it writes, the stream's end. Readers stop at
 *                that offset while the intent stands (view.ts), so nothing published from here on
 *                is visible, nor anything another producer stores after it.
 *   2. publish — every record goes to its partition stream (pipelined, each acknowledged by the
 *                server once stored), tagged with its commit (Sluice-Txn).
 *   3. commit  — a second compare-and-set update stores the checkpoint and clears the intent: all
 *                the commit's records, in every partition, become visible in that one update.
 *
 * A producer that dies between 1 and 3 leaves its intent, which keeps readers of those partitions
 * waiting (never showing half a commit) until the id is opened again, or until log.commitTimeout
 * passes and another writer aborts it: the records of the commit are deleted, the commit is listed
 * as aborted (so records a fenced producer still publishes are skipped) and the intent cleared.
 * Fencing is the same compare-and-set: openProducer bumps the epoch, after which every update of
 * the old producer fails (LOG_PRODUCER_FENCED) before it publishes anything more.
 */
import type { AppendRecord, Producer } from '../types.ts';
import { partitionFor } from '../partitioner.ts';
import { logError } from '../errors.ts';
import type { SluiceError } from '../../core/errors.ts';
import { encodeRecord, type OutRecord } from './codec.ts';
import { txnOf, type ProducerEntry } from './state.ts';
import type { NatsLog } from './index.ts';

/** Publishes in flight at once. */
const PUBLISH_WINDOW = 256;

export class NatsProducer implements Producer {
  private pending: OutRecord[] = [];
  pendingBytes = 0;
  pendingRecords = 0;
  /** The last commit called, settled or not (commits run one after the other, in call order). */
  private chain: Promise<void> = Promise.resolve();
  private state: 'open' | 'closed' | 'fenced' | 'failed' = 'open';
  /** close() was called: no more appends or commits, the ones called before finish. */
  private closing = false;
  private failure: SluiceError | null = null;
  /** Per partition stream: the end (offset) after this producer's last write there. */
  private readonly known = new Map<string, number>();

  constructor(
    private readonly log: NatsLog,
    readonly id: string,
    readonly key: string,
    private entry: ProducerEntry,
    private rev: number,
  ) {}

  /** Refuses writes through a producer that is closed, fenced or broken (a commit of it failed). */
  private check(): void {
    if (this.closing || this.state === 'closed') throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} is closed`);
    this.usable();
  }

  /** Whether queued commits may still run: not after a fence or a failed commit. */
  private usable(): void {
    if (this.state === 'fenced') throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} was fenced (the same id was opened again) and is closed`);
    if (this.state === 'failed') throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} failed a commit (${this.failure?.code}: ${this.failure?.message}); close it and open it again, which aborts what that commit left`);
  }

  private fencedError(): SluiceError {
    return logError('LOG_PRODUCER_FENCED', `producer ${this.id} was fenced: the same id was opened again (by another process, or a restart of this pipeline), which took over; nothing of this producer's unfinished commit is visible. Run one writer per producer id`);
  }

  append(topic: string, record: AppendRecord, partition?: number): number {
    this.check();
    const t = this.log.topicForAppend(topic);
    const key = typeof record.key === 'string' ? Buffer.from(record.key, 'utf8') : record.key;
    const p = partition ?? partitionFor(key, t.partitions);
    if (!Number.isInteger(p) || p < 0 || p >= t.partitions) throw logError('LOG_PARTITION_MISSING', `topic ${topic} has partitions 0..${t.partitions - 1}, not ${p}`);
    const value = typeof record.value === 'string' ? Buffer.from(record.value, 'utf8') : record.value;
    const r: OutRecord = { topic, partition: p, key, value, timestamp: record.timestamp };
    if (record.headers && Object.keys(record.headers).length) r.headers = record.headers;
    this.pending.push(r);
    this.pendingRecords++;
    this.pendingBytes += (key?.length ?? 0) + (value?.length ?? 0) + (r.headers ? JSON.stringify(r.headers).length : 0);
    return p;
  }

  commit(checkpoint: string): Promise<void> {
    try {
      this.check();
    } catch (e) {
      return Promise.reject(e);
    }
    const max = this.log.maxCommitBytes;
    if (this.pendingBytes > max) {
      return Promise.reject(logError('LOG_COMMIT_TOO_LARGE', `a commit of ${this.pendingBytes} bytes (${this.pendingRecords} records) is larger than the nats log holds in one commit (log.maxCommitBytes, ${max} bytes); commit in smaller batches`));
    }
    // Hand the records over: appends from here on belong to the next commit.
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    const run = this.chain.then(() => this.run(batch, checkpoint));
    this.chain = run.catch(() => {});
    return run;
  }

  private async run(batch: OutRecord[], checkpoint: string): Promise<void> {
    this.usable();
    try {
      const commit = this.entry.commit + 1;
      let ends: Map<string, number> | null = null;
      if (batch.length) {
        const streams = [...new Set(batch.map((r) => this.log.streamOf(r.topic, r.partition)))];
        const parts: Record<string, number> = {};
        const unknown = streams.filter((s) => !this.known.has(s));
        for (const [s, end] of await this.log.currentEnds(unknown)) this.known.set(s, end);
        for (const s of streams) parts[s] = Math.max(this.known.get(s)!, this.log.visibleEnd(s));
        await this.update({ ...this.entry, intent: { epoch: this.entry.epoch, commit, at: Date.now(), parts } });
        ends = await this.publish(batch, txnOf(this.key, this.entry.epoch, commit));
      }
      await this.update({ ...this.entry, commit, checkpoint, intent: null, aborted: this.log.pruneAborted(this.entry.aborted) });
      if (ends) for (const [s, end] of ends) this.known.set(s, end);
    } catch (e) {
      const err = e as SluiceError;
      if (err.code === 'LOG_PRODUCER_FENCED') this.state = 'fenced';
      else if (this.state === 'open') {
        this.state = 'failed';
        this.failure = err;
      }
      throw e;
    }
  }

  /** A compare-and-set update of this producer's entry; a newer revision means it was fenced. */
  private async update(next: ProducerEntry): Promise<void> {
    this.rev = await this.log.casProducer(this.key, next, this.rev, () => this.fencedError());
    this.entry = next;
  }

  /** Publishes the records in order, at most PUBLISH_WINDOW unacknowledged; returns each stream's new end. */
  private async publish(batch: OutRecord[], txn: string): Promise<Map<string, number>> {
    const { client } = this.log;
    const ends = new Map<string, number>();
    const inflight: Promise<void>[] = [];
    let failed: unknown = null;
    const timeout = client.o.requestTimeoutMs;
    for (let i = 0; i < batch.length && failed === null; i++) {
      const r = batch[i];
      const stream = this.log.streamOf(r.topic, r.partition);
      const subject = this.log.subjectOf(r.topic, r.partition);
      for (const m of encodeRecord(client.nats, r, txn, i, client.maxPayload)) {
        if (inflight.length >= PUBLISH_WINDOW) await inflight.shift();
        if (failed !== null) break;
        // request() writes the message out before it returns, so messages reach the server (and
        // each partition stream) in the order they are published here.
        const p = client.nc
          .request(subject, m.data, { timeout, headers: m.headers })
          .then((reply) => {
            const ack = JSON.parse(Buffer.from(reply.data).toString('utf8')) as { seq?: number; stream?: string; error?: { code: number; err_code: number; description: string } };
            if (ack.error || ack.seq === undefined) throw Object.assign(new Error(ack.error?.description ?? 'no sequence in the acknowledgement'), { api_error: ack.error });
            if (ack.stream !== stream) throw new Error(`subject ${subject} is stored in stream ${ack.stream}, not ${stream}: another stream of this server takes the log's subjects`);
            if (ack.seq > (ends.get(stream) ?? 0)) ends.set(stream, ack.seq);
          })
          .catch((e) => {
            failed ??= client.error(e, `publishing to ${r.topic}/${r.partition}`);
          });
        inflight.push(p);
      }
    }
    await Promise.all(inflight);
    if (failed !== null) throw failed;
    return ends;
  }

  async abort(): Promise<void> {
    // Only what was appended since the last commit call; a commit in flight goes on.
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingRecords = 0;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.abort();
    await this.chain;
    if (this.state === 'failed') {
      // A commit failed half way: abort what it left now rather than at the next open.
      await this.log.abortIntent(this.key, { fence: false, rev: this.rev }).catch(() => {});
    }
    this.state = 'closed';
    this.log.producerClosed(this);
  }
}
