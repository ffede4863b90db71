/**
 * Values a target cannot hold exactly, and the text forms of event values that the sinks build in
 * JavaScript (MySQL's parameters, PostgreSQL's array literals).
 *
 * A value either arrives in the target exactly or stops the sink with SINK_VALUE_UNREPRESENTABLE,
 * naming the table, column and value and saying what to do: never a silent NULL, rounding or wrap.
 * A sink's converter throws `Refused` (the reason only); the sink adds where the value was.
 */
import type { Value } from '../../core/event.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { civilFromDays } from '../../core/time.ts';
import { sinkError } from '../errors.ts';

/** Thrown by a value converter: the target cannot hold this value. */
export class Refused extends Error {
  constructor(
    /** Why, e.g. `MySQL's DATE holds the years 0000 to 9999`. */
    readonly why: string,
  ) {
    super(why);
  }
}

/** A value as a message shows it: JSON, cut at 200 characters. */
export function showValue(v: Value | undefined): string {
  let s: string;
  if (typeof v === 'bigint') s = v.toString();
  else if (Buffer.isBuffer(v)) s = `${v.length} bytes`;
  else s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  return s.length > 200 ? s.slice(0, 200) + '…' : s;
}

/** The coded error for a value of `column` in a change of table `s` that sink `sink` (target `label`) cannot hold. */
export function unrepresentable(sink: string, label: string, s: SchemaRecord, column: string, value: Value | undefined, why: string) {
  return sinkError(
    'SINK_VALUE_UNREPRESENTABLE',
    `sink ${sink}: column ${column} of table ${s.schema}.${s.table} holds ${showValue(value)}, which ${label} cannot hold exactly: ${why}. Nothing of this batch was applied. Change the value in the source, or leave the table out of this sink (its \`tables\`) and apply it to a target that holds it (a PostgreSQL sink holds every PostgreSQL value), then restart`,
  );
}

// ---------- dates and times as text ----------

/** Days of an io.debezium.time.Date that stand for PostgreSQL's `infinity` / `-infinity`. */
export const DATE_INFINITY = 2147483647;
export const DATE_MINUS_INFINITY = -2147483648;
/** Microseconds of a MicroTimestamp that stand for `infinity` / `-infinity` (int64's extremes). */
export const TIMESTAMP_INFINITY = 9223372036854775807n;
export const TIMESTAMP_MINUS_INFINITY = -9223372036854775808n;

/** Whether a date or timestamp value is one of the ±infinity markers. */
export function infinityOf(kind: 'date' | 'timestamp', v: Value): 'infinity' | '-infinity' | null {
  if (kind === 'date') return v === DATE_INFINITY ? 'infinity' : v === DATE_MINUS_INFINITY ? '-infinity' : null;
  if (typeof v !== 'bigint' && (typeof v !== 'string' || v.length < 19)) return null;
  const b = BigInt(v as bigint | string);
  return b === TIMESTAMP_INFINITY ? 'infinity' : b === TIMESTAMP_MINUS_INFINITY ? '-infinity' : null;
}

/** The date of a day number: [astronomical year (0 = 1 BC), month 1–12, day]. */
export const civil = civilFromDays;

const p2 = (n: number) => (n < 10 ? '0' : '') + n;

/** A day number split into its date and the rest of a microsecond count: [days, microseconds of the day]. */
export function splitMicros(v: Value): [number, number] {
  if (typeof v === 'number' && Number.isSafeInteger(v)) {
    const days = Math.floor(v / 86_400_000_000);
    return [days, v - days * 86_400_000_000];
  }
  const b = BigInt(v as bigint | string | number);
  let days = b / 86_400_000_000n;
  if (b < 0n && days * 86_400_000_000n !== b) days -= 1n;
  return [Number(days), Number(b - days * 86_400_000_000n)];
}

/** `HH:MM:SS[.ffffff]` of microseconds since midnight (up to 24:00:00). */
export function clockText(us: number, fraction: 'always' | 'trim' = 'trim'): string {
  const s = Math.floor(us / 1_000_000);
  const f = us - s * 1_000_000;
  const hms = `${p2(Math.floor(s / 3600))}:${p2(Math.floor(s / 60) % 60)}:${p2(s % 60)}`;
  if (fraction === 'always') return `${hms}.${String(f).padStart(6, '0')}`;
  return f ? `${hms}.${String(f).padStart(6, '0').replace(/0+$/, '')}` : hms;
}

/** `YYYY-MM-DD` with the year as written by `year` (MySQL: 0000–9999; PostgreSQL: with ` BC`). */
export function dateParts(days: number): { year: number; text: string } {
  const [y, m, d] = civil(days);
  return { year: y, text: `${String(Math.abs(y)).padStart(4, '0')}-${p2(m)}-${p2(d)}` };
}

/** PostgreSQL's input text of a date (days since 1970, ±infinity markers included). */
export function pgDateText(days: number): string {
  const inf = infinityOf('date', days);
  if (inf) return inf;
  const [y, m, d] = civil(days);
  return y > 0 ? `${String(y).padStart(4, '0')}-${p2(m)}-${p2(d)}` : `${String(1 - y).padStart(4, '0')}-${p2(m)}-${p2(d)} BC`;
}

/** PostgreSQL's input text of a MicroTimestamp. */
export function pgTimestampText(v: Value): string {
  const inf = infinityOf('timestamp', v);
  if (inf) return inf;
  const [days, us] = splitMicros(v);
  const [y, m, d] = civil(days);
  const date = `${String(y > 0 ? y : 1 - y).padStart(4, '0')}-${p2(m)}-${p2(d)}`;
  return `${date} ${clockText(us)}${y > 0 ? '' : ' BC'}`;
}

/**
 * PostgreSQL's input text of a ZonedTimestamp (ISO 8601 in UTC, as sources write it): the extended
 * years ISO writes with a sign (`+010000-…`, `-000099-…`, and `0000` for 1 BC) become PostgreSQL's
 * (`10000-…`, `0100-… BC`); anything else is PostgreSQL's input already.
 */
export function pgZonedText(v: string): string {
  const c = v.charCodeAt(0);
  if (c === 43 /* + */) return v.slice(1).replace(/^0+(?=\d{4})/, '');
  if ((c === 45 /* - */ && v !== '-infinity') || v.startsWith('0000-')) {
    const dash = v.indexOf('-', 1);
    const astro = c === 45 ? -Number(v.slice(1, dash)) : 0;
    return `${String(1 - astro).padStart(4, '0')}${v.slice(dash)} BC`;
  }
  return v;
}
