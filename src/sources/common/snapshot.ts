/**
 * What every source's initial snapshot shares: the hooks the source gives it, and the reading of
 * one table (atomic commit, Debezium's first/last markers, progress with rows, rate and ETA,
 * logged and shown by `sluice status`).
 */
import type { ChangeEvent, SourceInfo } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { EventSink } from '../../core/source.ts';
import type { ComponentMetrics } from '../../core/metrics.ts';

export interface SnapshotHooks {
  log: Logger;
  sink: EventSink;
  metrics: ComponentMetrics;
  isStopped(): boolean;
  /** False while a table is being read: its rows commit to the log together. */
  setCommittable(v: boolean): void;
  onProgress(p: Record<string, unknown>): void;
  onTableDone(name: string, rows: number): void;
}

const REPORT_EVERY_MS = 2000;

/**
 * One table's read, as every source's snapshot does it: the table's rows commit to the log
 * together (nothing is committable meanwhile), one row is held back so the last row of the table
 * (and of the snapshot) can carry Debezium's marker, and progress is reported every 2 s.
 */
export class SnapshotTable {
  private readonly started = Date.now();
  private lastReport = this.started;
  private held: ChangeEvent | null = null;
  rows = 0;
  /** The table's rows are all in a durable log commit. */
  finished = false;

  constructor(
    private readonly hooks: SnapshotHooks,
    private readonly table: string,
    private readonly estimatedRows: number,
    /** Position of this table in the snapshot (0-based) and how many tables it has. */
    private readonly index: number,
    private readonly tables: number,
  ) {
    hooks.setCommittable(false);
    hooks.log.info('snapshot: reading table', { table, estimatedRows, table_index: index + 1, tables });
  }

  /** Debezium's `source.snapshot` marker for the next row added. */
  nextMarker(): SourceInfo['snapshot'] {
    return this.rows > 0 ? 'true' : this.index === 0 ? 'first' : 'first_in_data_collection';
  }

  add(ev: ChangeEvent, now: number): void {
    if (this.held) this.hooks.sink.append(this.held);
    this.held = ev;
    this.rows++;
    if (now - this.lastReport >= REPORT_EVERY_MS) this.report(now);
  }

  private report(now: number): void {
    this.lastReport = now;
    const rows = this.rows;
    const rate = rows / ((now - this.started) / 1000);
    const est = this.estimatedRows;
    const p = { table: this.table, rows, estimatedRows: est, rowsPerSecond: Math.round(rate), etaSeconds: est > rows ? Math.round((est - rows) / Math.max(rate, 1)) : 0, tablesDone: this.index, tables: this.tables };
    this.hooks.onProgress(p);
    this.hooks.log.info('snapshot progress', p);
  }

  /** Every row is read: marks the last, commits the table with the checkpoint that lists it. */
  async finish(): Promise<void> {
    const held = this.held;
    if (held) {
      if (held.source.snapshot !== 'first') held.source.snapshot = this.index === this.tables - 1 ? 'last' : 'last_in_data_collection';
      this.hooks.sink.append(held);
      this.held = null;
    }
    this.hooks.onTableDone(this.table, this.rows);
    this.hooks.setCommittable(true);
    await this.hooks.sink.commit();
    this.finished = true;
    this.hooks.onProgress({ table: this.table, rows: this.rows, tablesDone: this.index + 1, tables: this.tables });
    this.hooks.log.info('snapshot: table done', { table: this.table, rows: this.rows, seconds: (Date.now() - this.started) / 1000 });
  }
}
