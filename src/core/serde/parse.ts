/**
 * The reverse of debezium.ts, for sinks: Debezium JSON (with or without the `schema` part) back into
 * a plain envelope object.
 *
 * Numbers. JSON.parse would round integers beyond 2^53 (int8 columns, `ts_ns`), so this has its own
 * parser. Its rule, applied everywhere: an integer literal that is a safe integer becomes a `number`,
 * any other integer literal becomes a `bigint`; literals with a fraction or exponent are `number`s.
 * Then, where a schema is known (the embedded `schema` part, or `opts.table` for schemaless
 * messages), fields the schema declares:
 * - `int64` become `bigint` in row images (before/after/key), whatever their size, so a column has
 *   one JS type; metadata (source, ts_*, transaction) keeps the number-or-bigint rule;
 * - `bytes` become `Buffer` (from base64);
 * - `float`/`double` (and the `float32`/`float64` of older schemas) turn "NaN", "Infinity", "-Infinity" back into numbers.
 * Without any schema, bytes stay base64 strings and floats' "NaN" stays a string: JSON alone cannot
 * tell them from text.
 */
import type { FieldSchema, Row, TableSchema, Value } from '../event.ts';
import { envelopeSchema, rowSchema } from './debezium.ts';
import { coreError, type SluiceError } from '../errors.ts';
import { openDocuments } from './documents.ts';

export interface ParsedEnvelope {
  before: Row | null;
  after: Row | null;
  source: Record<string, Value>;
  op: string;
  ts_ms: number;
  ts_us?: number | bigint | null;
  ts_ns?: number | bigint | null;
  transaction: { id: string; total_order: number; data_collection_order: number } | null;
}

export interface ParseOptions {
  /** Schema for schemaless messages (JsonConverter `schemas.enable=false`). */
  table?: TableSchema;
}

/** A coded SERDE_BAD_JSON error naming what is wrong and where. */
function JsonParseError(message: string, offset: number): SluiceError {
  return coreError('SERDE_BAD_JSON', `${message} at offset ${offset}: the message is not valid JSON; it was not written by a Debezium-compatible serializer`);
}

/** Parses JSON text; integers beyond Number.MAX_SAFE_INTEGER become bigint. */
export function parseJson(input: string | Buffer): Value {
  const p = new Parser(typeof input === 'string' ? input : input.toString('utf8'));
  p.ws();
  const v = p.value();
  p.ws();
  if (p.i !== p.s.length) throw JsonParseError('unexpected trailing data', p.i);
  return v;
}

// eslint-disable-next-line no-control-regex
const SLOW_STRING = /[\\\u0000-\u001f]/;

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = s.charCodeAt(++this.i);
  }

  value(): Value {
    const c = this.s.charCodeAt(this.i);
    if (c === 123) return this.object();
    if (c === 91) return this.array();
    if (c === 34) return this.string();
    if (c === 45 || (c >= 48 && c <= 57)) return this.number();
    if (this.s.startsWith('null', this.i)) return (this.i += 4), null;
    if (this.s.startsWith('true', this.i)) return (this.i += 4), true;
    if (this.s.startsWith('false', this.i)) return (this.i += 5), false;
    throw JsonParseError(this.i >= this.s.length ? 'unexpected end' : `unexpected character ${JSON.stringify(this.s[this.i])}`, this.i);
  }

  object(): Row {
    const o: Row = {};
    this.i++;
    this.ws();
    if (this.s.charCodeAt(this.i) === 125) return this.i++, o;
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 34) throw JsonParseError('expected a string key', this.i);
      const k = this.string();
      this.ws();
      if (this.s.charCodeAt(this.i) !== 58) throw JsonParseError('expected ":"', this.i);
      this.i++;
      this.ws();
      o[k] = this.value();
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 125) return o;
      if (c !== 44) throw JsonParseError('expected "," or "}"', this.i - 1);
    }
  }

  array(): Value[] {
    const a: Value[] = [];
    this.i++;
    this.ws();
    if (this.s.charCodeAt(this.i) === 93) return this.i++, a;
    for (;;) {
      this.ws();
      a.push(this.value());
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 93) return a;
      if (c !== 44) throw JsonParseError('expected "," or "]"', this.i - 1);
    }
  }

  string(): string {
    const s = this.s;
    const start = this.i;
    // Fast path: no escapes or control characters before the next quote.
    const end = s.indexOf('"', start + 1);
    if (end > start) {
      const raw = s.slice(start + 1, end);
      if (!SLOW_STRING.test(raw)) {
        this.i = end + 1;
        return raw;
      }
    }
    let j = start + 1;
    let escaped = false;
    for (;;) {
      const c = s.charCodeAt(j);
      if (c === 34) break;
      if (c === 92) {
        escaped = true;
        j += 2;
        continue;
      }
      if (c !== c || c < 32) throw JsonParseError(c !== c ? 'unterminated string' : 'control character in string', j);
      j++;
    }
    this.i = j + 1;
    if (!escaped) return s.slice(start + 1, j);
    try {
      return JSON.parse(s.slice(start, j + 1));
    } catch {
      throw JsonParseError('bad escape in string', start);
    }
  }

  number(): number | bigint {
    const s = this.s;
    const start = this.i;
    let j = start;
    let integer = true;
    if (s.charCodeAt(j) === 45) j++;
    for (;;) {
      const c = s.charCodeAt(j);
      if (c >= 48 && c <= 57) j++;
      else if (c === 46 || c === 101 || c === 69 || c === 43 || c === 45) {
        integer = false;
        j++;
      } else break;
    }
    this.i = j;
    const text = s.slice(start, j);
    const n = Number(text);
    if (text === '-' || Number.isNaN(n)) throw JsonParseError(`bad number ${JSON.stringify(text)}`, start);
    if (integer && !Number.isSafeInteger(n)) return BigInt(text);
    return n;
  }
}

/** Applies a Connect schema to a parsed value: int64 → bigint (when `exactInt64`), bytes → Buffer, non-finite floats → numbers. */
export function applySchema(v: Value, schema: FieldSchema | undefined, exactInt64: boolean): Value {
  if (v === null || schema === undefined) return v;
  switch (schema.type) {
    case 'int64':
      return exactInt64 && typeof v === 'number' ? BigInt(v) : v;
    case 'bytes':
      return typeof v === 'string' ? Buffer.from(v, 'base64') : v;
    case 'float':
    case 'double':
    case 'float32':
    case 'float64':
      return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v;
    case 'array':
      return Array.isArray(v) ? v.map((x) => applySchema(x, schema.items, exactInt64)) : v;
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v) || !schema.fields) return v;
      const o = v as Row;
      for (const f of schema.fields) {
        if (f.field !== undefined && f.field in o) o[f.field] = applySchema(o[f.field], f, exactInt64);
      }
      return o;
    }
    default:
      return v;
  }
}

function split(doc: Value): { schema: FieldSchema | undefined; payload: Value } {
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && !Buffer.isBuffer(doc)) {
    const o = doc as Row;
    const keys = Object.keys(o);
    if (keys.length === 2 && 'schema' in o && 'payload' in o) return { schema: o.schema as unknown as FieldSchema, payload: o.payload };
  }
  return { schema: undefined, payload: doc };
}

// Schemas derived from a TableSchema, built once per table.
const envelopeSchemas = new WeakMap<TableSchema, FieldSchema>();
const keySchemas = new WeakMap<TableSchema, FieldSchema>();
function tableEnvelopeSchema(t: TableSchema): FieldSchema {
  let s = envelopeSchemas.get(t);
  if (!s) envelopeSchemas.set(t, (s = envelopeSchema(t, '')));
  return s;
}
function tableKeySchema(t: TableSchema): FieldSchema {
  let s = keySchemas.get(t);
  if (!s) keySchemas.set(t, (s = rowSchema(t, '', false, true)));
  return s;
}

/** Parses a change event value (with or without `schema`). Null for a tombstone. */
export function parseValue(input: string | Buffer | null, opts: ParseOptions = {}): ParsedEnvelope | null {
  if (input === null) return null;
  const { schema: embedded, payload } = split(parseJson(input));
  if (payload === null) return null;
  if (typeof payload !== 'object' || Array.isArray(payload) || Buffer.isBuffer(payload) || !('op' in payload)) {
    throw JsonParseError('not a change event envelope (no "op")', 0);
  }
  const env = payload as Row;
  // A MongoDB document (Extended JSON text) is read as a row, like a table's.
  if (typeof env.after === 'string' || typeof env.before === 'string') return openDocuments(env) as unknown as ParsedEnvelope;
  const schema = embedded ?? (opts.table ? tableEnvelopeSchema(opts.table) : undefined);
  if (schema?.fields) {
    for (const f of schema.fields) {
      if (f.field === undefined || !(f.field in env)) continue;
      const rowImage = f.field === 'before' || f.field === 'after';
      env[f.field] = applySchema(env[f.field], f, rowImage);
    }
  }
  return env as unknown as ParsedEnvelope;
}

/** Parses a change event key (with or without `schema`). Null for keyless records. */
export function parseKey(input: string | Buffer | null, opts: ParseOptions = {}): Row | null {
  if (input === null) return null;
  const { schema: embedded, payload } = split(parseJson(input));
  if (payload === null) return null;
  const schema = embedded ?? (opts.table ? tableKeySchema(opts.table) : undefined);
  return applySchema(payload, schema, true) as Row;
}
