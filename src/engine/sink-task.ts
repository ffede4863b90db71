/**
 * Runs one sink: reads batches from the log, applies them, and keeps going. Transient failures
 * (lost connection, deadlock, a locked DuckDB file) reconnect and resume from the offsets stored in
 * the target, with backoff 0.5 s → 30 s. A permanent failure (an incompatible schema change, bad
 * data the target refuses) stops this sink with its error in the log, /status and metrics; the
 * target keeps the last applied batch, and the source and other sinks go on.
 */
import type { PipelineConfig, SinkConfig } from '../config/types.ts';
import { isRetriable } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { ComponentMetrics, Counter, type Registry } from '../core/metrics.ts';
import { SchemaStore, schemaTopicOf } from '../core/schemas.ts';
import type { Log } from '../log/types.ts';
import { BatchReader } from './batch-reader.ts';
import type { Sink, SinkBatch } from '../sinks/types.ts';
import { createSink } from '../sinks/index.ts';
import { sinkError } from '../sinks/errors.ts';

export type SinkState = 'starting' | 'running' | 'retrying' | 'failed' | 'stopped';

/** `schema.table` patterns with `*` wildcards. */
export function tableMatcher(patterns: string[]): (schemaTable: string) => boolean {
  if (patterns.length === 0) return () => true;
  const res = patterns.map((p) => new RegExp('^' + p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'));
  return (t) => res.some((r) => r.test(t));
}

export class SinkWorker {
  state: SinkState = 'starting';
  lastError: { code: string; message: string; at: string } | null = null;
  applied = 0;
  batches = 0;
  /** Source commit time of the newest applied change (ms). */
  lastSourceTs = 0;
  private readonly metrics: ComponentMetrics;
  private readonly retries: Counter;
  private readonly prefix: string;
  private readonly pipelineName: string;
  private readonly matches: (t: string) => boolean;

  constructor(
    private readonly log: Log,
    readonly cfg: SinkConfig,
    pipeline: PipelineConfig,
    private readonly logger: Logger,
    registry: Registry,
    private readonly onApplied?: (sink: string, batch: SinkBatch) => void,
  ) {
    this.prefix = pipeline.source.topicPrefix;
    this.pipelineName = pipeline.name;
    this.matches = tableMatcher(cfg.tables);
    const labels = { pipeline: pipeline.name, component: 'sink', sink: cfg.name };
    this.metrics = new ComponentMetrics(registry, labels);
    this.retries = registry.register(new Counter('sluice_sink_retries_total', 'Times a sink reconnected after a transient failure', labels));
  }

  status(): Record<string, unknown> {
    return {
      name: this.cfg.name,
      type: this.cfg.type,
      state: this.state,
      applied: this.applied,
      batches: this.batches,
      lagMs: this.lastSourceTs ? Math.max(0, Date.now() - this.lastSourceTs) : null,
      /** `topic/partition` → next log offset to apply, as committed in the target. */
      offsets: Object.fromEntries(this.appliedPos),
      error: this.lastError,
    };
  }

  /** `topic/partition` → next offset, as applied to the target. */
  private readonly appliedPos = new Map<string, number>();

  /** Resolves once the sink has applied everything the log held when called (or has failed). */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    const pre = this.prefix + '.';
    const target = new Map<string, number>();
    for (const t of await this.log.listTopics()) {
      if (!t.name.startsWith(pre) || t.name === schemaTopicOf(this.prefix) || t.name === `${this.prefix}.transaction` || !this.matches(t.name.slice(pre.length))) continue;
      for (const o of await this.log.offsets(t.name)) if (o.end > 0) target.set(`${t.name}/${o.partition}`, o.end);
    }
    while (!signal?.aborted && this.state !== 'failed' && this.state !== 'stopped') {
      if ([...target].every(([k, end]) => (this.appliedPos.get(k) ?? 0) >= end)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Change topics this sink applies: `<prefix>.<schema>.<table>` matching `tables`. */
  private async discover(reader: BatchReader, offsets: Map<string, Map<number, number>>): Promise<void> {
    const pre = this.prefix + '.';
    for (const t of await this.log.listTopics()) {
      if (!t.name.startsWith(pre) || t.name === schemaTopicOf(this.prefix) || t.name === `${this.prefix}.transaction`) continue;
      if (!this.matches(t.name.slice(pre.length))) continue;
      if (reader.topics.includes(t.name)) continue;
      const stored = offsets.get(t.name);
      const ends = await this.log.offsets(t.name);
      for (const o of ends) {
        const at = stored?.get(o.partition) ?? 0;
        if (at > o.end) {
          throw sinkError('SINK_OFFSETS_AHEAD', `sink ${this.cfg.name}: the target says ${t.name}/${o.partition} was applied up to offset ${at}, but the log ends at ${o.end}: the log was recreated after the target was filled. Empty the target tables and delete the sink's rows from its ${this.cfg.offsetsTable} table to re-apply from the start`);
        }
        if (at < o.start) {
          throw sinkError('SINK_OFFSET_OUT_OF_RANGE', `sink ${this.cfg.name}: ${t.name}/${o.partition} must resume at offset ${at}, but retention already deleted the log up to ${o.start}; changes were lost for this target. Raise log retention, then re-snapshot the source into a fresh log and target`);
        }
      }
      reader.addTopic(t.name, t.partitions, stored);
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const schemas = new SchemaStore(this.log, schemaTopicOf(this.prefix));
    let failures = 0;
    while (!signal.aborted) {
      let sink: Sink | null = null;
      try {
        sink = await createSink(this.cfg, this.logger, `${this.pipelineName}/${this.cfg.name}`);
        const offsets = await sink.open();
        const reader = new BatchReader(this.log, schemas);
        for (const [topic, m] of offsets) for (const [p, next] of m) this.appliedPos.set(`${topic}/${p}`, next);
        await this.discover(reader, offsets);
        this.state = 'running';
        this.logger.info('sink started', { sink: this.cfg.name, type: this.cfg.type, topics: reader.topics.length });
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
            pending = reader.next(this.cfg.batch, 500, signal);
          }
          const batch = await pending;
          pending = null;
          if (!batch) continue;
          if (Date.now() - lastDiscover <= 1000) {
            pending = reader.next(this.cfg.batch, 500, signal);
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
          failures = 0;
          this.onApplied?.(this.cfg.name, batch);
        }
      } catch (e) {
        this.metrics.error('sink');
        const err = e as { code?: string; message?: string };
        this.lastError = { code: err.code ?? 'SINK_FAILED', message: err.message ?? String(e), at: new Date().toISOString() };
        if (!isRetriable(e) || signal.aborted) {
          if (signal.aborted) break;
          this.state = 'failed';
          this.logger.error('sink stopped: fix the cause and restart the pipeline; the target holds every batch applied so far', { sink: this.cfg.name, code: this.lastError.code, error: this.lastError.message });
          return;
        }
        failures++;
        this.retries.inc();
        this.state = 'retrying';
        const delay = Math.min(30_000, 250 * 2 ** failures);
        this.logger.warn('sink failed, reconnecting and resuming from the offsets stored in the target', { sink: this.cfg.name, error: this.lastError.message, retryInMs: delay });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
      } finally {
        await sink?.close().catch(() => {});
      }
    }
    this.state = 'stopped';
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
