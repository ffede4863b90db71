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
 * waiting (never showing half a commit) until the id is opened again, or until another writer has
 * seen it stand for log.commitTimeout and aborts it: the commit is marked aborted (readers skip its
 * records, also ones a fenced producer publishes later), the intent cleared, the records deleted in
 * the background. Fencing is the same compare-and-set: openProducer bumps the epoch, after which
 * every update of the old producer fails (LOG_PRODUCER_FENCED) before it publishes anything more.
 *
 * Records carry no Nats-Msg-Id: deduplication would only help a publish retried after a lost
 * acknowledgement, and a commit whose publish fails fails whole instead (the producer is closed;
 * opening it again aborts what it left), so the server's duplicate map would cost memory for nothing.
 */
import type { AppendRecord, Producer } from '../types.ts';
import { partitionFor } from '../partitioner.ts';
import { logError } from '../errors.ts';
import { isRetriable, type SluiceError } from '../../core/errors.ts';
import { encodeRecord, type OutRecord } from './codec.ts';
import { txnOf, type ProducerEntry } from './state.ts';
import type { NatsLog } from './index.ts';

/** Publishes in flight at once. */
const PUBLISH_WINDOW = 4096;

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
    if (this.state === 'failed') {
      // A commit queued behind the one that failed fails with that one's cause while it is
      // retriable (a server restarting): the writer then opens the producer again and retries, as
      // it does after the first failure. Reported as closed, it ended the run (a NATS restart under
      // the orders example's three processes, test/peers/orders-recovery.test.ts).
      if (this.failure && isRetriable(this.failure)) throw this.failure;
      throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} failed a commit (${this.failure?.code}: ${this.failure?.message}); close it and open it again, which aborts what that commit left`);
    }
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
      const parts: Record<string, number> = {};
      if (batch.length) {
        const streams = [...new Set(batch.map((r) => this.log.streamOf(r.topic, r.partition)))];
        const unknown = streams.filter((s) => !this.known.has(s));
        for (const [s, end] of await this.log.currentEnds(unknown)) this.known.set(s, end);
        for (const s of streams) parts[s] = Math.max(this.known.get(s)!, this.log.visibleEnd(s));
        await this.update({ ...this.entry, intent: { epoch: this.entry.epoch, commit, at: Date.now(), parts } });
        ends = await this.publish(batch, txnOf(this.key, this.entry.epoch, commit));
      }
      const done = ends ? { parts: Object.fromEntries([...ends].map(([st, end]) => [st, [parts[st], end] as [number, number]])) } : null;
      await this.update({ ...this.entry, commit, checkpoint, intent: null, done });
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

  /**
   * Publishes the records in order, at most PUBLISH_WINDOW unacknowledged, and returns each
   * stream's new end. Acknowledgements come to one subscription of this commit (reply subjects
   * `<inbox>.<n>`) under one deadline, rather than a request (with its own timer) per message.
   */
  private async publish(batch: OutRecord[], txn: string): Promise<Map<string, number>> {
    const { client } = this.log;
    const { nc } = client;
    const ends = new Map<string, number>();
    const inbox = client.nats.createInbox();
    const streamOf: string[] = [];
    const what: string[] = [];
    let sent = 0;
    let acked = 0;
    let failed: unknown = null;
    let wake: (() => void) | null = null;
    const signal = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const sub = nc.subscribe(`${inbox}.*`, {
      callback: (err, msg) => {
        if (err) failed ??= client.error(err, 'publishing');
        else {
          const n = Number(msg.subject.slice(inbox.length + 1));
          try {
            const ack = JSON.parse(Buffer.from(msg.data).toString('utf8')) as { seq?: number; stream?: string; error?: { code: number; err_code: number; description: string } };
            if (ack.error || ack.seq === undefined) throw Object.assign(new Error(ack.error?.description ?? 'no sequence in the acknowledgement'), { api_error: ack.error });
            const stream = streamOf[n];
            if (ack.stream !== stream) throw new Error(`${what[n]} was stored in stream ${ack.stream}, not ${stream}: another stream of this server takes the log's subjects`);
            if (ack.seq > (ends.get(stream) ?? 0)) ends.set(stream, ack.seq);
          } catch (e) {
            // A message JetStream does not take (no stream for the subject: 503 no responders).
            const status = msg.headers?.code;
            failed ??= client.error(status === 503 ? Object.assign(new Error(`no stream takes ${what[n]}`), { code: '503' }) : e, `publishing to ${what[n]}`);
          }
          acked++;
          lastAck = Date.now();
        }
        signal();
      },
    });
    // The deadline is for progress: log.requestTimeout without a single acknowledgement.
    let lastAck = Date.now();
    const waitFor = async (cond: () => boolean): Promise<void> => {
      while (!cond() && failed === null) {
        const left = lastAck + client.o.requestTimeoutMs - Date.now();
        if (left <= 0) {
          failed = client.error(Object.assign(new Error('timeout'), { code: 'TIMEOUT' }), `publishing a commit of ${batch.length} records (${acked} of ${sent} messages acknowledged)`);
          break;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 1000));
          wake = () => (clearTimeout(t), resolve());
        });
      }
    };
    try {
      for (let i = 0; i < batch.length && failed === null; i++) {
        const r = batch[i];
        const stream = this.log.streamOf(r.topic, r.partition);
        const subject = this.log.subjectOf(r.topic, r.partition);
        for (const m of encodeRecord(client.nats, r, txn, i, client.maxPayload)) {
          if (sent - acked >= PUBLISH_WINDOW) await waitFor(() => sent - acked < PUBLISH_WINDOW);
          if (failed !== null) break;
          streamOf.push(stream);
          what.push(`${r.topic}/${r.partition}`);
          // Written out in call order: messages reach each partition stream in the order published.
          nc.publish(subject, m.data, { reply: `${inbox}.${sent}`, headers: m.headers });
          sent++;
        }
      }
      await waitFor(() => acked >= sent);
    } finally {
      sub.unsubscribe();
    }
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
