/**
 * Value helpers shared by the binlog row decoder and the snapshot's text converter (../types.ts),
 * so both arrive at the very same Value for the same stored datum: calendar arithmetic without
 * Date objects (years 0–99 and allocation in the hot path), the shortest spelling of a FLOAT,
 * BIT byte order, and decoding text in a column's character set.
 */

import { civilFromDays, daysFromCivil, microsOf } from '../../../core/time.ts';

export { daysFromCivil };

const MS_PER_DAY = 86_400_000;

/** Milliseconds since the epoch of a DATETIME read as UTC. */
export function datetimeMillis(y: number, mo: number, d: number, h: number, mi: number, s: number, micros: number): number {
  return daysFromCivil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + Math.floor(micros / 1000);
}

/**
 * Microseconds since the epoch of a DATETIME read as UTC: a number while exact (within 2^53, until
 * 2255-06-05), a bigint beyond (`9999-12-31 23:59:59.999999` is 253402300799999999).
 */
export function datetimeMicros(y: number, mo: number, d: number, h: number, mi: number, s: number, micros: number): number | bigint {
  return microsOf(daysFromCivil(y, mo, d) * 86_400 + (h * 60 + mi) * 60 + s, micros);
}

const p2 = (n: number): string => (n < 10 ? '0' + n : String(n));

/** Buffer's own slicing decoders: what toString() ends in, without its argument checks (hot path). */
interface FastSlices {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}
export const utf8Slice = (b: Buffer, start: number, end: number): string => (b as unknown as FastSlices).utf8Slice(start, end);
const latin1Slice = (b: Buffer, start: number, end: number): string => (b as unknown as FastSlices).latin1Slice(start, end);

// Rows written together share their timestamps: the date-time text of the last second is reused.
let lastSecond = NaN;
let lastText = '';

/**
 * A TIMESTAMP as io.debezium.time.ZonedTimestamp: `2024-01-15T10:30:00Z`, or with exactly `fsp`
 * fraction digits when the column has them (`…:00.123456Z`).
 */
export function zonedTimestamp(seconds: number, micros: number, fsp: number): string {
  if (seconds !== lastSecond) {
    lastText = secondsText(seconds);
    lastSecond = seconds;
  }
  return fsp > 0 ? lastText + '.' + String(micros).padStart(6, '0').slice(0, fsp) + 'Z' : lastText + 'Z';
}

function secondsText(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  let rem = seconds - days * 86_400;
  const [y, m, d] = civilFromDays(days);
  const h = Math.floor(rem / 3600);
  rem -= h * 3600;
  const mi = Math.floor(rem / 60);
  const s = rem - mi * 60;
  return String(y).padStart(4, '0') + '-' + p2(m) + '-' + p2(d) + 'T' + p2(h) + ':' + p2(mi) + ':' + p2(s);
}

/**
 * The shortest decimal that reads back as the same 32-bit float: what Java's Float.toString (so
 * Debezium) prints for a FLOAT column, 3.14 rather than 3.140000104904175.
 */
export function float32Value(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  for (let p = 1; p < 10; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

/**
 * BIT(n>1) as io.debezium.data.Bits: the server's big-endian bytes reversed (least significant
 * byte first), always ceil(n/8) bytes long.
 */
export function bitsLittleEndian(b: Uint8Array, start: number, end: number, nbits: number): Buffer {
  const len = (nbits + 7) >> 3;
  const out = Buffer.alloc(len);
  // The text protocol may send fewer bytes than the column width; missing high bytes are zero.
  for (let i = end - 1, j = 0; i >= start && j < len; i--, j++) out[j] = b[i];
  return out;
}

/** How a column's bytes become a Value: UTF-8 text, latin1 (cp1252) text, bytes, or text via a TextDecoder. */
export const TEXT_UTF8 = 0;
export const TEXT_LATIN1 = 1;
export const TEXT_BINARY = 2;
export const TEXT_OTHER = 3;

/** Windows-1252 characters of bytes 0x80–0x9F (Node's TextDecoder reads 'windows-1252' as ISO-8859-1). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

/**
 * MySQL's latin1 is Windows-1252 (0x80 is €), not ISO-8859-1; converting it to UTF-8 for a result
 * set uses that table, so the binlog's raw bytes must too. Text without bytes 0x80–0x9F is sliced.
 */
export function decodeLatin1(b: Buffer, start: number, end: number): string {
  let i = start;
  while (i < end && (b[i] < 0x80 || b[i] > 0x9f)) i++;
  if (i === end) return latin1Slice(b, start, end);
  let out = '';
  for (i = start; i < end; i++) {
    const x = b[i];
    out += String.fromCharCode(x >= 0x80 && x <= 0x9f ? CP1252_HIGH[x - 0x80] : x);
  }
  return out;
}

/** A private copy of bytes from a buffer the caller may reuse. */
export function copyBytes(b: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  b.copy(out, 0, start, end);
  return out;
}
