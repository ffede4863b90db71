/**
 * What every SQL table sink does the same way: its target tables and offsets store, and the batch
 * transaction that applies the data and stores the consumed offsets together (exactly once). A
 * sink subclass connects, loads the rows its own way, and decides what runs inside the transaction.
 */
import type { SinkCommonConfig } from '../config.ts';
import type { Logger } from '../../core/logger.ts';
import type { Sink, SinkBatch } from '../types.ts';
import type { SqlDialect, SqlSession } from './dialect.ts';
import { SluiceError } from '../../core/errors.ts';
import { batchError, type LostConnection } from './driver-errors.ts';
import { OffsetsStore } from './offsets.ts';
import { TargetTables } from './tables.ts';

export abstract class SqlSink<C extends SinkCommonConfig> implements Sink {
  /** Set by `open()`. */
  protected session: SqlSession | null = null;
  protected readonly tables: TargetTables;
  protected readonly offsets: OffsetsStore;

  /** @param offsetsTable the offsets table as SQL names it */
  constructor(
    protected readonly dialect: SqlDialect,
    protected readonly cfg: C,
    logger: Logger,
    id: string,
    offsetsTable: string,
  ) {
    this.tables = new TargetTables(dialect, cfg, logger);
    this.offsets = new OffsetsStore(dialect, offsetsTable, id);
  }

  get name(): string {
    return this.cfg.name;
  }

  abstract open(): Promise<Map<string, Map<number, number>>>;
  abstract apply(batch: SinkBatch): Promise<void>;
  abstract close(): Promise<void>;

  storedOffsets(): Promise<Map<string, Map<number, number>>> {
    return this.offsets.read(this.session!);
  }

  /**
   * For a batch the target refused: the coded error naming the value it could not take, when the
   * sink can find it (a refusal names no column), else null.
   */
  protected diagnose(_batch: SinkBatch): Error | null {
    return null;
  }

  /** The dropped connection, when the driver reported one: a failed batch is then `SINK_CONNECTION_LOST`. */
  protected lostConnection(): LostConnection | null {
    return null;
  }

  /** Stores the batch's offsets and commits (a sink may send both with statements it held back). */
  protected async finish(s: SqlSession, batch: SinkBatch): Promise<void> {
    await this.offsets.write(s, batch.offsets);
    await s.run('COMMIT');
  }

  /**
   * Runs `body` and stores the batch's offsets in one transaction. `prepare` runs first, outside it
   * (MySQL's DDL, which commits implicitly). On failure: rollback, forget the tables (the rollback
   * undid their DDL too), and throw the coded error.
   */
  protected async transact(batch: SinkBatch, body: () => Promise<void>, prepare?: () => Promise<void>): Promise<void> {
    const s = this.session!;
    try {
      await prepare?.();
      await s.run(this.dialect.begin);
      await body();
      await this.finish(s, batch);
    } catch (e) {
      await s.run('ROLLBACK').catch(() => {});
      this.tables.clear();
      const lost = this.lostConnection();
      if (!lost && !(e instanceof SluiceError) && this.dialect.refusal(e)) {
        let found: Error | null = null;
        try {
          found = this.diagnose(batch);
        } catch {
          // The refusal stands as it is.
        }
        if (found) throw found;
      }
      throw batchError(this.dialect, e, lost);
    }
  }
}
