/**
 * The PostgreSQL source's checkpoint: stored atomically with the events in the log (Producer.commit),
 * so after any crash the source knows exactly which events are already durable.
 *
 * Streaming positions are transaction-granular with an event counter: `{lsn: F, seq: n, done}`
 * means every transaction whose commit record starts before F is in the log, and of the
 * transaction whose commit starts at F (the BEGIN message's final LSN) the first n events are —
 * all of them when `done`. Large transactions are thus written in pieces with bounded memory, and
 * on restart the replayed prefix is skipped instead of duplicated.
 *
 * `ack` is the LSN we may confirm to the server (confirmed_flush_lsn): the end of the last
 * transaction that is wholly durable, or of the last heartbeat/message after it.
 */
import { formatLsn, parseLsn } from '../../core/lsn.ts';
import { pgError } from './errors.ts';
import { decodeTableSnapshot, encodeTableSnapshot, type TableSnapshot } from '../common/ranges.ts';
import { decodeIncremental, encodeIncremental, type IncrementalState } from '../common/incremental.ts';

/** A table's snapshot: the key ranges in the log and the LSN each was read at (a change that committed below it is in the snapshot). */
export type TableSnapshotState = TableSnapshot<bigint>;

export interface SourceCheckpoint {
  phase: 'snapshot' | 'stream';
  /** Consistent point of the slot: streaming starts here after a snapshot. */
  consistentPoint: bigint;
  lsn: bigint;
  seq: number;
  done: boolean;
  ack: bigint;
  /** Per-table snapshot state (kept after the snapshot: the stream filters by it). */
  tables: Record<string, TableSnapshotState>;
  /** Incremental snapshots waiting or under way (sources/common/incremental.ts). */
  incremental?: IncrementalState;
}

export function encodeCheckpoint(c: SourceCheckpoint): string {
  return JSON.stringify({
    v: 1,
    source: 'postgres',
    phase: c.phase,
    consistentPoint: formatLsn(c.consistentPoint),
    lsn: formatLsn(c.lsn),
    seq: c.seq,
    done: c.done,
    ack: formatLsn(c.ack),
    tables: Object.fromEntries(Object.entries(c.tables).map(([k, t]) => [k, encodeTableSnapshot(t, formatLsn)])),
    incremental: encodeIncremental(c.incremental),
  });
}

export function decodeCheckpoint(text: string): SourceCheckpoint {
  let o: any;
  try {
    o = JSON.parse(text);
  } catch {
    throw pgError('PG_CHECKPOINT', `the log's source checkpoint is not JSON (${text.slice(0, 80)}): the log is damaged; start over with a new snapshot in a fresh log`);
  }
  if (o.source !== undefined && o.source !== 'postgres') throw pgError('PG_CHECKPOINT', `the log at this log.dir was written by a ${o.source} source, not by a PostgreSQL source: give this pipeline its own log.dir`);
  if (o.v !== 1) throw pgError('PG_CHECKPOINT', `the log's source checkpoint has version ${o.v}, which this Sluice does not know: it was written by a newer Sluice`);
  return {
    phase: o.phase,
    consistentPoint: parseLsn(o.consistentPoint),
    lsn: parseLsn(o.lsn),
    seq: o.seq,
    done: o.done,
    ack: parseLsn(o.ack),
    tables: Object.fromEntries(Object.entries(o.tables as Record<string, any>).map(([k, t]) => [k, decodeTableSnapshot(t, parseLsn)])),
    ...(o.incremental ? { incremental: decodeIncremental(o.incremental) } : {}),
  };
}

/** Number of leading events of the transaction with final LSN `finalLsn` that are already durable. */
export function durablePrefix(c: SourceCheckpoint | null, finalLsn: bigint): number {
  if (!c || c.phase !== 'stream') return 0;
  if (finalLsn < c.lsn) return Infinity;
  if (finalLsn === c.lsn) return c.done ? Infinity : c.seq;
  return 0;
}
