/**
 * JSON writing for event values: exact int64 (bigint written as a JSON number with every digit),
 * bytes as base64 (Kafka Connect JsonConverter), non-finite floats as the strings "NaN",
 * "Infinity", "-Infinity" so the output stays valid JSON.
 */
import type { Row, Value } from '../event.ts';

export function writeValue(v: Value): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : `"${v}"`;
    case 'bigint':
      return v.toString();
    case 'boolean':
      return v ? 'true' : 'false';
  }
  if (Buffer.isBuffer(v)) return `"${v.toString('base64')}"`;
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + writeValue(v[i]);
    return s + ']';
  }
  return writeRow(v as Row);
}

export function writeRow(row: Row | null): string {
  if (row === null) return 'null';
  let s = '{';
  let first = true;
  for (const k in row) {
    s += (first ? '"' : ',"') + (needsEscape(k) ? JSON.stringify(k).slice(1, -1) : k) + '":' + writeValue(row[k]);
    first = false;
  }
  return s + '}';
}

const SAFE_KEY = /^[A-Za-z0-9_ .$-]*$/;
function needsEscape(k: string): boolean {
  return !SAFE_KEY.test(k);
}
