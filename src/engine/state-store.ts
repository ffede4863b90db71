/**
 * Keyed state of a stateful processor, kept in memory and made durable through a compacted
 * changelog topic in the log (`<pipeline>.state.<processor>`), as Kafka Streams does.
 *
 * The processor task writes the entries changed since the last commit to the changelog with the
 * same producer, in the same commit as the batch's output and input offsets: one log commit holds
 * all three, so after a kill -9 the state restored from the changelog is exactly the state the
 * committed output and offsets reflect, and reading resumes from there. Nothing is counted twice
 * and nothing is lost.
 *
 * Restoring reads the changelog from its start; compaction keeps it near one record per live key.
 * This store keeps the state in memory: `maxKeys` bounds it, and a processor that reaches the
 * bound stops with STATE_LIMIT (raise it, or make windows shorter / keys fewer) rather than being
 * killed by the OS. State larger than memory goes on disk (`state.store: disk`, state-disk.ts).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coreError } from '../core/errors.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { KeyedState, StatefulOptions, StateRef } from '../registry/spec.ts';
import { DiskStateStore } from './state-disk.ts';

/** One entry: its key, its value (undefined once deleted, until the next flush writes the tombstone) and whether it changed since. */
type Slot = StateRef;

export class StateStore implements KeyedState {
  readonly onDisk = false;
  /** Entries by key; a changed entry is marked in its slot (one hash probe per write, not two). */
  private readonly map = new Map<string, Slot>();
  /** Timers by time (an index beside the state, rebuilt by the transform's `open`), and their times in a min-heap. */
  private timers = new Map<number, string[]>();
  private times: number[] = [];
  private readonly changed: Slot[] = [];
  private live = 0;

  constructor(private readonly maxKeys = Infinity, private readonly what = 'processor') {}

  get size(): number {
    return this.live;
  }

  get<T = unknown>(key: string): T | undefined {
    return this.map.get(key)?.v as T | undefined;
  }

  put(key: string, value: unknown): void {
    this.ref(key, value);
  }

  ref(key: string, value: unknown): StateRef {
    if (value === undefined) throw new TypeError('state values must be JSON (undefined is not)');
    let slot = this.map.get(key);
    if (!slot || slot.v === undefined) {
      if (this.live >= this.maxKeys) {
        throw coreError('STATE_LIMIT', `${this.what} holds ${this.live} state entries, its limit (state.maxKeys): raise state.maxKeys if the machine has the memory, or use shorter windows or fewer keys`);
      }
      this.live++;
      if (!slot) this.map.set(key, (slot = { key, v: value, dirty: false }));
    }
    slot.v = value;
    this.touch(slot);
    return slot;
  }

  touch(ref: StateRef): void {
    if (!ref.dirty) {
      ref.dirty = true;
      this.changed.push(ref);
    }
  }

  delete(key: string): void {
    const slot = this.map.get(key);
    if (!slot || slot.v === undefined) return;
    slot.v = undefined;
    this.live--;
    this.touch(slot);
  }

  *entries(): IterableIterator<[string, unknown]> {
    for (const [k, slot] of this.map) if (slot.v !== undefined) yield [k, slot.v];
  }

  timer(at: number, key: string): void {
    const keys = this.timers.get(at);
    if (keys) {
      keys.push(key);
      return;
    }
    this.timers.set(at, [key]);
    this.pushTime(at);
  }

  private pushTime(at: number): void {
    const h = this.times;
    let i = h.push(at) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p] <= at) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = at;
  }

  due(upTo: number, max = Infinity): string[] {
    const out: string[] = [];
    const h = this.times;
    while (h.length && h[0] <= upTo && out.length < max) {
      const t = h[0];
      const last = h.pop()!;
      if (h.length) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= h.length) break;
          const c = l + 1 < h.length && h[l + 1] < h[l] ? l + 1 : l;
          if (h[c] >= last) break;
          h[i] = h[c];
          i = c;
        }
        h[i] = last;
      }
      // Keys of one time in a stable order, as the disk store gives them; a time's keys beyond `max` stay due.
      const keys = this.timers.get(t)!.sort();
      const room = max - out.length;
      if (keys.length > room) {
        out.push(...keys.slice(0, room));
        this.timers.set(t, keys.slice(room));
        this.pushTime(t);
        break;
      }
      out.push(...keys);
      this.timers.delete(t);
    }
    return out;
  }

  /** The log commit holding the last flush succeeded (nothing to do in memory). */
  committed(): void {}

  async close(): Promise<void> {}

  /** Entries changed since the last flush. */
  get pending(): number {
    return this.changed.length;
  }

  /** Appends the entries changed since the last call to the changelog (a null value for a deleted one). */
  flush(producer: Producer, topic: string): number {
    const n = this.changed.length;
    const now = Date.now();
    for (const slot of this.changed) {
      slot.dirty = false;
      if (slot.v === undefined && this.map.get(slot.key) === slot) this.map.delete(slot.key);
      producer.append(topic, { key: slot.key, value: slot.v === undefined ? null : JSON.stringify(slot.v), timestamp: now }, 0);
    }
    this.changed.length = 0;
    return n;
  }

  /** Forgets what is in memory (after a failed attempt: its changes were never committed). */
  clear(): void {
    this.map.clear();
    this.changed.length = 0;
    this.live = 0;
    this.timers = new Map();
    this.times = [];
  }

  /** Loads the committed state from the changelog: the latest value per key, tombstones removing. */
  async restore(log: Log, topic: string): Promise<number> {
    this.clear();
    for (const { partition, start, end } of await log.offsets(topic)) {
      let at = start;
      while (at < end) {
        const r = await log.read(topic, partition, at, 4 << 20);
        for (const rec of r.records) {
          if (rec.offset >= end) break;
          const k = rec.key?.toString('utf8');
          if (k === undefined) continue;
          const had = this.map.has(k);
          if (rec.value === null) {
            if (had) this.live--;
            this.map.delete(k);
          } else {
            if (!had) this.live++;
            this.map.set(k, { key: k, v: JSON.parse(rec.value.toString('utf8')), dirty: false });
          }
        }
        if (r.next <= at) break;
        at = r.next;
      }
    }
    return this.live;
  }
}

/** Either store, as the processor task drives it. */
export type TaskStateStore = (StateStore | DiskStateStore) & { flush(producer: Producer, topic: string): number; committed(): void; restore(log: Log, topic: string): Promise<number>; close(): Promise<void> };

/** The store a processor's `state` config asks for. */
export async function openStateStore(o: StatefulOptions & { pipeline: string; processor: string; pipelineStateDir?: string }): Promise<TaskStateStore> {
  if (o.store === 'disk') return DiskStateStore.open({ dir: o.dir ?? join(o.pipelineStateDir ?? join(tmpdir(), 'sluice-state'), 'processors'), pipeline: o.pipeline, processor: o.processor, maxKeys: o.maxKeys, memoryKeys: o.memoryKeys });
  return new StateStore(o.maxKeys, `processor ${o.processor}`);
}

/** The changelog topic's settings: compacted where the backend can, one partition (one task owns it). */
export function changelogConfig(defaults: TopicConfig, compaction: boolean): TopicConfig {
  return { partitions: 1, compaction: compaction || undefined, retentionMs: undefined, retentionBytes: undefined, tombstoneRetentionMs: defaults.tombstoneRetentionMs };
}
