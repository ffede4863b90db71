/**
 * Debezium-compatible JSON for keys and values: the bytes Kafka Connect's JsonConverter writes for
 * Debezium's PostgreSQL connector (3.1–3.4 series; see docs/events.md), with (`schemas: true`, the converter's
 * `schemas.enable`) or without the `schema` part. Field order is Debezium's (the order of its
 * Connect schemas), so the output compares byte for byte, not only field for field.
 *
 * Hand-written over the known envelope shape: this runs once per event on the capture path. The
 * schema parts and the constant pieces of the source block are built once per table and topic.
 *
 * See docs/events.md for the format and what differs from Debezium.
 */
import type { ChangeEvent, FieldSchema, SourceInfo, TableSchema } from '../event.ts';
import { writeNumber, writeRow, writeString, writeValue } from './json.ts';

export interface DebeziumOptions {
  /** Write `{"schema":…,"payload":…}` (JsonConverter `schemas.enable=true`) or the bare payload. */
  schemas: boolean;
  /** The source connector's `source` block (from its spec). */
  source: DebeziumSourceInfo;
  /** The logical server name / topic prefix (Debezium's `topic.prefix`). */
  serverName: string;
}

/** A source connector's view of Debezium's `source` block: its connector name and layout (from its spec). */
export interface DebeziumSourceInfo {
  /** `source.connector` in events, e.g. `postgresql`. */
  connector: string;
  /** The `source` block's Connect schema, in Debezium's field order. */
  sourceSchema: FieldSchema;
  /** The schema for events whose `source.connector` is `connector`, when it depends on it (MariaDB's). */
  schemaFor?(connector: string): FieldSchema;
  /** The per-table constant part of the block after the common fields (PostgreSQL: `,"schema":…,"table":…,"txId":`). */
  tablePart(s: SourceInfo): string;
  /** The rest of the block after `tablePart`, as JSON text without the closing brace. */
  tail(s: SourceInfo): string;
  /** `schema.table` (PostgreSQL) or `database.table` (MySQL) of a parsed `source` block. */
  tableOf(source: Record<string, unknown>): { schema: string; table: string };
}

/** A transaction boundary event for the `<prefix>.transaction` topic. */
export interface TransactionMetadataEvent {
  status: 'BEGIN' | 'END';
  /** `txId:LSN` for PostgreSQL. */
  id: string;
  /** Events the transaction emitted (END only; null for BEGIN). */
  event_count?: number | null;
  /** Per data collection (`<schema>.<table>`) event counts (END only; null for BEGIN). */
  data_collections?: { data_collection: string; event_count: number }[] | null;
  /** Time of the boundary at the source (ms since epoch). */
  ts_ms: number;
}

/** Debezium's `Envelope` schema version (2 since Debezium 2.7, when `ts_us`/`ts_ns` were added). */
export const ENVELOPE_SCHEMA_VERSION = 2;
/** Values of the source `snapshot` Enum as Debezium 3.1+ declares them (every SnapshotRecord, in its order). */
export const SNAPSHOT_ALLOWED = 'true,first,first_in_data_collection,last_in_data_collection,last,false,incremental';

/** A Kafka Connect schema as the JsonConverter writes it: type, items/fields, optional, name, version, parameters, default, field. */
export function fieldSchemaJson(f: FieldSchema, field?: string): string {
  let s = `{"type":"${f.type}"`;
  if (f.type === 'array' && f.items) s += `,"items":${fieldSchemaJson(f.items)}`;
  if (f.type === 'struct' && f.fields) s += `,"fields":[${f.fields.map((x) => fieldSchemaJson(x, x.field)).join(',')}]`;
  s += `,"optional":${f.optional}`;
  if (f.name !== undefined) s += `,"name":${writeString(f.name)}`;
  if (f.version !== undefined) s += `,"version":${f.version}`;
  if (f.parameters) {
    s += ',"parameters":{' + Object.entries(f.parameters).map(([k, v]) => `${writeString(k)}:${writeString(v)}`).join(',') + '}';
  }
  if (f.default !== undefined && f.default !== null) s += `,"default":${writeValue(f.default as never)}`;
  if (field !== undefined) s += `,"field":${writeString(field)}`;
  return s + '}';
}

export const str = (field: string, optional = false): FieldSchema => ({ type: 'string', optional, field });
export const i64 = (field: string, optional = false): FieldSchema => ({ type: 'int64', optional, field });

/** The fields every Debezium connector's `source` block starts with (its AbstractSourceInfo). */
const COMMON_SOURCE_FIELDS: FieldSchema[] = [
  str('version'),
  str('connector'),
  str('name'),
  i64('ts_ms'),
  { type: 'string', optional: true, name: 'io.debezium.data.Enum', version: 1, parameters: { allowed: SNAPSHOT_ALLOWED }, default: 'false', field: 'snapshot' },
  str('db'),
  str('sequence', true),
  i64('ts_us', true),
  i64('ts_ns', true),
];

/** A connector's `source` block schema: the common fields, then the connector's own. */
export const sourceSchema = (name: string, fields: FieldSchema[]): FieldSchema => ({ type: 'struct', optional: false, name, version: 1, fields: [...COMMON_SOURCE_FIELDS, ...fields] });

/** A `source` block of the common fields only, for parsing events whose connector is not known. */
const GENERIC_SOURCE_SCHEMA = sourceSchema('io.debezium.connector.common.Source', []);

/** The envelope's `transaction` block (Debezium's `event.block`). */
export const TRANSACTION_BLOCK_SCHEMA: FieldSchema = {
  type: 'struct',
  optional: true,
  name: 'event.block',
  version: 1,
  fields: [str('id'), i64('total_order'), i64('data_collection_order')],
};

export const TRANSACTION_KEY_SCHEMA: FieldSchema = { type: 'struct', optional: false, name: 'io.debezium.connector.common.TransactionMetadataKey', version: 1, fields: [str('id')] };
export const TRANSACTION_VALUE_SCHEMA: FieldSchema = {
  type: 'struct',
  optional: false,
  name: 'io.debezium.connector.common.TransactionMetadataValue',
  version: 1,
  fields: [
    str('status'),
    str('id'),
    i64('event_count', true),
    { type: 'array', optional: true, field: 'data_collections', items: { type: 'struct', optional: true, name: 'event.collection', version: 1, fields: [str('data_collection'), i64('event_count')] } },
    i64('ts_ms'),
  ],
};

/**
 * The row struct schema (`<topic>.Value` / `<topic>.Key`) for a table, as a FieldSchema. The key's
 * fields are in key order (`keyColumns`: a composite key's declared order), as Debezium's are and as
 * the key payload is written; the value's in column order.
 */
export function rowSchema(table: TableSchema, name: string, optional: boolean, keyOnly: boolean): FieldSchema {
  const cols = keyOnly ? keyColumnsInOrder(table) : table.columns;
  return {
    type: 'struct',
    optional,
    name,
    fields: cols.map((c) => ({ ...(keyOnly ? { ...c.schema, optional: false } : c.schema), field: c.name })),
  };
}

function keyColumnsInOrder(table: TableSchema): TableSchema['columns'] {
  const keyed = table.columns.filter((c) => c.key);
  if (table.keyColumns.length !== keyed.length) return keyed;
  const out = table.keyColumns.map((k) => keyed.find((c) => c.name === k));
  return out.every((c) => c !== undefined) ? (out as TableSchema['columns']) : keyed;
}

/** A document as Debezium's MongoDB connector types it: Extended JSON text. */
const JSON_DOC: FieldSchema = { type: 'string', optional: true, name: 'io.debezium.data.Json', version: 1 };
/** The MongoDB connector's `updateDescription` block. */
export const UPDATE_DESCRIPTION_SCHEMA: FieldSchema = {
  type: 'struct',
  optional: true,
  name: 'io.debezium.connector.mongodb.changestream.updatedescription',
  version: 1,
  fields: [
    { type: 'array', items: { type: 'string', optional: false }, optional: true, field: 'removedFields' },
    { ...JSON_DOC, field: 'updatedFields' },
    {
      type: 'array',
      items: { type: 'struct', optional: false, name: 'io.debezium.connector.mongodb.changestream.truncatedarray', version: 1, fields: [str('field'), { type: 'int32', optional: false, field: 'size' }] },
      optional: true,
      field: 'truncatedArrays',
    },
  ],
};

/** The full value schema (`<topic>.Envelope`) for a table, as a FieldSchema. */
export function envelopeSchema(table: TableSchema, topic: string, source: FieldSchema = GENERIC_SOURCE_SCHEMA): FieldSchema {
  const row = table.document ? JSON_DOC : rowSchema(table, `${topic}.Value`, true, false);
  return {
    type: 'struct',
    optional: false,
    name: `${topic}.Envelope`,
    version: ENVELOPE_SCHEMA_VERSION,
    fields: [
      { ...row, field: 'before' },
      { ...row, field: 'after' },
      ...(table.document ? [{ ...UPDATE_DESCRIPTION_SCHEMA, field: 'updateDescription' }] : []),
      { ...source, field: 'source' },
      // Right after `source`, as Debezium (2.x and 3.x) puts it.
      { ...TRANSACTION_BLOCK_SCHEMA, field: 'transaction' },
      str('op'),
      i64('ts_ms', true),
      i64('ts_us', true),
      i64('ts_ns', true),
    ],
  };
}

/** Per table and topic: the schema parts and the constant pieces of the source block. */
interface TableCache {
  topic: string;
  version: string;
  connector: string;
  name: string;
  db: string;
  schema: string;
  table: string;
  /** `{"version":…,"connector":…,"name":…,"ts_ms":` */
  head: string;
  /** `,"db":…,"sequence":` */
  dbPart: string;
  /** The connector's per-table constant part (PostgreSQL: `,"schema":…,"table":…,"txId":`). */
  tablePart: string;
  valueSchema?: string;
  keySchema?: string;
}

/** A non-negative integer time scaled by 10^digits, exact (ts_ns exceeds 2^53). */
function scaled(v: number, zeros: string): string {
  return Number.isInteger(v) ? (v === 0 ? '0' : v + zeros) : '' + Math.trunc(v * 10 ** zeros.length);
}

export const nullableInt = (v: number | bigint | null | undefined): string => (v === null || v === undefined ? 'null' : typeof v === 'bigint' ? v.toString() : writeNumber(v));

export class DebeziumJsonSerializer {
  private readonly cache = new WeakMap<TableSchema, TableCache>();
  readonly transactionTopic: string;

  constructor(private readonly opts: DebeziumOptions) {
    this.transactionTopic = `${opts.serverName}.transaction`;
  }

  private tableCache(ev: ChangeEvent): TableCache {
    const s = ev.source;
    let c = this.cache.get(ev.table);
    if (
      c !== undefined &&
      c.topic === ev.topic &&
      c.version === s.version &&
      c.connector === s.connector &&
      c.name === s.name &&
      c.db === s.db &&
      c.schema === s.schema &&
      c.table === s.table
    ) {
      return c;
    }
    c = {
      topic: ev.topic,
      version: s.version,
      connector: s.connector,
      name: s.name,
      db: s.db,
      schema: s.schema,
      table: s.table,
      head: `{"version":${writeString(s.version)},"connector":${writeString(s.connector)},"name":${writeString(s.name)},"ts_ms":`,
      dbPart: `,"db":${writeString(s.db)},"sequence":`,
      tablePart: this.opts.source.tablePart(s),
    };
    this.cache.set(ev.table, c);
    return c;
  }

  /** The key: primary-key columns, or null for truncates and tables without a key. */
  key(ev: ChangeEvent): Buffer | null {
    const s = this.keyString(ev);
    return s === null ? null : Buffer.from(s);
  }

  /** The value: the envelope (with its schema when `schemas`). */
  value(ev: ChangeEvent): Buffer {
    return Buffer.from(this.valueString(ev));
  }

  /**
   * The tombstone Debezium writes after a delete (same key, null value) so log compaction can drop
   * the key. Null for anything else and for keyless rows (nothing to compact).
   */
  tombstone(ev: ChangeEvent): { key: Buffer; value: null } | null {
    if (ev.op !== 'd') return null;
    const key = this.key(ev);
    return key === null ? null : { key, value: null };
  }

  keyString(ev: ChangeEvent): string | null {
    if (!ev.key || ev.op === 't') return null;
    const payload = writeRow(ev.key);
    if (!this.opts.schemas) return payload;
    const c = this.tableCache(ev);
    if (c.keySchema === undefined) c.keySchema = fieldSchemaJson(rowSchema(ev.table, `${ev.topic}.Key`, false, true));
    return `{"schema":${c.keySchema},"payload":${payload}}`;
  }

  valueString(ev: ChangeEvent): string {
    const c = this.tableCache(ev);
    const payload = this.payload(ev, c);
    if (!this.opts.schemas) return payload;
    if (c.valueSchema === undefined) c.valueSchema = fieldSchemaJson(envelopeSchema(ev.table, ev.topic, this.opts.source.schemaFor?.(c.connector) ?? this.opts.source.sourceSchema));
    return `{"schema":${c.valueSchema},"payload":${payload}}`;
  }

  // The times of consecutive events mostly repeat (a transaction's commit time, the millisecond an
  // event was handled in): the texts of the last ones are kept.
  private srcMs = NaN;
  private srcUs: SourceInfo['ts_us'] = undefined;
  private srcNs: SourceInfo['ts_ns'] = undefined;
  private srcMsText = '';
  private srcUsNsText = '';
  private evMs = NaN;
  private evOp = '';
  private evText = '';

  private payload(ev: ChangeEvent, c: TableCache): string {
    const s: SourceInfo = ev.source;
    if (s.ts_ms !== this.srcMs || s.ts_us !== this.srcUs || s.ts_ns !== this.srcNs) {
      const tsUs = s.ts_us ?? null;
      const srcUs = tsUs === null ? scaled(s.ts_ms, '000') : nullableInt(tsUs);
      const srcNs = s.ts_ns != null ? nullableInt(s.ts_ns) : tsUs === null ? scaled(s.ts_ms, '000000') : scaled(tsUs, '000');
      this.srcMs = s.ts_ms;
      this.srcUs = s.ts_us;
      this.srcNs = s.ts_ns;
      this.srcMsText = writeNumber(s.ts_ms);
      this.srcUsNsText = ',"ts_us":' + srcUs + ',"ts_ns":' + srcNs;
    }
    if (ev.ts_ms !== this.evMs || ev.op !== this.evOp) {
      this.evMs = ev.ts_ms;
      this.evOp = ev.op;
      this.evText = ',"op":"' + ev.op + '","ts_ms":' + writeNumber(ev.ts_ms) + ',"ts_us":' + scaled(ev.ts_ms, '000') + ',"ts_ns":' + scaled(ev.ts_ms, '000000') + '}';
    }
    const t = ev.transaction;
    const d = ev.doc;
    return (
      (d === undefined
        ? '{"before":' + writeRow(ev.before) + ',"after":' + writeRow(ev.after)
        : '{"before":' + (d.before === null ? 'null' : writeString(d.before)) + ',"after":' + (d.after === null ? 'null' : writeString(d.after)) + ',"updateDescription":' + (d.updateDescription ?? 'null')) +
      ',"source":' +
      c.head +
      this.srcMsText +
      ',"snapshot":' +
      (s.snapshot == null ? 'null' : (MARKER_TEXT.get(s.snapshot) ?? writeString(s.snapshot))) +
      c.dbPart +
      (s.sequence == null ? 'null' : writeString(s.sequence)) +
      this.srcUsNsText +
      c.tablePart +
      this.opts.source.tail(s) +
      '},"transaction":' +
      (t ? `{"id":${writeString(t.id)},"total_order":${t.total_order},"data_collection_order":${t.data_collection_order}}` : 'null') +
      this.evText
    );
  }

  /** Key of a transaction metadata event: `{"id":…}` (with its schema when `schemas`). */
  transactionKey(tx: TransactionMetadataEvent): Buffer {
    const payload = `{"id":${writeString(tx.id)}}`;
    return Buffer.from(this.opts.schemas ? `{"schema":${TX_KEY_SCHEMA_JSON},"payload":${payload}}` : payload);
  }

  /** Value of a transaction metadata event for the `<prefix>.transaction` topic. */
  transactionEvent(tx: TransactionMetadataEvent): Buffer {
    const dc = tx.data_collections;
    const payload =
      `{"status":"${tx.status}","id":${writeString(tx.id)},"event_count":${nullableInt(tx.event_count)},"data_collections":` +
      (dc == null ? 'null' : '[' + dc.map((d) => `{"data_collection":${writeString(d.data_collection)},"event_count":${d.event_count}}`).join(',') + ']') +
      `,"ts_ms":${writeNumber(tx.ts_ms)}}`;
    return Buffer.from(this.opts.schemas ? `{"schema":${TX_VALUE_SCHEMA_JSON},"payload":${payload}}` : payload);
  }
}

/** The JSON text of each `source.snapshot` value Debezium defines. */
const MARKER_TEXT = new Map(SNAPSHOT_ALLOWED.split(',').map((m) => [m, writeString(m)]));

const TX_KEY_SCHEMA_JSON = fieldSchemaJson(TRANSACTION_KEY_SCHEMA);
const TX_VALUE_SCHEMA_JSON = fieldSchemaJson(TRANSACTION_VALUE_SCHEMA);
