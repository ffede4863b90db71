/**
 * The source task: runs the pipeline's source into the log. Owns the source's transactional
 * producer and the serializer; the source appends events, `LogSink` commits them in batches (by
 * records, bytes or age, within what the log can hold in one commit) together with the source
 * checkpoint, then tells the source which checkpoint is durable so it may acknowledge that
 * position upstream. A retriable failure restarts the source from the last durable checkpoint.
 */
import type { ChangeEvent } from '../core/event.ts';
import type { Logger } from '../core/logger.ts';
import { Gauge, type ComponentMetrics } from '../core/metrics.ts';
import { SCHEMA_HEADER, schemaRecordOf } from '../core/schemas.ts';
import { SchemaLedger } from './schema-topic.ts';
import type { DebeziumJsonSerializer, TransactionMetadataEvent } from '../core/serde/debezium.ts';
import type { EventSink, Source } from '../core/source.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { SourceContext, SourceSpec } from '../registry/spec.ts';
import { logError } from '../log/errors.ts';
import { supervise, type TaskError, type TaskState } from './supervisor.ts';

export interface CommitInfo {
  records: number;
  checkpoint: string;
}

export interface LogSinkOptions {
  /** `source.connector` of the events (written into each schema record). */
  connector: string;
  schemaTopic: string;
  /** Settings of the topics the source creates. */
  topicDefaults: TopicConfig;
  /** Commit bounds (already limited to what the log holds in one commit). */
  batch: { maxRecords: number; maxBytes: number; maxDelayMs: number };
  /** Commit bounds of bulk writes (a snapshot's chunks), also within what the log holds. */
  bulk: { maxRecords: number; maxBytes: number; maxDelayMs: number };
  /** The most the log holds in one commit (its capabilities); absent: no limit. */
  maxCommit?: { bytes: number | null; records: number | null };
  onCommit?: (info: CommitInfo) => void;
  /** Told about a change topic that exists with fewer partitions than the pipeline creates topics with. */
  onFewPartitions?: (topic: string, partitions: number, wanted: number) => void;
  /** Change topic → its table and the source commit time of its latest event (kept across restarts by the task). */
  activity?: Map<string, TableActivity>;
}

/** When a table last had a change event (its source commit time, ms). */
export interface TableActivity {
  table: string;
  ts: number;
}

/**
 * Commits a source may have in flight. Two let the log sync one commit's data while the commit
 * before it syncs its journal record (the embedded log; others queue them), which halves the wait
 * of changes that arrive during a commit; commits still complete, and reach `durable`, in order.
 */
const COMMITS_IN_FLIGHT = 2;

/** The EventSink a source writes to: serializes events into the producer and commits them with the checkpoint. */
export class LogSink implements EventSink {
  /** Partitions of each declared topic. */
  private readonly topics = new Map<string, number>();
  private readonly headers = new Map<string, Record<string, string>>();
  private firstPendingAt = 0;
  /** Commits in flight, oldest first (at most COMMITS_IN_FLIGHT; they complete in this order). */
  private readonly inflight: Promise<void>[] = [];
  private failed: unknown = null;
  /** The source said, at its last maybeCommit, that it has nothing more to read. */
  private idle = false;
  /** The checkpoint of the last commit that completed (undefined: none by this sink). */
  lastCheckpoint: string | undefined;
  committedRecords = 0;

  constructor(
    private readonly log: Log,
    private readonly producer: Producer,
    private readonly source: Source,
    private readonly serializer: DebeziumJsonSerializer,
    private readonly metrics: ComponentMetrics,
    private readonly o: LogSinkOptions,
    private readonly schemas: SchemaLedger = new SchemaLedger(),
  ) {}

  async declareTopic(topic: string): Promise<void> {
    if (this.topics.has(topic)) return;
    const info = await this.log.ensureTopic(topic, this.o.topicDefaults);
    if (info.partitions < this.o.topicDefaults.partitions) this.o.onFewPartitions?.(topic, info.partitions, this.o.topicDefaults.partitions);
    this.topics.set(topic, info.partitions);
  }

  append(ev: ChangeEvent): void {
    const key = this.serializer.keyString(ev);
    const value = this.serializer.valueString(ev);
    const ts = ev.source.ts_ms;
    if (this.o.activity) {
      const a = this.o.activity.get(ev.topic);
      if (a) a.ts = ts;
      else this.o.activity.set(ev.topic, { table: `${ev.table.schema}.${ev.table.table}`, ts });
    }
    if (this.producer.pendingRecords === 0) this.firstPendingAt = Date.now();
    const schema = schemaRecordOf(this.o.connector, ev.topic, ev.table);
    if (!this.schemas.has(schema.id)) {
      this.producer.append(this.o.schemaTopic, { key: schema.id, value: JSON.stringify(schema), timestamp: Date.now() });
      this.schemas.pending.add(schema.id);
    }
    let headers = this.headers.get(schema.id);
    if (!headers) this.headers.set(schema.id, (headers = { [SCHEMA_HEADER]: schema.id }));
    if (ev.op === 't') {
      // A truncate has no key: it goes to every partition, so that a consumer of each partition
      // sees it in order with that partition's changes (sinks apply it once all have reached it).
      const partitions = this.topics.get(ev.topic) ?? this.o.topicDefaults.partitions;
      for (let p = 0; p < partitions; p++) this.producer.append(ev.topic, { key, value, timestamp: ts, headers }, p);
      this.metrics.eventsIn.inc();
      return;
    }
    this.producer.append(ev.topic, { key, value, timestamp: ts, headers });
    if (ev.op === 'd') this.producer.append(ev.topic, { key, value: null, timestamp: ts, headers });
    this.metrics.eventsIn.inc();
    if (this.o.maxCommit && !this.source.canCommit()) this.checkUnitFits(ev);
  }

  /**
   * A unit the source cannot commit in parts (a table snapshotted whole) must fit one commit of the
   * log; one that outgrows it stops with what to do instead of failing at the commit.
   */
  private checkUnitFits(ev: ChangeEvent): void {
    const { bytes, records } = this.o.maxCommit!;
    const p = this.producer;
    if ((bytes !== null && p.pendingBytes > bytes) || (records !== null && p.pendingRecords > records)) {
      throw logError(
        'LOG_COMMIT_TOO_LARGE',
        `${ev.source.schema}.${ev.source.table} must be written in one commit (a table without a primary key, or with a key Sluice cannot order, is snapshotted as one unit), and it is larger than the ${this.log.backend} log holds in one commit (${bytes ?? 'any'} bytes, ${records ?? 'any'} records). Give the table a primary key of numbers, text or bytes, or exclude it from source.tables`,
      );
    }
  }

  appendTransaction(tx: TransactionMetadataEvent): void {
    if (this.producer.pendingRecords === 0) this.firstPendingAt = Date.now();
    this.producer.append(this.serializer.transactionTopic, { key: this.serializer.transactionKey(tx), value: this.serializer.transactionEvent(tx), timestamp: tx.ts_ms });
  }

  /**
   * Starts a commit when one is due, without waiting for it: the source keeps decoding while the
   * commit runs. With a commit already in flight, returns it so the caller waits (at most one
   * commit in flight and one batch filling).
   */
  maybeCommit(bulk = false, idle = false): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    this.idle = idle && !bulk;
    const p = this.producer;
    if (p.pendingRecords === 0) return undefined;
    const b = bulk ? this.o.bulk : this.o.batch;
    // Adaptive: a source with nothing more to read commits at once, beside a commit that is
    // running (the log syncs this one's data while that one's journal record is synced); while the
    // source reads on, the bounds decide.
    const room = this.inflight.length < COMMITS_IN_FLIGHT;
    const due = (this.idle && room) || p.pendingRecords >= b.maxRecords || p.pendingBytes >= b.maxBytes || Date.now() - this.firstPendingAt >= b.maxDelayMs;
    if (!due || !this.source.canCommit()) return undefined;
    if (!room) return this.inflight[0];
    const c: Promise<void> = this.commitNow()
      .catch((e) => {
        this.failed = e;
      })
      .finally(() => {
        this.inflight.splice(this.inflight.indexOf(c), 1);
        // What arrived while it ran, with the source idle since: committed now, not at the next event or timer.
        if (this.idle && !this.failed && this.producer.pendingRecords > 0) this.maybeCommit(false, true);
      });
    this.inflight.push(c);
    return undefined;
  }

  /** Waits for the commits in flight to finish (or fail) without starting another. */
  async settle(): Promise<void> {
    while (this.inflight.length) await this.inflight[this.inflight.length - 1];
  }

  /** Commits everything appended so far and waits until it is durable. */
  async commit(): Promise<void> {
    await this.settle();
    if (this.failed) throw this.failed;
    await this.commitNow();
  }

  private async commitNow(): Promise<void> {
    const records = this.producer.pendingRecords;
    const checkpoint = this.source.checkpoint();
    const schemas = this.schemas.seal();
    const started = process.hrtime.bigint();
    await this.producer.commit(checkpoint);
    this.schemas.promote(schemas);
    this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.eventsOut.inc(records);
    this.committedRecords += records;
    this.lastCheckpoint = checkpoint;
    this.source.durable(checkpoint);
    this.o.onCommit?.({ records, checkpoint });
  }

  get hasPending(): boolean {
    return this.producer.pendingRecords > 0;
  }

  /** Records appended and not committed yet. */
  get pendingRecords(): number {
    return this.producer.pendingRecords;
  }
}

export interface SourceTaskOptions {
  spec: SourceSpec;
  cfg: any;
  log: Log;
  serializer: DebeziumJsonSerializer;
  context: SourceContext;
  sink: LogSinkOptions;
  logger: Logger;
  signal: AbortSignal;
  onState(state: TaskState, error: TaskError | null): void;
}

/** The source task's live view, for status. */
export class SourceTask {
  source: Source | null = null;
  committed = 0;
  /** The current attempt's sink, whose commits `committed` does not count yet. */
  private live: LogSink | null = null;
  /** Change topic → when its table last had an event (sluice_table_last_event_timestamp_seconds). */
  readonly activity = new Map<string, TableActivity>();
  constructor(private readonly o: SourceTaskOptions) {
    const registry = o.context.metrics.registry;
    const gauges = new Map<string, Gauge>();
    registry.collect(() => {
      for (const [topic, a] of this.activity) {
        let g = gauges.get(topic);
        if (!g) {
          const labels = { pipeline: o.context.pipeline, table: a.table };
          gauges.set(topic, (g = registry.register(new Gauge('sluice_table_last_event_timestamp_seconds', "Source commit time (Unix seconds) of a table's latest change event the source captured in this run; time since it is now minus this", labels))));
        }
        g.set(a.ts / 1000);
      }
    });
  }

  /**
   * Appends change events to the running source's next commit (reconcile's repair: the embedded
   * log takes one writer per partition) and resolves once they are durable with its checkpoint.
   */
  async inject(events: ChangeEvent[], timeoutMs = 60_000): Promise<void> {
    const sink = this.live;
    if (!sink) throw new Error('the source is not running (starting, restarting or stopped): try again');
    const before = sink.committedRecords + sink.pendingRecords;
    for (const ev of events) sink.append(ev);
    const want = before + events.reduce((n, ev) => n + (ev.op === 'd' ? 2 : 1), 0);
    const deadline = Date.now() + timeoutMs;
    while (sink.committedRecords < want) {
      if (this.live !== sink) throw new Error('the source restarted before the repair events were committed: run the repair again');
      if (Date.now() > deadline) throw new Error(`the repair events were not committed within ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Change events (and other records) the source committed to the log in this run, as of now (status). */
  get eventsWritten(): number {
    return this.committed + (this.live?.committedRecords ?? 0);
  }

  /** Seconds since each table's latest change event, by `schema.table` (status). */
  tableActivity(now = Date.now()): Record<string, number> {
    return Object.fromEntries([...this.activity.values()].map((a) => [a.table, Math.max(0, (now - a.ts) / 1000)]));
  }

  /** Runs until the source finishes by itself ('done', e.g. `snapshot: initial_only`), is stopped, or fails permanently. */
  async run(): Promise<'done' | 'stopped'> {
    const { log, spec, cfg, logger, signal } = this.o;
    const producerId = `source:${this.o.context.pipeline}`;
    const opened = await log.openProducer(producerId);
    /** Null after a failed attempt of a Kafka-like log: the next attempt opens it again. */
    let producer: Producer | null = opened.producer;
    let checkpoint = opened.checkpoint;
    const schemas = await SchemaLedger.load(log, this.o.sink.schemaTopic);
    const onAbort = () => void this.source?.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    logger.info('pipeline starting', { checkpoint: checkpoint ? 'resuming' : 'first run' });
    try {
      return await supervise(
        {
          name: 'source',
          logger,
          signal,
          onState: this.o.onState,
          onFailure: (_e, retry) => (this.o.context.metrics.error('source'), retry && this.o.context.metrics.restarts.inc()),
          resumeHint: 'the last durable checkpoint',
        },
        async (attempt) => {
          if (!producer) {
            // The log decides where the last attempt got to: opening fences what is left of the
            // old producer and returns the checkpoint of its last durable commit.
            const again = await log.openProducer(producerId);
            producer = again.producer;
            checkpoint = again.checkpoint;
          }
          const current = producer;
          const source = (this.source = await spec.create(cfg, this.o.context));
          if (signal.aborted) return;
          const sink = new LogSink(log, current, source, this.o.serializer, this.o.context.metrics, { ...this.o.sink, activity: this.activity, onCommit: (c) => (attempt.progressed(), this.o.sink.onCommit?.(c)) }, schemas);
          attempt.running();
          this.live = sink;
          try {
            await source.run(sink, checkpoint);
            if (source.canCommit()) await sink.commit();
            this.live = null;
            this.committed += sink.committedRecords;
          } catch (e) {
            await sink.settle();
            this.live = null;
            this.committed += sink.committedRecords;
            schemas.forget();
            checkpoint = sink.lastCheckpoint ?? checkpoint;
            if (String((e as { code?: unknown })?.code ?? '').startsWith('LOG_')) {
              // The log failed (brokers away): the producer may be closed with its last commit
              // undecided, and its next use would fail with LOG_PRODUCER_CLOSED (which ended the
              // run in the Kafka broker-fault test). The next attempt opens it again instead, and
              // the log says which checkpoint stands.
              await current.close().catch(() => {});
              producer = null;
            } else {
              await current.abort();
            }
            throw e;
          } finally {
            await source.stop().catch(() => {});
          }
        },
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
      await producer?.close().catch(() => {});
    }
  }
}
