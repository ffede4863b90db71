/**
 * Incremental snapshots: re-reading a table, or reading a table added to the capture, while the
 * stream keeps flowing (the watermark algorithm of Netflix's DBLog, as Debezium's incremental
 * snapshots use it).
 *
 * A table is read in key-ordered chunks. For each chunk:
 *
 *   1. A window opens at the stream's current position R: from now on every change the stream
 *      appends to the table is recorded (its key).
 *   2. The chunk is read at a snapshot S of the database taken after R (`ChunkReader.read`).
 *   3. When the stream has passed S (the source tells: PostgreSQL by a watermark message written
 *      after the read, MySQL by the binlog position the read's consistent snapshot stands at), the
 *      chunk's rows whose keys were recorded are dropped — the stream has already appended those
 *      keys' state as of S or newer — and the others are appended as `op: r` events with
 *      `source.snapshot: incremental`. For them nothing changed between R and now, so their
 *      state at S is their state at this point of the stream: the log never moves a key back.
 *
 * A truncate or a schema change of the table inside a window, or (PostgreSQL) a transaction
 * streamed before R that S does not see yet, discards the chunk; it is read again.
 *
 * The state — the tables waiting, the table being read and its last key in the log — is part of
 * the source's checkpoint, committed with the events, so a restart continues after the last chunk
 * in the log. Requests come from a signal table (`source.signalTable`, Debezium's row format,
 * written by `sluice snapshot`) and from tables found captured at start with nothing of theirs in
 * the log (a table added to `source.tables`).
 */
import type { ChangeEvent, Row } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { EventSink } from '../../core/source.ts';
import { Counter, type Registry } from '../../core/metrics.ts';
import { decodeKey, encodeKey } from './keys.ts';
import { parseTableName, tableKey } from './names.ts';
import type { KeyBound } from './ranges.ts';

export interface IncrementalState {
  /** Tables waiting to be read, in request order (`schema.table`). */
  queue: string[];
  /** The table being read, or null. */
  table: string | null;
  /** The last key of `table` the log holds a chunk up to (null: none yet). */
  after: KeyBound | null;
  /** Rows of `table` appended so far. */
  rows: number;
  /** Tables finished (the last few), for status. */
  done: { table: string; rows: number; at: string }[];
}

export const emptyIncremental = (): IncrementalState => ({ queue: [], table: null, after: null, rows: 0, done: [] });

type RawJson = string | null | { b: string };
const rawOut = (x: string | Buffer | null): RawJson => (Buffer.isBuffer(x) ? { b: x.toString('base64') } : x);
const rawIn = (x: RawJson): string | Buffer | null => (x !== null && typeof x === 'object' ? Buffer.from(x.b, 'base64') : x);

/** The state as checkpoint JSON, or undefined when there is nothing to say (older checkpoints stay as they were). */
export function encodeIncremental(s: IncrementalState | undefined): unknown {
  if (!s || (!s.queue.length && !s.table && !s.done.length)) return undefined;
  return { queue: s.queue, table: s.table, after: s.after && { key: encodeKey(s.after.key), raw: s.after.raw.map(rawOut) }, rows: s.rows, done: s.done };
}

export function decodeIncremental(o: any): IncrementalState | undefined {
  if (!o || typeof o !== 'object') return undefined;
  return {
    queue: Array.isArray(o.queue) ? o.queue.map(String) : [],
    table: typeof o.table === 'string' ? o.table : null,
    after: o.after ? { key: decodeKey(o.after.key), raw: o.after.raw.map(rawIn) } : null,
    rows: Number(o.rows ?? 0),
    done: Array.isArray(o.done) ? o.done : [],
  };
}

/** One chunk as read at the snapshot S. */
export interface Chunk {
  /** Rows in key order: the event to append (op r, snapshot incremental) and the key bound it ends a range at. */
  rows: { ev: ChangeEvent; bound: KeyBound }[];
  /** Fewer rows than asked for: the table is done after this chunk. */
  last: boolean;
  /** Orders keys as the read did. */
  compare(a: Row, b: Row): number;
  /** The table's estimated row count (for progress). */
  estimatedRows: number;
  /** PostgreSQL: whether S sees transaction `xid` (a transaction streamed before R that S does not see discards the chunk). */
  visible?(xid: number): boolean;
  /** Source-specific: where S stands (MySQL's binlog position). */
  at?: unknown;
}

export interface ChunkReader {
  /**
   * Reads up to `limit` rows of `table` after `after` in key order at a new snapshot. `windowId`
   * names the window (PostgreSQL writes it as the watermark after the read). Throws
   * `IncrementalTableError` when the table cannot be read incrementally (gone, not captured, no
   * orderable key): that table is skipped, the pipeline goes on.
   */
  read(table: string, after: KeyBound | null, limit: number, windowId: string): Promise<Chunk>;
}

/** A table that cannot be snapshotted incrementally; the request is dropped with this message. */
export class IncrementalTableError extends Error {}

interface Window {
  id: string;
  table: string;
  /** The key the chunk is read after. */
  after: KeyBound | null;
  recorded: Row[];
  chunk: Chunk | null;
  /** The source's watermark for this window has been seen in the stream (PostgreSQL). */
  marked: boolean;
  discard: string | null;
  /** Transactions the stream had appended shortly before R (PostgreSQL's visibility check). */
  recentAtStart: number[];
}

const RECENT = 512;
const REPORT_EVERY_MS = 2000;

export interface IncrementalOptions {
  reader: ChunkReader;
  chunkSize: number;
  sink: EventSink;
  log: Logger;
  /** Called when a chunk read finishes, so an idle stream loop looks again. */
  wake(): void;
  /** Counts rows appended by incremental snapshots. */
  onRows?(n: number): void;
  /** A table's columns may have changed (null: some table's): the reader forgets what it cached. */
  onInvalidate?(table: string | null): void;
}

export class IncrementalSnapshots {
  /**
   * Open windows, oldest first: at most two, the second opened once the first's chunk is read
   * (its rows wait for the stream while the next chunk is read). They are appended in order.
   */
  private open: Window[] = [];
  private failure: Error | null = null;
  private readonly recent: number[] = [];
  private windows = 0;
  private startedAt = Date.now();
  private tableStartRows = 0;
  private lastReport = 0;
  private estimated = 0;
  private chunks = 0;
  private rereads = 0;
  private lastError: string | null = null;
  private arrived: (() => void) | null = null;
  private readonly declared = new Set<string>();

  constructor(
    readonly state: IncrementalState,
    private readonly o: IncrementalOptions,
  ) {}

  /** Queues tables (already queued or being read ones are left as they are). */
  request(tables: string[], why: string): void {
    const added = tables.filter((t) => t !== this.state.table && !this.state.queue.includes(t));
    if (!added.length) return;
    this.state.queue.push(...added);
    this.o.log.info('incremental snapshot requested', { tables: added, why, queued: this.state.queue.length });
  }

  /** Drops queued tables (all when `tables` is empty) and stops the one being read if named. */
  cancel(tables: string[]): void {
    const all = tables.length === 0;
    const dropped = this.state.queue.filter((t) => all || tables.includes(t));
    this.state.queue = this.state.queue.filter((t) => !(all || tables.includes(t)));
    if (this.state.table && (all || tables.includes(this.state.table))) {
      dropped.push(this.state.table);
      this.finishTable('stopped');
    }
    if (dropped.length) this.o.log.info('incremental snapshot stopped', { tables: dropped });
  }

  get active(): boolean {
    return this.state.table !== null || this.state.queue.length > 0;
  }

  /** A transaction the stream appended (PostgreSQL xid): remembered for the visibility check. */
  committed(xid: number): void {
    if (this.recent.length >= RECENT) this.recent.shift();
    this.recent.push(xid);
  }

  /** A change the stream appends to `table` with key `key`. */
  observe(table: string, key: Row | null): void {
    if (!key) return;
    for (const w of this.open) if (w.table === table) w.recorded.push(key);
  }

  /** Something the chunk cannot be placed after (a truncate, a schema change) happened to `table` (null: to some table). */
  invalidate(table: string | null, why: string): void {
    this.o.onInvalidate?.(table);
    // Every open window goes: a later one continues the range of the one before.
    if (this.open.some((w) => table === null || w.table === table)) for (const w of this.open) w.discard = why;
  }

  /** The source's watermark `id` was seen in the stream. */
  watermark(id: string): boolean {
    const w = this.open.find((x) => x.id === id);
    if (!w) return false;
    w.marked = true;
    return true;
  }

  /** The chunk being read has arrived and waits for the stream to pass its snapshot. */
  get waiting(): Chunk | null {
    return this.open[0]?.chunk ?? null;
  }

  /** A chunk is being read (a stream loop that waits on the server should also wait for it: `arrival`). */
  get reading(): boolean {
    return this.open.some((w) => w.chunk === null);
  }

  /** The oldest window's watermark has been seen. */
  get watermarked(): boolean {
    return this.open[0]?.marked ?? false;
  }

  /** Resolves when a chunk read finishes (for a stream loop that waits on the server). */
  arrival(): Promise<void> {
    return new Promise((r) => (this.arrived = r));
  }

  /** Starts reading the next chunk when none is being read (the stream's position now is R). Throws a read's failure. */
  tick(): void {
    if (this.failure) {
      const e = this.failure;
      this.failure = null;
      throw e;
    }
    const first = this.open[0];
    if (first) {
      // One more window once the first's chunk is in, unless the table ends with it.
      if (this.open.length > 1 || !first.chunk || first.chunk.last || first.discard) return;
      this.openWindow(first.table, first.chunk.rows[first.chunk.rows.length - 1].bound);
      return;
    }
    if (!this.state.table) {
      const next = this.state.queue.shift();
      if (next === undefined) return;
      this.state.table = next;
      this.state.after = null;
      this.state.rows = 0;
      this.startedAt = Date.now();
      this.tableStartRows = 0;
      this.chunks = 0;
      this.o.log.info('incremental snapshot: reading table', { table: next, chunkSize: this.o.chunkSize, queued: this.state.queue.length });
    } else if (this.chunks === 0 && this.state.rows > 0 && this.windows === 0) {
      this.tableStartRows = this.state.rows;
      this.o.log.info('incremental snapshot: resuming table', { table: this.state.table, rowsInLog: this.state.rows });
    }
    this.openWindow(this.state.table, this.state.after);
  }

  private openWindow(table: string, after: KeyBound | null): void {
    const w: Window = { id: `${process.pid}.${Date.now().toString(36)}.${++this.windows}`, table, after, recorded: [], chunk: null, marked: false, discard: null, recentAtStart: [...this.recent] };
    this.open.push(w);
    this.readChunk(w).then(
      (c) => {
        w.chunk = c;
        this.arrived?.();
        this.o.wake();
      },
      (e: Error) => {
        if (!this.open.includes(w)) return;
        this.open = [];
        if (e instanceof IncrementalTableError) {
          this.lastError = `${w.table}: ${e.message}`;
          this.o.log.error(`incremental snapshot of ${w.table} dropped: ${e.message}`, { table: w.table });
          this.finishTable('failed');
        } else this.failure = e;
        this.arrived?.();
        this.o.wake();
      },
    );
  }

  /** Reads the window's chunk; the table's topic is declared first (a table added to the capture that nothing was streamed for has none yet). */
  private async readChunk(w: Window): Promise<Chunk> {
    const c = await this.o.reader.read(w.table, w.after, this.o.chunkSize, w.id);
    const topic = c.rows[0]?.ev.topic;
    if (topic && !this.declared.has(topic)) {
      await this.o.sink.declareTopic(topic);
      this.declared.add(topic);
    }
    return c;
  }

  /**
   * Appends the chunk if the stream has passed its snapshot (`reached`, source-specific); call it
   * between transactions. Returns whether the window closed.
   */
  flush(reached: (c: Chunk) => boolean): boolean {
    const w = this.open[0];
    if (!w?.chunk || !reached(w.chunk)) return false;
    this.open.shift();
    const c = w.chunk;
    const unseen = c.visible ? w.recentAtStart.find((x) => !c.visible!(x)) : undefined;
    if (w.discard || unseen !== undefined) {
      // The range is read again from the last key in the log: later windows go with this one.
      this.open = [];
      this.rereads++;
      this.o.log.debug('incremental snapshot: chunk read again', { table: w.table, why: w.discard ?? `transaction ${unseen} was streamed before the chunk's snapshot saw it` });
      this.tick();
      return true;
    }
    const rows = c.rows;
    const drop = new Uint8Array(rows.length);
    for (const k of w.recorded) {
      let lo = 0;
      let hi = rows.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const d = c.compare(rows[mid].ev.key!, k);
        if (d === 0) {
          drop[mid] = 1;
          break;
        }
        if (d < 0) lo = mid + 1;
        else hi = mid - 1;
      }
    }
    let n = 0;
    for (let i = 0; i < rows.length; i++) {
      if (drop[i]) continue;
      this.o.sink.append(rows[i].ev);
      n++;
    }
    this.state.rows += n;
    this.chunks++;
    this.o.onRows?.(n);
    this.estimated = c.estimatedRows;
    if (rows.length) this.state.after = rows[rows.length - 1].bound;
    const now = Date.now();
    if (c.last) this.finishTable('done');
    else if (now - this.lastReport >= REPORT_EVERY_MS) {
      this.lastReport = now;
      this.o.log.info('incremental snapshot progress', this.progress()!);
    }
    // The next chunk's window opens here, at this same point of the stream: its read runs while
    // this chunk's rows go to the log.
    this.tick();
    return true;
  }

  private finishTable(how: 'done' | 'stopped' | 'failed'): void {
    const table = this.state.table!;
    if (how === 'done') this.o.log.info('incremental snapshot: table done', { table, rows: this.state.rows, chunks: this.chunks, rereads: this.rereads, seconds: (Date.now() - this.startedAt) / 1000 });
    this.state.done = [...this.state.done, { table, rows: this.state.rows, at: `${new Date().toISOString()} ${how}` }].slice(-10);
    this.state.table = null;
    this.state.after = null;
    this.state.rows = 0;
    this.chunks = 0;
    this.open = this.open.filter((w) => w.table !== table);
  }

  /** Progress for status and logs; null when idle. */
  progress(): Record<string, unknown> | null {
    if (!this.active && !this.state.done.length && !this.lastError) return null;
    const secs = (Date.now() - this.startedAt) / 1000;
    const rate = secs > 0 ? (this.state.rows - this.tableStartRows) / secs : 0;
    return {
      table: this.state.table,
      rows: this.state.table ? this.state.rows : undefined,
      estimatedRows: this.state.table ? this.estimated : undefined,
      rowsPerSecond: this.state.table ? Math.round(rate) : undefined,
      etaSeconds: this.state.table && this.estimated > this.state.rows ? Math.round((this.estimated - this.state.rows) / Math.max(rate, 1)) : undefined,
      queue: this.state.queue,
      done: this.state.done,
      lastError: this.lastError ?? undefined,
    };
  }
}

/** The counter of rows incremental snapshots appended (one series per pipeline, kept across source restarts). */
export function incrementalRowsCounter(registry: Registry, pipeline: string): Counter {
  const labels = { pipeline };
  return (
    registry.find<Counter>('sluice_source_incremental_snapshot_rows_total', labels) ??
    registry.register(new Counter('sluice_source_incremental_snapshot_rows_total', "Rows the source's incremental snapshots appended to the log (`sluice snapshot`, tables added to source.tables)", labels))
  );
}

/** A signal row (Debezium's signal table format: id, type, data) → what it asks for. */
export function parseSignal(type: unknown, data: unknown, defaultSchema: string | null, quotes = '"'): { kind: 'execute' | 'stop'; tables: string[] } | { error: string } {
  const t = String(type ?? '');
  if (t !== 'execute-snapshot' && t !== 'stop-snapshot') return { error: `unknown signal type "${t}" (known: execute-snapshot, stop-snapshot)` };
  let d: any = {};
  if (data !== null && data !== undefined && String(data).trim() !== '') {
    try {
      d = JSON.parse(String(data));
    } catch {
      return { error: `signal data is not JSON: ${String(data).slice(0, 120)}` };
    }
  }
  const list = d['data-collections'] ?? [];
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) return { error: 'signal data-collections must be a list of table names' };
  if (d.type !== undefined && String(d.type).toLowerCase() !== 'incremental') return { error: `snapshot type "${d.type}" is not supported (only incremental)` };
  if (t === 'execute-snapshot' && list.length === 0) return { error: 'execute-snapshot names no table (data-collections is empty)' };
  const tables: string[] = [];
  for (const x of list as string[]) {
    const n = parseTableName(x.trim(), quotes);
    const schema = n?.schema ?? defaultSchema;
    if (!n || !schema) return { error: `"${x}" in data-collections is not a table name; write schema.table` };
    tables.push(tableKey(schema, n.table));
  }
  return { kind: t === 'execute-snapshot' ? 'execute' : 'stop', tables };
}
