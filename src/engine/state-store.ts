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
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { KeyedState, StatefulOptions, StateRef } from '../registry/spec.ts';
import { DiskStateStore } from './state-disk.ts';
import { readChangelog, Slots } from './state-slots.ts';

export class StateStore extends Slots implements KeyedState {
  readonly onDisk = false;
  /** Timers by time (an index beside the state, rebuilt by the transform's `open`), and their times in a min-heap. */
  private timers = new Map<number, string[]>();
  private times: number[] = [];

  constructor(maxKeys = Infinity, what = 'processor') {
    super(maxKeys, what, 'raise state.maxKeys if the machine has the memory, put the state on disk (state.store: disk), or use shorter windows or fewer keys');
  }

  protected find(key: string): StateRef | undefined {
    return this.map.get(key);
  }

  /** Entries in memory: all of them. */
  get cached(): number {
    return this.map.size;
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

  /** Appends the entries changed since the last call to the changelog (a null value for a deleted one). */
  flush(producer: Producer, topic: string): number {
    const now = Date.now();
    return this.drain((key, value) => producer.append(topic, { key, value, timestamp: now }, 0));
  }

  /** Hands each entry changed since the last call to `each`, as its changelog record: its JSON text, or null once deleted. */
  drain(each: (key: string, text: string | null) => void): number {
    const n = this.changed.length;
    for (const slot of this.changed) {
      slot.dirty = false;
      if (slot.v === undefined && this.map.get(slot.key) === slot) this.map.delete(slot.key);
      each(slot.key, slot.v === undefined ? null : JSON.stringify(slot.v));
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
    await readChangelog(log, topic, (k, text) => this.load(k, text));
    return this.live;
  }

  /** Takes one changelog record as committed state (a later one of a key replaces it, null removes it). */
  load(k: string, text: string | null): void {
    const had = this.map.has(k);
    if (text === null) {
      if (had) this.live--;
      this.map.delete(k);
    } else {
      if (!had) this.live++;
      this.map.set(k, { key: k, v: JSON.parse(text), dirty: false });
    }
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
