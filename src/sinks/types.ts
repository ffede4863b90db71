/**
 * The sink contract. A sink worker reads committed records from the log and hands them to a Sink in
 * batches; the Sink applies a batch idempotently AND records the consumed log offsets in the target,
 * in one target transaction. On start the worker asks the Sink for those offsets and resumes exactly
 * there, so a crash at any point neither loses nor repeats a change.
 */
import type { SchemaRecord } from '../core/schemas.ts';

export type ChangeOp = 'c' | 'u' | 'd' | 'r' | 't';

/** One change as read from the log: the raw Debezium JSON, not yet parsed (sinks parse as they need). */
export interface SinkRecord {
  topic: string;
  partition: number;
  offset: number;
  /** Key JSON (primary-key columns); null for truncates and keyless tables. */
  key: string | null;
  /** Value JSON: the change envelope. */
  readonly value: string;
  /**
   * The envelope's UTF-8 bytes (the same text as `value`), when the reader has them: a sink that
   * works on bytes takes them and `value` is never decoded. They are a view of the reader's
   * buffer, which holds later batches once this one is applied: a sink that keeps anything of a
   * record past its batch's apply copies it.
   */
  readonly bytes?: Buffer;
  op: ChangeOp;
  schema: SchemaRecord;
}

/** The changes of one source table in a batch. */
export interface TableBatch {
  topic: string;
  /** Newest schema of the table seen in the batch (targets are evolved to it first). */
  schema: SchemaRecord;
  /** Every schema the batch's records were written with, oldest first. */
  schemas: SchemaRecord[];
  /** The table was truncated before `changes` (the truncate is ordered first in the batch). */
  truncate: SinkRecord | null;
  /** Every change in log order per partition (for change/history tables). Truncates excluded. */
  changes: SinkRecord[];
  /** Current-state view: the last change per key, if it is not a delete. */
  upserts: SinkRecord[];
  /** Current-state view: keys whose last change is a delete. */
  deletes: SinkRecord[];
  /** Changes of tables without a key (appended; they cannot be upserted). */
  keyless: SinkRecord[];
}

export interface OffsetPosition {
  topic: string;
  partition: number;
  /** The next offset to read (one past the last applied record). */
  next: number;
  /**
   * Where the writer believes the target stands in this partition before the batch. When given,
   * the sink applies the batch only if the target's stored offset is exactly this, and otherwise
   * fails it with SINK_FENCED (retriable): another worker of the sink's consumer group applied the
   * partition meanwhile. Sinks whose target one process holds (DuckDB) need not check.
   */
  from?: number;
}

export interface SinkBatch {
  tables: TableBatch[];
  /** Where each partition read in this batch stands after it. */
  offsets: OffsetPosition[];
  records: number;
  bytes: number;
}

export interface Sink {
  readonly name: string;
  /** Connects, creates the offsets table if needed, and returns the stored offsets (`topic` → partition → next). */
  open(): Promise<Map<string, Map<number, number>>>;
  /** Applies the batch and stores its offsets in one target transaction. Must be idempotent. */
  apply(batch: SinkBatch): Promise<void>;
  /**
   * Work on a batch that was read ahead, done while the batch before it applies (its target works
   * meanwhile): e.g. encoding its rows for a bulk load. Must not touch the target; the batch may
   * never be applied (a rebalance, a failure before it), or be applied in parts (`onError`
   * policies), so `apply` must work without it too.
   */
  prepare?(batch: SinkBatch): Promise<void>;
  /**
   * The offsets the target holds now, also those other workers of the sink's consumer group wrote
   * (a truncate of a topic whose partitions are shared waits on them). Sinks whose target one
   * process holds alone (a DuckDB file) need not have it.
   */
  storedOffsets?(): Promise<Map<string, Map<number, number>>>;
  close(): Promise<void>;
}

/** Stored offsets from rows of (topic, partition, next_offset), as `open` returns them. */
export function offsetsFromRows(rows: Iterable<readonly unknown[]>): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const [topic, partition, next] of rows) {
    let m = out.get(String(topic));
    if (!m) out.set(String(topic), (m = new Map()));
    m.set(Number(partition), Number(next));
  }
  return out;
}

/** Records grouped by the schema they were written with (a statement per schema version). */
export function bySchema(records: SinkRecord[]): Map<SinkRecord['schema'], SinkRecord[]> {
  const groups = new Map<SinkRecord['schema'], SinkRecord[]>();
  for (const r of records) {
    const g = groups.get(r.schema);
    if (g) g.push(r);
    else groups.set(r.schema, [r]);
  }
  return groups;
}

export const offsetKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
