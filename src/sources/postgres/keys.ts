/**
 * The order the PostgreSQL snapshot reads a table in, and the same order in JavaScript (for the
 * stream filter of a table whose snapshot was resumed mid-table; see sources/common/ranges.ts).
 * Numbers, times, booleans, bytea and uuid keys are read in their index order, which JavaScript
 * reproduces from the decoded values; text keys are read in binary order (`COLLATE "C"`), the only
 * text order JavaScript can reproduce (which costs a sort when the column has another collation).
 * A table whose key has any other type is read as one unit (not resumable mid-table).
 */
import type { TableSchema } from '../../core/event.ts';
import { keyComparator, type KeyOrder } from '../common/keys.ts';
import { quoteIdent } from './slot.ts';

export interface PgKeyColumn {
  name: string;
  /** Position among the table's columns (and in the snapshot's SELECT list). */
  index: number;
  order: KeyOrder;
  /** The type to cast a bound parameter to (`integer`, `character varying(40)`). */
  typeName: string;
  /** Read in binary order through `COLLATE "C"`; `cast` when the value must become text first (an enum). */
  collate: 'no' | 'collate' | 'cast';
}

const TEXT_OIDS = new Set([25, 1043, 1042, 19]);

/** How each key column orders, or null when the table cannot be read in key order. */
export function pgKeyColumns(table: TableSchema): PgKeyColumn[] | null {
  if (table.keyColumns.length === 0) return null;
  const out: PgKeyColumn[] = [];
  for (const name of table.keyColumns) {
    const index = table.columns.findIndex((c) => c.name === name);
    const c = table.columns[index];
    if (!c) return null;
    const s = c.schema;
    const base = { name, index, typeName: c.typeName, collate: 'no' as const };
    // Microseconds counting a month as 30.4375 days do not order intervals as PostgreSQL does (30).
    if (s.name === 'io.debezium.time.MicroDuration') return null;
    if (s.type === 'int8' || s.type === 'int16' || s.type === 'int32' || s.type === 'int64' || s.type === 'float' || s.type === 'double') out.push({ ...base, order: 'number' });
    else if (s.type === 'boolean') out.push({ ...base, order: 'bool' });
    else if (s.type === 'bytes' && !s.name) out.push({ ...base, order: 'bytes' });
    else if (s.name === 'io.debezium.time.ZonedTimestamp') out.push({ ...base, order: 'instant' });
    else if (s.name === 'io.debezium.data.Uuid') out.push({ ...base, order: 'bytes' });
    else if (s.type === 'string' && c.typeOid === 1700) out.push({ ...base, order: 'number' });
    else if (s.type === 'string' && (!s.name || s.name === 'io.debezium.data.Enum')) out.push({ ...base, order: 'bytes', collate: TEXT_OIDS.has(c.typeOid) ? 'collate' : 'cast' });
    else return null;
  }
  return out;
}

/** The SQL expression a key column is ordered by; `plainText`: its collation is already binary. */
export function orderExpression(k: PgKeyColumn, plainText: boolean): string {
  const col = quoteIdent(k.name);
  if (k.collate === 'cast') return `(${col}::text COLLATE "C")`;
  if (k.collate === 'collate' && !plainText) return `(${col} COLLATE "C")`;
  return col;
}

export const pgKeyComparator = (cols: PgKeyColumn[]) => keyComparator(cols);
