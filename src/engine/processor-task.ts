/**
 * Runs one processor: reads its input topics, transforms each record, and writes the results to
 * its output topics through its own transactional producer, committing each batch of output
 * together with the input offsets it reflects (the producer's checkpoint). After a crash the
 * uncommitted output is gone and reading resumes at the committed offsets: every input record is
 * reflected in the output exactly once.
 */
import type { Logger } from '../core/logger.ts';
import { ComponentMetrics, Counter, Gauge, type Registry } from '../core/metrics.ts';
import { coreError } from '../core/errors.ts';
import { SCHEMA_HEADER } from '../core/schemas.ts';
import type { Consumer, Log, Producer, StoredRecord, TopicConfig } from '../log/types.ts';
import type { ProcessorBaseConfig, ProcessorContext, ProcessorSpec, RecordTransform, TransformOutput } from '../registry/spec.ts';
import { DeadLetters, DLQ_HEADERS } from './sink-policy.ts';
import { ChangeReporter, diffSchemas, previousSchema, reportedSchemas, type SchemaChange } from './schema-drift.ts';
import { SchemaLedger, SchemaStore } from './schema-topic.ts';
import { ShardedRunner } from './shards.ts';
import { openStateStore } from './state-store.ts';
import { Failure, InlineRunner, type RecordResult, type StateInfo, type TransformRunner } from './transform-runner.ts';
import { supervise, type TaskError, type TaskState } from './supervisor.ts';
import { dlqTopicOf, processorSchemaTopicOf, retryTopicOf, stateTopicOf, type Reader } from './topology.ts';

/** The output (and state changes) a busy stateful processor commits at the latest, before its commit interval is up. */
const STATE_COMMIT_BYTES = 16 << 20;
/**
 * Input taken per poll: a stateless processor commits each poll, so it takes much; a stateful one
 * commits every `state.commitInterval` and takes little per poll, so that a poll's record objects die
 * young (tens of thousands of them outlive the young generation and fill the old one: more GC,
 * more RSS; measured with bench/processing).
 */
const POLL_BYTES = 4 << 20;
const STATEFUL_POLL_BYTES = 256 << 10;

/** Input positions as the checkpoint stores them: `topic` → partition → next offset. */
type Positions = Record<string, Record<string, number>>;

/** A batch handed to the transform: its records, as the transform took them, and what it gives for them and for the tick after them. */
interface Step {
  recs: StoredRecord[];
  inputs: StoredRecord[];
  results: Promise<RecordResult[]>;
  ticked: Promise<TransformOutput[]>;
}

export interface ProcessorTaskOptions {
  spec: ProcessorSpec;
  cfg: ProcessorBaseConfig & { type: string };
  pipeline: string;
  log: Log;
  reader: Reader;
  context: ProcessorContext;
  topicDefaults: TopicConfig;
  /** The schema topic of the change events read (`<prefix>.__schemas`), for schema drift. */
  schemaTopic: string;
  batch: { maxRecords: number; maxBytes: number; maxDelayMs: number };
  logger: Logger;
  registry: Registry;
  /** The pipeline's own directory (`state.dir`): on-disk processor state goes under it unless a processor names its own. */
  stateDir?: string;
  /** The pipeline's source connector type (names change events' tables in worker threads). */
  sourceType?: string;
}

export class ProcessorTask {
  state: TaskState = 'starting';
  /** The last commit left due work (windows still to close) for the transform's next tick. */
  private behind = false;
  /** A stateful processor's state as of its last commit: where it lives and its entries (on disk: those cached). */
  private keyedState: StateInfo | null = null;
  lastError: TaskError | null = null;
  /** Input records processed and committed this run. */
  processed = 0;
  written = 0;
  /** Input records dead-lettered this run. */
  deadLettered = 0;
  private positions: Positions = {};
  /** The positions of the last commit (what the output reflects). */
  private committed: Positions | null = null;
  private readonly metrics: ComponentMetrics;
  private readonly deadLetters: Counter;
  private readonly stateEntries: Gauge;
  private readonly schemaChanges: Counter;
  /** This attempt's schema drift bookkeeping: the schema store, the last schema per input topic, the changes already reported. */
  private drift: { schemas: SchemaStore; seen: Map<string, string>; reported: Set<string>; reporter: ChangeReporter | null } | null = null;
  /** The schema ids the schema topic holds (or this attempt appended), for change events a transform writes. */
  private schemaIds: SchemaLedger | null = null;
  /** The transform, once created (for what it adds to the status). */
  private transform: RecordTransform | null = null;

  constructor(private readonly o: ProcessorTaskOptions) {
    const labels = { pipeline: o.pipeline, component: 'processor', processor: o.cfg.name };
    this.metrics = new ComponentMetrics(o.registry, labels);
    this.deadLetters = o.registry.register(new Counter('sluice_processor_dead_letters_total', 'Records a processor wrote to the dead-letter topic because it could not transform them (onError: dlq)', labels));
    this.schemaChanges = o.registry.register(new Counter('sluice_schema_changes_total', 'Changes of a source table\'s columns (added, removed, retyped) a processor met', labels));
    this.stateEntries = o.registry.register(new Gauge('sluice_processor_state_entries', 'Keyed state entries a stateful processor (window, join) holds', labels));
  }

  get name(): string {
    return this.o.cfg.name;
  }

  private noteState(runner: TransformRunner): void {
    this.keyedState = runner.state();
    if (this.keyedState) this.stateEntries.set(this.keyedState.entries);
  }

  /** The producer id: one per processor of a pipeline. */
  get producerId(): string {
    return `processor:${this.o.pipeline}:${this.o.cfg.name}`;
  }

  status(): Record<string, unknown> {
    return { name: this.o.cfg.name, type: this.o.cfg.type, state: this.state, processed: this.processed, written: this.written, deadLettered: this.deadLettered, positions: this.positions, keyedState: this.keyedState, error: this.lastError, ...this.transform?.status?.() };
  }

  /** Resolves once the processor has committed everything its inputs held when called (or has failed). */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    const target: [string, number, number][] = [];
    for (const t of await this.o.log.listTopics()) {
      if (!this.o.reader.reads(t.name)) continue;
      for (const o of await this.o.log.offsets(t.name)) if (o.end > o.start) target.push([t.name, o.partition, o.end]);
    }
    while (!signal?.aborted && this.state !== 'failed' && this.state !== 'stopped') {
      if (this.committed && !this.behind && target.every(([t, p, end]) => (this.committed![t]?.[p] ?? 0) >= end)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async run(signal: AbortSignal): Promise<void> {
    const { log, cfg, logger } = this.o;
    if (!log.capabilities.atomicMultiPartition) {
      throw coreError('ENGINE_LOG_CAPABILITY', `processor ${cfg.name} commits its output with its input offsets in one atomic commit, which the ${log.backend} log backend cannot do across partitions`);
    }
    // Change events' schemas, for transforms that derive new ones (loaded in inputsOf).
    const transform = await this.o.spec.create(cfg, { ...this.o.context, schemaOf: (id) => this.drift?.schemas.peek(id), registry: this.o.registry });
    this.transform = transform;
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
          onFailure: (_e, retry) => (this.metrics.error('processor'), retry && this.metrics.restarts.inc()),
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
    let dead: DeadLetters | null = null;
    let runner: TransformRunner | null = null;
    try {
      dead = await DeadLetters.open(log, { pipeline: this.o.pipeline, processor: this.o.cfg.name, topic: dlqTopicOf(this.o.pipeline), topicDefaults: this.o.topicDefaults, create: false });
      // A stateful transform may have due work from before (windows left to close by a run that
      // stopped while behind): not caught up until its first tick says otherwise.
      const stateful = this.o.spec.stateful?.(this.o.cfg) ?? null;
      this.behind = stateful !== null;
      this.positions = checkpoint ? (JSON.parse(checkpoint) as Positions) : {};
      this.committed = JSON.parse(JSON.stringify(this.positions)) as Positions;
      const outputs = new Set<string>();
      this.schemaIds = null;
      this.drift = { schemas: new SchemaStore(log, this.o.schemaTopic), seen: new Map(), reported: await reportedSchemas(log, this.o.pipeline, this.o.cfg.name), reporter: null };
      // Keyed state as of the last commit: the changelog holds exactly what the checkpoint reflects.
      const stateTopic = stateTopicOf(this.o.pipeline, this.o.cfg.name);
      const { cfg } = this.o;
      if (stateful && stateful.parallelism > 1) {
        runner = new ShardedRunner({ type: cfg.type, cfg, pipeline: this.o.pipeline, processor: cfg.name, shards: stateful.parallelism, maxKeys: stateful.maxKeys, sourceType: this.o.sourceType, topicDefaults: this.o.topicDefaults, logger: this.o.context.logger }, transform);
      } else {
        const store = stateful ? await openStateStore({ ...stateful, pipeline: this.o.pipeline, processor: cfg.name, pipelineStateDir: this.o.stateDir }) : null;
        runner = new InlineRunner(transform, store, this.o.topicDefaults, cfg.name);
      }
      if (stateful) {
        const n = await runner.open(log, stateTopic);
        if (n) this.o.logger.info('processor restored its state', { processor: cfg.name, entries: n, store: stateful.store, parallelism: stateful.parallelism });
        this.noteState(runner);
      }
      await this.discover(consumer);
      attempt.running();
      let lastDiscover = Date.now();
      let lastCommit = Date.now();
      /** Input records processed since the last commit, and whether anything is to commit. */
      let pending = 0;
      let dirty = false;
      /**
       * Batches handed to the transform whose output is not written yet, oldest first. A parallel
       * processor keeps one in flight: its shards work on it while this thread reads the next.
       */
      const inflight: Step[] = [];
      const depth = runner instanceof ShardedRunner ? 1 : 0;
      let behind = false;
      /** Writes the oldest step's output (its records', then its tick's). */
      const settle = async (): Promise<void> => {
        const step = inflight.shift()!;
        if (step.recs.length) await this.write(step, await step.results, producer, outputs, dead!);
        const ticked = await step.ticked;
        behind = runner!.behind();
        for (const out of ticked) await this.emit(out, producer, outputs, Date.now());
        dirty ||= ticked.length > 0;
      };
      while (!signal.aborted) {
        if (Date.now() - lastDiscover > 1000) {
          await this.discover(consumer);
          lastDiscover = Date.now();
        }
        // A transform with due work left from its last tick (windows closing over several ticks) does not wait for input.
        // A parallel processor takes four times a stateful poll: each poll is a round of messages to its threads.
        const recs = await consumer.poll({ maxBytes: Math.min(batch.maxBytes, stateful ? STATEFUL_POLL_BYTES * (depth ? 4 : 1) : POLL_BYTES), maxWaitMs: behind || inflight.length ? 0 : 200, signal });
        const moved = this.readPositions(consumer);
        const inputs = recs.length ? await this.inputsOf(recs) : [];
        // Closed windows and updates commit with the batch that closed them.
        const step: Step = { recs, inputs, results: recs.length ? runner.apply(inputs) : Promise.resolve([]), ticked: runner.tick(Date.now()) };
        // Awaited in turn by settle: a failure in between is not unhandled.
        step.results.catch(() => {});
        step.ticked.catch(() => {});
        inflight.push(step);
        pending += recs.length;
        dirty ||= recs.length > 0 || moved;
        while (inflight.length > depth) await settle();
        // A busy stateful processor commits every `state.commitInterval`, so a key changed by many
        // batches goes to its changelog once per commit; a stateless one commits every batch.
        if (stateful && recs.length > 0 && Date.now() - lastCommit < stateful.commitMs && producer.pendingBytes < STATE_COMMIT_BYTES) continue;
        while (inflight.length) await settle();
        const changed = stateful ? await runner.flush(producer, stateTopic) : 0;
        if (!dirty && changed === 0) {
          this.behind = behind; // nothing to commit: what is committed is as it is now
          continue;
        }
        const ckpt = JSON.stringify(this.positions);
        await producer.commit(ckpt);
        if (stateful) {
          runner.committed();
          this.noteState(runner);
        }
        this.behind = behind;
        lastCommit = Date.now();
        dirty = false;
        this.committed = JSON.parse(ckpt) as Positions;
        this.processed += pending;
        this.metrics.eventsOut.inc(pending);
        if (pending) attempt.progressed();
        pending = 0;
      }
    } catch (e) {
      await producer.abort().catch(() => {});
      throw e;
    } finally {
      await consumer.close();
      await producer.close().catch(() => {});
      await dead?.close().catch(() => {});
      await this.drift?.reporter?.close().catch(() => {});
      await runner?.close().catch(() => {});
    }
  }

  /**
   * A batch's records as the transform takes them (a replayed dead letter as the record it was),
   * after reporting the schema changes among them (a change that stops the processor fails the
   * attempt before anything of the batch is committed).
   */
  private async inputsOf(recs: StoredRecord[]): Promise<StoredRecord[]> {
    const retry = retryTopicOf(this.o.pipeline, this.o.cfg.name);
    this.metrics.eventsIn.inc(recs.length);
    const inputs = new Array<StoredRecord>(recs.length);
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i];
      const input = (inputs[i] = r.topic === retry ? replayed(r) : r);
      const sid = input.headers?.[SCHEMA_HEADER];
      if (sid && this.drift!.seen.get(input.topic) !== sid) {
        await this.schemaChanged(input, sid);
        if (this.o.spec.schemas && !this.drift!.schemas.peek(sid)) await this.drift!.schemas.get(sid).catch(() => {});
      }
    }
    return inputs;
  }

  /** Writes what the transform gave for a batch, record by record in input order: a record's output, or its dead letter. */
  private async write(step: Step, results: RecordResult[], producer: Producer, outputs: Set<string>, dead: DeadLetters): Promise<void> {
    const { recs, inputs } = step;
    for (let i = 0; i < recs.length; i++) {
      const res = results[i];
      if (res instanceof Failure) await this.failed(recs[i], inputs[i], res.error, dead);
      else for (const out of res) await this.emit(out, producer, outputs, recs[i].timestamp);
    }
  }

  /**
   * A record with another schema than the last of its topic: when its schema is a newer one of
   * its table than the one before it, the change is reported (schema-changes topic, metric, log)
   * in this batch's commit, or stops the processor (`onSchemaChange: stop`).
   */
  private async schemaChanged(r: StoredRecord, sid: string): Promise<void> {
    const d = this.drift!;
    d.seen.set(r.topic, sid);
    if (d.reported.has(sid)) return;
    let now;
    try {
      now = await d.schemas.get(sid);
    } catch {
      return; // a schema the log lacks: the sinks that need it report that
    }
    const before = previousSchema(now, d.schemas.all());
    const diff = before ? diffSchemas(before, now) : null;
    if (!before || !diff) return;
    const { cfg, logger, pipeline } = this.o;
    const change: SchemaChange = { processor: cfg.name, topic: r.topic, table: `${now.schema}.${now.table}`, from: before.id, to: now.id, ...diff, ts_ms: Date.now() };
    const what = [...diff.added.map((c) => `+${c.name} ${c.type}`), ...diff.removed.map((c) => `-${c.name}`), ...diff.changed.map((c) => `${c.name}: ${c.from} → ${c.to}`)].join(', ');
    this.schemaChanges.inc();
    logger.warn('a source table changed its columns', { processor: cfg.name, table: change.table, topic: r.topic, at: `${r.partition}/${r.offset}`, change: what, onSchemaChange: cfg.onSchemaChange });
    if (cfg.onSchemaChange === 'stop') {
      throw coreError('PROCESSOR_SCHEMA_CHANGED', `processor ${cfg.name} stopped at a change of table ${change.table}'s columns (${what}) in ${r.topic}/${r.partition}/${r.offset} (onSchemaChange: stop). Check that its expressions and its readers fit the new columns, then set onSchemaChange: continue (or restart after the fix) to go on from that record`);
    }
    // Durable before the batch: a crash in between finds it reported when the batch runs again.
    d.reporter ??= await ChangeReporter.open(this.o.log, pipeline, cfg.name, this.o.topicDefaults);
    await d.reporter.write(change, now.topic);
    d.reported.add(sid);
  }

  private async emit(out: TransformOutput, producer: Producer, outputs: Set<string>, timestamp: number): Promise<void> {
    if (out.schema) {
      // A change event's schema goes to a schema topic once, no later than the event (same commit).
      // The processor's own schema topic: readers look an id up in every *.__schemas topic.
      const topic = processorSchemaTopicOf(this.o.pipeline, this.o.cfg.name);
      this.schemaIds ??= await SchemaLedger.load(this.o.log, topic);
      if (!this.schemaIds.has(out.schema.id)) {
        await this.o.log.ensureTopic(topic, { ...this.o.topicDefaults, partitions: 1 });
        producer.append(topic, { key: out.schema.id, value: JSON.stringify(out.schema), timestamp: Date.now() }, 0);
        this.schemaIds.committed.add(out.schema.id);
      }
    }
    if (!outputs.has(out.topic)) {
      const t = this.o.cfg.outputTopic;
      await this.o.log.ensureTopic(out.topic, t ? { ...this.o.topicDefaults, ...(t.partitions ? { partitions: t.partitions } : {}), ...(t.retention ? { retentionMs: t.retention } : {}), ...(t.compaction ? { compaction: true } : {}) } : this.o.topicDefaults);
      outputs.add(out.topic);
    }
    producer.append(out.topic, { key: out.key, value: out.value, timestamp: out.timestamp ?? timestamp, headers: out.headers });
    this.written++;
  }

  /**
   * A record the transform threw on: with `onError: dlq` it goes to the dead-letter topic in a
   * commit of its own that records its position, before the batch's output commits (a crash in
   * between transforms the batch again, and the dead-letter producer's positions say the record is
   * there already); with `stop` the processor stops at it.
   */
  private async failed(r: StoredRecord, input: StoredRecord, e: unknown, dead: DeadLetters): Promise<void> {
    const err = e as { code?: string; message?: string };
    const where = `${input.topic}/${r.partition}/${r.offset}${input !== r ? ` (replayed from ${r.topic})` : ''}`;
    // Not the record's fault (e.g. the schema registry refused a schema, or does not answer): the
    // task stops, or retries a retriable error, whatever onError says.
    if ((e as { halt?: unknown } | null)?.halt === true) throw e;
    // A verdict on the record (an expectation with action: dlq) is dead-lettered whatever onError says.
    if (this.o.cfg.onError === 'stop' && (e as { deadLetter?: unknown } | null)?.deadLetter !== true) {
      throw coreError('PROCESSOR_RECORD', `processor ${this.o.cfg.name} cannot transform the record at ${where}: ${err?.message ?? String(e)}. Fix the cause and restart, or set onError: dlq to set such records aside`);
    }
    if (dead.covers(r.topic, r.partition, r.offset)) return;
    await this.o.log.ensureTopic(dead.topic, { ...this.o.topicDefaults, partitions: 1 });
    await dead.write({
      table: input.topic,
      topic: input.topic,
      record: { topic: input.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.value, schemaId: r.headers?.[SCHEMA_HEADER], timestamp: input.timestamp },
      positions: [{ topic: r.topic, partition: r.partition, next: r.offset + 1 }],
      past: [],
      error: e,
    });
    this.deadLettered++;
    this.deadLetters.inc();
    this.metrics.error('processor');
    this.o.logger.warn('processor dead-lettered a record it could not transform, and goes on', { processor: this.o.cfg.name, at: where, code: err?.code, error: String(err?.message ?? e).slice(0, 500), dlq: dead.topic });
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

/** A record of the retry topic as the transform sees it: on its original topic, without the replay's headers. */
function replayed(r: StoredRecord): StoredRecord {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) if (!k.startsWith('sluice.')) headers[k] = v;
  const ts = Number(r.headers?.[DLQ_HEADERS.timestamp]);
  return { ...r, topic: r.headers?.[DLQ_HEADERS.topic] ?? r.topic, timestamp: Number.isFinite(ts) ? ts : r.timestamp, headers };
}
