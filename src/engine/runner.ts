/**
 * Runs one pipeline: source → log. Owns the transactional log producer and the serializer; the
 * source appends events, the runner commits them in batches (by records, bytes or age) together
 * with the source checkpoint, then tells the source which checkpoint is durable so it may
 * acknowledge that position upstream. Also writes status.json for `sluice status` and serves
 * /health, /metrics and /status when `server` is configured.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MysqlPipelineConfig, PgPipelineConfig, PipelineConfig } from '../config/types.ts';
import type { ChangeEvent } from '../core/event.ts';
import type { Logger } from '../core/logger.ts';
import { createLogger } from '../core/logger.ts';
import { isRetriable } from '../core/errors.ts';
import { DebeziumJsonSerializer, type TransactionMetadataEvent } from '../core/serde/debezium.ts';
import type { EventSink, Source } from '../core/source.ts';
import { openEmbeddedLog } from '../log/embedded/index.ts';
import type { Log, Producer } from '../log/types.ts';
import { PipelineMetrics } from './metrics.ts';
import { SinkWorker } from './sink-task.ts';
import type { SinkBatch } from '../sinks/types.ts';
import { SCHEMA_HEADER, SchemaLedger, schemaRecordOf, schemaTopicOf } from '../core/schemas.ts';
import { startServer } from '../server/http.ts';

export interface RunOptions {
  logger?: Logger;
  signal?: AbortSignal;
  /** Called after a sink applied a batch (tests use it). */
  onSinkApplied?: (sink: string, batch: SinkBatch) => void;
  /** Called after every durable commit (tests and benchmarks use it). */
  onCommit?: (info: { records: number; checkpoint: string }) => void;
}

export class LogSink implements EventSink {
  /** Partitions of each declared topic. */
  private readonly topics = new Map<string, number>();
  private readonly headers = new Map<string, Record<string, string>>();
  private firstPendingAt = 0;
  private inflight: Promise<void> | null = null;
  private failed: unknown = null;
  /** The checkpoint of the last commit that completed (undefined: none by this sink). */
  lastCheckpoint: string | undefined;
  committedRecords = 0;
  private readonly connector: string;

  constructor(
    private readonly log: Log,
    private readonly producer: Producer,
    private readonly source: Source,
    private readonly cfg: PipelineConfig,
    private readonly serializer: DebeziumJsonSerializer,
    private readonly metrics: PipelineMetrics,
    private readonly onCommit?: RunOptions['onCommit'],
    private readonly schemas: SchemaLedger = new SchemaLedger(),
  ) {
    this.connector = connectorOf(cfg);
  }

  async declareTopic(topic: string): Promise<void> {
    if (this.topics.has(topic)) return;
    const info = await this.log.ensureTopic(topic, {
      partitions: this.cfg.log.partitions,
      retentionMs: this.cfg.log.retentionMs,
      retentionBytes: this.cfg.log.retentionBytes,
    });
    this.topics.set(topic, info.partitions);
  }

  append(ev: ChangeEvent): void {
    const key = this.serializer.keyString(ev);
    const value = this.serializer.valueString(ev);
    const ts = ev.source.ts_ms;
    if (this.producer.pendingRecords === 0) this.firstPendingAt = Date.now();
    const schema = schemaRecordOf(this.connector, ev.topic, ev.table);
    if (!this.schemas.has(schema.id)) {
      this.producer.append(schemaTopicOf(this.cfg.source.topicPrefix), { key: schema.id, value: JSON.stringify(schema), timestamp: Date.now() });
      this.schemas.pending.add(schema.id);
    }
    let headers = this.headers.get(schema.id);
    if (!headers) this.headers.set(schema.id, (headers = { [SCHEMA_HEADER]: schema.id }));
    if (ev.op === 't') {
      // A truncate has no key: it goes to every partition, so that a consumer of each partition
      // sees it in order with that partition's changes (sinks apply it once all have reached it).
      const partitions = this.topics.get(ev.topic) ?? this.cfg.log.partitions;
      for (let p = 0; p < partitions; p++) this.producer.append(ev.topic, { key, value, timestamp: ts, headers }, p);
      this.metrics.eventsIn.inc();
      return;
    }
    this.producer.append(ev.topic, { key, value, timestamp: ts, headers });
    if (ev.op === 'd') this.producer.append(ev.topic, { key, value: null, timestamp: ts, headers });
    this.metrics.eventsIn.inc();
  }

  /**
   * Starts a commit when one is due, without waiting for it: the source keeps decoding while the
   * fsyncs run. With a commit already in flight, returns it so the caller waits (at most one
   * commit in flight and one batch filling).
   */
  appendTransaction(tx: TransactionMetadataEvent): void {
    if (this.producer.pendingRecords === 0) this.firstPendingAt = Date.now();
    this.producer.append(this.serializer.transactionTopic, { key: this.serializer.transactionKey(tx), value: this.serializer.transactionEvent(tx), timestamp: tx.ts_ms });
  }

  maybeCommit(): Promise<void> | undefined {
    if (this.failed) throw this.failed;
    const p = this.producer;
    if (p.pendingRecords === 0) return undefined;
    const b = this.cfg.batch;
    const due = p.pendingRecords >= b.maxRecords || p.pendingBytes >= b.maxBytes || Date.now() - this.firstPendingAt >= b.maxDelayMs;
    if (!due || !this.source.canCommit()) return undefined;
    if (this.inflight) return this.inflight;
    this.inflight = this.commitNow()
      .catch((e) => {
        this.failed = e;
      })
      .finally(() => {
        this.inflight = null;
      });
    return undefined;
  }

  /** Waits for a commit in flight to finish (or fail) without starting another. */
  async settle(): Promise<void> {
    while (this.inflight) await this.inflight;
  }

  /** Commits everything appended so far and waits until it is durable. */
  async commit(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.failed) throw this.failed;
    await this.commitNow();
  }

  private async commitNow(): Promise<void> {
    const records = this.producer.pendingRecords;
    const checkpoint = this.source.checkpoint();
    const started = process.hrtime.bigint();
    await this.producer.commit(checkpoint);
    this.schemas.promote();
    this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.eventsOut.inc(records);
    this.committedRecords += records;
    this.lastCheckpoint = checkpoint;
    this.source.durable(checkpoint);
    this.onCommit?.({ records, checkpoint });
  }

  get hasPending(): boolean {
    return this.producer.pendingRecords > 0;
  }

}

/** Debezium's connector name for the pipeline's source (`source.connector` in events). */
export const connectorOf = (cfg: PipelineConfig): 'postgresql' | 'mysql' => (cfg.source.type === 'mysql' ? 'mysql' : 'postgresql');

/** The source for the pipeline's `source.type` (modules load only when used). */
async function createSource(cfg: PipelineConfig, logger: Logger, metrics: PipelineMetrics): Promise<Source> {
  if (cfg.source.type === 'mysql') return new (await import('../sources/mysql/source.ts')).MysqlSource(cfg as MysqlPipelineConfig, logger, metrics);
  return new (await import('../sources/postgres/source.ts')).PostgresSource(cfg as PgPipelineConfig, logger, metrics);
}

export async function runPipeline(cfg: PipelineConfig, opts: RunOptions = {}): Promise<void> {
  const logger = (opts.logger ?? createLogger({ level: cfg.logging.level, format: cfg.logging.format })).child({ pipeline: cfg.name });
  await mkdir(cfg.log.dir, { recursive: true });
  const log = await openEmbeddedLog({ dir: cfg.log.dir, segmentBytes: cfg.log.segmentBytes, defaultPartitions: cfg.log.partitions });
  const metrics = new PipelineMetrics(cfg.name);
  let producer: Producer | null = null;
  let source: Source | null = null;
  let server: { close(): Promise<void> } | null = null;
  const statusPath = join(cfg.log.dir, 'status.json');
  const workers = cfg.sinks.map((s) => new SinkWorker(log, s, cfg, logger.child({ component: 'sink' }), metrics.registry, opts.onSinkApplied));
  const sinkAbort = new AbortController();
  let sinkRuns: Promise<void>[] = [];
  let statusTimer: NodeJS.Timeout | null = null;
  let statusWrites = 0;
  const writeStatus = async (state: string) => {
    const body = JSON.stringify({ pipeline: cfg.name, state, pid: process.pid, source: source?.status() ?? null, sinks: workers.map((w) => w.status()), updatedAt: new Date().toISOString() }, null, 2);
    // A file of its own per write: the 1 s refresh and the final write may overlap.
    const tmp = `${statusPath}.${process.pid}.${++statusWrites}.tmp`;
    await writeFile(tmp, body);
    await rename(tmp, statusPath);
  };
  let stopping = false;
  const onAbort = () => {
    stopping = true;
    void source?.stop();
  };
  try {
    const opened = await log.openProducer(`source:${cfg.name}`);
    producer = opened.producer;
    const serializer = new DebeziumJsonSerializer({ schemas: cfg.serialization.schemas, connector: connectorOf(cfg), serverName: cfg.source.topicPrefix });
    await log.ensureTopic(schemaTopicOf(cfg.source.topicPrefix), { partitions: 1 });
    const schemas = await SchemaLedger.load(log, schemaTopicOf(cfg.source.topicPrefix));
    if (cfg.source.transactionMetadata) await log.ensureTopic(serializer.transactionTopic, { partitions: 1, retentionMs: cfg.log.retentionMs, retentionBytes: cfg.log.retentionBytes });
    if (cfg.server) {
      server = await startServer(cfg.server, {
        metrics,
        status: () => ({ pipeline: cfg.name, source: source?.status(), sinks: workers.map((w) => w.status()) }),
        problems: () => workers.filter((w) => w.state === 'failed').map((w) => `sink ${w.cfg.name} failed: ${w.lastError?.message ?? ''}`),
        logger,
      });
    }
    if (opts.signal?.aborted) return;
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    await writeStatus('starting');
    statusTimer = setInterval(() => void writeStatus('running').catch(() => {}), 1000);
    statusTimer.unref();
    sinkRuns = workers.map((w) => w.run(sinkAbort.signal).catch((e) => logger.error('sink crashed', { sink: w.cfg.name, error: (e as Error).message })));
    logger.info('pipeline starting', { log: cfg.log.dir, checkpoint: opened.checkpoint ? 'resuming' : 'first run' });
    // Supervisor: a retriable failure (connection lost, server restarting, slot still held by the
    // dead connection) restarts the source from the last durable checkpoint, with backoff.
    let checkpoint = opened.checkpoint;
    let failures = 0;
    let committed = 0;
    for (;;) {
      source = await createSource(cfg, logger.child({ component: 'source' }), metrics);
      const sink = new LogSink(log, producer, source, cfg, serializer, metrics, opts.onCommit, schemas);
      try {
        await source.run(sink, checkpoint);
        if (source.canCommit()) await sink.commit();
        committed += sink.committedRecords;
        break;
      } catch (e) {
        await sink.settle();
        committed += sink.committedRecords;
        if (stopping || !isRetriable(e)) throw e;
        // A slot held by another live process is not a passing fault: give up after ~30 s.
        if ((e as { code?: string }).code === 'PG_SLOT_IN_USE' && failures >= 6) throw e;
        metrics.error('source');
        await producer.abort();
        schemas.forget();
        checkpoint = sink.lastCheckpoint ?? checkpoint;
        failures = sink.committedRecords > 0 ? 1 : failures + 1;
        const delay = Math.min(30_000, 250 * 2 ** failures);
        logger.warn('source failed, restarting from the last durable checkpoint', { error: (e as Error).message, retryInMs: delay });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          opts.signal?.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
        if (stopping) break;
      }
    }
    if (!stopping && workers.length) {
      // The source finished by itself (initial_only): let the sinks apply what the log holds.
      logger.info('source finished; waiting for the sinks to apply the rest of the log');
      await Promise.race([Promise.all(workers.map((w) => w.caughtUp(opts.signal))), new Promise<void>((r) => opts.signal?.addEventListener('abort', () => r(), { once: true }))]);
    }
    sinkAbort.abort();
    await Promise.all(sinkRuns);
    await writeStatus('stopped');
    logger.info('pipeline stopped', { committed });
  } catch (e) {
    sinkAbort.abort();
    await Promise.all(sinkRuns);
    await writeStatus('failed').catch(() => {});
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (statusTimer) clearInterval(statusTimer);
    await source?.stop().catch(() => {});
    await producer?.close().catch(() => {});
    await server?.close().catch(() => {});
    await log.close();
  }
}
