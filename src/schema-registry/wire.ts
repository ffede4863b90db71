/**
 * Confluent's wire format for Avro records, and the Avro schemas of CDC events.
 *
 * Wire format (what Confluent's KafkaAvroSerializer writes, and Apicurio's with its Confluent
 * id handler): byte 0 the magic 0, bytes 1–4 the schema's global id in the registry (big-endian
 * unsigned), then the value in Avro's binary encoding with that schema.
 *
 * CDC schemas: a table's key and value schemas (as Kafka Connect schemas, the FieldSchema of
 * core/serde/debezium.ts) mapped to Avro as Confluent's AvroConverter maps them for Debezium, so a
 * consumer reading Debezium's Avro topics reads Sluice's:
 *   topic `<prefix>.<schema>.<table>`: value record `Envelope` and row record `Value` in namespace
 *   `<prefix>.<schema>.<table>`, key record `Key` there too; the source block a record
 *   `io.debezium.connector.<connector>.Source`, the transaction block `event.block`;
 *   Connect names are kept as `connect.name` attributes (and `connect.version`, `connect.parameters`).
 * Types: int8/int16/int32 → int (int8/int16 also with `connect.type`), int64 → long, float → float,
 * double → double, boolean, string, bytes; Decimal → bytes with logicalType decimal (precision from
 * `connect.decimal.precision`, else 64; scale); Date → int date; Time → int time-millis, MicroTime →
 * long time-micros; Timestamp → long timestamp-millis, MicroTimestamp → long timestamp-micros,
 * NanoTimestamp → long timestamp-nanos (the values are Debezium's: Timestamp and MicroTimestamp of a
 * `timestamp without time zone` are the wall-clock time read as UTC); array → array; map → map of
 * its values (strings when the schema does not say); struct → record. An optional column → a
 * union `["null", T]` with default null; a default the Connect schema carries stays the field's
 * default (an optional column with a non-null default → `[T, "null"]` with that default: a union's
 * default must be of its first branch).
 */
import { AvroCodec, parseSchema, type AvroSchema, type RecordSchema } from '../core/avro/index.ts';
import type { ColumnInfo, FieldSchema, TableSchema } from '../core/event.ts';
import type { SchemaRecord } from '../core/schemas.ts';
import { envelopeSchema, rowSchema } from '../core/serde/debezium.ts';
import { registryError } from './errors.ts';

export const WIRE_MAGIC = 0;
export const WIRE_HEADER_BYTES = 5;

/** Frames an Avro body (already encoded) with schema id `id`. */
export function frame(id: number, body: Uint8Array): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw registryError('REGISTRY_WIRE', `a schema id must be an integer from 0 to 2^32-1; got ${id}`);
  const out = Buffer.allocUnsafe(WIRE_HEADER_BYTES + body.length);
  out[0] = WIRE_MAGIC;
  out.writeUInt32BE(id, 1);
  out.set(body, WIRE_HEADER_BYTES);
  return out;
}

/** The schema id and the Avro body of a framed record (a view, no copy). */
export function unframe(data: Uint8Array): { id: number; body: Buffer } {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < WIRE_HEADER_BYTES) throw registryError('REGISTRY_WIRE', `a record of ${b.length} bytes is too short for the Confluent wire format (magic byte and 4-byte schema id)`);
  if (b[0] !== WIRE_MAGIC) throw registryError('REGISTRY_WIRE', `the record starts with byte ${b[0]}, not the Confluent wire format's magic byte 0: it was not written by a Confluent-compatible Avro serializer`);
  return { id: b.readUInt32BE(1), body: b.subarray(WIRE_HEADER_BYTES) };
}

/** Encodes `value` with `codec` and frames it with `id`. */
export function encodeFramed(id: number, codec: AvroCodec, value: unknown): Buffer {
  return frame(id, codec.encode(value));
}

/** Serializes and deserializes framed records through a registry client (schemas fetched by id once). */
export class WireSerde {
  private readonly codecs = new Map<number, Promise<AvroCodec>>();
  private readonly ids = new Map<string, Promise<{ id: number; codec: AvroCodec }>>();

  constructor(private readonly client: { register(subject: string, schema: AvroSchema | string): Promise<number>; getById(id: number): Promise<AvroSchema> }) {}

  /** Registers (once) `schema` under `subject` and writes `value` framed with its id. */
  async serialize(subject: string, schema: AvroSchema, value: unknown): Promise<Buffer> {
    const key = subject;
    let entry = this.ids.get(key);
    if (!entry || (await entry).codec.schema !== schema) {
      entry = this.client.register(subject, schema).then((id) => ({ id, codec: new AvroCodec(schema) }));
      this.ids.set(key, entry);
      entry.catch(() => this.ids.delete(key));
    }
    const { id, codec } = await entry;
    return encodeFramed(id, codec, value);
  }

  /** The value of a framed record, decoded with the writer's schema (fetched by its id). */
  async deserialize(data: Uint8Array): Promise<{ id: number; value: unknown }> {
    const { id, body } = unframe(data);
    let codec = this.codecs.get(id);
    if (!codec) {
      codec = this.client.getById(id).then((s) => new AvroCodec(s));
      this.codecs.set(id, codec);
      codec.catch(() => this.codecs.delete(id));
    }
    return { id, value: (await codec).decode(body) };
  }
}

// ---------- Connect schemas → Avro ----------

const DECIMAL = 'org.apache.kafka.connect.data.Decimal';

const LOGICAL: Record<string, { base: 'int' | 'long'; logicalType: string }> = {
  'io.debezium.time.Date': { base: 'int', logicalType: 'date' },
  'org.apache.kafka.connect.data.Date': { base: 'int', logicalType: 'date' },
  'io.debezium.time.Time': { base: 'int', logicalType: 'time-millis' },
  'org.apache.kafka.connect.data.Time': { base: 'int', logicalType: 'time-millis' },
  'io.debezium.time.MicroTime': { base: 'long', logicalType: 'time-micros' },
  'io.debezium.time.Timestamp': { base: 'long', logicalType: 'timestamp-millis' },
  'org.apache.kafka.connect.data.Timestamp': { base: 'long', logicalType: 'timestamp-millis' },
  'io.debezium.time.MicroTimestamp': { base: 'long', logicalType: 'timestamp-micros' },
  'io.debezium.time.NanoTimestamp': { base: 'long', logicalType: 'timestamp-nanos' },
};

const PRIMITIVE: Record<string, string> = {
  int8: 'int',
  int16: 'int',
  int32: 'int',
  int64: 'long',
  float: 'float',
  float32: 'float',
  double: 'double',
  float64: 'double',
  boolean: 'boolean',
  string: 'string',
  bytes: 'bytes',
};

interface Ctx {
  /** Named types written so far (later uses are by name). */
  defined: Set<string>;
  anon: number;
}

function connectAttrs(f: FieldSchema): Record<string, unknown> {
  const a: Record<string, unknown> = {};
  if (f.version !== undefined) a['connect.version'] = f.version;
  if (f.parameters && Object.keys(f.parameters).length) a['connect.parameters'] = f.parameters;
  if (f.default !== undefined && f.default !== null && !f.type.startsWith('struct')) a['connect.default'] = f.default;
  if (f.name !== undefined) a['connect.name'] = f.name;
  return a;
}

/** The Avro type (JSON) of a Connect schema, ignoring its optionality. */
function typeOf(f: FieldSchema, ctx: Ctx): unknown {
  if (f.type === 'struct') {
    const full = f.name ?? `io.confluent.connect.avro.ConnectDefault${++ctx.anon === 1 ? '' : ctx.anon}`;
    if (ctx.defined.has(full)) return full;
    ctx.defined.add(full);
    const i = full.lastIndexOf('.');
    const rec: Record<string, unknown> = { type: 'record', name: i < 0 ? full : full.slice(i + 1) };
    if (i >= 0) rec.namespace = full.slice(0, i);
    rec.fields = (f.fields ?? []).map((x) => fieldOf(x, ctx));
    if (f.version !== undefined) rec['connect.version'] = f.version;
    if (f.name !== undefined) rec['connect.name'] = f.name;
    return rec;
  }
  if (f.type === 'array') return { type: 'array', items: fieldType(f.items ?? { type: 'string', optional: true }, ctx) };
  if (f.type === 'map') {
    const values = (f as FieldSchema & { values?: FieldSchema }).values ?? { type: 'string', optional: true };
    return { type: 'map', values: fieldType(values, ctx) };
  }
  const base = PRIMITIVE[f.type];
  if (!base) throw registryError('REGISTRY_SCHEMA_INVALID', `the Kafka Connect type ${JSON.stringify(f.type)} has no Avro mapping`);
  if (f.name === DECIMAL && f.type === 'bytes') {
    const scale = Number(f.parameters?.scale ?? 0);
    const precision = Number(f.parameters?.['connect.decimal.precision'] ?? 64);
    return { type: 'bytes', scale, precision: Math.max(precision, scale, 1), ...connectAttrs(f), logicalType: 'decimal' };
  }
  const logical = f.name !== undefined ? LOGICAL[f.name] : undefined;
  if (logical && logical.base === base) return { type: base, ...connectAttrs(f), logicalType: logical.logicalType };
  const attrs = connectAttrs(f);
  if (f.type === 'int8' || f.type === 'int16') attrs['connect.type'] = f.type;
  return Object.keys(attrs).length ? { type: base, ...attrs } : base;
}

/** A default of a Connect schema that Avro can hold for the type (else undefined). */
function avroDefault(f: FieldSchema): unknown {
  const d = f.default;
  if (d === undefined || d === null) return undefined;
  if (f.name === DECIMAL) return undefined;
  switch (PRIMITIVE[f.type]) {
    case 'int':
    case 'long':
      return typeof d === 'number' && Number.isInteger(d) ? d : typeof d === 'bigint' && Number.isSafeInteger(Number(d)) ? Number(d) : undefined;
    case 'float':
    case 'double':
      return typeof d === 'number' && Number.isFinite(d) ? d : undefined;
    case 'boolean':
      return typeof d === 'boolean' ? d : undefined;
    case 'string':
      return typeof d === 'string' ? d : undefined;
    default:
      return undefined;
  }
}

/** The Avro type of a Connect schema with its optionality (a union with null). */
function fieldType(f: FieldSchema, ctx: Ctx): unknown {
  const t = typeOf(f, ctx);
  if (!f.optional) return t;
  return avroDefault(f) !== undefined ? [t, 'null'] : ['null', t];
}

function fieldOf(f: FieldSchema, ctx: Ctx): Record<string, unknown> {
  const out: Record<string, unknown> = { name: f.field, type: fieldType(f, ctx) };
  const d = avroDefault(f);
  if (d !== undefined) out.default = d;
  else if (f.optional) out.default = null;
  return out;
}

/** The Avro schema (JSON) of a Connect schema, as Confluent's AvroConverter writes it. */
export function connectToAvroJson(f: FieldSchema): unknown {
  return fieldType(f, { defined: new Set(), anon: 0 });
}

/** A table schema from a schema record of the log (core/schemas.ts). */
export function tableOfRecord(rec: SchemaRecord): TableSchema {
  return {
    schema: rec.schema,
    table: rec.table,
    keyColumns: rec.keyColumns,
    columns: rec.columns.map((c): ColumnInfo => ({ name: c.name, typeOid: 0, typeName: c.sourceType, typeModifier: -1, key: c.key, optional: c.optional, schema: c.connect })),
  };
}

export interface CdcAvroSchemas {
  /** The subject names by Confluent's TopicNameStrategy: `<topic>-key`, `<topic>-value`. */
  keySubject: string;
  valueSubject: string;
  /** The key record (null for a table without a key: its events have no key). */
  key: RecordSchema | null;
  value: RecordSchema;
  keyJson: unknown;
  valueJson: unknown;
}

/**
 * The Avro key and value schemas of a table's CDC events on `topic` (`<prefix>.<schema>.<table>`),
 * Debezium's envelope with the row record `Value`; `source` is the connector's source block schema
 * (its spec's Debezium `sourceSchema`; default the common fields only).
 */
export function cdcAvroSchemas(table: TableSchema | SchemaRecord, topic: string, source?: FieldSchema): CdcAvroSchemas {
  const t = 'connector' in table ? tableOfRecord(table) : table;
  const valueJson = connectToAvroJson(envelopeSchema(t, topic, source));
  const hasKey = t.columns.some((c) => c.key);
  const keyJson = hasKey ? connectToAvroJson(rowSchema(t, `${topic}.Key`, false, true)) : null;
  return {
    keySubject: `${topic}-key`,
    valueSubject: `${topic}-value`,
    key: keyJson === null ? null : (parseSchema(keyJson) as RecordSchema),
    value: parseSchema(valueJson) as RecordSchema,
    keyJson,
    valueJson,
  };
}

/** What registering a table's CDC schemas gives: the ids to frame its keys and values with. */
export interface RegisteredCdcSchemas extends CdcAvroSchemas {
  keyId: number | null;
  valueId: number;
}

/**
 * Registers a table's key and value schemas (on first sight, and after each ALTER TABLE): the
 * subjects' compatibility levels decide whether the new schemas may follow the old ones. A change
 * the level refuses is REGISTRY_INCOMPATIBLE naming the table, the subject and the registry's
 * reason (for our registry: the field and what breaks), and what to do. The schemas are named
 * after `topic` (the source's `<prefix>.<schema>.<table>`); the subjects are `subjectTopic`'s
 * (default `topic`), e.g. the avro processor's output topic.
 */
export async function registerCdcSchemas(
  client: { register(subject: string, schema: AvroSchema | string): Promise<number> },
  table: TableSchema | SchemaRecord,
  topic: string,
  source?: FieldSchema,
  subjectTopic: string = topic,
): Promise<RegisteredCdcSchemas> {
  const derived = cdcAvroSchemas(table, topic, source);
  const schemas = subjectTopic === topic ? derived : { ...derived, keySubject: `${subjectTopic}-key`, valueSubject: `${subjectTopic}-value` };
  const name = `${table.schema}.${table.table}`;
  const reg = async (subject: string, schema: AvroSchema): Promise<number> => {
    try {
      return await client.register(subject, schema);
    } catch (e) {
      if ((e as { detail?: { errorCode?: number } }).detail?.errorCode !== 409) throw e;
      throw registryError(
        'REGISTRY_INCOMPATIBLE',
        `the columns of table ${name} changed in a way subject ${subject} does not allow (${(e as Error).message}); the pipeline stops here, before writing events of the new schema. Make the change compatible (e.g. give an added NOT NULL column a default, or add it as nullable), or set the subject's compatibility level deliberately (PUT /config/${subject}) and restart`,
        { cause: e },
      );
    }
  };
  const keyId = schemas.key ? await reg(schemas.keySubject, schemas.key) : null;
  const valueId = await reg(schemas.valueSubject, schemas.value);
  return { ...schemas, keyId, valueId };
}

// ---------- JSON event values ↔ Avro values ----------

/**
 * A value of a Debezium JSON event (as parsed) in the form the Avro codec takes for `schema`:
 * bytes given as base64 text become bytes; the rest is taken as it is. Unions take the first
 * non-null branch the value converts to.
 */
export function jsonToAvro(schema: AvroSchema, v: unknown): unknown {
  switch (schema.type) {
    case 'union': {
      if (v === null || v === undefined) return null;
      for (const b of schema.branches) {
        if (b.type === 'null') continue;
        if (fitsShape(b, v)) return jsonToAvro(b, v);
      }
      return v;
    }
    case 'record': {
      if (v === null || typeof v !== 'object') return v;
      const o = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of schema.fields) out[f.name] = o[f.name] === undefined ? undefined : jsonToAvro(f.type, o[f.name]);
      return out;
    }
    case 'array':
      return Array.isArray(v) ? v.map((x) => jsonToAvro(schema.items, x)) : v;
    case 'map': {
      if (v === null || typeof v !== 'object') return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = jsonToAvro(schema.values, x);
      return out;
    }
    case 'bytes':
      if (schema.logical?.name === 'decimal') return v;
      return typeof v === 'string' ? Buffer.from(v, 'base64') : v;
    default:
      return v;
  }
}

function fitsShape(s: AvroSchema, v: unknown): boolean {
  switch (s.type) {
    case 'record':
    case 'map':
      return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
    case 'array':
      return Array.isArray(v);
    case 'string':
    case 'enum':
      return typeof v === 'string';
    case 'bytes':
    case 'fixed':
      return typeof v === 'string' || v instanceof Uint8Array;
    case 'boolean':
      return typeof v === 'boolean';
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff;
    case 'long':
      return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
    case 'float':
    case 'double':
      return typeof v === 'number';
    default:
      return false;
  }
}

/** A decoded Avro value back in Debezium JSON's form: bytes as base64, longs beyond 2^53 as bigint (exact). */
export function avroToJson(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map(avroToJson);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, avroToJson(x)]));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = avroToJson(x);
    return out;
  }
  return v;
}
