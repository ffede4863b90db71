/**
 * Schema history of the captured tables. Every transaction's TABLE_MAP events carry the table's
 * columns as they were when the rows were written (binlog_row_metadata=FULL), so rows before and
 * after an ALTER TABLE decode with their own columns without replaying DDL. This class turns those
 * column lists into TableSchemas and keeps ONE object per distinct shape, so the serializer's and
 * the schema ledger's per-table caches hit, and a new shape (an ALTER) yields a new schema record
 * in the log's `__schemas` topic — the history sinks read.
 */
import type { ColumnInfo, TableSchema } from '../../core/event.ts';
import type { BinlogColumn } from './binlog/types.ts';

export class TableSchemas {
  private readonly byTable = new Map<string, { sig: string; schema: TableSchema }[]>();
  private readonly byColumns = new WeakMap<BinlogColumn[], TableSchema>();

  /** The newest schema seen for `database.table`, if any. */
  latest(database: string, table: string): TableSchema | undefined {
    const list = this.byTable.get(`${database}.${table}`);
    return list?.[list.length - 1]?.schema;
  }

  /** The schema for these columns of `database.table` (the same object for the same shape). */
  intern(database: string, table: string, columns: BinlogColumn[], keyColumns?: string[]): TableSchema {
    const hit = this.byColumns.get(columns);
    if (hit) return hit;
    const keys = keyColumns ?? columns.filter((c) => c.key).map((c) => c.name);
    const sig = JSON.stringify([keys, columns.map((c) => [c.name, c.typeName, c.nullable, c.schema])]);
    const name = `${database}.${table}`;
    let list = this.byTable.get(name);
    if (!list) this.byTable.set(name, (list = []));
    let found = list.find((x) => x.sig === sig)?.schema;
    if (found) {
      // Most recent last, for latest().
      list.splice(list.findIndex((x) => x.schema === found), 1);
      list.push({ sig, schema: found });
    } else {
      const keySet = new Set(keys);
      const cols: ColumnInfo[] = columns.map((c) => ({
        name: c.name,
        typeOid: c.typeCode,
        typeName: c.typeName,
        typeModifier: -1,
        key: keySet.has(c.name),
        optional: c.nullable,
        schema: c.schema,
      }));
      found = { schema: database, table, columns: cols, keyColumns: keys };
      list.push({ sig, schema: found });
      // A table altered many times keeps only its recent shapes.
      if (list.length > 16) list.shift();
    }
    this.byColumns.set(columns, found);
    return found;
  }
}
