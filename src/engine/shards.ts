/**
 * A stateful processor spread over worker threads (`parallelism` > 1), as Flink spreads a keyed
 * operator over subtasks: each thread (shard-worker.ts) runs its own copy of the transform with
 * the state of the keys that hash to it (the transform's `shard` key). The task's thread still
 * reads the input, writes the output and commits: it reads each record's shard key, sends each
 * shard its records, writes their results in the input's order, and each shard's changed state goes
 * to its own partition of the changelog in the same commit as the output and the input offsets.
 * So the guarantees are those of one thread: after a kill -9 each shard restores its partition as
 * of the last commit, and reading resumes at that commit's offsets.
 *
 * What differs: the results of windows closing together come shard by shard, and the state is
 * split by key over `parallelism` partitions, so changing it needs new state (STATE_SHARDS).
 */
import { Worker } from 'node:worker_threads';
import { coreError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { RecordTransform, TransformInput, TransformOutput } from '../registry/spec.ts';
import { encodeBatch, shardOf, type ShardInit, type ShardReply, type ShardRequest, type WireError } from './shard-wire.ts';
import { readChangelog } from './state-slots.ts';
import { changelogConfig } from './state-store.ts';
import { checkShards, Failure, type RecordResult, type StateInfo, type TransformRunner } from './transform-runner.ts';

/** Changelog entries sent to a shard per message while restoring. */
const LOAD_CHUNK = 20_000;
const NONE: TransformOutput[] = [];

/** An error as the worker reported it, with its code, so the task handles it as if thrown in its own thread. */
function fromWire(w: WireError): Error {
  const e = new Error(w.message) as Error & { code?: string };
  if (w.code) e.code = w.code;
  if (w.name) e.name = w.name;
  return e;
}

/** Outputs as a worker sent them: a structured clone makes Buffers plain Uint8Arrays, made Buffers again here (views, no copy). */
function received(outs: TransformOutput[]): TransformOutput[] {
  const buffer = (x: unknown) => (x instanceof Uint8Array && !Buffer.isBuffer(x) ? Buffer.from(x.buffer, x.byteOffset, x.byteLength) : (x as Buffer | string | null));
  for (const o of outs) {
    o.key = buffer(o.key);
    o.value = buffer(o.value);
  }
  return outs;
}

/** One worker thread and its requests awaiting answers (answered in the order sent). */
class ShardThread {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(r: ShardReply): void; reject(e: Error): void }>();
  private failure: Error | null = null;
  private closing = false;
  private readonly worker: Worker;

  constructor(init: ShardInit, logger: Logger) {
    this.worker = spawn(init);
    this.worker.on('message', (m: ShardReply & { id?: number; error?: WireError; log?: { level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields: Record<string, unknown> } }) => {
      if (m.log) return logger[m.log.level](m.log.msg, m.log.fields);
      if (m.id === undefined) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error) w?.reject(fromWire(m.error));
      else w?.resolve(m);
    });
    const stop = (e: Error) => {
      if (this.closing) return;
      const code = (e as { code?: unknown }).code;
      this.failure = typeof code === 'string' && code !== 'ERR_WORKER_OUT_OF_MEMORY' ? e : coreError('PROCESSOR_WORKER', `processor ${init.processor}'s worker thread of shard ${init.shard} stopped: ${e.message}`);
      for (const w of this.waiting.values()) w.reject(this.failure);
      this.waiting.clear();
    };
    this.worker.on('error', stop);
    this.worker.on('exit', (code) => stop(new Error(`it exited with code ${code}`)));
  }

  call(req: { op: ShardRequest['op'] } & Record<string, unknown>): Promise<ShardReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}

/** The worker thread: the compiled module beside this one, or, in a source checkout run through tsx, the TypeScript one with tsx registered in the thread. */
function spawn(init: ShardInit): Worker {
  const self = import.meta.url;
  // A larger young generation than V8's default for a thread: a batch's records die young instead of being promoted (less GC, measured with bench/processing).
  const resourceLimits = { maxYoungGenerationSizeMb: 64 };
  if (!self.endsWith('.ts')) return new Worker(new URL('./shard-worker.js', self), { workerData: init, resourceLimits });
  const entry = new URL('./shard-worker.ts', self).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`, { eval: true, workerData: init, resourceLimits });
}

export interface ShardedOptions {
  type: string;
  cfg: unknown;
  pipeline: string;
  processor: string;
  shards: number;
  maxKeys: number;
  sourceType?: string;
  topicDefaults: TopicConfig;
  logger: Logger;
}

export class ShardedRunner implements TransformRunner {
  private readonly threads: ShardThread[];
  private sizes: number[];
  private wasBehind = false;

  constructor(
    private readonly o: ShardedOptions,
    /** The task's own copy of the transform, never opened: it reads records' shard keys and its clock. */
    private readonly transform: RecordTransform,
  ) {
    this.threads = [];
    for (let shard = 0; shard < o.shards; shard++) {
      const init: ShardInit = { type: o.type, cfg: o.cfg, pipeline: o.pipeline, processor: o.processor, shard, shards: o.shards, maxKeys: Math.ceil(o.maxKeys / o.shards), sourceType: o.sourceType };
      this.threads.push(new ShardThread(init, o.logger));
    }
    this.sizes = this.threads.map(() => 0);
  }

  /** Each shard restores its own partition of the changelog. */
  async open(log: Log, stateTopic: string): Promise<number> {
    const n = this.o.shards;
    await log.ensureTopic(stateTopic, { ...changelogConfig(this.o.topicDefaults, log.capabilities.compaction), partitions: n });
    await checkShards(log, stateTopic, n, this.o.processor);
    const loads: Promise<ShardReply>[] = [];
    for (let shard = 0; shard < n; shard++) {
      let entries: (string | null)[] = [];
      await readChangelog(
        log,
        stateTopic,
        (k, text) => {
          entries.push(k, text);
          if (entries.length >= 2 * LOAD_CHUNK) {
            loads.push(this.threads[shard].call({ op: 'load', entries }));
            entries = [];
          }
        },
        shard,
      );
      if (entries.length) loads.push(this.threads[shard].call({ op: 'load', entries }));
    }
    await Promise.all(loads);
    this.sizes = (await Promise.all(this.threads.map((t) => t.call({ op: 'open' })))).map((r) => r.size ?? 0);
    return this.sizes.reduce((a, b) => a + b, 0);
  }

  /** Reads each record's shard key and the clock after it here, sends each shard its records, and puts their results back in input order. */
  async apply(recs: TransformInput[]): Promise<RecordResult[]> {
    const n = this.o.shards;
    const t = this.transform;
    const out = new Array<RecordResult>(recs.length).fill(NONE);
    const mine: number[][] = this.threads.map(() => []);
    const clocks: number[][] = this.threads.map(() => []);
    for (let i = 0; i < recs.length; i++) {
      let key: string | null;
      try {
        key = t.shard!(recs[i]);
      } catch (e) {
        out[i] = new Failure(e);
        continue;
      }
      const s = shardOf(key, n);
      mine[s].push(i);
      clocks[s].push(t.clock?.() ?? 0);
    }
    const end = t.clock?.() ?? 0;
    const replies = await Promise.all(
      this.threads.map((thread, s) =>
        thread.call({
          op: 'apply',
          batch: encodeBatch(
            mine[s].map((i) => recs[i]),
            Float64Array.from(clocks[s]),
            end,
          ),
        }),
      ),
    );
    replies.forEach((r, s) => {
      const idx = r.idx!;
      for (let j = 0; j < idx.length; j++) {
        const err = r.errors![j];
        out[mine[s][idx[j]]] = err ? new Failure(fromWire(err)) : received(r.outs![j]!);
      }
    });
    return out;
  }

  async tick(now: number): Promise<TransformOutput[]> {
    const replies = await Promise.all(this.threads.map((t) => t.call({ op: 'tick', now })));
    this.wasBehind = replies.some((r) => r.behind);
    return replies.flatMap((r) => received(r.out ?? []));
  }

  behind(): boolean {
    return this.wasBehind;
  }

  /** Each shard's changed entries go to its own partition of the changelog. */
  async flush(producer: Producer, stateTopic: string): Promise<number> {
    const replies = await Promise.all(this.threads.map((t) => t.call({ op: 'flush' })));
    const now = Date.now();
    let n = 0;
    replies.forEach((r, shard) => {
      const e = r.entries!;
      for (let i = 0; i < e.length; i += 2) producer.append(stateTopic, { key: e[i], value: e[i + 1], timestamp: now }, shard);
      n += e.length / 2;
      this.sizes[shard] = r.size ?? 0;
    });
    return n;
  }

  committed(): void {}

  state(): StateInfo {
    return { store: 'memory', entries: this.sizes.reduce((a, b) => a + b, 0), threads: this.o.shards };
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
