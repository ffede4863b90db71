/**
 * Runs one sink: reads batches of its topics from the log, applies them, and keeps going. The sink
 * stores the offsets it consumed in its target, in the same transaction as the data, so it resumes
 * exactly where the target stands. Transient failures (lost connection, deadlock, a locked DuckDB
 * file) reconnect and resume from those offsets (the supervisor's backoff). A permanent failure (an
 * incompatible schema change, bad data the target refuses) stops this sink with its error in the
 * log, /status and metrics; the target keeps the last applied batch, and the rest of the pipeline
 * goes on.
 */
import type { Logger } from '../core/logger.ts';
import { ComponentMetrics, Counter, type Registry } from '../core/metrics.ts';
import type { Log } from '../log/types.ts';
import type { SinkBaseConfig, SinkSpec } from '../registry/spec.ts';
import { sinkError } from '../sinks/errors.ts';
import type { Sink, SinkBatch } from '../sinks/types.ts';
import { BatchReader } from './batch-reader.ts';
import { SchemaStore } from './schema-topic.ts';
import { supervise, type TaskError, type TaskState } from './supervisor.ts';
import { topicPattern, type Reader } from './topology.ts';

/** `schema.table` patterns with `*` wildcards. */
export function tableMatcher(patterns: string[]): (schemaTable: string) => boolean {
  if (patterns.length === 0) return () => true;
  const res = patterns.map(topicPattern);
  return (t) => res.some((r) => r.test(t));
}

export interface SinkTaskOptions {
  spec: SinkSpec;
  cfg: SinkBaseConfig & { type: string };
  pipeline: string;
  log: Log;
  /** Which topics the sink reads (topology). */
  reader: Reader;
  /** The source's topic prefix and schema topic. */
  prefix: string;
  schemaTopic: string;
  logger: Logger;
  registry: Registry;
  onApplied?: (sink: string, batch: SinkBatch) => void;
}

export class SinkTask {
  state: TaskState = 'starting';
  lastError: TaskError | null = null;
  applied = 0;
  batches = 0;
  /** Source commit time of the newest applied change (ms). */
  lastSourceTs = 0;
  private readonly metrics: ComponentMetrics;
  private readonly retries: Counter;
  private readonly matches: (t: string) => boolean;
  /** `topic/partition` → next offset, as applied to the target. */
  private readonly appliedPos = new Map<string, number>();

  constructor(private readonly o: SinkTaskOptions) {
    this.matches = tableMatcher(o.cfg.tables);
    const labels = { pipeline: o.pipeline, component: 'sink', sink: o.cfg.name };
    this.metrics = new ComponentMetrics(o.registry, labels);
    this.retries = o.registry.register(new Counter('sluice_sink_retries_total', 'Times a sink reconnected after a transient failure', labels));
  }

  get cfg(): SinkBaseConfig & { type: string } {
    return this.o.cfg;
  }

  status(): Record<string, unknown> {
    return {
      name: this.o.cfg.name,
      type: this.o.cfg.type,
      state: this.state,
      applied: this.applied,
      batches: this.batches,
      lagMs: this.lastSourceTs ? Math.max(0, Date.now() - this.lastSourceTs) : null,
      /** `topic/partition` → next log offset to apply, as committed in the target. */
      offsets: Object.fromEntries(this.appliedPos),
      error: this.lastError,
    };
  }

  /** Whether the sink applies `topic`: one of its topics, of a table it takes. */
  private wants(topic: string): boolean {
    if (!this.o.reader.reads(topic)) return false;
    const pre = this.o.prefix + '.';
    return this.matches(topic.startsWith(pre) ? topic.slice(pre.length) : topic);
  }

  /** Resolves once the sink has applied everything the log held when called (or has failed). */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    const target = new Map<string, number>();
    for (const t of await this.o.log.listTopics()) {
      if (!this.wants(t.name)) continue;
      for (const o of await this.o.log.offsets(t.name)) if (o.end > 0) target.set(`${t.name}/${o.partition}`, o.end);
    }
    while (!signal?.aborted && this.state !== 'failed' && this.state !== 'stopped') {
      if ([...target].every(([k, end]) => (this.appliedPos.get(k) ?? 0) >= end)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Adds the sink's topics that appeared since the last look, checking the stored offsets against the log. */
  private async discover(reader: BatchReader, offsets: Map<string, Map<number, number>>): Promise<void> {
    const { log, cfg } = this.o;
    for (const t of await log.listTopics()) {
      if (!this.wants(t.name) || reader.topics.includes(t.name)) continue;
      const stored = offsets.get(t.name);
      for (const o of await log.offsets(t.name)) {
        const at = stored?.get(o.partition) ?? 0;
        if (at > o.end) {
          throw sinkError('SINK_OFFSETS_AHEAD', `sink ${cfg.name}: the target says ${t.name}/${o.partition} was applied up to offset ${at}, but the log ends at ${o.end}: the log was recreated after the target was filled. Empty the target tables and delete the sink's rows from its ${cfg.offsetsTable} table to re-apply from the start`);
        }
        if (at < o.start) {
          throw sinkError('SINK_OFFSET_OUT_OF_RANGE', `sink ${cfg.name}: ${t.name}/${o.partition} must resume at offset ${at}, but retention already deleted the log up to ${o.start}; changes were lost for this target. Raise log retention, then re-snapshot the source into a fresh log and target`);
        }
      }
      reader.addTopic(t.name, t.partitions, stored);
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const { log, cfg, logger } = this.o;
    const schemas = new SchemaStore(log, this.o.schemaTopic);
    try {
      await supervise(
        {
          name: `sink ${cfg.name}`,
          logger,
          signal,
          resumeHint: 'the offsets stored in the target',
          onState: (s, e) => {
            this.state = s;
            if (e) this.lastError = e;
          },
          onFailure: (_e, retry) => {
            this.metrics.error('sink');
            if (retry) this.retries.inc();
          },
        },
        (attempt) => this.attempt(signal, schemas, attempt),
      );
    } catch {
      logger.error('sink stopped: fix the cause and restart the pipeline; the target holds every batch applied so far', { sink: cfg.name, code: this.lastError?.code, error: this.lastError?.message });
      return;
    }
    this.state = 'stopped';
  }

  private async attempt(signal: AbortSignal, schemas: SchemaStore, attempt: { progressed(): void; running(): void }): Promise<void> {
    const { cfg, logger } = this.o;
    let sink: Sink | null = null;
    try {
      sink = await this.o.spec.create(cfg, { pipeline: this.o.pipeline, logger, id: `${this.o.pipeline}/${cfg.name}` });
      const offsets = await sink.open();
      const reader = new BatchReader(this.o.log, schemas);
      for (const [topic, m] of offsets) for (const [p, next] of m) this.appliedPos.set(`${topic}/${p}`, next);
      await this.discover(reader, offsets);
      attempt.running();
      logger.info('sink started', { sink: cfg.name, type: cfg.type, topics: reader.topics.length });
      let lastDiscover = Date.now();
      // The next batch is read while the target applies the current one (its database works in
      // another process or thread); topics are discovered only between reads.
      let pending: Promise<SinkBatch | null> | null = null;
      while (!signal.aborted) {
        if (!pending) {
          if (Date.now() - lastDiscover > 1000) {
            await this.discover(reader, offsets);
            lastDiscover = Date.now();
          }
          pending = reader.next(cfg.batch, 500, signal);
        }
        const batch = await pending;
        pending = null;
        if (!batch) continue;
        if (Date.now() - lastDiscover <= 1000) {
          pending = reader.next(cfg.batch, 500, signal);
          pending.catch(() => {}); // a failure surfaces when awaited
        }
        const started = process.hrtime.bigint();
        this.metrics.eventsIn.inc(batch.records);
        await sink.apply(batch);
        for (const o of batch.offsets) {
          let m = offsets.get(o.topic);
          if (!m) offsets.set(o.topic, (m = new Map()));
          m.set(o.partition, o.next);
          this.appliedPos.set(`${o.topic}/${o.partition}`, o.next);
        }
        this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
        this.metrics.eventsOut.inc(batch.records);
        this.applied += batch.records;
        this.batches++;
        const ts = newestSourceTs(batch);
        if (ts) {
          this.lastSourceTs = ts;
          this.metrics.lagMs.set(Math.max(0, Date.now() - ts));
        }
        attempt.progressed();
        this.o.onApplied?.(cfg.name, batch);
      }
    } finally {
      await sink?.close().catch(() => {});
    }
  }
}

const TS_MARK = '"ts_ms":';

/** Source commit time of the batch's last change (cheaply: the source block's ts_ms). */
function newestSourceTs(batch: SinkBatch): number {
  let best = 0;
  for (const t of batch.tables) {
    const r = t.changes[t.changes.length - 1] ?? t.truncate;
    if (!r) continue;
    const src = r.value.indexOf('"source":');
    const at = src < 0 ? -1 : r.value.indexOf(TS_MARK, src);
    if (at < 0) continue;
    const n = parseInt(r.value.slice(at + TS_MARK.length, at + TS_MARK.length + 16), 10);
    if (n > best) best = n;
  }
  return best;
}
