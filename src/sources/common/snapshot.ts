/**
 * What every source's initial snapshot shares: the hooks the source gives it, and the reading of
 * one table — in key order, committed to the log in bounded chunks (each commit's checkpoint names
 * the last key it holds, so a restart continues after it; ranges.ts), Debezium's first/last
 * markers, and progress with rows, rate and ETA, logged and shown by `sluice status`.
 *
 * A table without a key (or with a key Sluice cannot order) cannot be resumed in the middle: its
 * rows commit to the log together, as one unit, and a restart reads it again whole.
 */
import type { ChangeEvent, SourceInfo } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { EventSink } from '../../core/source.ts';
import type { ComponentMetrics } from '../../core/metrics.ts';
import type { TableSnapshot } from './ranges.ts';

export interface SnapshotHooks {
  log: Logger;
  sink: EventSink;
  metrics: ComponentMetrics;
  isStopped(): boolean;
  /** False while a commit now would split an atomic unit (a table that cannot be read in chunks). */
  setCommittable(v: boolean): void;
  onProgress(p: Record<string, unknown>): void;
  /** The table being read (null once done): the source calls its `sync()` before it gives a checkpoint. */
  setTable(t: SnapshotTable<unknown> | null): void;
}

const REPORT_EVERY_MS = 2000;

/** One table's read. `state` is the table's entry in the source's checkpoint, kept current as rows are appended. */
export class SnapshotTable<P> {
  private readonly started = Date.now();
  private lastReport = this.started;
  /** The row held back (and its raw column values, as the snapshot query returned them). */
  private held: ChangeEvent | null = null;
  private heldRaw: readonly (string | Buffer | null)[] | null = null;
  /** The last row appended: the key its checkpoint range ends at (made into a bound by `sync`). */
  private lastKey: ChangeEvent['key'] = null;
  private lastRaw: readonly (string | Buffer | null)[] | null = null;
  /** Rows read in this run. */
  private readNow = 0;
  /** Whether this run has added its range to the state yet. */
  private rangeOpen = false;
  /** Every row of the table is appended and its ranges are closed (`finish`). */
  finished = false;

  constructor(
    private readonly hooks: SnapshotHooks,
    private readonly table: string,
    private readonly estimatedRows: number,
    /** Position of this table in the snapshot (0-based) and how many tables it has. */
    private readonly index: number,
    private readonly tables: number,
    /** The table's checkpoint entry (partial: this run continues it). */
    readonly state: TableSnapshot<P>,
    /** The source position this run reads at. */
    private readonly at: P,
    /**
     * Positions of the key columns in the raw row values, when rows come in key order: the table
     * commits in chunks and resumes mid-table. Null: it is read as one unit.
     */
    private readonly keyIndexes: number[] | null,
  ) {
    state.status = 'partial';
    if (!keyIndexes) state.ranges = [];
    hooks.setCommittable(keyIndexes !== null);
    hooks.setTable(this as SnapshotTable<unknown>);
    hooks.log.info(state.rows > 0 ? 'snapshot: resuming table' : 'snapshot: reading table', { table, estimatedRows, table_index: index + 1, tables, ...(state.rows > 0 ? { rowsInLog: state.rows } : {}) });
  }

  /** Debezium's `source.snapshot` marker for the next row added. */
  nextMarker(): SourceInfo['snapshot'] {
    return this.state.rows + this.readNow > 0 ? 'true' : this.index === 0 ? 'first' : 'first_in_data_collection';
  }

  get chunked(): boolean {
    return this.keyIndexes !== null;
  }

  /**
   * Adds a row with its raw column values. One row is held back so the table's last one can carry
   * Debezium's marker. Returns a promise when a commit is in flight to wait for.
   */
  add(ev: ChangeEvent, raw: readonly (string | Buffer | null)[], now: number): Promise<void> | undefined {
    const held = this.held;
    const heldRaw = this.heldRaw;
    this.held = ev;
    this.heldRaw = raw;
    this.readNow++;
    if (now - this.lastReport >= REPORT_EVERY_MS) this.report(now);
    if (!held) return undefined;
    this.append(held, heldRaw!);
    return this.keyIndexes ? this.hooks.sink.maybeCommit(true) : undefined;
  }

  /** Appends a row to the sink; its key is where the checkpoint's range will end. */
  private append(ev: ChangeEvent, raw: readonly (string | Buffer | null)[]): void {
    this.hooks.sink.append(ev);
    this.state.rows++;
    if (!this.keyIndexes) return;
    this.lastKey = ev.key;
    this.lastRaw = raw;
    if (!this.rangeOpen) {
      this.state.ranges.push({ to: null, at: this.at });
      this.rangeOpen = true;
    }
  }

  /** Ends this run's range at the last row appended (called before a checkpoint is taken). */
  sync(): void {
    if (!this.rangeOpen || this.finished || !this.lastKey || !this.lastRaw || !this.keyIndexes) return;
    const raw = this.lastRaw;
    this.state.ranges[this.state.ranges.length - 1].to = { key: this.lastKey, raw: this.keyIndexes.map((i) => raw[i]) };
  }

  private report(now: number): void {
    this.lastReport = now;
    const rows = this.state.rows + (this.held ? 1 : 0);
    const rate = this.readNow / ((now - this.started) / 1000);
    const est = this.estimatedRows;
    const p = { table: this.table, rows, estimatedRows: est, rowsPerSecond: Math.round(rate), etaSeconds: est > rows ? Math.round((est - rows) / Math.max(rate, 1)) : 0, tablesDone: this.index, tables: this.tables };
    this.hooks.onProgress(p);
    this.hooks.log.info('snapshot progress', p);
  }

  /** Every row is read: marks the last, closes the table's ranges, commits. */
  async finish(): Promise<void> {
    const held = this.held;
    if (held) {
      if (held.source.snapshot !== 'first') held.source.snapshot = this.index === this.tables - 1 ? 'last' : 'last_in_data_collection';
      this.append(held, this.heldRaw!);
      this.held = null;
      this.heldRaw = null;
    }
    // The keys above the last range were read at this run's point (possibly none were left).
    this.finished = true;
    if (this.rangeOpen) this.state.ranges[this.state.ranges.length - 1].to = null;
    else this.state.ranges.push({ to: null, at: this.at });
    this.state.status = 'done';
    this.hooks.setCommittable(true);
    this.hooks.setTable(null);
    await this.hooks.sink.commit();
    this.hooks.onProgress({ table: this.table, rows: this.state.rows, tablesDone: this.index + 1, tables: this.tables });
    this.hooks.log.info('snapshot: table done', { table: this.table, rows: this.state.rows, seconds: (Date.now() - this.started) / 1000 });
  }
}
