/**
 * What every source's initial snapshot shares: the hooks the source gives it, and the progress
 * report (rows, rate, ETA; logged and shown by `sluice status`) made every couple of seconds.
 */
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../core/source.ts';
import type { PipelineMetrics } from './metrics.ts';

export interface SnapshotHooks {
  log: Logger;
  sink: EventSink;
  metrics: PipelineMetrics;
  isStopped(): boolean;
  /** False while a table is being read: its rows commit to the log together. */
  setCommittable(v: boolean): void;
  onProgress(p: Record<string, unknown>): void;
  onTableDone(name: string, rows: number): void;
}

const REPORT_EVERY_MS = 2000;

/** Progress of one table's read: call `tick` with the rows read so far; it reports when due. */
export class TableProgress {
  private readonly started = Date.now();
  private lastReport = this.started;

  constructor(
    private readonly hooks: SnapshotHooks,
    private readonly table: string,
    private readonly estimatedRows: number,
    private readonly tablesDone: number,
    private readonly tables: number,
  ) {}

  tick(rows: number, now: number): void {
    if (now - this.lastReport < REPORT_EVERY_MS) return;
    this.lastReport = now;
    const rate = rows / ((now - this.started) / 1000);
    const est = this.estimatedRows;
    const p = { table: this.table, rows, estimatedRows: est, rowsPerSecond: Math.round(rate), etaSeconds: est > rows ? Math.round((est - rows) / Math.max(rate, 1)) : 0, tablesDone: this.tablesDone, tables: this.tables };
    this.hooks.onProgress(p);
    this.hooks.log.info('snapshot progress', p);
  }

  /** The table's rows are all read: report it done. */
  done(rows: number): void {
    this.hooks.onProgress({ table: this.table, rows, tablesDone: this.tablesDone + 1, tables: this.tables });
    this.hooks.log.info('snapshot: table done', { table: this.table, rows, seconds: (Date.now() - this.started) / 1000 });
  }
}
