/**
 * The binlog client's output: decoded replication events. Row values are already Sluice values
 * (see `Value` in core/event.ts) following the MySQL type mapping in docs/connectors/mysql-types.md,
 * so the source only shapes them into change events.
 */
import type { FieldSchema, Value } from '../../../core/event.ts';

/** A position in the binlog: file name and byte offset of the next event to read. */
export interface FilePosition {
  file: string;
  pos: number;
}

/** Where to start reading: a file position, or a GTID set (MariaDB `0-1-42,1-2-7`; MySQL `uuid:1-42,uuid2:1-3`). */
export type StartPosition = { file: string; pos: number } | { gtidSet: string };

export interface BinlogConnectionOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** Our replica server id: unique among the server's replicas. */
  serverId: number;
  start: StartPosition;
  /** Heartbeat period asked of the server (ms); 0: none. */
  heartbeatMs?: number;
  /** Bound of received, not yet consumed event bytes; above it the socket is paused (default 16 MiB). */
  maxQueueBytes?: number;
  /**
   * Which tables to decode (default: all): the table maps and rows of the others are skipped
   * undecoded (cheaper, and their column types cannot fail the stream).
   */
  tables?: (database: string, table: string) => boolean;
  /** MariaDB: also send ANNOTATE_ROWS events (each row event's SQL statement; needs binlog_annotate_row_events=ON). */
  annotateRows?: boolean;
}

export interface EventHeader {
  /** Seconds since epoch when the statement ran on the source. */
  timestamp: number;
  serverId: number;
  eventSize: number;
  /** Offset of the NEXT event in the current file (0 for some artificial events). */
  nextPos: number;
  flags: number;
}

/** One column of a table as the TABLE_MAP event (with binlog_row_metadata=FULL) describes it. */
export interface BinlogColumn {
  name: string;
  /** MySQL type name, lowercase, as SHOW COLUMNS would print it: `int`, `int unsigned`, `bigint unsigned`, `decimal(15,2)`, `varchar(100)`, `enum('A','B')`, `set('x','y')`, `datetime(6)`, `timestamp(3)`, `json`, `bit(5)`, `blob`, `year`, ... */
  typeName: string;
  /** Binlog column type code (MYSQL_TYPE_*), the real one (e.g. ENUM/SET, not STRING). */
  typeCode: number;
  nullable: boolean;
  unsigned: boolean;
  /** Part of the primary key (from the PRIMARY KEY metadata). */
  key: boolean;
  /** The Kafka Connect schema of this column's values (optional = nullable; always optional for DATE/DATETIME/TIMESTAMP, whose zero values become null). */
  schema: FieldSchema;
  /** Character set of text, ENUM and SET columns (`utf8mb4`, `latin1`, …); `binary` for byte strings; absent otherwise. */
  charset?: string;
}

export interface TableMap {
  tableId: bigint;
  database: string;
  table: string;
  columns: BinlogColumn[];
  /** Names of primary-key columns, in key order. Empty: no primary key. */
  keyColumns: string[];
}

export type BinlogEvent =
  | { type: 'rotate'; header: EventHeader; file: string; pos: number }
  | { type: 'format'; header: EventHeader; serverVersion: string; checksum: boolean }
  | { type: 'gtid'; header: EventHeader; gtid: string; /** MariaDB: the group has no XID/COMMIT (DDL). */ standalone: boolean }
  | { type: 'query'; header: EventHeader; database: string; query: string; threadId: number }
  | { type: 'xid'; header: EventHeader; xid: bigint }
  | { type: 'tablemap'; header: EventHeader; map: TableMap }
  | {
      type: 'rows';
      header: EventHeader;
      kind: 'write' | 'update' | 'delete';
      map: TableMap;
      /** write: after only; delete: before only; update: both. Values in column order of `map.columns`. */
      rows: { before: Value[] | null; after: Value[] | null }[];
      /** Bytes of row data in the event (for queue accounting). */
      bytes: number;
      /**
       * Only when the server logged part of the columns (binlog_row_image other than FULL): which
       * columns each image holds, by column index (null: all of them, or no such image). Absent
       * columns are null in `before`/`after`.
       */
      present?: { before: boolean[] | null; after: boolean[] | null };
    }
  | { type: 'heartbeat'; header: EventHeader; file: string }
  /** The end of an XA transaction's PREPARE (its rows precede it); one-phase XA commits here. */
  | { type: 'xa_prepare'; header: EventHeader; onePhase: boolean; xid: string }
  /** MariaDB annotate-rows (the SQL text) when binlog_annotate_row_events is on. */
  | { type: 'annotate'; header: EventHeader; query: string };
