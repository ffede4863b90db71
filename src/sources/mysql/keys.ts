/**
 * The order the MySQL/MariaDB snapshot reads a table in, and the same order in JavaScript (for the
 * stream filter of a table whose snapshot was resumed mid-table; see sources/common/ranges.ts).
 * Numeric, date/time and binary keys are read in primary-key order (InnoDB's clustered order, no
 * sort); text, ENUM and SET keys in binary order (`CAST(… AS BINARY)`, the only text order
 * JavaScript can reproduce; it costs a sort), for the character sets whose byte order is code-point
 * order. A table whose key has any other type is read as one unit (not resumable mid-table).
 */
import { keyComparator, type KeyOrder } from '../common/keys.ts';
import type { BinlogColumn } from './binlog/types.ts';
import { MY } from './types.ts';

export interface MysqlKeyColumn {
  name: string;
  /** Position among the table's columns (and in the snapshot's SELECT list). */
  index: number;
  order: KeyOrder;
  /** Ordered by its bytes: `CAST(col AS BINARY)`. */
  binary: boolean;
}

/** Character sets whose byte order is the order of their code points (like UTF-8's). */
const CODEPOINT_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'latin1', 'ascii']);

export function mysqlKeyColumns(columns: BinlogColumn[], keyColumns: string[]): MysqlKeyColumn[] | null {
  if (keyColumns.length === 0) return null;
  const out: MysqlKeyColumn[] = [];
  for (const name of keyColumns) {
    const index = columns.findIndex((c) => c.name === name);
    const c = columns[index];
    if (!c) return null;
    const base = { name, index, binary: false };
    switch (c.typeCode) {
      case MY.TINY:
      case MY.SHORT:
      case MY.INT24:
      case MY.LONG:
      case MY.LONGLONG:
      case MY.DOUBLE:
      case MY.NEWDECIMAL:
      case MY.YEAR:
      case MY.DATE:
      case MY.DATETIME:
      case MY.DATETIME2:
      case MY.TIME:
      case MY.TIME2:
        out.push({ ...base, order: 'number' });
        break;
      case MY.TIMESTAMP:
      case MY.TIMESTAMP2:
        out.push({ ...base, order: 'instant' });
        break;
      case MY.BIT:
        out.push({ ...base, order: c.schema.type === 'boolean' ? 'bool' : 'bytes' });
        break;
      case MY.VARCHAR:
      case MY.STRING:
      case MY.BLOB:
      case MY.ENUM:
      case MY.SET:
        if (c.charset === 'binary') out.push({ ...base, order: 'bytes' });
        else if (CODEPOINT_CHARSETS.has(c.charset ?? '')) out.push({ ...base, order: 'bytes', binary: true });
        else return null;
        break;
      default:
        return null;
    }
  }
  return out;
}

/** The SQL a key column is ordered by. */
export function mysqlOrderExpression(k: MysqlKeyColumn, quoted: string): string {
  return k.binary ? `CAST(${quoted} AS BINARY)` : quoted;
}

export const mysqlKeyComparator = (cols: MysqlKeyColumn[]) => keyComparator(cols);
