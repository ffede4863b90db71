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
 * State lives in memory: `maxKeys` bounds it, and a processor that reaches the bound stops with
 * STATE_LIMIT (raise it, or make windows shorter / keys fewer) rather than being killed by the OS.
 */
import { coreError } from '../core/errors.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { KeyedState } from '../registry/spec.ts';

export class StateStore implements KeyedState {
  private readonly map = new Map<string, unknown>();
  private readonly dirty = new Set<string>();

  constructor(private readonly maxKeys = Infinity, private readonly what = 'processor') {}

  get size(): number {
    return this.map.size;
  }

  get<T = unknown>(key: string): T | undefined {
    return this.map.get(key) as T | undefined;
  }

  put(key: string, value: unknown): void {
    if (value === undefined) throw new TypeError('state values must be JSON (undefined is not)');
    if (!this.map.has(key) && this.map.size >= this.maxKeys) {
      throw coreError('STATE_LIMIT', `${this.what} holds ${this.map.size} state entries, its limit (state.maxKeys): raise state.maxKeys if the machine has the memory, or use shorter windows or fewer keys`);
    }
    this.map.set(key, value);
    this.dirty.add(key);
  }

  delete(key: string): void {
    if (this.map.delete(key)) this.dirty.add(key);
  }

  entries(): IterableIterator<[string, unknown]> {
    return this.map.entries();
  }

  /** Entries changed since the last flush. */
  get pending(): number {
    return this.dirty.size;
  }

  /** Appends the entries changed since the last call to the changelog (a null value for a deleted one). */
  flush(producer: Producer, topic: string): number {
    const n = this.dirty.size;
    const now = Date.now();
    for (const k of this.dirty) {
      const v = this.map.get(k);
      producer.append(topic, { key: k, value: v === undefined ? null : JSON.stringify(v), timestamp: now }, 0);
    }
    this.dirty.clear();
    return n;
  }

  /** Forgets what is in memory (after a failed attempt: its changes were never committed). */
  clear(): void {
    this.map.clear();
    this.dirty.clear();
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
          if (rec.value === null) this.map.delete(k);
          else this.map.set(k, JSON.parse(rec.value.toString('utf8')));
        }
        if (r.next <= at) break;
        at = r.next;
      }
    }
    this.dirty.clear();
    return this.map.size;
  }
}

/** The changelog topic's settings: compacted where the backend can, one partition (one task owns it). */
export function changelogConfig(defaults: TopicConfig, compaction: boolean): TopicConfig {
  return { partitions: 1, compaction: compaction || undefined, retentionMs: undefined, retentionBytes: undefined, tombstoneRetentionMs: defaults.tombstoneRetentionMs };
}
