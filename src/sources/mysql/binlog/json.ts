/**
 * MySQL's binary JSON (the JSON column type, binlog type 245) → JSON text, spelled the way MySQL
 * prints it (`{"a": 1, "b": [true, null]}`: a space after `:` and `,`), so the binlog gives the
 * same text the snapshot reads. MariaDB stores JSON as LONGTEXT and never reaches this.
 *
 * Format: a type byte, then the value. Objects and arrays come in a small (16-bit offsets) and a
 * large (32-bit) variant: element count, byte size, key entries (offset, length), value entries
 * (type, offset — or the value itself when it fits), then keys and values. Offsets count from the
 * start of the object/array, after its type byte.
 */
import { SluiceError } from '../../../core/errors.ts';
import { readDecimal } from './decimal.ts';
import { mysqlError } from '../errors.ts';

const SMALL_OBJECT = 0x00;
const LARGE_OBJECT = 0x01;
const SMALL_ARRAY = 0x02;
const LARGE_ARRAY = 0x03;
const LITERAL = 0x04;
const INT16 = 0x05;
const UINT16 = 0x06;
const INT32 = 0x07;
const UINT32 = 0x08;
const INT64 = 0x09;
const UINT64 = 0x0a;
const DOUBLE = 0x0b;
const STRING = 0x0c;
const OPAQUE = 0x0f;

/** MySQL field types an opaque JSON value can carry. */
const F_NEWDECIMAL = 246;
const F_DATE = 10;
const F_TIME = 11;
const F_DATETIME = 12;
const F_TIMESTAMP = 7;

function bad(what: string): SluiceError {
  return mysqlError('MYSQL_BINLOG_CORRUPT', `malformed binary JSON value: ${what}. This is a bug or a server/protocol mismatch; report it with the server version.`);
}

/** The JSON text of the binary JSON document b[start, end). An empty document is JSON null. */
export function jsonBinaryToText(b: Buffer, start: number, end: number): string {
  if (end <= start) return 'null';
  return value(b, b[start], start + 1, end);
}

function check(b: Buffer, pos: number, n: number, end: number): void {
  if (pos + n > end || pos < 0) throw bad('an offset points outside the document');
}

/** A variable-length length: 7 bits per byte, least significant first, high bit = more follows. */
function varLen(b: Buffer, pos: number, end: number): [number, number] {
  let len = 0;
  for (let i = 0; i < 5; i++) {
    check(b, pos + i, 1, end);
    const x = b[pos + i];
    len += (x & 0x7f) * 2 ** (7 * i);
    if ((x & 0x80) === 0) return [len, pos + i + 1];
  }
  throw bad('a string length is too long');
}

function value(b: Buffer, type: number, pos: number, end: number): string {
  switch (type) {
    case SMALL_OBJECT: return container(b, pos, end, false, true);
    case LARGE_OBJECT: return container(b, pos, end, true, true);
    case SMALL_ARRAY: return container(b, pos, end, false, false);
    case LARGE_ARRAY: return container(b, pos, end, true, false);
    case LITERAL:
      check(b, pos, 1, end);
      return literal(b[pos]);
    case INT16: check(b, pos, 2, end); return String(b.readInt16LE(pos));
    case UINT16: check(b, pos, 2, end); return String(b.readUInt16LE(pos));
    case INT32: check(b, pos, 4, end); return String(b.readInt32LE(pos));
    case UINT32: check(b, pos, 4, end); return String(b.readUInt32LE(pos));
    case INT64: check(b, pos, 8, end); return b.readBigInt64LE(pos).toString();
    case UINT64: check(b, pos, 8, end); return b.readBigUInt64LE(pos).toString();
    case DOUBLE: check(b, pos, 8, end); return formatDouble(b.readDoubleLE(pos));
    case STRING: {
      const [len, p] = varLen(b, pos, end);
      check(b, p, len, end);
      return JSON.stringify(b.toString('utf8', p, p + len));
    }
    case OPAQUE: return opaque(b, pos, end);
    default: throw bad(`unknown value type ${type}`);
  }
}

function literal(x: number): string {
  if (x === 0) return 'null';
  if (x === 1) return 'true';
  if (x === 2) return 'false';
  throw bad(`unknown literal ${x}`);
}

/** Whether a value of this type sits in its value entry instead of at an offset. */
const inlined = (type: number, large: boolean): boolean =>
  type === LITERAL || type === INT16 || type === UINT16 || (large && (type === INT32 || type === UINT32));

function inlineValue(b: Buffer, type: number, pos: number): string {
  switch (type) {
    case LITERAL: return literal(b[pos]);
    case INT16: return String(b.readInt16LE(pos));
    case UINT16: return String(b.readUInt16LE(pos));
    case INT32: return String(b.readInt32LE(pos));
    default: return String(b.readUInt32LE(pos));
  }
}

function container(b: Buffer, base: number, end: number, large: boolean, object: boolean): string {
  const os = large ? 4 : 2;
  check(b, base, 2 * os, end);
  const count = large ? b.readUInt32LE(base) : b.readUInt16LE(base);
  const size = large ? b.readUInt32LE(base + 4) : b.readUInt16LE(base + 2);
  const cend = base + size;
  if (cend > end) throw bad('a container is larger than its document');
  const keyEntries = base + 2 * os;
  const valueEntries = object ? keyEntries + count * (os + 2) : keyEntries;
  check(b, valueEntries, count * (1 + os), cend);
  let out = object ? '{' : '[';
  for (let i = 0; i < count; i++) {
    if (i > 0) out += ', ';
    if (object) {
      const ke = keyEntries + i * (os + 2);
      const koff = large ? b.readUInt32LE(ke) : b.readUInt16LE(ke);
      const klen = b.readUInt16LE(ke + os);
      check(b, base + koff, klen, cend);
      out += JSON.stringify(b.toString('utf8', base + koff, base + koff + klen)) + ': ';
    }
    const ve = valueEntries + i * (1 + os);
    const t = b[ve];
    if (inlined(t, large)) out += inlineValue(b, t, ve + 1);
    else {
      const off = large ? b.readUInt32LE(ve + 1) : b.readUInt16LE(ve + 1);
      out += value(b, t, base + off, cend);
    }
  }
  return out + (object ? '}' : ']');
}

/**
 * A double as MySQL's JSON printing spells it: the shortest round-trip digits, `.0` added to an
 * integral value so it stays distinguishable from an integer, exponent without `+`.
 */
export function formatDouble(d: number): string {
  let s = String(d);
  if (s.includes('e')) return s.replace('e+', 'e');
  if (!s.includes('.')) s += '.0';
  return s;
}

const p2 = (n: number): string => (n < 10 ? '0' + n : String(n));

/** An opaque value: a MySQL field type, a length, and that type's own binary form. */
function opaque(b: Buffer, pos: number, end: number): string {
  check(b, pos, 1, end);
  const ftype = b[pos];
  const [len, p] = varLen(b, pos + 1, end);
  check(b, p, len, end);
  switch (ftype) {
    case F_NEWDECIMAL:
      // precision, scale, then the DECIMAL binary format.
      return readDecimal(b, p + 2, b[p], b[p + 1]);
    case F_DATE: case F_TIME: case F_DATETIME: case F_TIMESTAMP: {
      // Packed temporal value: int64, integer part << 24 | microseconds.
      let v = b.readBigInt64LE(p);
      const neg = v < 0n;
      if (neg) v = -v;
      const micros = Number(v & 0xffffffn);
      const ipart = v >> 24n;
      const frac = '.' + String(micros).padStart(6, '0');
      if (ftype === F_TIME) {
        const hms = Number(ipart);
        const h = (hms >> 12) % (1 << 10);
        return `"${neg ? '-' : ''}${p2(h)}:${p2((hms >> 6) & 63)}:${p2(hms & 63)}${frac}"`;
      }
      const ymdhms = ipart;
      const ymd = Number(ymdhms >> 17n);
      const hms = Number(ymdhms & 0x1ffffn);
      const ym = ymd >> 5;
      const date = `${String(Math.floor(ym / 13)).padStart(4, '0')}-${p2(ym % 13)}-${p2(ymd & 31)}`;
      if (ftype === F_DATE) return `"${date}"`;
      return `"${date} ${p2(hms >> 12)}:${p2((hms >> 6) & 63)}:${p2(hms & 63)}${frac}"`;
    }
    default:
      return `"base64:type${ftype}:${b.toString('base64', p, p + len)}"`;
  }
}
