/**
 * Runs one processor: reads its input topics, transforms each record, and writes the results to
 * its output topics through its own transactional producer, committing each batch of output
 * together with the input offsets it reflects (the producer's checkpoint). After a crash the
 * uncommitted output is gone and reading resumes at the committed offsets: every input record is
 * reflected in the output exactly once.
 */
import type { Logger } from '../core/logger.ts';
import { ComponentMetrics, type Registry } from '../core/metrics.ts';
import { coreError } from '../core/errors.ts';
import type { Consumer, Log, Producer, StoredRecord, TopicConfig } from '../log/types.ts';
import type { ProcessorBaseConfig, ProcessorContext, ProcessorSpec, RecordTransform } from '../registry/spec.ts';
import { supervise, type TaskError, type TaskState } from './supervisor.ts';
import type { Reader } from './topology.ts';

/** Input positions as the checkpoint stores them: `topic` → partition → next offset. */
type Positions = Record<string, Record<string, number>>;

export interface ProcessorTaskOptions {
  spec: ProcessorSpec;
  cfg: ProcessorBaseConfig & { type: string };
  pipeline: string;
  log: Log;
  reader: Reader;
  context: ProcessorContext;
  topicDefaults: TopicConfig;
  batch: { maxRecords: number; maxBytes: number; maxDelayMs: number };
  logger: Logger;
  registry: Registry;
}

export class ProcessorTask {
  state: TaskState = 'starting';
  lastError: TaskError | null = null;
  /** Input records processed and committed this run. */
  processed = 0;
  written = 0;
  private positions: Positions = {};
  /** The positions of the last commit (what the output reflects). */
  private committed: Positions | null = null;
  private readonly metrics: ComponentMetrics;

  constructor(private readonly o: ProcessorTaskOptions) {
    this.metrics = new ComponentMetrics(o.registry, { pipeline: o.pipeline, component: 'processor', processor: o.cfg.name });
  }

  /** The producer id: one per processor of a pipeline. */
  get producerId(): string {
    return `processor:${this.o.pipeline}:${this.o.cfg.name}`;
  }

  status(): Record<string, unknown> {
    return { name: this.o.cfg.name, type: this.o.cfg.type, state: this.state, processed: this.processed, written: this.written, positions: this.positions, error: this.lastError };
  }

  /** Resolves once the processor has committed everything its inputs held when called (or has failed). */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    const target: [string, number, number][] = [];
    for (const t of await this.o.log.listTopics()) {
      if (!this.o.reader.reads(t.name)) continue;
      for (const o of await this.o.log.offsets(t.name)) if (o.end > o.start) target.push([t.name, o.partition, o.end]);
    }
    while (!signal?.aborted && this.state !== 'failed' && this.state !== 'stopped') {
      if (this.committed && target.every(([t, p, end]) => (this.committed![t]?.[p] ?? 0) >= end)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const { log, cfg, logger } = this.o;
    if (!log.capabilities.atomicMultiPartition) {
      throw coreError('ENGINE_LOG_CAPABILITY', `processor ${cfg.name} commits its output with its input offsets in one atomic commit, which the ${log.backend} log backend cannot do across partitions`);
    }
    const transform = await this.o.spec.create(cfg, this.o.context);
    try {
      await supervise(
        {
          name: `processor ${cfg.name}`,
          logger,
          signal,
          resumeHint: 'its committed input offsets',
          onState: (s, e) => {
            this.state = s;
            if (e) this.lastError = e;
          },
          onFailure: () => this.metrics.error('processor'),
        },
        (attempt) => this.attempt(signal, transform, attempt),
      );
    } catch {
      logger.error('processor stopped: fix the cause and restart the pipeline; its output holds every batch committed so far', { processor: cfg.name, code: this.lastError?.code, error: this.lastError?.message });
    }
  }

  private async attempt(signal: AbortSignal, transform: RecordTransform, attempt: { progressed(): void; running(): void }): Promise<void> {
    const { log, batch } = this.o;
    const { producer, checkpoint } = await log.openProducer(this.producerId);
    const consumer = log.openConsumer();
    try {
      this.positions = checkpoint ? (JSON.parse(checkpoint) as Positions) : {};
      this.committed = JSON.parse(JSON.stringify(this.positions)) as Positions;
      const outputs = new Set<string>();
      await this.discover(consumer);
      attempt.running();
      let lastDiscover = Date.now();
      while (!signal.aborted) {
        if (Date.now() - lastDiscover > 1000) {
          await this.discover(consumer);
          lastDiscover = Date.now();
        }
        const recs = await consumer.poll({ maxBytes: Math.min(batch.maxBytes, 4 << 20), maxWaitMs: 200, signal });
        const moved = this.readPositions(consumer);
        if (recs.length === 0 && !moved) continue;
        await this.process(recs, transform, producer, outputs);
        const ckpt = JSON.stringify(this.positions);
        await producer.commit(ckpt);
        this.committed = JSON.parse(ckpt) as Positions;
        this.processed += recs.length;
        this.metrics.eventsOut.inc(recs.length);
        if (recs.length) attempt.progressed();
      }
    } catch (e) {
      await producer.abort().catch(() => {});
      throw e;
    } finally {
      await consumer.close();
      await producer.close().catch(() => {});
    }
  }

  private async process(recs: StoredRecord[], transform: RecordTransform, producer: Producer, outputs: Set<string>): Promise<void> {
    for (const r of recs) {
      this.metrics.eventsIn.inc();
      for (const out of transform.apply(r)) {
        if (!outputs.has(out.topic)) {
          await this.o.log.ensureTopic(out.topic, this.o.topicDefaults);
          outputs.add(out.topic);
        }
        producer.append(out.topic, { key: out.key, value: out.value, timestamp: r.timestamp, headers: out.headers });
        this.written++;
      }
    }
  }

  /** Copies the consumer's positions into the checkpoint; true when any moved. */
  private readPositions(consumer: Consumer): boolean {
    let moved = false;
    for (const { topic, partition } of consumer.assignment) {
      const at = consumer.position(topic, partition);
      const m = (this.positions[topic] ??= {});
      if (m[partition] !== at) {
        m[partition] = at;
        moved = true;
      }
    }
    return moved;
  }

  /** Assigns input topics that appeared since the last look, at their committed positions (or their start). */
  private async discover(consumer: Consumer): Promise<void> {
    const have = new Set(consumer.assignment.map((a) => `${a.topic}\u0000${a.partition}`));
    for (const t of await this.o.log.listTopics()) {
      if (!this.o.reader.reads(t.name)) continue;
      for (const o of await this.o.log.offsets(t.name)) {
        if (have.has(`${t.name}\u0000${o.partition}`)) continue;
        // A committed position below the retained start fails the read (LOG_OFFSET_OUT_OF_RANGE):
        // input lost to retention is reported, never skipped.
        consumer.assign(t.name, o.partition, this.positions[t.name]?.[o.partition] ?? o.start);
      }
    }
  }
}
