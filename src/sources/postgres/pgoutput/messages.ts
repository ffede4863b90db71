/**
 * pgoutput logical replication messages (protocol versions 1 and 2), decoded. Written from the
 * PostgreSQL "Logical Replication Message Formats" documentation.
 */
export interface RelationColumn {
  /** Part of the replica identity key. */
  key: boolean;
  name: string;
  typeOid: number;
  typeModifier: number;
}

export interface RelationMessage {
  type: 'relation';
  xid?: number;
  relationId: number;
  namespace: string;
  name: string;
  /** d default, n nothing, f full, i index */
  replicaIdentity: string;
  columns: RelationColumn[];
}

/**
 * One tuple: per column its kind (n null, u unchanged TOAST, t text, b binary) and where its bytes
 * are in `buf` (no per-column Buffer objects: this is the hot path).
 */
export interface TupleData {
  buf: Buffer;
  /** Number of columns. */
  n: number;
  /** Per column i: cols[3i] kind byte, cols[3i+1] start of its bytes in buf, cols[3i+2] length. */
  cols: Int32Array;
}

export interface BeginMessage { type: 'begin'; finalLsn: bigint; commitTime: bigint; xid: number }
export interface CommitMessage { type: 'commit'; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
export interface OriginMessage { type: 'origin'; lsn: bigint; name: string }
export interface TypeMessage { type: 'type'; xid?: number; typeOid: number; namespace: string; name: string }
export interface InsertMessage { type: 'insert'; xid?: number; relationId: number; newTuple: TupleData }
export interface UpdateMessage { type: 'update'; xid?: number; relationId: number; oldKind: 'K' | 'O' | null; oldTuple: TupleData | null; newTuple: TupleData }
export interface DeleteMessage { type: 'delete'; xid?: number; relationId: number; oldKind: 'K' | 'O'; oldTuple: TupleData }
export interface TruncateMessage { type: 'truncate'; xid?: number; cascade: boolean; restartIdentity: boolean; relationIds: number[] }
export interface LogicalMessage { type: 'message'; xid?: number; transactional: boolean; lsn: bigint; prefix: string; content: Buffer }
export interface StreamStartMessage { type: 'stream_start'; xid: number; firstSegment: boolean }
export interface StreamStopMessage { type: 'stream_stop' }
export interface StreamCommitMessage { type: 'stream_commit'; xid: number; flags: number; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
export interface StreamAbortMessage { type: 'stream_abort'; xid: number; subxid: number }

export type PgOutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage
  | StreamStartMessage
  | StreamStopMessage
  | StreamCommitMessage
  | StreamAbortMessage;
