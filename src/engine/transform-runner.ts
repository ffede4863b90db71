/**
 * How a processor task runs its transform and keeps its keyed state: in the task's own thread
 * (`InlineRunner`, here), or spread over worker threads by shard key (`ShardedRunner`,
 * shards.ts). The task drives either the same way: open (restore the state), apply each batch,
 * tick, flush the changed state into the commit, committed.
 */
import { coreError } from '../core/errors.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { RecordTransform, TransformInput, TransformOutput } from '../registry/spec.ts';
import { changelogConfig, type TaskStateStore } from './state-store.ts';

/** A record the transform threw on: the task dead-letters it (or stops at it). */
export class Failure {
  constructor(readonly error: unknown) {}
}

/** Per input record, in order: what the transform wrote for it, or its failure. */
export type RecordResult = TransformOutput[] | Failure;

/** Where a stateful transform's state lives and how much of it there is, for status and metrics. */
export interface StateInfo {
  store: 'memory' | 'disk';
  entries: number;
  cached?: number;
  /** A parallel processor's worker threads, each with its part of the state. */
  threads?: number;
}

export interface TransformRunner {
  /** Restores the committed state from the changelog topic (made if missing) and opens the transform on it; the entries restored. */
  open(log: Log, stateTopic: string): Promise<number>;
  apply(recs: TransformInput[]): Promise<RecordResult[]>;
  tick(now: number): Promise<TransformOutput[]>;
  /** Whether the last tick left due work. */
  behind(): boolean;
  /** Appends the state entries changed since the last flush to the changelog (in the commit being made); how many. */
  flush(producer: Producer, stateTopic: string): Promise<number>;
  /** The commit holding the last flush succeeded. */
  committed(): void;
  state(): StateInfo | null;
  close(): Promise<void>;
}

/** The transform in the task's own thread, with its state store (null: stateless). */
export class InlineRunner implements TransformRunner {
  constructor(
    private readonly transform: RecordTransform,
    private readonly store: TaskStateStore | null,
    private readonly topicDefaults: TopicConfig,
    private readonly processor: string,
  ) {}

  async open(log: Log, stateTopic: string): Promise<number> {
    if (!this.store) return 0;
    await log.ensureTopic(stateTopic, changelogConfig(this.topicDefaults, log.capabilities.compaction));
    await checkShards(log, stateTopic, 1, this.processor);
    const n = await this.store.restore(log, stateTopic);
    this.transform.open?.(this.store);
    return n;
  }

  async apply(recs: TransformInput[]): Promise<RecordResult[]> {
    const out = new Array<RecordResult>(recs.length);
    for (let i = 0; i < recs.length; i++) {
      try {
        const r = this.transform.apply(recs[i]);
        out[i] = r instanceof Promise ? await r : r;
      } catch (e) {
        out[i] = new Failure(e);
      }
    }
    return out;
  }

  async tick(now: number): Promise<TransformOutput[]> {
    return this.transform.tick ? this.transform.tick(now) : [];
  }

  behind(): boolean {
    return this.transform.behind?.() ?? false;
  }

  async flush(producer: Producer, stateTopic: string): Promise<number> {
    return this.store ? this.store.flush(producer, stateTopic) : 0;
  }

  committed(): void {
    this.store?.committed();
  }

  state(): StateInfo | null {
    const s = this.store;
    if (!s) return null;
    return s.onDisk ? { store: 'disk', entries: s.size, cached: s.cached } : { store: 'memory', entries: s.size };
  }

  async close(): Promise<void> {
    await this.store?.close();
  }
}

/**
 * The changelog of a processor split over `n` parts (one partition per shard) must have been
 * written with `n` parts: each holds the state of the keys its shard owns, and another split would
 * give keys to shards that do not hold their state.
 */
export async function checkShards(log: Log, stateTopic: string, n: number, processor: string): Promise<void> {
  const parts = await log.offsets(stateTopic);
  if (parts.length === n) return;
  const held = parts.some((p) => p.end > p.start);
  throw coreError(
    'STATE_SHARDS',
    `processor ${processor}'s state (topic ${stateTopic}) is split in ${parts.length} part${parts.length === 1 ? '' : 's'}, written with parallelism: ${parts.length}, and its config now asks for parallelism: ${n}. ${held ? `Set parallelism: ${parts.length} again; to run with ${n}, give the processor a new name (it then reads its inputs from their start into new state, and writes to its new output topic)` : `The state holds nothing yet: give the processor a new name, or set parallelism: ${parts.length}`}`,
  );
}
