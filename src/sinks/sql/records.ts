/**
 * Reading a change record's envelope without parsing all of it, and the checks every table sink
 * makes on a batch's records.
 */
import type { SluiceError } from '../../core/errors.ts';
import type { Row } from '../../core/event.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { sinkError } from '../errors.ts';
import type { SinkRecord, TableBatch } from '../types.ts';

const AFTER = '"after":';
const SOURCE = ',"source":{';
const TS = '"ts_ms":';
const LONG_INT = /\d{16}/;

/**
 * The text of the envelope's `after` value, or null if the envelope is not laid out as Sluice
 * writes it: `before`, `after`, `source` in that order (neither marker can occur unescaped inside a
 * value).
 */
export function afterText(value: string): string | null {
  const a = value.indexOf(AFTER);
  const b = value.lastIndexOf(SOURCE);
  return a >= 0 && b > a ? value.slice(a + AFTER.length, b) : null;
}

/** The `after` row parsed: natively, or exactly (bigint) when it holds an integer beyond 2^53. */
export function afterRow(value: string): Row | null {
  const t = afterText(value);
  if (t === null) return ((parseJson(value) as { after?: Row }).after ?? null) as Row | null;
  return (LONG_INT.test(t) ? parseJson(t) : JSON.parse(t)) as Row | null;
}

/** The source block's ts_ms as text. */
export function sourceTs(value: string): string | null {
  const b = value.lastIndexOf(SOURCE);
  const at = b < 0 ? -1 : value.indexOf(TS, b);
  if (at < 0) return null;
  let e = at + TS.length;
  while (e < value.length && value.charCodeAt(e) >= 48 && value.charCodeAt(e) <= 57) e++;
  return value.slice(at + TS.length, e);
}

export function noKey(s: SchemaRecord, r: SinkRecord): SluiceError {
  return sinkError('SINK_NO_KEY', `table ${s.schema}.${s.table} has no primary key, so its ${r.op === 'u' ? 'updates' : 'deletes'} (${r.topic}/${r.partition}@${r.offset}) cannot be applied to a target row; give the source table a primary key, then re-snapshot`);
}

/** Stops on an update or delete of a table without a key: only its inserts can be applied (appended). */
export function checkKeyless(t: TableBatch): void {
  const bad = t.keyless.find((r) => r.op === 'u' || r.op === 'd');
  if (bad) throw noKey(t.schema, bad);
}
