/**
 * What both keyed-state stores (memory: state-store.ts, disk: state-disk.ts) share: entries as
 * slots in a map, changed ones marked in place and listed for the next flush, and the live count
 * that `state.maxKeys` bounds. A store says how a key's slot is found (`find`): in memory only,
 * or in memory and then on disk.
 */
import { coreError } from '../core/errors.ts';
import type { Log } from '../log/types.ts';
import type { StateRef } from '../registry/spec.ts';

export abstract class Slots {
  /** Entries by key; a changed entry is marked in its slot (one hash probe per write, not two). */
  protected readonly map = new Map<string, StateRef>();
  protected readonly changed: StateRef[] = [];
  protected live = 0;

  /** `full`: what STATE_LIMIT's message advises, after its count. */
  constructor(
    protected readonly maxKeys: number,
    protected readonly what: string,
    private readonly full: string,
  ) {}

  /** The slot of a key (deleted ones too, until flushed), or none. */
  protected abstract find(key: string): StateRef | null | undefined;

  get size(): number {
    return this.live;
  }

  /** Entries changed since the last flush. */
  get pending(): number {
    return this.changed.length;
  }

  get<T = unknown>(key: string): T | undefined {
    return this.find(key)?.v as T | undefined;
  }

  put(key: string, value: unknown): void {
    this.ref(key, value);
  }

  ref(key: string, value: unknown): StateRef {
    if (value === undefined) throw new TypeError('state values must be JSON (undefined is not)');
    let slot = this.find(key);
    if (!slot || slot.v === undefined) {
      if (this.live >= this.maxKeys) throw coreError('STATE_LIMIT', `${this.what} holds ${this.live} state entries, its limit (state.maxKeys): ${this.full}`);
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
    const slot = this.find(key);
    if (!slot || slot.v === undefined) return;
    slot.v = undefined;
    this.live--;
    this.touch(slot);
  }
}

/** Every record of a changelog topic (or of one of its partitions) up to its end now, in order: each key with its JSON text, or null for a tombstone. */
export async function readChangelog(log: Log, topic: string, each: (key: string, text: string | null) => void, only?: number): Promise<void> {
  for (const { partition, start, end } of await log.offsets(topic)) {
    if (only !== undefined && partition !== only) continue;
    let at = start;
    while (at < end) {
      const r = await log.read(topic, partition, at, 4 << 20);
      for (const rec of r.records) {
        if (rec.offset >= end) break;
        const k = rec.key?.toString('utf8');
        if (k !== undefined) each(k, rec.value === null ? null : rec.value.toString('utf8'));
      }
      if (r.next <= at) break;
      at = r.next;
    }
  }
}
