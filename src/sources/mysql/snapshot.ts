/**
 * Initial snapshot of MySQL/MariaDB tables, tied to a binlog position: every captured table is read
 * inside one `START TRANSACTION WITH CONSISTENT SNAPSHOT`, and the binlog position that
 * transaction sees is where streaming continues, with no gap and no overlap.
 *
 * MariaDB reports that position for the snapshot itself (`binlog_snapshot_file/position`), so no
 * lock is taken. MySQL has no such status: a global read lock is held for the moment it takes to
 * start the transaction and read SHOW MASTER STATUS (needs the RELOAD privilege).
 *
 * Tables are read in key order (keys.ts) and committed to the log in bounded chunks; the checkpoint
 * names each table's last committed key, so after a crash the rest of a table is read from a new
 * snapshot, after that key (sources/common/ranges.ts says how the stream tells the reads apart).
 * Progress (rows, rate, ETA) is logged every few seconds.
 */
import type { MysqlSourceConfig } from './spec.ts';
import type { ChangeEvent, SourceInfo, TableSchema, Value } from '../../core/event.ts';
import type { BinlogColumn } from './binlog/types.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { SnapshotTable, type SnapshotHooks } from '../common/snapshot.ts';
import { resumeAfter, type TableSnapshot } from '../common/ranges.ts';
import { tableKey, tableTopic } from '../common/names.ts';
import { mysqlDebezium } from './debezium.ts';
import { mysqlKeyColumns, mysqlOrderExpression } from './keys.ts';
import type { BinlogPos } from './position.ts';
import { currentPosition, gtidAt, primaryKey, quoteIdent, tableColumns, type CapturedTable, type Conn, type ServerInfo } from './server.ts';
import { TableSchemas } from './tables.ts';
import { selectExpression, textValue } from './types.ts';

export interface SnapshotPoint extends BinlogPos {
  gtid: string;
}

/** Opens the snapshot transaction on `conn` and returns the binlog position it corresponds to. */
export async function beginSnapshot(conn: Conn, info: ServerInfo): Promise<SnapshotPoint> {
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  if (info.mariadb) {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [rows] = await conn.query(`SHOW STATUS LIKE 'binlog_snapshot_%'`);
    const st = new Map((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]));
    const file = st.get('binlog_snapshot_file') ?? '';
    const pos = Number(st.get('binlog_snapshot_position') ?? 0);
    if (!file) return { ...(await currentPosition(conn, info)) };
    return { file, pos, gtid: await gtidAt(conn, info, file, pos) };
  }
  await conn.query('FLUSH TABLES WITH READ LOCK');
  try {
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    return await currentPosition(conn, info);
  } finally {
    await conn.query('UNLOCK TABLES');
  }
}

/** The snapshot's query of a table (FLOAT through `+ 0e0`: plain text would round it to 6 digits, types.ts selectExpression). */
export function snapshotSelect(database: string, table: string, columns: BinlogColumn[]): string {
  return `SELECT ${columns.map((c) => selectExpression(c, quoteIdent(c.name))).join(', ')} FROM ${quoteIdent(database)}.${quoteIdent(table)}`;
}

/** The snapshot's values as read: raw text (binary columns as bytes), which types.ts turns into the values the binlog gives. */
export const rawTypeCast = (field: { charsetNr?: number; buffer(): Buffer | null; string(): string | null }): string | Buffer | null => (field.charsetNr === 63 ? field.buffer() : field.string());

/** The `source` block of a snapshot read of `database.table` at binlog position `at`. */
export function snapshotSource(connector: string, topicPrefix: string, database: string, table: string, at: BinlogPos, snapshot: SourceInfo['snapshot'], now: number): SourceInfo {
  return { version: SLUICE_VERSION, connector, name: topicPrefix, ts_ms: now, snapshot, db: database, sequence: null, schema: database, table, server_id: 0, gtid: null, file: at.file, pos: at.pos, row: 0, thread: null, query: null };
}

/**
 * The read event of one row as the snapshot query returned it (`raw`, read with rawTypeCast):
 * the snapshot's events, and those reconcile's repair re-emits, are built here.
 */
export function readEvent(topic: string, schema: TableSchema, columns: BinlogColumn[], keyIdx: number[], raw: readonly (string | Buffer | null)[], source: SourceInfo): ChangeEvent {
  const after: Record<string, Value> = {};
  for (let i = 0; i < columns.length; i++) after[columns[i].name] = textValue(columns[i], raw[i]);
  let key: Record<string, Value> | null = null;
  if (keyIdx.length) {
    key = {};
    for (const i of keyIdx) key[columns[i].name] = after[columns[i].name];
  }
  return { topic, key, before: null, after, source, op: 'r', ts_ms: source.ts_ms, table: schema };
}

export interface SnapshotOptions extends SnapshotHooks {
  conn: Conn;
  point: SnapshotPoint;
  tables: CapturedTable[];
  /** The checkpoint's per-table state, updated in place. */
  state: Record<string, TableSnapshot<BinlogPos>>;
  cfg: MysqlSourceConfig;
  /** `source.connector` of the events (`mysql`, or `mariadb` for a MariaDB server: mysql/debezium.ts). */
  connector?: string;
  schemas: TableSchemas;
}

/** Reads the tables inside the snapshot transaction `beginSnapshot` opened on `o.conn`. */
export async function runSnapshot(o: SnapshotOptions): Promise<void> {
  const { conn, cfg } = o;
  const started = Date.now();
  let totalRows = 0;
  let current: SnapshotTable<BinlogPos> | null = null;
  const at: BinlogPos = { file: o.point.file, pos: o.point.pos };
  try {
    for (let ti = 0; ti < o.tables.length && !o.isStopped(); ti++) {
      const { database, table } = o.tables[ti];
      const name = tableKey(database, table);
      const topic = tableTopic(cfg.topicPrefix, database, table);
      await o.sink.declareTopic(topic);
      // Columns as the snapshot transaction sees them (an ALTER since the listing shows here too).
      const columns = await tableColumns(conn, database, table);
      const schema = o.schemas.intern(database, table, columns, await primaryKey(conn, database, table));
      const [est] = await conn.query('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table]);
      const estimated = Number((est as { n: number | null }[])[0]?.n ?? 0);
      const keys = mysqlKeyColumns(columns, schema.keyColumns);
      const state = (o.state[name] ??= { status: 'partial', rows: 0, ranges: [] });
      const t = (current = new SnapshotTable(o, name, estimated, ti, o.tables.length, state, at, keys && keys.map((k) => k.index)));
      let sql = snapshotSelect(database, table, columns);
      const params: (string | Buffer | null)[] = [];
      if (keys) {
        // Key order, so the table commits in chunks that a restart continues after.
        const exprs = keys.map((k) => mysqlOrderExpression(k, quoteIdent(k.name)));
        const after = resumeAfter(state);
        if (after) {
          sql += ` WHERE (${exprs.join(', ')}) > (${keys.map(() => '?').join(', ')})`;
          params.push(...after.raw);
        }
        sql += ` ORDER BY ${exprs.join(', ')}`;
      }
      const core = (conn as unknown as { connection: import('mysql2').Connection }).connection;
      const stream = core
        .query({
          sql,
          values: params,
          rowsAsArray: true,
          typeCast: rawTypeCast,
        } as never)
        .stream({ highWaterMark: Math.min(cfg.snapshotFetchSize, 10_000) });
      const keyIdx = schema.keyColumns.map((k) => columns.findIndex((c) => c.name === k));
      for await (const raw of stream as AsyncIterable<(string | Buffer | null)[]>) {
        if (o.isStopped()) {
          stream.destroy();
          break;
        }
        const now = Date.now();
        const source = snapshotSource(o.connector ?? mysqlDebezium.connector, cfg.topicPrefix, database, table, o.point, t.nextMarker(), now);
        const c = t.add(readEvent(topic, schema, columns, keyIdx, raw, source), raw, now);
        if (c) await c;
      }
      if (o.isStopped()) break;
      await t.finish();
      totalRows += t.state.rows;
    }
    if (!o.isStopped()) o.log.info('snapshot complete', { tables: o.tables.length, rows: totalRows, seconds: (Date.now() - started) / 1000 });
  } finally {
    await conn.query('ROLLBACK').catch(() => {});
    // A table that cannot be read in chunks and is left half-read (a stop or an error mid-table)
    // must not reach the log: its rows stay uncommitted and the next run reads it again whole.
    // A chunked table commits what it appended: the checkpoint names its last key.
    o.setCommittable(!current || current.finished || current.chunked);
  }
}
