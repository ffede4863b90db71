/**
 * Chunk reads of the PostgreSQL source's incremental snapshots (sources/common/incremental.ts says
 * the algorithm). Each chunk is one short REPEATABLE READ transaction on a connection of its own:
 * the snapshot's transaction ids (`pg_current_snapshot()`), then `COPY (SELECT … WHERE key > last
 * ORDER BY key LIMIT n)`. After it, a logical message (prefix `sluice.snapshot.watermark`, the
 * window's id as content) is committed in a transaction of its own: every transaction the read saw
 * committed before that one, so when the stream reaches its commit it has passed the chunk's
 * snapshot. (A non-transactional message would do too, but the WAL holding it is not flushed
 * until the WAL writer's next round — 200 ms a chunk by default.)
 */
import type pg from 'pg';
import type { ChangeEvent } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { IncrementalTableError, type Chunk, type ChunkReader } from '../common/incremental.ts';
import { keyComparator, keyOf } from '../common/keys.ts';
import { parseTableName, tableTopic } from '../common/names.ts';
import type { KeyBound } from '../common/ranges.ts';
import { copyRows } from './copy-out.ts';
import { postgresDebezium } from './debezium.ts';
import { TypeCatalog } from './pgoutput/index.ts';
import { closeClient, connect } from './replication.ts';
import { databaseCollation, keyAfter, tablePlan, type TablePlan } from './snapshot.ts';
import type { PostgresSourceConfig } from './spec.ts';

export const WATERMARK_PREFIX = 'sluice.snapshot.watermark';

const U32 = 2 ** 32;

/** `xmin:xmax:xip,…` → whether a transaction (32-bit xid, as pgoutput gives it) is visible. */
export function snapshotVisibility(text: string): (xid: number) => boolean {
  const [, xmax, xip] = text.split(':');
  const inProgress = new Set((xip ?? '').split(',').filter(Boolean).map((x) => Number(BigInt(x) % BigInt(U32))));
  const max = Number(BigInt(xmax) % BigInt(U32));
  return (xid) => {
    if (inProgress.has(xid)) return false;
    // xid ≥ xmax (modulo 2^32): started after the snapshot.
    if (((xid - max + U32) % U32) < 2 ** 31) return false;
    return true;
  };
}

export class PgChunkReader implements ChunkReader {
  private client: pg.Client | null = null;
  private catalog: TypeCatalog | null = null;
  private collation = '';
  private readonly plans = new Map<string, TablePlan>();

  constructor(
    private readonly cfg: PostgresSourceConfig,
    private readonly serverVersion: number,
    private readonly log: Logger,
    /** The stream's current position (the `lsn` the events carry). */
    private readonly position: () => bigint,
  ) {}

  /** The table's columns may have changed: plan its next read afresh. */
  forget(table: string): void {
    this.plans.delete(table);
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    await closeClient(c);
  }

  private async plan(table: string): Promise<TablePlan & { schema: string; name: string }> {
    const n = parseTableName(table);
    if (!n || !n.schema) throw new IncrementalTableError(`"${table}" is not a schema.table name`);
    const client = this.client!;
    let p = this.plans.get(table);
    if (!p) {
      const pub = await client.query(`SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3`, [this.cfg.publication, n.schema, n.table]);
      if (pub.rowCount === 0) throw new IncrementalTableError(`it is not in publication "${this.cfg.publication}" (does it exist? add it to source.tables)`);
      p = await tablePlan(client, this.catalog!, n.schema, n.table, this.collation);
      if (!p.keys) throw new IncrementalTableError('it has no primary key Sluice can read in order (an incremental snapshot reads by key); restart the pipeline with a new log to snapshot it whole');
      this.plans.set(table, p);
    }
    return { ...p, schema: n.schema, name: n.table };
  }

  async read(table: string, after: KeyBound | null, limit: number, windowId: string): Promise<Chunk> {
    if (!this.client) {
      this.client = await connect(this.cfg.connection, false);
      this.catalog = new TypeCatalog(this.client, false, this.cfg.intervalHandling);
      this.collation = await databaseCollation(this.client);
    }
    const client = this.client;
    const p = await this.plan(table);
    const keys = p.keys!;
    const topic = tableTopic(this.cfg.topicPrefix, p.schema, p.name);
    let sql = `SELECT ${p.cols} FROM ${p.qualified}`;
    if (after) sql += ` WHERE ${keyAfter(client, keys, p.exprs, after.raw)}`;
    sql += ` ORDER BY ${p.exprs.join(', ')} LIMIT ${limit}`;
    const rows: Chunk['rows'] = [];
    let snapshot: string;
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      snapshot = String((await client.query(this.serverVersion >= 130000 ? 'SELECT pg_current_snapshot()::text AS s' : 'SELECT txid_current_snapshot()::text AS s')).rows[0].s);
      const nowUs = Math.floor((performance.timeOrigin + performance.now()) * 1000);
      const nowMs = Math.floor(nowUs / 1000);
      const lsn = this.position();
      const db = this.cfg.connection.database;
      // One source block for the chunk's events: the same for each of them (read together).
      const source: ChangeEvent['source'] = { version: SLUICE_VERSION, connector: postgresDebezium.connector, name: this.cfg.topicPrefix, ts_ms: nowMs, snapshot: 'incremental', db, sequence: `[null,"${lsn}"]`, ts_us: nowUs, schema: p.schema, table: p.name, txId: null, lsn: Number(lsn), xmin: null };
      for await (const batch of copyRows(client, `(${sql})`, p.rel.table.columns.length, this.cfg.snapshotFetchSize)) {
        for (const values of batch) {
          const row = p.rel.decodeTextRow(values);
          const key = keyOf(p.rel.table, row)!;
          const ev: ChangeEvent = {
            topic,
            key,
            before: null,
            after: row,
            source,
            op: 'r',
            ts_ms: nowMs,
            table: p.rel.table,
          };
          rows.push({ ev, bound: { key, raw: keys.map((k) => values[k.index]) } });
        }
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      if ((e as { code?: string }).code === '42P01') {
        this.plans.delete(table);
        throw new IncrementalTableError(`it no longer exists (${(e as Error).message})`);
      }
      throw e;
    }
    // Transactional: its commit flushes the WAL, so the walsender sends it at once (a
    // non-transactional message waits for the WAL writer, 200 ms by default, each chunk).
    await client.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [WATERMARK_PREFIX, windowId]);
    this.log.debug('incremental snapshot: chunk read', { table, rows: rows.length });
    return { rows, last: rows.length < limit, compare: keyComparator(keys), estimatedRows: p.estimatedRows, visible: snapshotVisibility(snapshot) };
  }
}
