/**
 * Group commit for the gateway: requests append their events to the one producer, and wait for the
 * log commit that carries them. A commit starts as soon as none is running; requests arriving
 * meanwhile share the next one, so commits grow with the load and a lone request waits for one
 * commit only. All events of a request go into one commit: they are durable together or not at all.
 *
 * One commit at a time, not two as the source task runs: measured with bench/gateway's load (64
 * connections of single events), two in flight halved the events per commit, and on this machine
 * each commit costs the main thread a fixed amount (an fdatasync is ~50 µs just to hand to the
 * thread pool, one per partition written plus the journal's): 5.4–6.4k events/s with two,
 * 8.6–8.9k with one, and a lower p99.
 */
import type { AppendRecord, Log, Producer } from '../../log/types.ts';

export interface PendingEvent {
  topic: string;
  record: AppendRecord;
}

interface Batch {
  done: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
  records: number;
  bytes: number;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  done.catch(() => {});
  return { done, resolve, reject, records: 0, bytes: 0 };
}

export class GroupCommit {
  private producer: Producer | null = null;
  private opening: Promise<Producer> | null = null;
  private current = newBatch();
  private running = 0;
  /** Settles when the latest commit started has ended (and started the next, if one was due). */
  private settled: Promise<void> = Promise.resolve();
  /** Bytes appended and not yet durable (or failed). */
  pendingBytes = 0;
  commits = 0;
  lastError: Error | null = null;

  constructor(
    private readonly log: Log,
    private readonly producerId: string,
    private readonly bounds: { records: number; bytes: number },
  ) {}

  private async open(): Promise<Producer> {
    if (this.producer) return this.producer;
    this.opening ??= this.log.openProducer(this.producerId).then(
      ({ producer }) => ((this.producer = producer), (this.opening = null), producer),
      (e) => {
        this.opening = null;
        throw e;
      },
    );
    return this.opening;
  }

  /**
   * Appends one request's events and resolves once they are durable; rejects when their commit
   * failed (none of them is in the log then).
   */
  async write(events: PendingEvent[], bytes: number): Promise<void> {
    const producer = this.producer ?? (await this.open());
    if (this.current.records && (this.current.records + events.length > this.bounds.records || this.current.bytes + bytes > this.bounds.bytes)) this.flush();
    for (const e of events) producer.append(e.topic, e.record);
    const batch = this.current;
    batch.records += events.length;
    batch.bytes += bytes;
    this.pendingBytes += bytes;
    if (this.running === 0) this.flush();
    try {
      await batch.done;
    } finally {
      this.pendingBytes -= bytes;
    }
  }

  private flush(): void {
    const batch = this.current;
    if (!batch.records || !this.producer) return;
    this.current = newBatch();
    const producer = this.producer;
    this.running++;
    this.settled = producer.commit('').then(
      () => {
        this.commits++;
        this.lastError = null;
        batch.resolve();
      },
      (e) => {
        this.lastError = e as Error;
        // The producer's state after a failed commit is unknown: the next request opens a new one
        // (which fences this one), and what it had appended since is failed with this batch.
        if (this.producer === producer) this.producer = null;
        batch.reject(e);
        if (this.current.records && !this.producer) {
          const orphan = this.current;
          this.current = newBatch();
          orphan.reject(e);
        }
        void producer.abort().catch(() => {});
      },
    ).finally(() => {
      this.running--;
      if (this.current.records) this.flush();
    });
  }

  /** Waits for every commit started or due (each one's end starts the next), then closes the producer. */
  async close(): Promise<void> {
    this.flush();
    while (this.running > 0) await this.settled;
    await this.producer?.close().catch(() => {});
    this.producer = null;
  }
}
