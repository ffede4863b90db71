/**
 * Keyed state on disk (`state.store: disk`), for state larger than memory: a join's table of
 * millions of rows, windows over many keys, the ids of a long dedupe interval.
 *
 * The changelog topic stays the durable truth, exactly as with the memory store: changed entries
 * go to it in the processor's log commit. The disk store is LMDB (a memory-mapped B-tree, through
 * the `lmdb` package) under `state.dir`, holding the state as of the last commit, with at most
 * `state.memoryKeys` entries cached in memory in front of it. It is a cache of the changelog:
 * each run attempt wipes it and restores it from the changelog, so it never has to survive a
 * crash, and it is written only after the log commit succeeded (what it holds never runs ahead
 * of the log).
 *
 * Memory: the cached entries (`memoryKeys`, plus the entries changed since the last commit);
 * the rest is on disk and in the OS page cache, which the kernel reclaims under pressure.
 *
 * Timers: a transform that must find its entries by time (windows closing, ids expiring) keeps
 * that index here too (`timer`, `due`), on disk, rather than in a map of its own; the index is
 * derived from the state, so it is not in the changelog and the transform rebuilds it in `open`.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadDriver } from '../core/drivers.ts';
import { coreError } from '../core/errors.ts';
import type { Log, Producer } from '../log/types.ts';
import type { KeyedState, StateRef } from '../registry/spec.ts';
import { readChangelog, Slots } from './state-slots.ts';

type Lmdb = typeof import('lmdb');
type Db = import('lmdb').Database<any, any>;
type Env = import('lmdb').RootDatabase<any, any>;

/** Entries written to the disk store per transaction while restoring. */
const RESTORE_TXN = 20_000;
/** Timers held before they are written to the store. */
const TIMER_BATCH = 20_000;
/**
 * LMDB keys are at most 1978 bytes. A longer state key (a long dedupe id or group-by value) is
 * stored under a hash of it, with the key itself ahead of its value (`\u0001` marks both).
 */
const LONG_KEY_BYTES = 1024;
const LONG = '\u0001';
const EMPTY = Buffer.alloc(0);
const dbKey = (key: string): string => (key.length * 3 > LONG_KEY_BYTES && Buffer.byteLength(key) > LONG_KEY_BYTES ? LONG + createHash('sha256').update(key).digest('base64') : key);
/** The stored text of an entry: its JSON, after the key itself when the key is long (JSON escapes \u0000, so the first one separates). */
const dbValue = (key: string, stored: string, text: string): string => (stored === key ? text : `${JSON.stringify(key)}\u0000${text}`);
const fromDb = (stored: string, value: string): { key: string; text: string } => {
  if (!stored.startsWith(LONG)) return { key: stored, text: value };
  const at = value.indexOf('\u0000');
  return { key: JSON.parse(value.slice(0, at)) as string, text: value.slice(at + 1) };
};

/** The cached entries (`map`) are kept oldest first, and evicted in that order once committed. */
export class DiskStateStore extends Slots implements KeyedState {
  readonly onDisk = true;
  /** Entries flushed to the changelog and not yet on disk, with their JSON (null: deleted): written once their commit succeeded. */
  private unsaved: StateRef[] = [];
  private unsavedText: (string | null)[] = [];
  private pendingTimers: [number, string][] = [];

  private constructor(
    private readonly env: Env,
    private readonly db: Db,
    private readonly timers: Db,
    private readonly dir: string,
    private readonly memoryKeys: number,
    maxKeys: number,
    what: string,
  ) {
    super(maxKeys, what, 'raise state.maxKeys (the state is on disk: it needs disk space, about the changelog\'s size), or use shorter windows or fewer keys');
  }

  /** Opens (creating, emptied) the store at `<dir>/<pipeline>/<processor>`. */
  static async open(o: { dir: string; pipeline: string; processor: string; maxKeys: number; memoryKeys: number }): Promise<DiskStateStore> {
    const what = `processor ${o.processor}`;
    const lmdb = await loadDriver<Lmdb>('lmdb', `${what} (state.store: disk)`, () => import('lmdb'));
    // The directory is emptied first: names that are path steps (`.`, `..`, which names may be) would empty another one.
    for (const [key, name] of [['pipeline', o.pipeline], ['processor', o.processor]]) {
      if (name === '.' || name === '..') throw coreError('STATE_STORE', `${what}: a ${key} named "${name}" cannot name a directory of on-disk state (it would be ${join(o.dir, o.pipeline, o.processor)}): rename the ${key}, or keep its state in memory`);
    }
    const dir = join(o.dir, o.pipeline, o.processor);
    try {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw coreError('STATE_STORE', `${what}: cannot make its state directory ${dir}: ${(e as Error).message}. Set state.dir to a writable directory with room for the state`, { cause: e });
    }
    const env = lmdb.open({ path: dir, maxDbs: 4, noSync: true, overlappingSync: false, useWritemap: true, noMemInit: true, compression: false });
    const db = env.openDB({ name: 'state', encoding: 'string' });
    const timers = env.openDB({ name: 'timers', encoding: 'binary' });
    return new DiskStateStore(env, db, timers, dir, o.memoryKeys, o.maxKeys, what);
  }

  /** Entries in memory now. */
  get cached(): number {
    return this.map.size;
  }

  /** The cached slot of a key, loading it from disk (null when the key has no entry). */
  protected find(key: string): StateRef | null {
    const s = this.map.get(key);
    if (s) return s;
    const stored = dbKey(key);
    const value = this.db.get(stored) as string | undefined;
    if (value === undefined) return null;
    const loaded: StateRef = { key, v: JSON.parse(fromDb(stored, value).text), dirty: false };
    this.map.set(key, loaded);
    return loaded;
  }

  /** Every entry, streamed from disk (entries changed since the last commit as they are now); none is cached. */
  *entries(): IterableIterator<[string, unknown]> {
    for (const { key: stored, value } of this.db.getRange({})) {
      const { key: k, text } = fromDb(stored as string, value as string);
      const cached = this.map.get(k);
      if (cached) {
        if (cached.v !== undefined) yield [k, cached.v];
      } else yield [k, JSON.parse(text)];
    }
    // Entries made since the last commit are not on disk yet (a key may be both flushed and changed again: once).
    const seen = new Set<string>();
    for (const s of [...this.changed, ...this.unsaved]) {
      if (seen.has(s.key)) continue;
      seen.add(s.key);
      if (s.v !== undefined && !this.db.doesExist(dbKey(s.key))) yield [s.key, s.v];
    }
  }

  timer(at: number, key: string): void {
    this.pendingTimers.push([at, key]);
    if (this.pendingTimers.length >= TIMER_BATCH) this.saveTimers();
  }

  due(upTo: number, max = Infinity): string[] {
    this.saveTimers();
    const keys: string[] = [];
    const found: unknown[] = [];
    for (const { key: k, value } of this.timers.getRange({ end: [upTo, '\uffff\uffff'], limit: Number.isFinite(max) ? max : undefined })) {
      found.push(k);
      // A long key's timer holds the key itself; others are the timer key's second part.
      keys.push((value as Buffer).length ? (value as Buffer).toString('utf8') : (k as [number, string])[1]);
    }
    if (found.length) {
      this.timers.transactionSync(() => {
        for (const k of found) this.timers.removeSync(k as never);
      });
    }
    return keys;
  }

  private saveTimers(): void {
    if (!this.pendingTimers.length) return;
    const t = this.pendingTimers;
    this.pendingTimers = [];
    this.timers.transactionSync(() => {
      for (const [at, key] of t) {
        const stored = dbKey(key);
        this.timers.putSync([at, stored] as never, stored === key ? EMPTY : Buffer.from(key, 'utf8'));
      }
    });
  }

  /** Appends the entries changed since the last call to the changelog; they go to disk once `committed`. */
  flush(producer: Producer, topic: string): number {
    const n = this.changed.length;
    const now = Date.now();
    for (const s of this.changed) {
      s.dirty = false;
      const text = s.v === undefined ? null : JSON.stringify(s.v);
      producer.append(topic, { key: s.key, value: text, timestamp: now }, 0);
      this.unsaved.push(s);
      this.unsavedText.push(text);
    }
    this.changed.length = 0;
    return n;
  }

  /** The log commit holding the last flush succeeded: its entries go to disk, and the cache is cut back to `memoryKeys`. */
  committed(): void {
    const saved = this.unsaved;
    const texts = this.unsavedText;
    this.unsaved = [];
    this.unsavedText = [];
    if (saved.length) {
      this.db.transactionSync(() => {
        for (let i = 0; i < saved.length; i++) {
          const s = saved[i];
          const text = texts[i];
          const stored = dbKey(s.key);
          if (text === null) {
            this.db.removeSync(stored);
            if (this.map.get(s.key) === s && !s.dirty) this.map.delete(s.key);
          } else this.db.putSync(stored, dbValue(s.key, stored, text));
        }
      });
    }
    this.saveTimers();
    let over = this.map.size - this.memoryKeys;
    if (over <= 0) return;
    for (const [k, s] of this.map) {
      if (over <= 0) break;
      if (s.dirty) continue;
      this.map.delete(k);
      over--;
    }
  }

  clear(): void {
    this.map.clear();
    this.changed.length = 0;
    this.unsaved = [];
    this.unsavedText = [];
    this.pendingTimers = [];
    this.live = 0;
    this.db.clearSync();
    this.timers.clearSync();
  }

  /** Rebuilds the disk store from the changelog: the latest value per key, tombstones removing. */
  async restore(log: Log, topic: string): Promise<number> {
    this.clear();
    let batch = new Map<string, string | null>();
    const write = (): void => {
      const b = batch;
      batch = new Map();
      this.db.transactionSync(() => {
        for (const [k, v] of b) {
          const stored = dbKey(k);
          const had = this.db.doesExist(stored);
          if (v === null) {
            if (had) {
              this.db.removeSync(stored);
              this.live--;
            }
          } else {
            if (!had) this.live++;
            this.db.putSync(stored, dbValue(k, stored, v));
          }
        }
      });
    };
    await readChangelog(log, topic, (k, text) => {
      batch.set(k, text);
      if (batch.size >= RESTORE_TXN) write();
    });
    write();
    return this.live;
  }

  /** Closes the store and removes its files (the changelog holds the state). */
  async close(): Promise<void> {
    await this.env.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
