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
import { mysqlKeyColumns, mysqlOrderExpression } from './keys.ts';
import { beginSnapshot, rawTypeCast, readEvent, snapshotSelect, snapshotSource } from './snapshot.ts';
import { closeConn, connectAdmin, primaryKey, quoteIdent, tableColumns, type Conn, type ServerInfo } from './server.ts';
import type { MysqlSourceConfig } from './spec.ts';
import type { TableSchemas } from './tables.ts';

export class MysqlChunkReader implements ChunkReader {
  private conn: Conn | null = null;
  private readonly estimates = new Map<string, number>();

  constructor(
    private readonly cfg: MysqlSourceConfig,
    private readonly info: ServerInfo,
    private readonly connector: string,
    private readonly schemas: TableSchemas,
    /** Whether the stream captures `database.table`. */
    private readonly captured: (database: string, table: string) => boolean,
    private readonly log: Logger,
  ) {}

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
    this.conn ??= await connectAdmin(this.cfg.connection);
    const conn = this.conn;
    const point = await beginSnapshot(conn, this.info);
    try {
      const columns = await tableColumns(conn, database, name);
      if (!columns.length) throw new IncrementalTableError('it does not exist (or this user cannot see it)');
      const keyColumns = await primaryKey(conn, database, name);
      const keys = mysqlKeyColumns(columns, keyColumns);
      if (!keys) throw new IncrementalTableError('it has no primary key Sluice can read in order (an incremental snapshot reads by key); restart the pipeline with a new log to snapshot it whole');
      const schema = this.schemas.intern(database, name, columns, keyColumns);
      let estimatedRows = this.estimates.get(table);
      if (estimatedRows === undefined) {
        const [est] = await conn.query('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, name]);
        estimatedRows = Number((est as { n: number | null }[])[0]?.n ?? 0);
        this.estimates.set(table, estimatedRows);
      }
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
