/**
 * Runs one sink: reads batches of its topics from the log, applies them, and keeps going. The sink
 * stores the offsets it consumed in its target, in the same transaction as the data, so it resumes
 * exactly where the target stands. Transient failures (lost connection, deadlock, a locked DuckDB
 * file) reconnect and resume from those offsets (the supervisor's backoff). A permanent failure (an
 * incompatible schema change, bad data the target refuses) stops this sink with its error in the
 * log, /status and metrics (`onError: stop`, the default); the target keeps the last applied batch,
 * and the rest of the pipeline goes on. With `onError: skip_table` or `dlq` the sink finds the change
 * the target refuses and holds its table or dead-letters the change, and goes on (sink-policy.ts).
 */
import { isRetriable } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { ComponentMetrics, Counter, Gauge, type Registry } from '../core/metrics.ts';
import { SCHEMA_HEADER } from '../core/schemas.ts';
import type { GroupGeneration, GroupMember, Log, TopicConfig } from '../log/types.ts';
import type { SinkBaseConfig, SinkSpec } from '../registry/spec.ts';
import { sinkError } from '../sinks/errors.ts';
import type { Sink, SinkBatch } from '../sinks/types.ts';
import { BatchReader, buildTables, type ReadBatch, type RejectedRecord, type TruncateBarrier } from './batch-reader.ts';
import { SchemaStore } from './schema-topic.ts';
import { DeadLetters, isolate, offsetsOnly, type OnError, type PolicyHost, type Refusal } from './sink-policy.ts';
import { supervise, type TaskError, type TaskState } from './supervisor.ts';
import { dlqTopicOf, topicPattern, type Reader } from './topology.ts';

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
  /** Settings of the topics the pipeline creates (the dead-letter topic's retention). */
  topicDefaults?: TopicConfig;
  onApplied?: (sink: string, batch: SinkBatch) => void;
}

/** A table a sink holds (`onError: skip_table`): the target refused one of its changes. */
export interface HeldTable {
  /** `schema.table` of the source table. */
  table: string;
  topic: string;
  /** Where the refused change is in the log. */
  partition: number;
  offset: number;
  error: TaskError;
  /** partition → next offset of the topic the target holds: where the table resumes on restart. */
  offsets: Record<string, number>;
}

type Offsets = Map<string, Map<number, number>>;

export class SinkTask {
  state: TaskState = 'starting';
  lastError: TaskError | null = null;
  applied = 0;
  batches = 0;
  /** Source commit time of the newest applied change (ms). */
  lastSourceTs = 0;
  /** Changes written to the dead-letter topic this run. */
  deadLettered = 0;
  /** Source commit time (ms) of the oldest change the sink started applying and has not applied yet (0: none). */
  private pendingTs = 0;
  /** Source commit → applied of the last batch (ms). */
  private lastBatchLagMs = 0;
  private readonly lagSeconds: Gauge;
  /** Tables held, by topic, until the pipeline restarts (across reconnects too). */
  private readonly held = new Map<string, HeldTable>();
  private readonly metrics: ComponentMetrics;
  private readonly retries: Counter;
  private readonly heldTables: Gauge;
  private readonly deadLetters: Counter;
  private readonly matches: (t: string) => boolean;
  /** `topic/partition` → next offset, as applied to the target. */
  private readonly appliedPos = new Map<string, number>();
  /** Partitions of each topic the sink reads, as first seen (a topic that gains some stops the sink). */
  private readonly partitionsOf = new Map<string, number>();
  /** `topic/partition` → the log's committed end, as last looked up (every second). */
  private readonly ends = new Map<string, number>();
  /** Per partition the sink applies: how many offsets the log holds past what the target holds. */
  private readonly partitionLag = new Map<string, Gauge>();

  constructor(private readonly o: SinkTaskOptions) {
    this.matches = tableMatcher(o.cfg.tables);
    const labels = { pipeline: o.pipeline, component: 'sink', sink: o.cfg.name };
    this.metrics = new ComponentMetrics(o.registry, labels);
    this.retries = o.registry.register(new Counter('sluice_sink_retries_total', 'Times a sink reconnected after a transient failure', labels));
    this.heldTables = o.registry.register(new Gauge('sluice_sink_held_tables', 'Tables a sink holds because its target refused one of their changes (onError: skip_table)', labels));
    this.deadLetters = o.registry.register(new Counter('sluice_sink_dead_letters_total', 'Changes a sink wrote to the dead-letter topic because its target refused them (onError: dlq)', labels));
    this.lagSeconds = o.registry.register(
      new Gauge('sluice_sink_lag_seconds', 'End-to-end lag of a sink: seconds from the source commit of the oldest change it is applying (or retrying) to now; between batches, source commit to applied of its last batch while the log holds more for it, 0 once it has applied everything', labels),
    );
    o.registry.collect(() => this.lagSeconds.set(this.lagMsAt(Date.now()) / 1000));
  }

  /**
   * End-to-end lag at `now` (ms): a batch being applied (or retried after a failure) ages from its
   * oldest change's source commit; otherwise the last batch's commit-to-applied time while the log
   * holds more for the sink (as of the last look, each second), and 0 when it holds nothing more.
   */
  lagMsAt(now: number): number {
    if (this.pendingTs) return Math.max(0, now - this.pendingTs);
    for (const [k, end] of this.ends) if (end > (this.appliedPos.get(k) ?? 0)) return this.lastBatchLagMs;
    return 0;
  }

  private get policy(): OnError {
    return this.o.cfg.onError ?? 'stop';
  }

  /** The tables the sink holds (`onError: skip_table`). */
  get heldTableList(): HeldTable[] {
    return [...this.held.values()];
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
      /** End-to-end lag now (sluice_sink_lag_seconds). */
      lagSeconds: this.lagMsAt(Date.now()) / 1000,
      /** `topic/partition` → next log offset to apply, as committed in the target. */
      offsets: Object.fromEntries(this.appliedPos),
      /** `topic/partition` → log offsets past what the target holds (as of the last look, each second). */
      partitionLag: Object.fromEntries([...this.ends].map(([k, end]) => [k, Math.max(0, end - (this.appliedPos.get(k) ?? 0))])),
      group: this.groupName ? { name: this.groupName, generation: this.generation?.generation ?? null, member: this.generation?.memberId ?? null, partitions: this.generation?.assignment.map((a) => `${a.topic}/${a.partition}`) ?? [] } : undefined,
      error: this.lastError,
      onError: this.policy,
      held: this.heldTableList,
      deadLettered: this.deadLettered,
    };
  }

  /** Whether the sink applies `topic`: one of its topics, of a table it takes. */
  private wants(topic: string): boolean {
    if (!this.o.reader.reads(topic)) return false;
    const pre = this.o.prefix + '.';
    return this.matches(topic.startsWith(pre) ? topic.slice(pre.length) : topic);
  }

  /** Whether this worker applies `topic/partition` now: all of them, unless it shares them with its group. */
  private owns(topic: string, partition: number): boolean {
    return !this.generation || this.generation.assignment.some((a) => a.topic === topic && a.partition === partition);
  }

  /** Resolves once the sink has applied everything the log held when called, held tables aside (or has failed). */
  async caughtUp(signal?: AbortSignal): Promise<void> {
    const target: [string, number, number][] = [];
    for (const t of await this.o.log.listTopics()) {
      if (!this.wants(t.name)) continue;
      for (const o of await this.o.log.offsets(t.name)) if (o.end > 0) target.push([t.name, o.partition, o.end]);
    }
    while (!signal?.aborted && this.state !== 'failed' && this.state !== 'stopped') {
      // In a group, the partitions other members apply are theirs to catch up.
      if (target.every(([topic, p, end]) => this.held.has(topic) || !this.owns(topic, p) || (this.appliedPos.get(`${topic}/${p}`) ?? 0) >= end)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The sink's topics in the log now, held tables aside. */
  private async wantedTopics(): Promise<{ name: string; partitions: number }[]> {
    return (await this.o.log.listTopics()).filter((t) => this.wants(t.name) && !this.held.has(t.name));
  }

  /** Looks up the log's end of each partition the sink applies, for its lag (status, /metrics). */
  private async refreshLag(reader: BatchReader): Promise<void> {
    const seen = new Set<string>();
    for (const topic of reader.topics) {
      for (const o of await this.o.log.offsets(topic)) {
        const k = `${topic}/${o.partition}`;
        if (!this.owns(topic, o.partition)) continue;
        seen.add(k);
        this.ends.set(k, o.end);
        let g = this.partitionLag.get(k);
        if (!g) {
          const labels = { pipeline: this.o.pipeline, component: 'sink', sink: this.o.cfg.name, topic, partition: String(o.partition) };
          this.partitionLag.set(k, (g = this.o.registry.register(new Gauge('sluice_sink_partition_lag', "Log offsets past what the sink's target holds, per partition the sink applies (Kafka's offsets include transaction markers)", labels))));
        }
        g.set(Math.max(0, o.end - (this.appliedPos.get(k) ?? 0)));
      }
    }
    for (const [k, g] of this.partitionLag) {
      if (seen.has(k)) continue;
      this.o.registry.unregister(g);
      this.partitionLag.delete(k);
      this.ends.delete(k);
    }
  }

  /**
   * Adds the sink's topics that appeared since the last look (their partitions this worker owns),
   * checking the stored offsets against the log. Returns false when a topic appeared that the
   * worker's group does not know yet: it must join again to share it.
   */
  private async discover(reader: BatchReader, offsets: Map<string, Map<number, number>>, joined: Set<string> | null): Promise<boolean> {
    const { log, cfg } = this.o;
    for (const t of await this.wantedTopics()) {
      const had = this.partitionsOf.get(t.name);
      if (had !== undefined && had !== t.partitions) {
        throw sinkError('SINK_TOPIC_PARTITIONS', `sink ${cfg.name}: topic ${t.name} had ${had} partition${had > 1 ? 's' : ''} and has ${t.partitions} now: someone added partitions, so a key's later changes go to another partition than its earlier ones and could be applied before them. The sink stops; recreate the topic with the partitions it needs (re-snapshot the source into a fresh log or topicPrefix) and fill the target again`);
      }
      this.partitionsOf.set(t.name, t.partitions);
      if (reader.topics.includes(t.name)) continue;
      if (joined && !joined.has(t.name)) return false;
      const only = this.generation ? this.generation.assignment.filter((a) => a.topic === t.name).map((a) => a.partition) : undefined;
      if (only && only.length === 0) continue;
      const stored = offsets.get(t.name);
      for (const o of await log.offsets(t.name)) {
        if (!this.owns(t.name, o.partition)) continue;
        const at = stored?.get(o.partition) ?? 0;
        if (at > o.end) {
          throw sinkError('SINK_OFFSETS_AHEAD', `sink ${cfg.name}: the target says ${t.name}/${o.partition} was applied up to offset ${at}, but the log ends at ${o.end}: the log was recreated after the target was filled. Empty the target tables and delete the sink's rows from its ${cfg.offsetsTable} table to re-apply from the start`);
        }
        if (at < o.start) {
          throw sinkError('SINK_OFFSET_OUT_OF_RANGE', `sink ${cfg.name}: ${t.name}/${o.partition} must resume at offset ${at}, but retention already deleted the log up to ${o.start}; changes were lost for this target. Raise log retention, then re-snapshot the source into a fresh log and target`);
        }
      }
      reader.addTopic(t.name, t.partitions, stored, only);
    }
    return true;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { log, cfg, logger } = this.o;
    const schemas = new SchemaStore(log, this.o.schemaTopic);
    // With a log that has consumer groups, the sink is a member of its own group: every process
    // running it (sluice run --only sinks, on any machine) shares the topics' partitions.
    const member = log.capabilities.groupMembership && log.joinGroup ? log.joinGroup(`sink.${this.o.pipeline}.${cfg.name}`) : null;
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
            if (retry) {
              this.retries.inc();
              this.metrics.restarts.inc();
            }
          },
        },
        async (attempt) => {
          // A rebalance (or a topic the group does not know yet) ends a session; the next one
          // joins again and re-reads the offsets of the partitions it then owns from the target.
          while (!signal.aborted && (await this.session(signal, schemas, attempt, member)));
        },
      );
    } catch {
      logger.error('sink stopped: fix the cause and restart the pipeline; the target holds every batch applied so far', { sink: cfg.name, code: this.lastError?.code, error: this.lastError?.message });
      return;
    } finally {
      await member?.leave();
    }
    this.state = 'stopped';
  }

  /** This worker's generation of its sink's group (null: no group, it applies every partition). */
  private generation: GroupGeneration | null = null;
  private groupName: string | null = null;

  /** Applies batches until stopped (false) or until the group needs this worker to join again (true). */
  private async session(signal: AbortSignal, schemas: SchemaStore, attempt: { progressed(): void; running(): void }, member: GroupMember | null): Promise<boolean> {
    const { cfg, logger } = this.o;
    const policy = this.policy;
    let sink: Sink | null = null;
    let dead: DeadLetters | null = null;
    let unsubscribe: (() => void) | undefined;
    try {
      let joined: Set<string> | null = null;
      if (member) {
        const topics = (await this.wantedTopics()).map((t) => t.name);
        this.generation = null;
        this.groupName = member.name;
        const gen = await member.join(topics, signal);
        if (signal.aborted) return false;
        this.generation = gen;
        joined = new Set(topics);
        logger.info('sink joined its consumer group', { sink: cfg.name, group: member.name, generation: gen.generation, members: gen.members, partitions: gen.assignment.map((a) => `${a.topic}/${a.partition}`) });
      }
      const revoked = this.generation?.revoked;
      sink = await this.o.spec.create(cfg, { pipeline: this.o.pipeline, logger, id: `${this.o.pipeline}/${cfg.name}` });
      const offsets = await sink.open();
      dead = await this.openDeadLetters(sink, offsets);
      const reader = new BatchReader(this.o.log, schemas, policy !== 'stop');
      this.appliedPos.clear();
      for (const [topic, m] of offsets) for (const [p, next] of m) if (this.owns(topic, p)) this.appliedPos.set(`${topic}/${p}`, next);
      const target = sink;
      const host: PolicyHost = {
        commit: async (b) => {
          await target.apply(b);
          this.noteApplied(b, offsets);
        },
        refused: (r) => this.refused(r, target, dead, offsets),
      };
      if (!(await this.discover(reader, offsets, joined))) return true;
      attempt.running();
      logger.info('sink started', { sink: cfg.name, type: cfg.type, topics: reader.topics.length });
      let lastDiscover = Date.now();
      // The next batch is read while the target applies the current one (its database works in
      // another process or thread); topics are discovered only between reads.
      let pending: Promise<ReadBatch | null> | null = null;
      const readSignal = revoked ? AbortSignal.any([signal, revoked]) : signal;
      // Adaptive batching: a batch is handed over as soon as nothing more is there to read and the
      // target is idle; while the target applies the batch before, the next one grows (up to the
      // batch bounds). A topic created in this process (a new table) wakes an idle read at once.
      let applying: Promise<unknown> | null = null;
      let topicsChanged = false;
      let wake: () => void = () => {};
      unsubscribe = this.o.log.onTopicCreated?.(() => {
        topicsChanged = true;
        wake();
      });
      // The sink prepares what it can of a batch (its rows' encoding) as soon as it is read.
      const readAhead = async (): Promise<ReadBatch | null> => {
        const b = await reader.next(cfg.batch, 500, readSignal, { busy: () => applying, wake: new Promise<void>((r) => (wake = r)), woken: () => topicsChanged });
        if (b && !b.barrier && b.records && target.prepare) await target.prepare(b);
        return b;
      };
      /** Adds the topics that appeared and refreshes the lag; false: the group must be joined again. */
      const rediscover = async (): Promise<boolean> => {
        topicsChanged = false;
        if (!(await this.discover(reader, offsets, joined))) return false;
        await this.refreshLag(reader);
        lastDiscover = Date.now();
        return true;
      };
      const due = () => topicsChanged || Date.now() - lastDiscover > 1000;
      while (!signal.aborted) {
        if (revoked?.aborted) {
          logger.info('sink group rebalances: joining again', { sink: cfg.name, group: member?.name });
          await pending?.catch(() => null);
          return true;
        }
        if (!pending) {
          if (due() && !(await rediscover())) return true;
          pending = readAhead();
        }
        const batch = await pending;
        pending = null;
        if (!batch) continue;
        // Partitions revoked while the batch was read go to another member: not applied here
        // (read again from what the target holds, if this member keeps them).
        if (revoked?.aborted || (member && !member.live)) {
          reader.rewind(offsets);
          continue;
        }
        // Topics change only between reads: a due look happens before the next read starts, so
        // that read always overlaps this batch's apply.
        if (due() && !(await rediscover())) return true;
        pending = readAhead();
        pending.catch(() => {}); // a failure surfaces when awaited
        if (batch.barrier) {
          await pending?.catch(() => null);
          pending = null;
          if (!(await this.passTruncate(batch.barrier, sink, offsets, revoked, signal))) continue; // revoked or stopping
          reader.rewind(offsets);
          attempt.progressed();
          continue;
        }
        // Sharing the topics with other workers: the target checks that nobody else moved these partitions.
        if (member) for (const o of batch.offsets) o.from = offsets.get(o.topic)?.get(o.partition) ?? 0;
        const started = process.hrtime.bigint();
        this.metrics.eventsIn.inc(batch.records);
        let isolated = false;
        if (!this.pendingTs) this.pendingTs = sourceTs(batch, 'oldest');
        try {
          const run = sink.apply(batch);
          applying = run.then(
            () => {},
            () => {},
          );
          await run;
        } catch (e) {
          if (policy === 'stop' || isRetriable(e)) throw e;
          await isolate(batch, e, host);
          isolated = true;
        }
        applying = null;
        if (!isolated) this.noteApplied(batch, offsets);
        for (const r of batch.rejected) if (!this.held.has(r.record.topic)) await this.refused(this.rejection(r), sink, dead, offsets);
        if (isolated || batch.rejected.length) {
          // The read-ahead went on from the end of the batch: read again from what the target holds,
          // without the held tables.
          await pending?.catch(() => null);
          pending = null;
          for (const t of this.held.keys()) reader.removeTopic(t);
          reader.rewind(offsets);
        }
        this.metrics.batchLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
        attempt.progressed();
        // Nothing of this batch is used any more: its payload buffers may take later batches.
        reader.release(batch);
      }
      return false;
    } finally {
      unsubscribe?.();
      await dead?.close().catch(() => {});
      await sink?.close().catch(() => {});
    }
  }

  /**
   * A truncate of a topic whose partitions this worker shares with others of its group. The
   * truncate stands in every partition; it must empty the table once, after every partition's
   * changes before it and before any change after it. So each worker stops its partitions at the
   * truncate, and the one that owns partition 0 applies it once the target's offsets show every
   * other partition stopped there too; the others then see partition 0 past it and move their
   * partitions past it without applying it again. Returns false when the group rebalanced or the
   * sink stops meanwhile (the next session meets the truncate again, from the target's offsets).
   */
  private async passTruncate(b: TruncateBarrier, sink: Sink, offsets: Offsets, revoked: AbortSignal | undefined, signal: AbortSignal): Promise<boolean> {
    const { log, cfg, logger } = this.o;
    if (!sink.storedOffsets) throw sinkError('SINK_BAD_RECORD', `sink ${cfg.name}: ${b.topic} was truncated, and its partitions are shared by several workers, which a ${cfg.type} sink cannot coordinate; run one worker of this sink`);
    const info = await log.topicInfo(b.topic);
    const mine = new Set(b.at.map((a) => a.partition));
    const others = Array.from({ length: info?.partitions ?? 0 }, (_, p) => p).filter((p) => !mine.has(p));
    /** Where the truncate stands in each other partition, once found. */
    const found = new Map<number, number>();
    let waitingSince = Date.now();
    while (!signal.aborted && !revoked?.aborted) {
      const stored = (await sink.storedOffsets()).get(b.topic) ?? new Map<number, number>();
      let passed = false;
      let parked = 0;
      for (const q of others) {
        const at = stored.get(q) ?? 0;
        let t = found.get(q);
        if (t === undefined) {
          const f = await this.findRecord(b.topic, q, at, b.value);
          if (f === null) {
            passed = true; // the truncate lies before the stored offset: another worker applied it
            break;
          }
          if (f >= 0) found.set(q, (t = f));
        }
        if (t === undefined) continue;
        if (at > t) {
          passed = true;
          break;
        }
        // Nothing to apply between the stored offset and the truncate: that partition waits at it.
        if ((await this.findRecord(b.topic, q, at, null)) === t) parked++;
      }
      const past = b.at.map((a) => ({ topic: b.topic, partition: a.partition, next: a.offset + 1 }));
      if (passed || (parked === others.length && mine.has(0))) {
        const batch: SinkBatch = passed ? offsetsOnly(past) : { tables: buildTables([], new Map([[b.topic, b.record]])), offsets: past, records: 1, bytes: 0 };
        await sink.apply(batch);
        this.noteApplied(batch, offsets);
        logger.info(passed ? 'sink moved its partitions past a truncate another worker applied' : 'sink applied a truncate of a topic its group shares', { sink: cfg.name, topic: b.topic, partitions: [...mine] });
        return true;
      }
      if (Date.now() - waitingSince > 30_000) {
        logger.warn('sink waits at a truncate for the other workers of its group to reach it', { sink: cfg.name, topic: b.topic, partitions: [...mine], waitingFor: others.filter((q) => (stored.get(q) ?? 0) !== found.get(q)) });
        waitingSince = Date.now();
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  /**
   * The offset of the first record at or after `from` in `topic/partition` (with `value`: the first
   * with those bytes; -1 when none so far). Null when a record with `value` is looked for and the
   * partition holds none at or after `from`, nor any record at all there.
   */
  private async findRecord(topic: string, partition: number, from: number, value: Buffer | null): Promise<number | null> {
    const end = (await this.o.log.offsets(topic)).find((o) => o.partition === partition)?.end ?? 0;
    for (let at = from; at < end; ) {
      const r = await this.o.log.read(topic, partition, at, 1 << 20);
      for (const rec of r.records) if (value === null || (rec.value && rec.value.equals(value))) return rec.offset;
      if (r.next <= at) break;
      at = r.next;
    }
    return value === null ? -1 : null;
  }

  /** Counts a batch the target committed, and the offsets it now holds. */
  private noteApplied(batch: SinkBatch, offsets: Offsets): void {
    for (const o of batch.offsets) {
      let m = offsets.get(o.topic);
      if (!m) offsets.set(o.topic, (m = new Map()));
      m.set(o.partition, o.next);
      this.appliedPos.set(`${o.topic}/${o.partition}`, o.next);
    }
    this.metrics.eventsOut.inc(batch.records);
    this.applied += batch.records;
    this.batches++;
    const ts = sourceTs(batch, 'newest');
    if (ts) {
      this.lastSourceTs = ts;
      this.lastBatchLagMs = Math.max(0, Date.now() - ts);
      this.metrics.lagMs.set(this.lastBatchLagMs);
    }
    this.pendingTs = 0;
    this.o.onApplied?.(this.o.cfg.name, batch);
  }

  /**
   * The sink's dead-letter producer with `onError: dlq`. Whatever the policy, when the log has a
   * dead-letter topic, first moves the target past a record dead-lettered just before the last
   * stop (see sink-policy.ts), so that it is never applied.
   */
  private async openDeadLetters(sink: Sink, offsets: Offsets): Promise<DeadLetters | null> {
    const { log, cfg, logger } = this.o;
    const topic = dlqTopicOf(this.o.pipeline);
    const dlq = this.policy === 'dlq';
    if (!dlq && !(await log.topicInfo(topic))) return null;
    const dead = await DeadLetters.open(log, { pipeline: this.o.pipeline, sink: cfg.name, topic, topicDefaults: this.o.topicDefaults, create: dlq });
    try {
      const past = await dead.pendingPast(offsets);
      if (past.length) {
        await sink.apply(offsetsOnly(past));
        for (const o of past) (offsets.get(o.topic) ?? offsets.set(o.topic, new Map()).get(o.topic)!).set(o.partition, o.next);
        logger.info('sink moved past records it dead-lettered before its last stop', { sink: cfg.name, positions: past.map((o) => `${o.topic}/${o.partition}@${o.next}`) });
      }
    } catch (e) {
      await dead.close().catch(() => {});
      throw e;
    }
    if (dlq) return dead;
    await dead.close();
    return null;
  }

  /** A record the reader could not read as a change, as a refusal of its own. */
  private rejection(r: RejectedRecord): Refusal {
    const rec = r.record;
    const pre = this.o.prefix + '.';
    const past = [{ topic: rec.topic, partition: rec.partition, next: rec.offset + 1 }];
    return {
      table: rec.topic.startsWith(pre) ? rec.topic.slice(pre.length) : rec.topic,
      topic: rec.topic,
      record: { topic: rec.topic, partition: rec.partition, offset: rec.offset, key: rec.key, value: rec.value, schemaId: rec.headers?.[SCHEMA_HEADER] },
      positions: past,
      past,
      error: r.error,
    };
  }

  /** A change the target refuses alone: dead-letters it and goes on (true), or holds its table (false). */
  private async refused(r: Refusal, sink: Sink, dead: DeadLetters | null, offsets: Offsets): Promise<boolean> {
    const { cfg, logger } = this.o;
    const err = r.error as { code?: string; message?: string } | null;
    const error: TaskError = { code: err?.code ?? 'FAILED', message: err?.message ?? String(r.error), at: new Date().toISOString() };
    const where = { sink: cfg.name, table: r.table, topic: r.topic, partition: r.record.partition, offset: r.record.offset, code: error.code, error: error.message };
    this.metrics.error('sink');
    if (dead) {
      await dead.write(r);
      const past = offsetsOnly(r.past);
      await sink.apply(past);
      this.noteApplied(past, offsets);
      this.deadLettered++;
      this.deadLetters.inc();
      logger.warn('sink dead-lettered a change its target refused; the table goes on past it', { ...where, dlq: dead.topic });
      return true;
    }
    this.held.set(r.topic, { table: r.table, topic: r.topic, partition: r.record.partition, offset: r.record.offset, error, offsets: Object.fromEntries(offsets.get(r.topic) ?? []) });
    this.heldTables.set(this.held.size);
    logger.error('sink holds a table: its target refused a change, the other tables go on. Fix the cause and restart the pipeline to retry the table', where);
    return false;
  }
}

const TS_MARK = '"ts_ms":';

/** Source commit time of the batch's newest or oldest change (cheaply: the source block's ts_ms of each table's last or first change); 0: none. */
function sourceTs(batch: SinkBatch, which: 'newest' | 'oldest'): number {
  let best = 0;
  for (const t of batch.tables) {
    const r = which === 'newest' ? (t.changes[t.changes.length - 1] ?? t.truncate) : (t.truncate ?? t.changes[0]);
    if (!r) continue;
    const src = r.value.indexOf('"source":');
    const at = src < 0 ? -1 : r.value.indexOf(TS_MARK, src);
    if (at < 0) continue;
    const n = parseInt(r.value.slice(at + TS_MARK.length, at + TS_MARK.length + 16), 10);
    if (n > 0 && (best === 0 || (which === 'newest' ? n > best : n < best))) best = n;
  }
  return best;
}
