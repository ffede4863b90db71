/**
 * WRITE/UPDATE/DELETE_ROWS (v1 and v2): the hot path. Values are read straight from the event
 * buffer into one array per row image, following the column plan of the table map; no per-field
 * closures, no intermediate slices except for the values that are byte strings.
 */
import { SluiceError } from '../../../core/errors.ts';
import type { Value } from '../../../core/event.ts';
import { MY } from '../types.ts';
import { decimalSize, readDecimal } from './decimal.ts';
import { jsonBinaryToText } from './json.ts';
import type { ColumnPlan, DecodedTableMap } from './tablemap.ts';
import { bitsLittleEndian, copyBytes, datetimeMicros, datetimeMillis, daysFromCivil, decodeLatin1, float32Value, TEXT_BINARY, TEXT_LATIN1, TEXT_UTF8, utf8Slice, zonedTimestamp } from './values.ts';
import { mysqlError } from '../errors.ts';

export type RowImage = { before: Value[] | null; after: Value[] | null };

/** Fraction bytes of TIME2/DATETIME2/TIMESTAMP2 by fsp, and what one stored unit is in microseconds. */
const FRAC_BYTES = [0, 1, 1, 2, 2, 3, 3];
const FRAC_UNIT = [0, 10_000, 10_000, 100, 100, 1, 1];

function text(b: Buffer, start: number, end: number, c: ColumnPlan): Value {
  switch (c.text) {
    case TEXT_UTF8: return utf8Slice(b, start, end);
    case TEXT_LATIN1: return decodeLatin1(b, start, end);
    case TEXT_BINARY: {
      if (c.pad > end - start) {
        // BINARY(n): the binlog drops trailing 0x00 bytes that SELECT returns.
        const out = Buffer.alloc(c.pad);
        b.copy(out, 0, start, end);
        return out;
      }
      return copyBytes(b, start, end);
    }
    default: return c.decoder!.decode(b.subarray(start, end));
  }
}

/**
 * Reads one row image at `pos` into `out`; returns the position after it. `present` (null: all
 * columns) says which columns the image holds; `nPresent` how many.
 */
function readImage(b: Buffer, pos: number, end: number, plan: ColumnPlan[], present: Uint8Array | null, nPresent: number, out: Value[], where: () => string): number {
  const n = plan.length;
  const nullPos = pos;
  pos += (nPresent + 7) >> 3;
  let ni = 0;
  for (let i = 0; i < n; i++) {
    if (present !== null && present[i] === 0) {
      out[i] = null;
      continue;
    }
    const isNull = (b[nullPos + (ni >> 3)] >> (ni & 7)) & 1;
    ni++;
    if (isNull) {
      out[i] = null;
      continue;
    }
    const c = plan[i];
    let len: number;
    switch (c.t) {
      case MY.TINY:
        out[i] = c.unsigned ? b[pos] : (b[pos] << 24) >> 24;
        pos += 1;
        break;
      case MY.SHORT:
        out[i] = c.unsigned ? b.readUInt16LE(pos) : b.readInt16LE(pos);
        pos += 2;
        break;
      case MY.INT24:
        out[i] = c.unsigned ? b.readUIntLE(pos, 3) : b.readIntLE(pos, 3);
        pos += 3;
        break;
      case MY.LONG:
        out[i] = c.unsigned ? b.readUInt32LE(pos) : b.readInt32LE(pos);
        pos += 4;
        break;
      case MY.LONGLONG:
        out[i] = c.unsigned ? b.readBigUInt64LE(pos) : b.readBigInt64LE(pos);
        pos += 8;
        break;
      case MY.FLOAT: {
        // MySQL stores no NaN or infinity: such bits are a damaged event.
        const v = b.readFloatLE(pos);
        if (!Number.isFinite(v)) throw corrupt(where, `a FLOAT value ${v}`);
        out[i] = float32Value(v);
        pos += 4;
        break;
      }
      case MY.DOUBLE: {
        const v = b.readDoubleLE(pos);
        if (!Number.isFinite(v)) throw corrupt(where, `a DOUBLE value ${v}`);
        out[i] = v;
        pos += 8;
        break;
      }
      case MY.NEWDECIMAL: {
        const v = readDecimal(b, pos, c.precision, c.scale);
        // A digit group above what its bytes may hold reads as too many digits: not what was stored.
        const dot = c.scale > 0 ? v.length - c.scale - 1 : v.length;
        if ((c.scale > 0 && v.charCodeAt(dot) !== 46) || dot - (v.charCodeAt(0) === 45 ? 1 : 0) > Math.max(1, c.precision - c.scale)) throw corrupt(where, `DECIMAL(${c.precision},${c.scale}) value ${v}`);
        out[i] = v;
        pos += decimalSize(c.precision, c.scale);
        break;
      }
      case MY.YEAR:
        out[i] = b[pos] === 0 ? 0 : 1900 + b[pos];
        pos += 1;
        break;
      case MY.DATE: {
        const v = b[pos] | (b[pos + 1] << 8) | (b[pos + 2] << 16);
        pos += 3;
        const d = v & 31;
        const m = (v >> 5) & 15;
        const y = v >>> 9;
        if (m > 12) throw corrupt(where, `a DATE with month ${m}`);
        out[i] = y === 0 || m === 0 || d === 0 ? null : daysFromCivil(y, m, d);
        break;
      }
      case MY.DATETIME2: {
        // 1 sign bit (always set), 17 bits year*13+month, 5 day, 5 hour, 6 minute, 6 second; big-endian.
        const v = b.readUIntBE(pos, 5) - 0x8000000000;
        const fb = FRAC_BYTES[c.meta];
        const micros = fb ? b.readUIntBE(pos + 5, fb) * FRAC_UNIT[c.meta] : 0;
        pos += 5 + fb;
        const ymd = Math.floor(v / 131072);
        const hms = v - ymd * 131072;
        const ym = ymd >> 5;
        const day = ymd & 31;
        const year = (ym / 13) | 0;
        const month = ym - year * 13;
        const h = hms >> 12, mi = (hms >> 6) & 63, s = hms & 63;
        if (v < 0 || month > 12 || h > 23 || mi > 59 || s > 59 || micros > 999_999) throw corrupt(where, `a DATETIME ${year}-${month}-${day} ${h}:${mi}:${s}.${micros}`);
        if (year === 0 || month === 0 || day === 0) out[i] = null;
        else {
          out[i] = c.micros ? datetimeMicros(year, month, day, h, mi, s, micros) : datetimeMillis(year, month, day, h, mi, s, micros);
        }
        break;
      }
      case MY.TIMESTAMP2: {
        const sec = b.readUInt32BE(pos);
        const fb = FRAC_BYTES[c.meta];
        const micros = fb ? b.readUIntBE(pos + 4, fb) * FRAC_UNIT[c.meta] : 0;
        if (micros > 999_999) throw corrupt(where, `a TIMESTAMP fraction of ${micros} µs`);
        pos += 4 + fb;
        // Second 0 is outside TIMESTAMP's range: it is the zero value '0000-00-00 00:00:00'.
        out[i] = sec === 0 ? null : zonedTimestamp(sec, micros, c.meta);
        break;
      }
      case MY.TIME2: {
        // 1 sign bit, 1 unused, 10 bits hour, 6 minute, 6 second, then the fraction; stored with
        // an offset so that the whole (integer part and fraction) compares as unsigned.
        const fb = FRAC_BYTES[c.meta];
        const unit = 2 ** (8 * fb);
        let v = b.readUIntBE(pos, 3 + fb) - 0x800000 * unit;
        pos += 3 + fb;
        const neg = v < 0;
        if (neg) v = -v;
        const hms = Math.floor(v / unit);
        const frac = v - hms * unit;
        if (((hms >> 6) & 63) > 59 || (hms & 63) > 59 || ((hms >> 12) & 0x3ff) > 838 || (fb && frac * FRAC_UNIT[c.meta] > 999_999)) throw corrupt(where, 'a TIME value out of its range');
        const t = (((hms >> 12) & 0x3ff) * 3600 + ((hms >> 6) & 63) * 60 + (hms & 63)) * 1_000_000 + (fb ? frac * FRAC_UNIT[c.meta] : 0);
        out[i] = neg ? -t : t;
        break;
      }
      case MY.TIMESTAMP: {
        const sec = b.readUInt32LE(pos);
        pos += 4;
        out[i] = sec === 0 ? null : zonedTimestamp(sec, 0, 0);
        break;
      }
      case MY.DATETIME: {
        // Pre-5.6 format: the decimal number YYYYMMDDhhmmss in 8 bytes.
        let v = Number(b.readBigUInt64LE(pos));
        pos += 8;
        const s = v % 100; v = (v - s) / 100;
        const mi = v % 100; v = (v - mi) / 100;
        const h = v % 100; v = (v - h) / 100;
        const d = v % 100; v = (v - d) / 100;
        const mo = v % 100;
        const y = (v - mo) / 100;
        out[i] = y === 0 || mo === 0 || d === 0 ? null : datetimeMillis(y, mo, d, h, mi, s, 0);
        break;
      }
      case MY.TIME: {
        // Pre-5.6 format: the decimal number [-]HHMMSS in 3 bytes.
        const v = b.readIntLE(pos, 3);
        pos += 3;
        const a = Math.abs(v);
        const t = (Math.floor(a / 10000) * 3600 + (Math.floor(a / 100) % 100) * 60 + (a % 100)) * 1_000_000;
        out[i] = v < 0 ? -t : t;
        break;
      }
      case MY.VARCHAR: case MY.STRING:
        len = c.meta === 1 ? b[pos] : b.readUInt16LE(pos);
        pos += c.meta;
        out[i] = text(b, pos, pos + len, c);
        pos += len;
        break;
      case MY.BLOB:
        len = b.readUIntLE(pos, c.meta);
        pos += c.meta;
        out[i] = text(b, pos, pos + len, c);
        pos += len;
        break;
      case MY.JSON:
        len = b.readUIntLE(pos, c.meta);
        pos += c.meta;
        out[i] = jsonBinaryToText(b, pos, pos + len);
        pos += len;
        break;
      case MY.GEOMETRY:
        len = b.readUIntLE(pos, c.meta);
        pos += c.meta;
        out[i] = copyBytes(b, pos, pos + len);
        pos += len;
        break;
      case MY.ENUM: {
        const idx = c.meta === 1 ? b[pos] : b.readUInt16LE(pos);
        pos += c.meta;
        // Index 0 is the empty string MySQL stores for an invalid value; one past the labels is damage.
        if (idx > c.labels!.length && c.labels!.length > 0) throw corrupt(where, `ENUM index ${idx} of a column with ${c.labels!.length} labels`);
        out[i] = idx === 0 ? '' : (c.labels![idx - 1] ?? '');
        break;
      }
      case MY.SET: {
        const labels = c.labels!;
        let s = '';
        for (let k = 0; k < labels.length; k++) {
          if (b[pos + (k >> 3)] & (1 << (k & 7))) s = s === '' ? labels[k] : s + ',' + labels[k];
        }
        for (let k = labels.length; k < c.meta * 8; k++) if (labels.length > 0 && b[pos + (k >> 3)] & (1 << (k & 7))) throw corrupt(where, `a SET value has member ${k + 1} of a column with ${labels.length}`);
        pos += c.meta;
        out[i] = s;
        break;
      }
      case MY.BIT: {
        const nbytes = (c.meta + 7) >> 3;
        out[i] = c.meta === 1 ? b[pos] !== 0 : bitsLittleEndian(b, pos, pos + nbytes, c.meta);
        pos += nbytes;
        break;
      }
      case MY.NULL:
        out[i] = null;
        break;
      default:
        throw mysqlError('MYSQL_UNSUPPORTED_TYPE', `a rows event at ${where()} holds a column of binlog type ${c.t}, which Sluice cannot decode; exclude the table from source.tables or report the type`);
    }
    if (pos > end) throw corrupt(where, 'a row runs past the end of the event');
  }
  return pos;
}

function corrupt(where: () => string, what: string): SluiceError {
  return mysqlError('MYSQL_BINLOG_CORRUPT', `rows event at ${where()}: ${what}. The event does not match its table map: this is a bug or a server/protocol mismatch; report it with the server version.`);
}

/** Column-present bitmap → one flag per column, or null when every column is present. */
function presentFlags(b: Buffer, pos: number, n: number): { flags: Uint8Array | null; count: number } {
  // Full row images (the usual case): every bit set.
  let full = true;
  for (let i = 0; i < n >> 3 && full; i++) full = b[pos + i] === 0xff;
  if (full && (n & 7) && (b[pos + (n >> 3)] & ((1 << (n & 7)) - 1)) !== (1 << (n & 7)) - 1) full = false;
  if (full) return { flags: null, count: n };
  let count = 0;
  const flags = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if ((b[pos + (i >> 3)] >> (i & 7)) & 1) {
      flags[i] = 1;
      count++;
    }
  }
  return { flags: count === n ? null : flags, count };
}

export interface DecodedRows {
  rows: RowImage[];
  bytes: number;
  present?: { before: boolean[] | null; after: boolean[] | null };
}

/**
 * The rows of a rows event body: `pos` is just after the table id and flags (and v2's extra
 * data), `end` before the checksum.
 */
export function decodeRows(b: Buffer, pos: number, end: number, kind: 'write' | 'update' | 'delete', tm: DecodedTableMap, where: () => string): DecodedRows {
  const plan = tm.plan;
  const n = plan.length;
  // Column count (length-encoded; never above 4096).
  let width = b[pos++];
  if (width === 0xfc) {
    width = b.readUInt16LE(pos);
    pos += 2;
  } else if (width >= 0xfb) throw corrupt(where, 'bad column count');
  if (width !== n) throw corrupt(where, `it has ${width} columns, its table map ${tm.map.database}.${tm.map.table} has ${n}`);
  const bm = (n + 7) >> 3;
  const p1 = presentFlags(b, pos, n);
  pos += bm;
  let p2 = p1;
  if (kind === 'update') {
    p2 = presentFlags(b, pos, n);
    pos += bm;
  }
  const start = pos;
  const rows: RowImage[] = [];
  while (pos < end) {
    let before: Value[] | null = null;
    let after: Value[] | null = null;
    if (kind === 'write') {
      after = new Array<Value>(n);
      pos = readImage(b, pos, end, plan, p1.flags, p1.count, after, where);
    } else {
      before = new Array<Value>(n);
      pos = readImage(b, pos, end, plan, p1.flags, p1.count, before, where);
      if (kind === 'update') {
        after = new Array<Value>(n);
        pos = readImage(b, pos, end, plan, p2.flags, p2.count, after, where);
      }
    }
    rows.push({ before, after });
  }
  const out: DecodedRows = { rows, bytes: end - start };
  if (p1.flags || p2.flags) {
    const toBools = (f: Uint8Array | null): boolean[] | null => (f ? Array.from(f, (x) => x === 1) : null);
    out.present = { before: kind === 'write' ? null : toBools(p1.flags), after: kind === 'delete' ? null : toBools(kind === 'update' ? p2.flags : p1.flags) };
  }
  return out;
}
