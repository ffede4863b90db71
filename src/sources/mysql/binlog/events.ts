/**
 * Binlog event type codes and the small, non-row events: the common header, ROTATE, QUERY, XID,
 * the two GTID flavours, heartbeats and annotations. Layouts follow the replication protocol
 * (MySQL's binlog event docs and MariaDB's replication-protocol pages).
 */
import type { EventHeader } from './types.ts';

export const EV = {
  QUERY: 2, STOP: 3, ROTATE: 4, INTVAR: 5, RAND: 13, USER_VAR: 14, FORMAT_DESCRIPTION: 15, XID: 16, TABLE_MAP: 19,
  WRITE_ROWS_V1: 23, UPDATE_ROWS_V1: 24, DELETE_ROWS_V1: 25, INCIDENT: 26, HEARTBEAT: 27, IGNORABLE: 28, ROWS_QUERY: 29,
  WRITE_ROWS_V2: 30, UPDATE_ROWS_V2: 31, DELETE_ROWS_V2: 32, GTID: 33, ANONYMOUS_GTID: 34, PREVIOUS_GTIDS: 35,
  XA_PREPARE: 38, PARTIAL_UPDATE_ROWS: 39, TRANSACTION_PAYLOAD: 40, HEARTBEAT_V2: 41, GTID_TAGGED: 42,
  // MariaDB
  ANNOTATE_ROWS: 160, BINLOG_CHECKPOINT: 161, MARIA_GTID: 162, GTID_LIST: 163, START_ENCRYPTION: 164, QUERY_COMPRESSED: 165,
  WRITE_ROWS_COMPRESSED_V1: 166, UPDATE_ROWS_COMPRESSED_V1: 167, DELETE_ROWS_COMPRESSED_V1: 168,
  WRITE_ROWS_COMPRESSED: 169, UPDATE_ROWS_COMPRESSED: 170, DELETE_ROWS_COMPRESSED: 171,
} as const;

export const HEADER_LEN = 19;
/** Header flag of events the server made up for the stream (the first ROTATE, a GTID_LIST). */
export const LOG_EVENT_ARTIFICIAL_F = 0x20;
/** MariaDB GTID flag: the group is a single statement with no COMMIT/XID (DDL, non-transactional). */
export const FL_STANDALONE = 1;
const FL_GROUP_COMMIT_ID = 2;

/** The common header; the event type is byte 4. */
export function readHeader(b: Buffer): EventHeader {
  return {
    timestamp: b.readUInt32LE(0),
    serverId: b.readUInt32LE(5),
    eventSize: b.readUInt32LE(9),
    nextPos: b.readUInt32LE(13),
    flags: b.readUInt16LE(17),
  };
}

/** ROTATE: the 64-bit position in the next file, then its name. */
export function decodeRotate(b: Buffer, end: number): { pos: number; file: string } {
  return { pos: Number(b.readBigUInt64LE(HEADER_LEN)), file: b.toString('utf8', HEADER_LEN + 8, end) };
}

/**
 * QUERY: thread id, execution time, database name length, error code, status-variables length
 * (post-header), then the status variables, the database name + NUL, and the statement.
 */
export function decodeQuery(b: Buffer, end: number, postHeaderLen: number): { threadId: number; database: string; query: string } {
  const p = HEADER_LEN;
  const threadId = b.readUInt32LE(p);
  const dbLen = b[p + 8];
  const statusLen = postHeaderLen >= 13 ? b.readUInt16LE(p + 11) : 0;
  const dbStart = p + postHeaderLen + statusLen;
  const database = b.toString('utf8', dbStart, dbStart + dbLen);
  return { threadId, database, query: b.toString('utf8', dbStart + dbLen + 1, end) };
}

/** MariaDB GTID: sequence number, domain id, flags; the server id is the header's. */
export function decodeMariaGtid(b: Buffer, serverId: number): { gtid: string; standalone: boolean; commitId: bigint | null } {
  const p = HEADER_LEN;
  // Sequence numbers stay far below 2^53 in practice; a Number prints much faster than a BigInt.
  const hi = b.readUInt32LE(p + 4);
  const seq = hi < 0x200000 ? hi * 0x100000000 + b.readUInt32LE(p) : b.readBigUInt64LE(p);
  const domain = b.readUInt32LE(p + 8);
  const flags = b[p + 12];
  return { gtid: `${domain}-${serverId}-${seq}`, standalone: (flags & FL_STANDALONE) !== 0, commitId: flags & FL_GROUP_COMMIT_ID ? b.readBigUInt64LE(p + 13) : null };
}

/** MySQL GTID_LOG_EVENT: flags, the source's UUID (16 bytes), the transaction number. */
export function decodeMysqlGtid(b: Buffer): string {
  const p = HEADER_LEN + 1;
  const h = b.toString('hex', p, p + 16);
  const uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return `${uuid}:${b.readBigInt64LE(p + 16)}`;
}
