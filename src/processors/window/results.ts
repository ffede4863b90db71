/**
 * Aggregation results as change events of a table named like the processor (`format: changes`),
 * so table sinks apply them: the key columns (group-by fields, and `window_start` for windows),
 * the window's bounds, the aggregations; each event with its schema, made once per combination of
 * value types (a group-by value may be a number in one result and text in another).
 */
import type { ColumnInfo, FieldSchema, TableSchema } from '../../core/event.ts';
import { SCHEMA_HEADER, schemaRecordOf } from '../../core/schemas.ts';
import { writeValue } from '../../core/serde/json.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import type { TransformOutput } from '../../registry/spec.ts';

export interface ResultTable {
  pipeline: string;
  /** The processor: the table's name. */
  name: string;
  output: string;
  /** Group-by fields, in order (key columns). */
  groups: string[];
  /** Whether results have `window_start` (a key column) and `window_end`. */
  windowed: boolean;
  /** Aggregations, with whether each is a count (bigint). */
  aggregates: { name: string; count: boolean }[];
}

const ZONED: FieldSchema = { type: 'string', optional: false, name: 'io.debezium.time.ZonedTimestamp', version: 1 };

/** Makes change events of the results of `t`; `after` holds the group-by fields, window bounds (when windowed) and aggregations. */
export function resultChanges(t: ResultTable): (after: Record<string, unknown> | null, before: Record<string, unknown> | null, op: 'c' | 'u' | 'd', ts: number) => TransformOutput {
  const tables = new Map<string, TableSchema>();
  const schemaOf = (row: Record<string, unknown>) => {
    const cols: [string, FieldSchema, string, boolean][] = [];
    for (const g of t.groups) cols.push([g, ...typeOf(row[g], false), true]);
    if (t.windowed) {
      cols.push(['window_start', ZONED, 'timestamptz', true]);
      cols.push(['window_end', ZONED, 'timestamptz', false]);
    }
    for (const a of t.aggregates) cols.push([a.name, ...typeOf(row[a.name], true, a.count), false]);
    const sig = cols.map((c) => c[2]).join(',');
    let table = tables.get(sig);
    if (!table) {
      const columns: ColumnInfo[] = cols.map(([name, schema, typeName, key]) => ({ name, typeOid: 0, typeName, typeModifier: -1, key, optional: schema.optional, schema }));
      table = { schema: 'window', table: t.name, keyColumns: cols.filter((c) => c[3]).map((c) => c[0]), columns } as TableSchema;
      tables.set(sig, table);
    }
    return schemaRecordOf('sluice', t.output, table);
  };
  return (after, before, op, ts) => {
    const row = (after ?? before)!;
    const key: Record<string, unknown> = {};
    for (const g of t.groups) key[g] = row[g];
    if (t.windowed) key.window_start = row.window_start;
    const schema = schemaOf(row);
    const source = `{"version":"${SLUICE_VERSION}","connector":"sluice","name":${JSON.stringify(t.pipeline)},"ts_ms":${ts},"snapshot":"false","db":${JSON.stringify(t.pipeline)},"schema":"window","table":${JSON.stringify(t.name)}}`;
    const value = `{"before":${before ? writeValue(before as never) : 'null'},"after":${after ? writeValue(after as never) : 'null'},"source":${source},"op":"${op}","ts_ms":${Date.now()}}`;
    return { topic: t.output, key: writeValue(key as never), value, timestamp: ts, headers: { [SCHEMA_HEADER]: schema.id }, schema };
  };
}

/** The column type of a result value: counts bigint, other numbers double, text, booleans; null as the fallback type. */
function typeOf(v: unknown, optional: boolean, count = false): [FieldSchema, string] {
  if (count) return [{ type: 'int64', optional }, 'int8'];
  if (typeof v === 'number' || typeof v === 'bigint' || v === null || v === undefined) return [{ type: 'double', optional }, 'float8'];
  if (typeof v === 'boolean') return [{ type: 'boolean', optional }, 'bool'];
  return [{ type: 'string', optional }, 'text'];
}
