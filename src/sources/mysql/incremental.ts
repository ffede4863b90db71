/**
 * Chunk reads of the MySQL/MariaDB source's incremental snapshots (sources/common/incremental.ts
 * says the algorithm). Each chunk is read in a transaction of its own opened as the initial
 * snapshot's is (snapshot.ts `beginSnapshot`): MariaDB names the binlog position that consistent
 * snapshot stands at, so the chunk is appended once the stream has passed that position — no
 * watermark needs writing. (MySQL, which reports no such position, holds its global read lock for
 * the moment it takes to open each chunk's transaction.)
 */
import type { Logger } from '../../core/logger.ts';
import { IncrementalTableError, type Chunk, type ChunkReader } from '../common/incremental.ts';
import { keyComparator } from '../common/keys.ts';
import { parseTableName, tableTopic } from '../common/names.ts';
import type { KeyBound } from '../common/ranges.ts';
import { mysqlKeyColumns, mysqlOrderExpression, type MysqlKeyColumn } from './keys.ts';
import type { BinlogColumn } from './binlog/types.ts';
import type { BinlogPos } from './position.ts';
import { beginSnapshot, rawTypeCast, readEvent, snapshotSelect, snapshotSource } from './snapshot.ts';
import { closeConn, connectAdmin, primaryKey, quoteIdent, tableColumns, type Conn, type ServerInfo } from './server.ts';
import type { MysqlSourceConfig } from './spec.ts';
import type { TableSchemas } from './tables.ts';

export class MysqlChunkReader implements ChunkReader {
  private conn: Conn | null = null;
  /** What a table's chunks are read with, until a schema change (`forget`). */
  private readonly tables = new Map<string, { columns: BinlogColumn[]; keyColumns: string[]; keys: MysqlKeyColumn[]; estimatedRows: number }>();

  constructor(
    private readonly cfg: MysqlSourceConfig,
    private readonly info: ServerInfo,
    private readonly connector: string,
    private readonly schemas: TableSchemas,
    /** Whether the stream captures `database.table`. */
    private readonly captured: (database: string, table: string) => boolean,
    private readonly log: Logger,
  ) {}

  /** A table's columns may have changed (null: some table's). */
  forget(table: string | null): void {
    if (table === null) this.tables.clear();
    else this.tables.delete(table);
  }

  /**
   * Opens a chunk's transaction: on MariaDB a consistent snapshot and the binlog position it
   * stands at (two round trips); on MySQL the initial snapshot's way, under a brief global read lock.
   */
  private async begin(conn: Conn): Promise<BinlogPos> {
    if (!this.info.mariadb) return beginSnapshot(conn, this.info);
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const [rows] = await conn.query(`SHOW STATUS LIKE 'binlog_snapshot_%'`);
    const st = new Map((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]));
    const file = st.get('binlog_snapshot_file') ?? '';
    if (!file) {
      await conn.query('ROLLBACK');
      return beginSnapshot(conn, this.info);
    }
    return { file, pos: Number(st.get('binlog_snapshot_position') ?? 0) };
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = null;
    await closeConn(c);
  }

  async read(table: string, after: KeyBound | null, limit: number): Promise<Chunk> {
    const n = parseTableName(table, '`"');
    if (!n || !n.schema) throw new IncrementalTableError(`"${table}" is not a database.table name`);
    const database = n.schema;
    const name = n.table;
    if (!this.captured(database, name)) throw new IncrementalTableError('source.tables does not capture it');
    if (!this.conn) {
      this.conn = await connectAdmin(this.cfg.connection);
      await this.conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    }
    const conn = this.conn;
    const point = await this.begin(conn);
    try {
      let t = this.tables.get(table);
      if (!t) {
        const columns = await tableColumns(conn, database, name);
        if (!columns.length) throw new IncrementalTableError('it does not exist (or this user cannot see it)');
        const keyColumns = await primaryKey(conn, database, name);
        const keys = mysqlKeyColumns(columns, keyColumns);
        if (!keys) throw new IncrementalTableError('it has no primary key Sluice can read in order (an incremental snapshot reads by key); restart the pipeline with a new log to snapshot it whole');
        const [est] = await conn.query('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, name]);
        t = { columns, keyColumns, keys, estimatedRows: Number((est as { n: number | null }[])[0]?.n ?? 0) };
        this.tables.set(table, t);
      }
      const { columns, keys, estimatedRows } = t;
      const schema = this.schemas.intern(database, name, columns, t.keyColumns);
      const exprs = keys.map((k) => mysqlOrderExpression(k, quoteIdent(k.name)));
      let sql = snapshotSelect(database, name, columns);
      const params: (string | Buffer | null)[] = [];
      if (after) {
        sql += ` WHERE (${exprs.join(', ')}) > (${keys.map(() => '?').join(', ')})`;
        params.push(...after.raw);
      }
      sql += ` ORDER BY ${exprs.join(', ')} LIMIT ${limit}`;
      const [raws] = await conn.query({ sql, values: params, rowsAsArray: true, typeCast: rawTypeCast } as never);
      const topic = tableTopic(this.cfg.topicPrefix, database, name);
      const keyIdx = schema.keyColumns.map((k) => columns.findIndex((c) => c.name === k));
      const now = Date.now();
      const source = snapshotSource(this.connector, this.cfg.topicPrefix, database, name, point, 'incremental', now);
      const rows: Chunk['rows'] = (raws as unknown as (string | Buffer | null)[][]).map((raw) => {
        const ev = readEvent(topic, schema, columns, keyIdx, raw, source);
        return { ev, bound: { key: ev.key!, raw: keys.map((k) => raw[k.index]) } };
      });
      this.log.debug('incremental snapshot: chunk read', { table, rows: rows.length, at: `${point.file}:${point.pos}` });
      return { rows, last: rows.length < limit, compare: keyComparator(keys), estimatedRows, at: { file: point.file, pos: point.pos } };
    } finally {
      await conn.query('ROLLBACK').catch(() => {});
    }
  }
}
