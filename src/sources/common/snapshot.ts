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
import type { KeyBound, TableSnapshot } from './ranges.ts';

export interface SnapshotHooks {
  log: Logger;
  sink: EventSink;
  metrics: ComponentMetrics;
  isStopped(): boolean;
  /** False while a commit now would split an atomic unit (a table that cannot be read in chunks). */
  setCommittable(v: boolean): void;
  onProgress(p: Record<string, unknown>): void;
}

const REPORT_EVERY_MS = 2000;

/** One table's read. `state` is the table's entry in the source's checkpoint, kept current as rows are appended. */
export class SnapshotTable<P> {
  private readonly started = Date.now();
  private lastReport = this.started;
  private held: { ev: ChangeEvent; bound: KeyBound | null } | null = null;
  /** Rows read in this run. */
  private readNow = 0;
  /** Whether this run has added its range to the state yet. */
  private rangeOpen = false;
  /** The table's rows are all in a durable log commit. */
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
    /** Rows come in key order with their bound: the table commits in chunks and resumes mid-table. */
    readonly chunked: boolean,
  ) {
    state.status = 'partial';
    if (!chunked) state.ranges = [];
    hooks.setCommittable(chunked);
    hooks.log.info(state.rows > 0 ? 'snapshot: resuming table' : 'snapshot: reading table', { table, estimatedRows, table_index: index + 1, tables, ...(state.rows > 0 ? { rowsInLog: state.rows } : {}) });
  }

  /** Debezium's `source.snapshot` marker for the next row added. */
  nextMarker(): SourceInfo['snapshot'] {
    return this.state.rows + this.readNow > 0 ? 'true' : this.index === 0 ? 'first' : 'first_in_data_collection';
  }

  /**
   * Adds a row (`bound`: its key, for chunked tables). One row is held back so the table's last one
   * can carry Debezium's marker. Returns a promise when a commit is in flight to wait for.
   */
  add(ev: ChangeEvent, bound: KeyBound | null, now: number): Promise<void> | undefined {
    const held = this.held;
    this.held = { ev, bound };
    this.readNow++;
    if (now - this.lastReport >= REPORT_EVERY_MS) this.report(now);
    if (!held) return undefined;
    this.append(held.ev, held.bound);
    return this.chunked ? this.hooks.sink.maybeCommit() : undefined;
  }

  /** Appends a row to the sink and moves the checkpoint's range up to its key. */
  private append(ev: ChangeEvent, bound: KeyBound | null): void {
    this.hooks.sink.append(ev);
    this.state.rows++;
    if (!this.chunked) return;
    if (!this.rangeOpen) {
      this.state.ranges.push({ to: bound, at: this.at });
      this.rangeOpen = true;
    } else this.state.ranges[this.state.ranges.length - 1].to = bound;
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
      if (held.ev.source.snapshot !== 'first') held.ev.source.snapshot = this.index === this.tables - 1 ? 'last' : 'last_in_data_collection';
      this.append(held.ev, held.bound);
      this.held = null;
    }
    // The keys above the last range were read at this run's point (possibly none were left).
    if (this.rangeOpen) this.state.ranges[this.state.ranges.length - 1].to = null;
    else this.state.ranges.push({ to: null, at: this.at });
    this.state.status = 'done';
    this.hooks.setCommittable(true);
    await this.hooks.sink.commit();
    this.finished = true;
    this.hooks.onProgress({ table: this.table, rows: this.state.rows, tablesDone: this.index + 1, tables: this.tables });
    this.hooks.log.info('snapshot: table done', { table: this.table, rows: this.state.rows, seconds: (Date.now() - this.started) / 1000 });
  }
}
