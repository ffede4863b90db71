/** Iceberg types of source columns, and the DuckDB types whose Parquet columns Iceberg reads as them. */
import type { Kind } from '../sql/columns.ts';
import type { IcebergType } from './metadata.ts';

/** The Iceberg type of a source column's kind (what has none is text). */
export function icebergType(k: Kind, nextId: () => number): IcebergType {
  switch (k.k) {
    case 'bool':
      return 'boolean';
    case 'int':
      return k.bytes === 8 ? 'long' : 'int';
    case 'float':
      return k.bytes === 4 ? 'float' : 'double';
    case 'decimal':
      return k.precision && k.precision <= 38 ? `decimal(${k.precision}, ${k.scale ?? 0})` : 'string';
    case 'bytes':
      return 'binary';
    case 'date':
      return 'date';
    case 'timestamp_us':
    case 'timestamp_ms':
      return 'timestamp';
    case 'timestamptz':
      return 'timestamptz';
    case 'array':
      return { type: 'list', 'element-id': nextId(), element: icebergType(k.of, nextId), 'element-required': false };
    default:
      return 'string';
  }
}

/** The DuckDB type whose Parquet column Iceberg reads as `t`. */
export function duckOf(t: IcebergType): string {
  if (typeof t !== 'string') return `${duckOf(t.element)}[]`;
  const d = /^decimal\((\d+),\s*(\d+)\)$/.exec(t);
  if (d) return `DECIMAL(${d[1]},${d[2]})`;
  return { boolean: 'BOOLEAN', int: 'INTEGER', long: 'BIGINT', float: 'FLOAT', double: 'DOUBLE', date: 'DATE', timestamp: 'TIMESTAMP', timestamptz: 'TIMESTAMPTZ', binary: 'BLOB', string: 'VARCHAR' }[t] ?? 'VARCHAR';
}

/** Whether two types are the same, element ids aside (a list keeps its element's id). */
export const sameType = (a: IcebergType, b: IcebergType): boolean => (typeof a === 'string' || typeof b === 'string' ? String(a).replace(/\s/g, '') === String(b).replace(/\s/g, '') : sameType(a.element, b.element));

