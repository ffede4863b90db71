/**
 * JSON writing for event values, in the form Kafka Connect's JsonConverter gives Debezium's events:
 *
 * - int64 (`bigint`) is written as a JSON number with every digit (9223372036854775807), never
 *   rounded through a double;
 * - bytes (`Buffer`) are base64 strings;
 * - non-finite floats are the strings "NaN", "Infinity", "-Infinity" (Jackson's default
 *   QUOTE_NON_NUMERIC_NUMBERS, which the JsonConverter keeps), so the output stays valid JSON;
 * - strings are escaped exactly as JSON.stringify escapes them (it is what we call for them);
 * - object keys are written in insertion order.
 *
 * Hand-written because it runs once per row on the capture path: no replacer callbacks, key
 * prefixes (`"name":`) cached across rows.
 */
import type { Row, Value } from '../event.ts';

export function writeValue(v: Value): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return writeNumber(v);
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (Buffer.isBuffer(v)) return '"' + v.toString('base64') + '"';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    let s = '[' + writeValue(v[0]);
    for (let i = 1; i < v.length; i++) s += ',' + writeValue(v[i]);
    return s + ']';
  }
  if (v instanceof Uint8Array) return '"' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') + '"';
  return writeRow(v as Row);
}

/** A finite number as JSON.stringify writes it; NaN/±Infinity as quoted strings. */
export function writeNumber(v: number): string {
  if (v === v && v !== Infinity && v !== -Infinity) return '' + v;
  return v !== v ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"';
}

/** A JSON string literal (same escaping as JSON.stringify). */
export function writeString(s: string): string {
  return JSON.stringify(s);
}

// `"key":` for every key seen, bounded so a stream of ever-new keys cannot grow memory.
const KEY_CACHE_MAX = 10_000;
const keyCache = new Map<string, string>();

/** `"key":`, escaped like JSON.stringify. */
export function keyPrefix(k: string): string {
  let p = keyCache.get(k);
  if (p === undefined) {
    p = JSON.stringify(k) + ':';
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
    keyCache.set(k, p);
  }
  return p;
}

export function writeRow(row: Row | null): string {
  if (row === null || row === undefined) return 'null';
  let s = '';
  for (const k in row) {
    s += (s === '' ? '{' : ',') + keyPrefix(k) + writeValue(row[k]);
  }
  return s === '' ? '{}' : s + '}';
}
