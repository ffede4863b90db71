/**
 * Avro's binary encoding (specification 1.12, "Binary Encoding"): a schema compiled once into a
 * tree of small encode/decode functions (an AvroCodec), a writer appending to one growing Buffer,
 * and a reader over a Buffer.
 *
 * Values in JavaScript:
 * - null: null (undefined is written as null too); boolean; int, float, double: number;
 * - long: a number when it is a safe integer, else a bigint (encoding takes either; numbers
 *   beyond ±2^53 are refused, as they are rounded already). Decoding gives, by `longs`: `auto`
 *   (default) a number when safe and a bigint beyond; `bigint` always a bigint; `number` always
 *   a number (AVRO_LONG_PRECISION beyond ±2^53);
 * - bytes, fixed: Buffer (encoding takes any Uint8Array). Decoded bytes are views into the data
 *   decoded (no copy): they live as long as that buffer is not reused;
 * - string: string; enum: the symbol; array: an array;
 * - map: a plain object (encoding also takes a Map; `maps: 'map'` decodes to a Map);
 * - record: a plain object with the fields as properties (a field left undefined is written as its
 *   default when it has one, else as undefined: null where the type takes null, else an error);
 * - union: the value of its branch. Encoding picks the branch: null for null/undefined, else the
 *   first branch the value matches (5 matches "int" before "long"; 2^40 only "long").
 * - logical types: see schema.ts (decimals are strings, uuids strings, durations objects).
 *
 * A value that does not match its schema is AVRO_VALUE_INVALID naming the field path
 * (`data_file.partition.id: expected a long …`); bytes that do not decode are AVRO_DATA_INVALID
 * naming the byte offset. A failed write leaves the writer where it was before the value.
 */
import { avroError } from './errors.ts';
import {
  bigintFromTwosComplement,
  decimalString,
  durationValue,
  setKey,
  typeName,
  uuidString,
  type AvroSchema,
  type FixedSchema,
  type LogicalType,
  type PrimitiveSchema,
  type RecordSchema,
  type UnionSchema,
} from './schema.ts';

export interface CodecOptions {
  /** How longs decode: `auto` (default) number when safe, else bigint; `bigint`; `number` (error beyond ±2^53). */
  longs?: 'auto' | 'bigint' | 'number';
  /** How maps decode: `object` (default), or `map` (a Map). */
  maps?: 'object' | 'map';
}

const MIN_LONG = -(1n << 63n);
const MAX_LONG = (1n << 63n) - 1n;
const TWO_52 = 0x10000000000000;
/** Items of zero encoded bytes (nulls, empty records) one array or map block may declare. */
export const MAX_EMPTY_ITEMS = 1 << 24;

// ---------- writer ----------

/** Appends Avro-encoded primitives to one Buffer that grows (doubling) as needed. */
export class AvroWriter {
  buf: Buffer;
  pos = 0;

  constructor(size = 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(16, size));
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.pos);
    this.buf = nb;
  }

  reset(): void {
    this.pos = 0;
  }

  /** The bytes written so far: a view, valid until the next write or reset. */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of the bytes written so far. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }

  writeByte(b: number): void {
    if (this.pos === this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  writeBoolean(v: boolean): void {
    if (this.pos === this.buf.length) this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  /** An int: a 32-bit integer (not checked). */
  writeInt(n: number): void {
    if (this.pos + 5 > this.buf.length) this.ensure(5);
    const buf = this.buf;
    let p = this.pos;
    let z = ((n << 1) ^ (n >> 31)) >>> 0;
    while (z > 0x7f) {
      buf[p++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[p++] = z;
    this.pos = p;
  }

  /** A long: a safe-integer number or a bigint within 64 bits (not checked). */
  writeLong(v: number | bigint): void {
    if (typeof v !== 'number') return this.writeLongBig(v);
    if ((v | 0) === v) return this.writeInt(v);
    if (v < -TWO_52 || v > Number.MAX_SAFE_INTEGER) return this.writeLongBig(BigInt(v));
    if (this.pos + 10 > this.buf.length) this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    // Zig-zag in doubles: exact, as |z| < 2^54 and z is even where it exceeds 2^53.
    let z = v >= 0 ? v * 2 : -v * 2 - 1;
    while (z > 0x7f) {
      buf[p++] = (z % 128) | 0x80;
      z = Math.floor(z / 128);
    }
    buf[p++] = z;
    this.pos = p;
  }

  writeLongBig(v: bigint): void {
    // In two 32-bit halves: a handful of bigint operations instead of one per 7 bits.
    const lo = Number(BigInt.asUintN(32, v));
    const hi = Number(BigInt.asIntN(32, v >> 32n));
    const sign = hi >> 31;
    this.writeVarint64((((hi << 1) | (lo >>> 31)) ^ sign) >>> 0, ((lo << 1) ^ sign) >>> 0);
  }

  /** The unsigned 64-bit varint `hi`·2^32 + `lo` (both unsigned 32-bit). */
  private writeVarint64(hi: number, lo: number): void {
    if (this.pos + 10 > this.buf.length) this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    while (hi !== 0 || lo > 0x7f) {
      buf[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[p++] = lo;
    this.pos = p;
  }

  writeFloat(n: number): void {
    if (this.pos + 4 > this.buf.length) this.ensure(4);
    this.pos = this.buf.writeFloatLE(n, this.pos);
  }

  writeDouble(n: number): void {
    if (this.pos + 8 > this.buf.length) this.ensure(8);
    this.pos = this.buf.writeDoubleLE(n, this.pos);
  }

  /** Bytes: their length, then the bytes. */
  writeBytes(b: Uint8Array): void {
    this.writeLong(b.length);
    this.writeFixed(b);
  }

  /** The bytes as they are (a fixed, or anything already encoded). */
  writeFixed(b: Uint8Array): void {
    const n = b.length;
    if (this.pos + n > this.buf.length) this.ensure(n);
    if (n > 32) {
      this.buf.set(b, this.pos);
      this.pos += n;
      return;
    }
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = b[i];
    this.pos = p;
  }

  /** A string: its UTF-8 length, then its UTF-8 bytes. */
  writeString(s: string): void {
    const len = s.length;
    if (len < 64) {
      // Short ASCII (most strings): one length byte, then one byte per character.
      if (this.pos + 1 + len * 3 > this.buf.length) this.ensure(1 + len * 3);
      const buf = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === len) {
        buf[this.pos] = len << 1;
        this.pos = p;
        return;
      }
    }
    const n = Buffer.byteLength(s, 'utf8');
    this.writeLong(n);
    if (this.pos + n > this.buf.length) this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
}

// ---------- reader ----------

/** Reads Avro-encoded primitives from `buf` between `pos` and `end`. */
export class AvroReader {
  buf: Buffer;
  pos: number;
  end: number;
  /** The last 64-bit varint read: the signed high and unsigned low 32 bits of the zig-zag-decoded long. */
  private hi = 0;
  private lo = 0;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  /**
   * Past the end? Reads do not check every byte: a varint reading past the end sees `undefined`,
   * which ends it; lengths are checked against what is left; the value's reader checks here at the end.
   */
  get overrun(): boolean {
    return this.pos > this.end;
  }

  fail(message: string, at = this.pos): never {
    throw avroError('AVRO_DATA_INVALID', `${message} (at byte ${at})`);
  }

  readBoolean(): boolean {
    const b = this.buf[this.pos++];
    if (b === 0) return false;
    if (b === 1) return true;
    if (b === undefined || this.pos > this.end) return this.fail('the data ends inside a boolean', this.pos - 1);
    return this.fail(`a boolean byte is ${b}, not 0 or 1`, this.pos - 1);
  }

  /** An int (at most 5 varint bytes, 32 bits). */
  readInt(): number {
    const buf = this.buf;
    let p = this.pos;
    let b = buf[p++];
    let v = b & 0x7f;
    if (b & 0x80) {
      b = buf[p++];
      v |= (b & 0x7f) << 7;
      if (b & 0x80) {
        b = buf[p++];
        v |= (b & 0x7f) << 14;
        if (b & 0x80) {
          b = buf[p++];
          v |= (b & 0x7f) << 21;
          if (b & 0x80) {
            b = buf[p++];
            if (b > 0x0f) return this.fail('an int is longer than 32 bits');
            v |= b << 28;
          }
        }
      }
    }
    this.pos = p;
    return (v >>> 1) ^ -(v & 1);
  }

  /** A long as a number when it is a safe integer, else a bigint. */
  readLong(): number | bigint {
    const buf = this.buf;
    let p = this.pos;
    let b = buf[p++];
    let v = b & 0x7f;
    if (b & 0x80) {
      b = buf[p++];
      v |= (b & 0x7f) << 7;
      if (b & 0x80) {
        b = buf[p++];
        v |= (b & 0x7f) << 14;
        if (b & 0x80) {
          b = buf[p++];
          v |= (b & 0x7f) << 21;
          if (b & 0x80) return this.readLongSlow();
        }
      }
    }
    this.pos = p;
    return (v >>> 1) ^ -(v & 1);
  }

  /** A long of 5 or more varint bytes: read in two 32-bit halves, a bigint only beyond ±2^53. */
  private readLongSlow(): number | bigint {
    this.varint64();
    const hi = this.hi;
    const lo = this.lo;
    // A safe integer: -(2^53 - 1) ≤ hi·2^32 + lo ≤ 2^53 - 1.
    if ((hi > -0x200000 && hi < 0x200000) || (hi === -0x200000 && lo !== 0)) return hi * 4294967296 + lo;
    return (BigInt(hi) << 32n) + BigInt(lo);
  }

  /** A long as a bigint, whatever its size. */
  readLongBig(): bigint {
    this.varint64();
    return (BigInt(this.hi) << 32n) + BigInt(this.lo);
  }

  /** Reads a 64-bit zig-zag varint into `hi`/`lo`. */
  private varint64(): void {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    let lo = 0;
    let hi = 0;
    let b: number;
    let shift = 0;
    for (; shift < 28; shift += 7) {
      b = buf[p++];
      lo |= (b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (shift === 28) {
      b = buf[p++];
      lo |= (b & 0x0f) << 28;
      hi = (b & 0x7f) >> 4;
      for (shift = 3; b & 0x80; shift += 7) {
        b = buf[p++];
        if (b === undefined) return this.fail('the data ends inside a long', p - 1);
        if (shift === 31 && b > 1) return this.fail('a long is longer than 64 bits', start);
        hi |= (b & 0x7f) << shift;
      }
    }
    this.pos = p;
    // Zig-zag: (u >>> 1) ^ -(u & 1), on the two halves.
    const sign = -(lo & 1);
    this.lo = (((lo >>> 1) | (hi << 31)) ^ sign) >>> 0;
    this.hi = ((hi >>> 1) ^ sign) | 0;
  }

  /** A long as a number: AVRO_LONG_PRECISION when it is beyond ±2^53. */
  readLongNumber(): number {
    const at = this.pos;
    const v = this.readLong();
    if (typeof v === 'number') return v;
    throw avroError('AVRO_LONG_PRECISION', `the long ${v} (at byte ${at}) is beyond ±2^53, where a number would round it: decode with longs: 'bigint' or 'auto'`);
  }

  /** A length (of bytes, a string): a long from 0 to what is left. */
  readLength(): number {
    const at = this.pos;
    const n = this.readLong();
    if (typeof n === 'number' && n >= 0 && n <= this.end - this.pos) return n;
    if (typeof n !== 'number' || n < 0) return this.fail(`a length is negative or beyond 2^53 (${n})`, at);
    return this.fail(`a length of ${n} bytes goes past the end of the data (${Math.max(0, this.end - this.pos)} bytes left)`, at);
  }

  readFloat(): number {
    const p = this.pos;
    if (p + 4 > this.end) return this.fail('the data ends inside a float');
    this.pos = p + 4;
    return this.buf.readFloatLE(p);
  }

  readDouble(): number {
    const p = this.pos;
    if (p + 8 > this.end) return this.fail('the data ends inside a double');
    this.pos = p + 8;
    return this.buf.readDoubleLE(p);
  }

  /** Bytes: a view into the data, not a copy. */
  readBytes(): Buffer {
    const n = this.readLength();
    const p = this.pos;
    this.pos = p + n;
    return this.buf.subarray(p, p + n);
  }

  /** `n` bytes as they are (a fixed): a view into the data. */
  readFixed(n: number): Buffer {
    const p = this.pos;
    if (p + n > this.end) return this.fail(`the data ends inside a fixed of ${n} bytes`);
    this.pos = p + n;
    return this.buf.subarray(p, p + n);
  }

  readString(): string {
    const n = this.readLength();
    const buf = this.buf;
    const p = this.pos;
    this.pos = p + n;
    if (n < 16) {
      // Short ASCII: cheaper than a call into the UTF-8 decoder.
      let s = '';
      for (let i = p; i < p + n; i++) {
        const c = buf[i];
        if (c >= 0x80) return buf.toString('utf8', p, p + n);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return buf.toString('utf8', p, p + n);
  }
}

// ---------- compiled codecs ----------

type Enc = (w: AvroWriter, v: any) => void;
type Dec = (r: AvroReader) => unknown;
type PathSeg = string | number | { key: string };

/** A value that does not match its schema; the path is filled in as it passes up through records, arrays and maps. */
class Mismatch extends Error {
  readonly path: PathSeg[] = [];
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'undefined':
      return 'undefined (missing)';
    case 'string':
      return `${JSON.stringify(v.length > 40 ? v.slice(0, 37) + '…' : v)} (a string)`;
    case 'number':
      return `${v} (a number)`;
    case 'bigint':
      return `${v}n (a bigint)`;
    case 'boolean':
      return `${v} (a boolean)`;
  }
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Date) return `a Date (${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  if (v instanceof Map) return `a Map of ${v.size}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}

function mismatch(expected: string, v: unknown): never {
  throw new Mismatch(`expected ${expected}, got ${describe(v)}`);
}

function formatPath(path: PathSeg[]): string {
  let s = '';
  for (const seg of path) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else if (typeof seg === 'string') s += s ? `.${seg}` : seg;
    else s += `[${JSON.stringify(seg.key)}]`;
  }
  return s;
}

function addPath(e: unknown, seg: PathSeg): unknown {
  if (e instanceof Mismatch) e.path.unshift(seg);
  return e;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Date) && !(v instanceof Map);

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DECIMAL = /^([+-])?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const MS_PER_DAY = 86_400_000;

/** A decimal value as its unscaled integer at `scale`; a Mismatch when it is no decimal, needs rounding, or exceeds `precision`. */
function unscaled(v: unknown, precision: number, scale: number): bigint {
  let u: bigint;
  if (typeof v === 'bigint') {
    u = v * 10n ** BigInt(scale);
  } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
    u = BigInt(v) * 10n ** BigInt(scale);
  } else {
    const text = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : undefined;
    const m = text === undefined ? null : DECIMAL.exec(text);
    if (!m || (m[2] === '' && (m[3] ?? '') === '')) return mismatch(`a decimal (a string such as "-12.34", a number or a bigint)`, v);
    let digits = m[2] + (m[3] ?? '');
    // The value is digits × 10^exp; at `scale` its unscaled integer is digits × 10^(exp + scale).
    const shift = (m[4] ? Number(m[4]) : 0) - (m[3] ?? '').length + scale;
    if (shift >= 0) {
      digits += '0'.repeat(shift);
    } else {
      const dropped = digits.slice(Math.max(0, digits.length + shift));
      if (/[^0]/.test(dropped)) return mismatch(`a decimal with at most ${scale} fraction digits (scale ${scale}; Sluice does not round)`, v);
      digits = digits.slice(0, Math.max(0, digits.length + shift));
    }
    u = BigInt(digits || '0');
    if (m[1] === '-') u = -u;
  }
  const abs = u < 0n ? -u : u;
  if (abs.toString().length > precision && abs !== 0n) return mismatch(`a decimal of at most ${precision} digits (precision ${precision}, scale ${scale})`, v);
  return u;
}

/** Two's-complement big-endian bytes of `v`: the fewest that hold it, or exactly `size` (sign-extended). */
function twosComplement(v: bigint, size?: number): Buffer {
  let n = 1;
  while (v < -(1n << BigInt(8 * n - 1)) || v >= 1n << BigInt(8 * n - 1)) n++;
  const len = size ?? n;
  const out = Buffer.alloc(len, v < 0n ? 0xff : 0);
  let x = BigInt.asUintN(8 * n, v);
  for (let i = len - 1; i >= len - n; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function uuidBytes(v: unknown): Buffer {
  if (typeof v !== 'string' || !UUID.test(v)) return mismatch('a UUID string (8-4-4-4-12 hex digits)', v);
  return Buffer.from(v.replace(/-/g, ''), 'hex');
}

function dateMs(v: Date): number {
  const ms = v.getTime();
  if (Number.isNaN(ms)) mismatch('a valid Date', v);
  return ms;
}

/** The smallest number of bytes a value of the schema can be encoded in (0 for null, records of nulls, empty fixed). */
function minSize(s: AvroSchema, seen = new Set<AvroSchema>()): number {
  switch (s.type) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return s.size;
    case 'record': {
      if (seen.has(s)) return 0;
      seen.add(s);
      let n = 0;
      for (const f of s.fields) n += minSize(f.type, seen);
      seen.delete(s);
      return n;
    }
    default:
      return 1;
  }
}

/** Shared scratch space for trial encodings (which branch of a union a value fits); reentrant (it restores its position). */
const scratch = new AvroWriter(256);

function fits(enc: Enc, v: unknown): boolean {
  const start = scratch.pos;
  try {
    enc(scratch, v);
    return true;
  } catch (e) {
    if (e instanceof Mismatch) return false;
    throw e;
  } finally {
    scratch.pos = start;
  }
}

class Compiler {
  private readonly encs = new Map<AvroSchema, Enc>();
  private readonly decs = new Map<AvroSchema, Dec>();

  constructor(private readonly opts: CodecOptions) {}

  encoder(s: AvroSchema): Enc {
    const done = this.encs.get(s);
    if (done) return done;
    if (s.type === 'record') {
      // Registered before its fields are compiled: a recursive reference goes through the stub.
      const ref: { impl?: Enc } = {};
      this.encs.set(s, (w, v) => ref.impl!(w, v));
      const impl = (ref.impl = this.recordEncoder(s));
      this.encs.set(s, impl);
      return impl;
    }
    const e = this.buildEncoder(s);
    this.encs.set(s, e);
    return e;
  }

  decoder(s: AvroSchema): Dec {
    const done = this.decs.get(s);
    if (done) return done;
    if (s.type === 'record') {
      const ref: { impl?: Dec } = {};
      this.decs.set(s, (r) => ref.impl!(r));
      const impl = (ref.impl = this.recordDecoder(s));
      this.decs.set(s, impl);
      return impl;
    }
    const d = this.buildDecoder(s);
    this.decs.set(s, d);
    return d;
  }

  private buildEncoder(s: Exclude<AvroSchema, RecordSchema>): Enc {
    switch (s.type) {
      case 'null':
        return (_w, v) => {
          if (v !== null && v !== undefined) mismatch('null', v);
        };
      case 'boolean':
        return (w, v) => (typeof v === 'boolean' ? w.writeBoolean(v) : mismatch('a boolean', v));
      case 'int':
        return this.intEncoder(s);
      case 'long':
        return this.longEncoder(s);
      case 'float':
        return (w, v) => (typeof v === 'number' ? w.writeFloat(v) : mismatch('a float (a number)', v));
      case 'double':
        return (w, v) => (typeof v === 'number' ? w.writeDouble(v) : mismatch('a double (a number)', v));
      case 'bytes': {
        const lt = s.logical;
        if (lt?.name === 'decimal') return (w, v) => w.writeBytes(twosComplement(unscaled(v, lt.precision, lt.scale)));
        return (w, v) => (v instanceof Uint8Array ? w.writeBytes(v) : mismatch('bytes (a Buffer or Uint8Array)', v));
      }
      case 'string':
        if (s.logical?.name === 'uuid') {
          return (w, v) => (typeof v === 'string' && UUID.test(v) ? w.writeString(v) : mismatch('a UUID string (8-4-4-4-12 hex digits)', v));
        }
        return (w, v) => (typeof v === 'string' ? w.writeString(v) : mismatch('a string', v));
      case 'fixed':
        return this.fixedEncoder(s);
      case 'enum': {
        const index = new Map(s.symbols.map((sym, i) => [sym, i]));
        const expected = `a symbol of the enum ${s.name} (${s.symbols.slice(0, 8).join(', ')}${s.symbols.length > 8 ? ', …' : ''})`;
        return (w, v) => {
          const i = typeof v === 'string' ? index.get(v) : undefined;
          if (i === undefined) mismatch(expected, v);
          w.writeInt(i);
        };
      }
      case 'array': {
        const item = this.encoder(s.items);
        return (w, v) => {
          if (!Array.isArray(v)) mismatch('an array', v);
          const n = v.length;
          if (n > 0) {
            w.writeLong(n);
            let i = 0;
            try {
              for (; i < n; i++) item(w, v[i]);
            } catch (e) {
              throw addPath(e, i);
            }
          }
          w.writeByte(0);
        };
      }
      case 'map': {
        const value = this.encoder(s.values);
        return (w, v) => {
          if (v instanceof Map) {
            if (v.size > 0) {
              w.writeLong(v.size);
              for (const [k, x] of v) {
                if (typeof k !== 'string') throw addPath(new Mismatch(`a map key must be a string, got ${describe(k)}`), { key: String(k) });
                w.writeString(k);
                try {
                  value(w, x);
                } catch (e) {
                  throw addPath(e, { key: k });
                }
              }
            }
          } else {
            if (!isPlainObject(v)) mismatch('a map (an object or a Map)', v);
            const keys = Object.keys(v);
            if (keys.length > 0) {
              w.writeLong(keys.length);
              for (const k of keys) {
                w.writeString(k);
                try {
                  value(w, v[k]);
                } catch (e) {
                  throw addPath(e, { key: k });
                }
              }
            }
          }
          w.writeByte(0);
        };
      }
      case 'union':
        return this.unionEncoder(s);
    }
  }

  private intEncoder(s: PrimitiveSchema): Enc {
    if (s.logical?.name === 'date') {
      return (w, v) => {
        if (v instanceof Date) v = Math.floor(dateMs(v) / MS_PER_DAY);
        if (typeof v === 'number' && (v | 0) === v) w.writeInt(v);
        else mismatch('a date (days since 1970-01-01 as an int, or a Date)', v);
      };
    }
    return (w, v) => (typeof v === 'number' && (v | 0) === v ? w.writeInt(v) : mismatch('an int (an integer from -2^31 to 2^31-1)', v));
  }

  private longEncoder(s: PrimitiveSchema): Enc {
    const plain: Enc = (w, v) => {
      if (typeof v === 'number') {
        if (Number.isSafeInteger(v)) w.writeLong(v);
        else mismatch('a long (a safe integer number, or a bigint beyond ±2^53)', v);
      } else if (typeof v === 'bigint') {
        if (v >= MIN_LONG && v <= MAX_LONG) w.writeLongBig(v);
        else mismatch('a long (from -2^63 to 2^63-1)', v);
      } else {
        mismatch('a long (a number or a bigint)', v);
      }
    };
    const lt = s.logical?.name;
    // Timestamps also take a Date, in the type's unit.
    const perMs = lt?.endsWith('-millis') ? 1 : lt?.endsWith('-micros') ? 1000 : lt?.endsWith('-nanos') ? 1_000_000 : 0;
    if (!lt?.includes('timestamp') || perMs === 0) return plain;
    return (w, v) => {
      if (!(v instanceof Date)) return plain(w, v);
      const ms = dateMs(v);
      if (perMs === 1) w.writeLong(ms);
      else w.writeLongBig(BigInt(ms) * BigInt(perMs));
    };
  }

  private fixedEncoder(s: FixedSchema): Enc {
    const size = s.size;
    const lt = s.logical;
    if (lt?.name === 'decimal') return (w, v) => w.writeFixed(twosComplement(unscaled(v, lt.precision, lt.scale), size));
    if (lt?.name === 'uuid') return (w, v) => w.writeFixed(uuidBytes(v));
    if (lt?.name === 'duration') {
      return (w, v) => {
        const d = v as { months?: unknown; days?: unknown; millis?: unknown } | null;
        const u32 = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
        if (!isPlainObject(d) || !u32(d.months) || !u32(d.days) || !u32(d.millis)) return mismatch('a duration ({ months, days, millis }, each an unsigned 32-bit integer)', v);
        w.ensure(12);
        w.buf.writeUInt32LE(d.months, w.pos);
        w.buf.writeUInt32LE(d.days, w.pos + 4);
        w.buf.writeUInt32LE(d.millis, w.pos + 8);
        w.pos += 12;
      };
    }
    return (w, v) => (v instanceof Uint8Array && v.length === size ? w.writeFixed(v) : mismatch(`${size} bytes (the fixed ${s.name})`, v));
  }

  /**
   * A record's encoder and decoder are generated code (new Function): each field is a property read
   * or an object-literal entry with its name written out, which V8 compiles to fixed-shape access.
   * Loops over the field names instead read and build objects by computed keys, 2-3 times slower.
   * Names enter the code only as JSON string literals.
   */
  private recordEncoder(s: RecordSchema): Enc {
    const names = s.fields.map((f) => f.name);
    const encs = s.fields.map((f) => this.encoder(f.type));
    const defaults = s.fields.map((f) => (f.hasDefault ? f.defaultValue : undefined));
    const lines = s.fields.map((f, i) => `x = v[${JSON.stringify(f.name)}]; e${i}(w, x === undefined ? f${i} : x); i = ${i + 1};`);
    const src = `${encs.map((_, i) => `const e${i} = e[${i}], f${i} = f[${i}];`).join('\n')}
return function encodeRecord(w, v) {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) mismatch(expected, v);
  let i = 0, x;
  try {
    ${lines.join('\n    ')}
  } catch (err) {
    throw addPath(err, names[i]);
  }
};`;
    return new Function('e', 'f', 'names', 'expected', 'mismatch', 'addPath', src)(encs, defaults, names, `a record ${s.name} (an object)`, mismatch, addPath) as Enc;
  }

  private unionEncoder(s: UnionSchema): Enc {
    const n = s.branches.length;
    const encs = s.branches.map((b) => this.encoder(b));
    const nullAt = s.branches.findIndex((b) => b.type === 'null');
    const names = `[${s.branches.map(typeName).join(', ')}]`;
    if (n === 2 && nullAt >= 0) {
      // ["null", T] or [T, "null"]: the common optional field.
      const other = 1 - nullAt;
      const enc = encs[other];
      return (w, v) => {
        if (v === null || v === undefined) return w.writeByte(nullAt << 1);
        w.writeByte(other << 1);
        enc(w, v);
      };
    }
    const shallow = s.branches.map(accepts);
    return (w, v) => {
      if (v === null || v === undefined) {
        if (nullAt < 0) mismatch(`a value of the union ${names} (it has no null)`, v);
        return w.writeByte(nullAt << 1);
      }
      let pick = -1;
      let candidates = 0;
      for (let i = 0; i < n; i++) {
        if (!shallow[i](v)) continue;
        if (pick < 0) pick = i;
        candidates++;
      }
      if (pick < 0) mismatch(`a value of the union ${names}`, v);
      if (candidates > 1) {
        // Several branches take values of this kind: the first that takes this value (or the first candidate, to report why not).
        for (let i = pick; i < n; i++) {
          if (shallow[i](v) && fits(encs[i], v)) {
            pick = i;
            break;
          }
        }
      }
      w.writeInt(pick);
      encs[pick](w, v);
    };
  }

  private buildDecoder(s: Exclude<AvroSchema, RecordSchema>): Dec {
    switch (s.type) {
      case 'null':
        return () => null;
      case 'boolean':
        return (r) => r.readBoolean();
      case 'int':
        return (r) => r.readInt();
      case 'long': {
        const longs = this.opts.longs ?? 'auto';
        if (longs === 'bigint') return (r) => r.readLongBig();
        if (longs === 'number') return (r) => r.readLongNumber();
        return (r) => r.readLong();
      }
      case 'float':
        return (r) => r.readFloat();
      case 'double':
        return (r) => r.readDouble();
      case 'bytes': {
        const lt = s.logical;
        if (lt?.name === 'decimal') {
          return (r) => {
            const n = r.readLength();
            const p = r.pos;
            r.pos += n;
            return decimalString(bigintFromTwosComplement(r.buf, p, p + n), lt.scale);
          };
        }
        return (r) => r.readBytes();
      }
      case 'string':
        return (r) => r.readString();
      case 'fixed':
        return this.fixedDecoder(s);
      case 'enum': {
        const symbols = s.symbols;
        return (r) => {
          const at = r.pos;
          const i = r.readInt();
          const sym = symbols[i];
          if (sym === undefined) r.fail(`enum index ${i} is out of range for ${s.name} (${symbols.length} symbols)`, at);
          return sym;
        };
      }
      case 'array': {
        const item = this.decoder(s.items);
        const min = minSize(s.items);
        return (r) => {
          const out: unknown[] = [];
          for (;;) {
            const n = blockCount(r, min);
            if (n === 0) return out;
            for (let i = 0; i < n; i++) out.push(item(r));
          }
        };
      }
      case 'map': {
        const value = this.decoder(s.values);
        const min = 1 + minSize(s.values);
        if (this.opts.maps === 'map') {
          return (r) => {
            const out = new Map<string, unknown>();
            for (;;) {
              const n = blockCount(r, min);
              if (n === 0) return out;
              for (let i = 0; i < n; i++) {
                const k = r.readString();
                out.set(k, value(r));
              }
            }
          };
        }
        return (r) => {
          const out: Record<string, unknown> = {};
          for (;;) {
            const n = blockCount(r, min);
            if (n === 0) return out;
            for (let i = 0; i < n; i++) {
              const k = r.readString();
              if (k === '__proto__') setKey(out, k, value(r));
              else out[k] = value(r);
            }
          }
        };
      }
      case 'union': {
        const decs = s.branches.map((b) => this.decoder(b));
        const n = decs.length;
        const nullAt = s.branches.findIndex((b) => b.type === 'null');
        if (n === 2 && nullAt >= 0) {
          // ["null", T] or [T, "null"]: one call site for T, which V8 can inline.
          const other = 1 - nullAt;
          const dec = decs[other];
          return (r) => {
            const at = r.pos;
            const i = r.readInt();
            if (i === other) return dec(r);
            if (i === nullAt) return null;
            return r.fail(`union branch ${i} is out of range (the union has 2)`, at);
          };
        }
        return (r) => {
          const at = r.pos;
          const i = r.readInt();
          if (i < 0 || i >= n) return r.fail(`union branch ${i} is out of range (the union has ${n})`, at);
          return decs[i](r);
        };
      }
    }
  }

  private fixedDecoder(s: FixedSchema): Dec {
    const size = s.size;
    const lt = s.logical;
    if (lt?.name === 'decimal') {
      return (r) => {
        const b = r.readFixed(size);
        return decimalString(bigintFromTwosComplement(b, 0, size), lt.scale);
      };
    }
    if (lt?.name === 'uuid') return (r) => uuidString(r.readFixed(16), 0);
    if (lt?.name === 'duration') return (r) => durationValue(r.readFixed(12), 0);
    return (r) => r.readFixed(size);
  }

  private recordDecoder(s: RecordSchema): Dec {
    const decs = s.fields.map((f) => this.decoder(f.type));
    // A computed key for __proto__: a plain `"__proto__": …` entry would set the prototype instead.
    const entries = s.fields.map((f, i) => `${f.name === '__proto__' ? '["__proto__"]' : JSON.stringify(f.name)}: d${i}(r)`);
    const src = `${decs.map((_, i) => `const d${i} = d[${i}];`).join('\n')}
return function decodeRecord(r) {
  return { ${entries.join(', ')} };
};`;
    return new Function('d', src)(decs) as Dec;
  }
}

/** An array or map block's item count (0: the end); a negative count is followed by the block's byte size. */
function blockCount(r: AvroReader, minItemSize: number): number {
  const at = r.pos;
  let n = r.readLong();
  if (n === 0) return 0;
  if (typeof n !== 'number') return r.fail(`a block count of ${n} items is beyond what fits in memory`, at);
  if (n < 0) {
    n = -n;
    const size = r.readLong();
    if (typeof size !== 'number' || size < 0 || size > r.end - r.pos) return r.fail(`a block's byte size ${size} is negative or goes past the end of the data`, at);
  }
  if (minItemSize > 0 ? n * minItemSize > r.end - r.pos : n > MAX_EMPTY_ITEMS) {
    return r.fail(`a block of ${n} items cannot fit in the ${Math.max(0, r.end - r.pos)} bytes left`, at);
  }
  return n;
}

/** Whether a value is of the kind a branch takes (no deep check: a record takes any plain object). */
function accepts(s: AvroSchema): (v: unknown) => boolean {
  const lt: LogicalType | undefined = 'logical' in s ? s.logical : undefined;
  const decimalLike = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint';
  switch (s.type) {
    case 'null':
      return (v) => v === null || v === undefined;
    case 'boolean':
      return (v) => typeof v === 'boolean';
    case 'int':
      return lt?.name === 'date' ? (v) => (typeof v === 'number' && (v | 0) === v) || v instanceof Date : (v) => typeof v === 'number' && (v | 0) === v;
    case 'long': {
      const date = lt?.name.includes('timestamp') ?? false;
      return (v) => (typeof v === 'number' && Number.isSafeInteger(v)) || typeof v === 'bigint' || (date && v instanceof Date);
    }
    case 'float':
    case 'double':
      return (v) => typeof v === 'number';
    case 'bytes':
      return lt?.name === 'decimal' ? decimalLike : (v) => v instanceof Uint8Array;
    case 'string':
      return lt?.name === 'uuid' ? (v) => typeof v === 'string' && UUID.test(v) : (v) => typeof v === 'string';
    case 'fixed':
      if (lt?.name === 'decimal') return decimalLike;
      if (lt?.name === 'uuid') return (v) => typeof v === 'string' && UUID.test(v);
      if (lt?.name === 'duration') return isPlainObject;
      return (v) => v instanceof Uint8Array && v.length === s.size;
    case 'enum':
      return (v) => typeof v === 'string' && s.symbols.includes(v);
    case 'array':
      return Array.isArray;
    case 'map':
      return (v) => v instanceof Map || isPlainObject(v);
    case 'record':
      return isPlainObject;
    case 'union':
      return () => false;
  }
}

/** A schema compiled for encoding and decoding. */
export class AvroCodec {
  /** The fewest bytes a value takes (0 for null or a record of nulls): bounds how many values some data can hold. */
  readonly minBytes: number;
  private readonly enc: Enc;
  private readonly dec: Dec;
  private readonly w = new AvroWriter(256);

  constructor(
    readonly schema: AvroSchema,
    opts: CodecOptions = {},
  ) {
    const c = new Compiler(opts);
    this.enc = c.encoder(schema);
    this.dec = c.decoder(schema);
    this.minBytes = minSize(schema);
  }

  /** The value's encoding, in a new Buffer of its exact size. */
  encode(value: unknown): Buffer {
    this.w.pos = 0;
    this.write(this.w, value);
    return Buffer.from(this.w.view());
  }

  /** Appends the value's encoding to `w` (on AVRO_VALUE_INVALID, `w` is left as it was). */
  write(w: AvroWriter, value: unknown): void {
    const start = w.pos;
    try {
      this.enc(w, value);
    } catch (e) {
      w.pos = start;
      if (!(e instanceof Mismatch)) throw e;
      const where = formatPath(e.path);
      throw avroError('AVRO_VALUE_INVALID', `${where ? `${where}: ` : ''}${e.message} (schema ${typeName(this.schema)})`);
    }
  }

  /** Whether the value can be encoded with this schema. */
  isValid(value: unknown): boolean {
    return fits(this.enc, value);
  }

  /** Reads one value from `r`, advancing it. */
  read(r: AvroReader): unknown {
    const start = r.pos;
    const v = this.dec(r);
    if (r.pos > r.end) r.fail(`the data ends inside the value that starts at byte ${start}`, r.end);
    return v;
  }

  /** Decodes data holding exactly one value (AVRO_DATA_INVALID if it ends early or bytes are left over). */
  decode(bytes: Uint8Array): unknown {
    const r = new AvroReader(bytes);
    const v = this.read(r);
    if (r.pos !== r.end) r.fail(`${r.end - r.pos} bytes are left over after the value`);
    return v;
  }
}
