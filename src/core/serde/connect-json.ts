/**
 * Records that Kafka Connect's JsonConverter wrote with `schemas.enable=true` (Debezium's own
 * connectors running in Kafka Connect, or any producer of that form): `{"schema":{…},"payload":{…}}`
 * in the value and the key. Sluice's sinks read a change as its schemaless envelope plus a
 * SchemaRecord (core/schemas.ts), which a Sluice log carries in its schema topic; a Connect record
 * carries its schema inline instead. `ConnectJsonDecoder` turns one into the other:
 *
 * - the value becomes the text of its `payload` (Debezium's envelope, laid out as Sluice writes it:
 *   `before`, `after`, `source`, …, `op`, `ts_ms`), the key the text of the key's `payload`;
 * - the SchemaRecord is built from the inline schemas: columns from the `after` (or `before`) struct
 *   with their Connect schemas and semantic names (io.debezium.time.*, io.debezium.data.*,
 *   org.apache.kafka.connect.data.Decimal), key columns from the key struct, connector, schema and
 *   table from `payload.source` (`schema`, or `db` for MySQL/MariaDB), the source type from the
 *   column's `__debezium.source.column.type` parameter (Debezium's `column.propagate.source.type`)
 *   or else derived from the Connect schema. Its id is a hash of its content, as schemaRecordOf's.
 *
 * Exact decimals (`decimal.handling.mode=precise`, Debezium's default: Connect `Decimal` bytes, and
 * PostgreSQL's `VariableScaleDecimal` struct for numerics without a scale) are rewritten to the
 * decimal strings of `decimal.handling.mode=string`, the form Sluice's sinks apply, and their columns
 * described as `string` with a `numeric(p,s)` source type. Records of other tables pass unchanged
 * (their payload text is sliced out, not re-serialized).
 *
 * SchemaRecords are cached by the schema texts (value and key) with the record's topic and source
 * table, so a batch hashes each table's schema once.
 */
import { createHash } from 'node:crypto';
import type { FieldSchema, Row, Value } from '../event.ts';
import type { SchemaColumn, SchemaRecord } from '../schemas.ts';
import { coreError, type SluiceError } from '../errors.ts';
import { parseJson } from './parse.ts';
import { writeRow } from './json.ts';

const SCHEMA_START = Buffer.from('{"schema":');

/** Whether a record value looks like JsonConverter output with schemas (`{"schema":…`). */
export function isConnectJson(value: Buffer | string): boolean {
  if (typeof value === 'string') return value.startsWith('{"schema":');
  return value.length > SCHEMA_START.length && value.subarray(0, SCHEMA_START.length).equals(SCHEMA_START);
}

export interface ConnectDecoded {
  schema: SchemaRecord;
  /** Key JSON: the key's payload (null for a keyless record). */
  key: string | null;
  /** The change envelope JSON: the value's payload. */
  value: string;
}

function bad(where: string, what: string): SluiceError {
  return coreError(
    'SERDE_BAD_JSON',
    `record ${where} is not a change event as Kafka Connect's JsonConverter writes one with schemas: ${what}. Sinks read Debezium change events, written by Sluice or by Debezium's connectors with key.converter/value.converter org.apache.kafka.connect.json.JsonConverter and schemas.enable=true; point the sink's topics at change topics only`,
  );
}

/** End (exclusive) of the JSON value starting at `i` (after whitespace), or -1 if it does not end. */
function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x22) return skipString(s, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const d = s.charCodeAt(j);
      if (d === 0x22) {
        j = skipString(s, j) - 1;
        if (j < 0) return -1;
      } else if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }
  let j = i;
  while (j < s.length && !',}] \t\r\n'.includes(s[j])) j++;
  return j > i ? j : -1;
}

function skipString(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c) j++;
    else if (c === 0x22) return j + 1;
  }
  return -1;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  return i;
}

/** The raw text of each member of a top-level JSON object (no member parsed), or null if it is not one. */
export function objectMembers(s: string): Map<string, string> | null {
  const out = new Map<string, string>();
  let i = skipWs(s, 0);
  if (s[i] !== '{') return null;
  i = skipWs(s, i + 1);
  if (s[i] === '}') return skipWs(s, i + 1) === s.length ? out : null;
  for (;;) {
    if (s[i] !== '"') return null;
    const ke = skipString(s, i);
    if (ke < 0) return null;
    const key = JSON.parse(s.slice(i, ke)) as string;
    i = skipWs(s, ke);
    if (s[i] !== ':') return null;
    i = skipWs(s, i + 1);
    const ve = skipValue(s, i);
    if (ve < 0) return null;
    out.set(key, s.slice(i, ve));
    i = skipWs(s, ve);
    if (s[i] === ',') {
      i = skipWs(s, i + 1);
      continue;
    }
    if (s[i] === '}' && skipWs(s, i + 1) === s.length) return out;
    return null;
  }
}

/** The `payload` text of a JsonConverter record with schemas; the text itself when it is not one. */
export function payloadText(text: string): string {
  return text.startsWith('{"schema":') ? (splitRecord(text)?.payload ?? text) : text;
}

/** `schema` and `payload` texts of a JsonConverter record, or null if it is not `{schema, payload}`. */
function splitRecord(text: string): { schema: string; payload: string } | null {
  const m = objectMembers(text);
  if (!m || m.size !== 2) return null;
  const schema = m.get('schema');
  const payload = m.get('payload');
  return schema === undefined || payload === undefined ? null : { schema, payload };
}

// ---------- source types ----------

/** Debezium's type names (JDBC metadata, upper case) as PostgreSQL's format_type() prints them. */
const PG_TYPES: Record<string, string> = {
  INT2: 'smallint', INT4: 'integer', INT8: 'bigint', SERIAL: 'integer', BIGSERIAL: 'bigint', SMALLSERIAL: 'smallint',
  FLOAT4: 'real', FLOAT8: 'double precision', BOOL: 'boolean', VARCHAR: 'character varying', BPCHAR: 'character',
  TIMESTAMP: 'timestamp without time zone', TIMESTAMPTZ: 'timestamp with time zone', TIME: 'time without time zone',
  TIMETZ: 'time with time zone', NUMERIC: 'numeric', TEXT: 'text', BYTEA: 'bytea', DATE: 'date', UUID: 'uuid',
  JSON: 'json', JSONB: 'jsonb', INTERVAL: 'interval', INET: 'inet', CIDR: 'cidr', MACADDR: 'macaddr', XML: 'xml', MONEY: 'money',
};

/** The source type of a column: from Debezium's propagated parameters, else derived from the Connect schema. */
function sourceTypeOf(f: FieldSchema, connector: string): string {
  const p = f.parameters ?? {};
  const t = p['__debezium.source.column.type'];
  if (t) {
    const len = p['__debezium.source.column.length'];
    const scale = p['__debezium.source.column.scale'];
    if (connector === 'postgresql') {
      const arr = t.startsWith('_');
      const base = arr ? t.slice(1) : t;
      let name = PG_TYPES[base.toUpperCase()] ?? base.toLowerCase();
      // Lengths of 0 and 2147483647 are PostgreSQL's "no limit" (text, unbounded varchar, numeric without precision).
      if (len && len !== '0' && len !== '2147483647' && /^(character varying|character|numeric)$/.test(name)) name += name === 'numeric' ? `(${len},${scale ?? 0})` : `(${len})`;
      return arr ? name + '[]' : name;
    }
    const name = t.toLowerCase();
    if (len && /^(varchar|char|decimal|numeric)$/.test(name)) return name.startsWith('dec') || name === 'numeric' ? `${name}(${len},${scale ?? 0})` : `${name}(${len})`;
    return name;
  }
  if (f.name === 'org.apache.kafka.connect.data.Decimal') {
    const precision = f.parameters?.['connect.decimal.precision'];
    return precision ? `numeric(${precision},${f.parameters?.scale ?? 0})` : 'numeric';
  }
  if (f.name === 'io.debezium.data.VariableScaleDecimal') return 'numeric';
  // Derived: the Connect type and its semantic name, which the sinks map to target types.
  return f.name ? `${f.type} (${f.name})` : f.type;
}

// ---------- exact decimals ----------

const isDecimal = (f: FieldSchema) => f.name === 'org.apache.kafka.connect.data.Decimal' || f.name === 'io.debezium.data.VariableScaleDecimal';

/** Decimal text of an unscaled two's-complement big-endian integer (base64) at `scale`. */
export function decimalText(base64: string, scale: number): string {
  const b = Buffer.from(base64, 'base64');
  if (b.length === 0) return '0';
  let n = BigInt('0x' + b.toString('hex'));
  if (b[0] & 0x80) n -= 1n << BigInt(b.length * 8);
  const neg = n < 0n;
  let digits = (neg ? -n : n).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = digits.slice(0, -scale) + '.' + digits.slice(-scale);
  } else if (scale < 0) digits += '0'.repeat(-scale);
  return (neg ? '-' : '') + digits;
}

function decimalValue(v: Value, f: FieldSchema): Value {
  if (v === null || v === undefined) return null;
  if (f.name === 'io.debezium.data.VariableScaleDecimal') {
    const o = v as Row;
    return decimalText(String(o.value), Number(o.scale));
  }
  return decimalText(String(v), Number(f.parameters?.scale ?? 0));
}

/** The column schema a rewritten decimal has: a string (decimal.handling.mode=string's form). */
function decimalSchema(f: FieldSchema): FieldSchema {
  return { type: 'string', optional: f.optional, field: f.field };
}

// ---------- the decoder ----------

interface Decoding {
  schema: SchemaRecord;
  /** Columns whose values are rewritten (exact decimals), by name; empty: the payload passes as is. */
  decimals: Map<string, FieldSchema>;
}

const CACHE_MAX = 10_000;

export class ConnectJsonDecoder {
  private readonly cache = new Map<string, Decoding>();
  /** Orders a table's schemas by when they were first met (SchemaRecord.seq; a Sluice log's is the schema topic offset). */
  private seq = 0;

  /** Decodes a record whose value is JsonConverter output with schemas; `where` names it in errors (`topic/partition@offset`). */
  decode(topic: string, key: Buffer | string | null, value: Buffer | string, where = topic): ConnectDecoded {
    const v = splitRecord(typeof value === 'string' ? value : value.toString('utf8'));
    if (!v) throw bad(where, 'its value is not an object of exactly "schema" and "payload"');
    let k: { schema: string; payload: string } | null = null;
    if (key !== null) {
      const text = typeof key === 'string' ? key : key.toString('utf8');
      k = splitRecord(text);
      if (!k) throw bad(where, `its key is not {"schema":…,"payload":…} (set key.converter to the JsonConverter with schemas.enable=true too); the key begins ${JSON.stringify(text.slice(0, 80))}`);
    }
    const payload = objectMembers(v.payload);
    if (!payload || !payload.has('op')) throw bad(where, 'its payload has no "op": it is not a Debezium change envelope');
    const sourceText = payload.get('source');
    const source = sourceText ? (JSON.parse(sourceText) as Record<string, unknown>) : null;
    if (!source || typeof source !== 'object') throw bad(where, 'its payload has no "source" block');
    const connector = String(source.connector ?? '');
    const schemaName = String(source.schema ?? source.db ?? '');
    const table = String(source.table ?? '');
    const cacheKey = `${topic}\u0000${connector}\u0000${schemaName}\u0000${table}\u0000${v.schema}\u0000${k?.schema ?? ''}`;
    let d = this.cache.get(cacheKey);
    if (!d) {
      d = buildDecoding(topic, connector, schemaName, table, v.schema, k?.schema ?? null, where);
      d.schema.seq = ++this.seq;
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(cacheKey, d);
    }
    let valueText = v.payload;
    let keyText = k && k.payload !== 'null' ? k.payload : null;
    if (d.decimals.size > 0) {
      valueText = rewriteEnvelope(payload, d.decimals);
      if (keyText !== null) keyText = rewriteRow(keyText, d.decimals);
    }
    return { schema: d.schema, key: keyText, value: valueText };
  }
}

/** The decoder the engine's batch readers share (its cache is keyed by topic and schema texts). */
export const connectJson = new ConnectJsonDecoder();

function rewriteRowValue(row: Value, decimals: Map<string, FieldSchema>): Value {
  if (row === null || typeof row !== 'object' || Array.isArray(row) || Buffer.isBuffer(row)) return row;
  const o = row as Row;
  for (const [name, f] of decimals) if (name in o) o[name] = decimalValue(o[name], f);
  return o;
}

function rewriteRow(text: string, decimals: Map<string, FieldSchema>): string {
  return writeRow(rewriteRowValue(parseJson(text), decimals) as Row);
}

/** The envelope with its row images' decimals rewritten; every other member's text as it was, in order. */
function rewriteEnvelope(members: Map<string, string>, decimals: Map<string, FieldSchema>): string {
  let s = '';
  for (const [name, text] of members) {
    const t = (name === 'before' || name === 'after') && text !== 'null' ? rewriteRow(text, decimals) : text;
    s += (s === '' ? '{' : ',') + JSON.stringify(name) + ':' + t;
  }
  return s + '}';
}

function structFields(s: FieldSchema | undefined): FieldSchema[] | null {
  return s && s.type === 'struct' && Array.isArray(s.fields) ? s.fields : null;
}

function buildDecoding(topic: string, connector: string, schemaName: string, table: string, valueSchema: string, keySchema: string | null, where: string): Decoding {
  const env = JSON.parse(valueSchema) as FieldSchema;
  const fields = structFields(env);
  if (!fields) throw bad(where, 'its value schema is not a struct (an envelope of before, after, source, op)');
  const row = fields.find((f) => f.field === 'after') ?? fields.find((f) => f.field === 'before');
  const cols = structFields(row);
  if (!cols) throw bad(where, 'its value schema has no "after" or "before" struct');
  const keyCols = keySchema ? (structFields(JSON.parse(keySchema) as FieldSchema) ?? []).map((f) => f.field!) : [];
  // The MariaDB connector's durations and types are MySQL's (the sinks know them as `mysql`).
  const conn = connector === 'mariadb' ? 'mysql' : connector;
  const decimals = new Map<string, FieldSchema>();
  const columns: SchemaColumn[] = cols.map((f) => {
    const name = f.field!;
    let connect: FieldSchema = f;
    if (isDecimal(f)) {
      decimals.set(name, f);
      connect = decimalSchema(f);
    }
    return { name, sourceType: sourceTypeOf(f, conn), optional: f.optional, key: keyCols.includes(name), connect };
  });
  for (const k of keyCols) if (!columns.some((c) => c.name === k)) throw bad(where, `its key field ${k} is not a column of the value's row`);
  const body = { connector: conn, topic, schema: schemaName, table, keyColumns: keyCols, columns };
  const id = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { schema: { id, ...body }, decimals };
}
