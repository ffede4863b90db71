/**
 * Building change events the way every source must: an update that changes the row's key becomes
 * a delete of the old key and a create of the new one (as Debezium does: each key's history stays
 * in its own partition, in order), and transaction metadata counts each event's place in its
 * transaction and per table, for the `transaction` block and the BEGIN/END records.
 */
import type { ChangeEvent, Op, Row, TableSchema, TransactionInfo } from '../../core/event.ts';
import type { TransactionMetadataEvent } from '../../core/serde/debezium.ts';
import { keyOf, sameKey } from './keys.ts';

export interface ChangePart {
  op: Op;
  key: Row | null;
  before: Row | null;
  after: Row | null;
}

/**
 * The events of one row change: for an update whose key changed, a delete of the old key then a
 * create of the new one; otherwise the change itself. `before` of an update may be null (PostgreSQL
 * sends no old row unless the key changed or the replica identity is FULL).
 */
export function changeParts(table: Pick<TableSchema, 'keyColumns'>, op: Op, before: Row | null, after: Row | null): ChangePart[] {
  if (op === 'u' && before && after) {
    const oldKey = keyOf(table, before);
    const newKey = keyOf(table, after);
    if (oldKey && newKey && !sameKey(oldKey, newKey)) {
      return [
        { op: 'd', key: oldKey, before, after: null },
        { op: 'c', key: newKey, before: null, after },
      ];
    }
    return [{ op, key: newKey, before, after }];
  }
  const row = op === 'd' ? before : after;
  return [{ op, key: op === 't' || !row ? null : keyOf(table, row), before, after }];
}

/** Counts a transaction's events for Debezium's transaction metadata. */
export class TransactionMeta {
  private total = 0;
  private readonly perTable = new Map<string, number>();
  constructor(readonly id: string) {}

  /** Counts one event of `table` (`schema.table`) and returns its `transaction` block. */
  next(table: string): TransactionInfo {
    const n = (this.perTable.get(table) ?? 0) + 1;
    this.perTable.set(table, n);
    this.total++;
    return { id: this.id, total_order: this.total, data_collection_order: n };
  }

  get events(): number {
    return this.total;
  }

  begin(tsMs: number): TransactionMetadataEvent {
    return { status: 'BEGIN', id: this.id, event_count: null, data_collections: null, ts_ms: tsMs };
  }

  end(tsMs: number): TransactionMetadataEvent {
    return { status: 'END', id: this.id, event_count: this.total, data_collections: [...this.perTable].map(([data_collection, event_count]) => ({ data_collection, event_count })), ts_ms: tsMs };
  }
}

export type { ChangeEvent };
