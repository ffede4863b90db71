/**
 * Table schemas in the log. Events are written without their schema (Debezium JSON with
 * `schemas.enable=false` by default), but sinks need column types to create and evolve target
 * tables. So each distinct table schema is written once, content-addressed, to the topic
 * `<prefix>.__schemas` in the same atomic commit as the first event that uses it, and every event
 * carries its schema id in the record header `s`. A sink that meets an id it does not know re-reads
 * that topic: the schema is committed no later than the data, so it is always there.
 */
import { createHash } from 'node:crypto';
import type { FieldSchema, TableSchema } from './event.ts';

export interface SchemaColumn {
  name: string;
  /** The source database's type name, e.g. `numeric(10,2)`, `text[]`, `varchar(40)`. */
  sourceType: string;
  optional: boolean;
  key: boolean;
  /** The Kafka Connect schema of the column's values in events. */
  connect: FieldSchema;
}

export interface SchemaRecord {
  id: string;
  /** Source connector, e.g. `postgresql`. */
  connector: string;
  topic: string;
  schema: string;
  table: string;
  keyColumns: string[];
  columns: SchemaColumn[];
  /** A document collection (MongoDB source): values carry documents as Extended JSON text, not rows. */
  document?: true;
  /** Position in the schema topic (set by SchemaStore; orders a table's schemas oldest first). */
  seq?: number;
}

export const SCHEMA_HEADER = 's';
export const schemaTopicOf = (prefix: string): string => `${prefix}.__schemas`;

const cache = new WeakMap<TableSchema, Map<string, SchemaRecord>>();

/**
 * A column schema as JSON can hold it: an int64 default (`bigint NOT NULL DEFAULT 0` gives a
 * bigint) becomes a number when exact, else its decimal text.
 */
function jsonSafe<T>(v: T): T {
  if (typeof v === 'bigint') return (Number.isSafeInteger(Number(v)) ? Number(v) : v.toString()) as T;
  if (Array.isArray(v)) return v.map(jsonSafe) as T;
  if (v !== null && typeof v === 'object') {
    let out: Record<string, unknown> | null = null;
    for (const [k, x] of Object.entries(v)) {
      const y = jsonSafe(x);
      if (y !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = y;
    }
    return (out ?? v) as T;
  }
  return v;
}

/** The schema record of `table` as written to `topic` (cached per table object). */
export function schemaRecordOf(connector: string, topic: string, table: TableSchema): SchemaRecord {
  let byTopic = cache.get(table);
  if (!byTopic) cache.set(table, (byTopic = new Map()));
  let rec = byTopic.get(topic);
  if (rec) return rec;
  const body = {
    connector,
    topic,
    schema: table.schema,
    table: table.table,
    keyColumns: table.keyColumns,
    columns: table.columns.map((c) => ({ name: c.name, sourceType: c.typeName, optional: c.optional, key: c.key, connect: jsonSafe(c.schema) })),
    ...(table.document ? { document: true as const } : {}),
  };
  const id = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  rec = { id, ...body };
  byTopic.set(topic, rec);
  return rec;
}
