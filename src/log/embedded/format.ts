/**
 * On-disk format of segment files. A segment is a sequence of batches; a batch holds consecutive
 * records of one partition written by one flush:
 *   batch header (24 bytes): magic u32 | stored payload length u32 | crc32(stored payload) u32 |
 *                            base offset (u64 as hi,lo u32) | record count u32
 *   records, each: length u32 | timestamp f64 | key length i32 (-1 null) | key |
 *                  value length i32 (-1 null) | value | headers length i32 (-1 none) | headers JSON
 * The magic names how the records are stored: 'SLB1' as they are, 'SLB4' as one LZ4 block with
 * the records' length prepended (u32 little-endian), 'SLBB' as one Brotli stream. The checksum
 * covers the stored bytes, so damage is found before anything is decompressed. Each batch says
 * its own codec: a log whose compression setting changed holds both kinds, and reads them all.
 * A torn or corrupt batch (short, bad magic, bad crc) ends the valid part of the file.
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import type { AppendRecord } from '../types.ts';
import { crc32 } from '../../core/crc32.ts';
import { ByteSink } from '../../core/bytes.ts';
import { logError } from '../errors.ts';
import { lz4DecodedLength, lz4DecodeInto } from './lz4.ts';

const maxLen = (v: Buffer | string | null) => (v === null ? 0 : typeof v === 'string' ? v.length * 3 : v.length);

export const BATCH_HEADER = 24;

/** How a batch is stored. */
export const CODECS = ['lz4', 'brotli', 'none'] as const;
export type Codec = (typeof CODECS)[number];
/**
 * The `log.compression` setting: a codec, or `auto` (the default): LZ4 where its optional package
 * loads, Brotli (built into Node) where it does not.
 */
export const COMPRESSIONS = ['auto', ...CODECS] as const;
export type Compression = (typeof COMPRESSIONS)[number];
export const DEFAULT_COMPRESSION: Compression = 'auto';

const MAGIC: Record<Codec, number> = { none: 0x534c4231 /* SLB1 */, lz4: 0x534c4234 /* SLB4 */, brotli: 0x534c4242 /* SLBB */ };
const CODEC_OF = new Map<number, Codec>(Object.entries(MAGIC).map(([c, m]) => [m, c as Codec]));

interface Lz4 { compressSync(b: Buffer): Buffer; uncompressSync(b: Buffer): Buffer }
let lz4: Lz4 | null = null;
/** lz4-napi, or null where it does not load: reading then decodes with lz4.ts. */
let lz4Reader: Lz4 | null | undefined;
function lz4Codec(): Lz4 {
  if (lz4) return lz4;
  try {
    lz4 = createRequire(import.meta.url)('lz4-napi') as Lz4;
  } catch (err) {
    throw logError('LOG_CODEC_UNAVAILABLE', `log.compression lz4 needs the npm package lz4-napi (an optional dependency, with a native build for this platform), which did not load (${process.platform}-${process.arch}: ${(err as Error).message.split('\n')[0].slice(0, 200)}): run npm install lz4-napi, or set log.compression to brotli or none (both built into Node). A log that already holds LZ4 batches reads without it, more slowly`, { cause: err });
  }
  return lz4;
}

/**
 * The codec a writer uses for `setting`, loaded now: a writer whose codec cannot load fails when it
 * opens, not at its first commit.
 */
export function codecFor(setting: Compression): Codec {
  if (setting === 'auto') {
    try {
      lz4Codec();
      return 'lz4';
    } catch {
      return 'brotli';
    }
  }
  if (setting === 'lz4') lz4Codec();
  return setting;
}

const BROTLI_FAST = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } };

function compress(codec: Codec, raw: Buffer): Buffer {
  return codec === 'lz4' ? lz4Codec().compressSync(raw) : zlib.brotliCompressSync(raw, BROTLI_FAST);
}

/** The most a batch may decode to: the length prefix of LZ4 data that passed its checksum is still checked against it. */
const MAX_DECODED = 1 << 30;

/**
 * The records of a batch whose stored bytes passed their checksum: the bytes themselves, or what
 * they decompress to; when they do not decompress, a string saying why, for the caller to report
 * as damage where it knows the file and offset. LZ4 batches decode into `alloc(length)` when it is
 * given (a buffer the caller recycles; the records are its first `length` bytes), else into a new
 * buffer.
 */
export function batchRecords(codec: Codec, stored: Buffer, alloc?: (length: number) => Buffer): Buffer | string {
  if (codec === 'none') return stored;
  if (codec === 'lz4') {
    const size = lz4DecodedLength(stored);
    if (size < 0 || size > MAX_DECODED) return `its lz4 data does not decompress: ${size < 0 ? 'it is shorter than its length prefix' : `it announces ${size} bytes`}`;
    // Into a new buffer, lz4-napi is about twice as fast as decoding in JavaScript (which is as
    // fast into a buffer already in use); without the package, an LZ4 log still reads.
    if (!alloc && lz4Reader !== null) {
      try {
        lz4Reader ??= lz4Codec();
      } catch {
        lz4Reader = null;
      }
      if (lz4Reader) {
        try {
          return lz4Reader.uncompressSync(stored);
        } catch (err) {
          return `its lz4 data does not decompress: ${(err as Error).message}`;
        }
      }
    }
    const out = alloc ? alloc(size) : Buffer.allocUnsafe(size);
    const n = lz4DecodeInto(stored, out);
    if (typeof n === 'string') return `its lz4 data does not decompress: ${n}`;
    return out.length === n ? out : out.subarray(0, n);
  }
  try {
    return zlib.brotliDecompressSync(stored);
  } catch (err) {
    return `its ${codec} data does not decompress: ${(err as Error).message}`;
  }
}

/** Growing buffer that encodes records of one batch. */
export class BatchEncoder extends ByteSink {
  count = 0;
  baseOffset = 0;

  /** `codec`: how seal() stores the records (uncompressed whenever compressing would not shrink them). */
  constructor(readonly codec: Codec = 'none') {
    super(1 << 16);
    this.len = BATCH_HEADER;
  }

  reset(baseOffset: number): void {
    this.len = BATCH_HEADER;
    this.count = 0;
    this.baseOffset = baseOffset;
  }

  private lastHeaders: Record<string, string> | undefined;
  private lastHeaderText: string | null = null;

  add(r: AppendRecord): number {
    // Writers pass the same headers object for runs of records (a table's schema id): encode once.
    if (r.headers !== this.lastHeaders) {
      this.lastHeaders = r.headers;
      this.lastHeaderText = r.headers ? JSON.stringify(r.headers) : null;
    }
    const hdr = this.lastHeaderText;
    // Upper bound first (UTF-8 is at most 3 bytes per UTF-16 unit), exact lengths while writing.
    const max = 4 + 8 + 12 + maxLen(r.key) + maxLen(r.value) + (hdr === null ? 0 : hdr.length * 3);
    this.ensure(max);
    const b = this.buf;
    const start = this.len;
    b.writeDoubleBE(r.timestamp, start + 4);
    let p = this.writeField(b, start + 12, r.key);
    p = this.writeField(b, p, r.value);
    p = this.writeField(b, p, hdr);
    b.writeUInt32BE(p - start - 4, start);
    this.len = p;
    this.count++;
    return p - start;
  }

  private writeField(b: Buffer, p: number, v: Buffer | string | null): number {
    if (v === null) {
      b.writeInt32BE(-1, p);
      return p + 4;
    }
    const n = typeof v === 'string' ? b.write(v, p + 4, 'utf8') : v.copy(b, p + 4);
    b.writeInt32BE(n, p);
    return p + 4 + n;
  }

  /**
   * Finishes the header, compressing the records when that makes them smaller, and returns the
   * batch bytes (a view of the internal buffer, valid until the next reset).
   */
  seal(): Buffer {
    const b = this.buf;
    let end = this.len;
    let magic = MAGIC.none;
    if (this.codec !== 'none') {
      const z = compress(this.codec, b.subarray(BATCH_HEADER, this.len));
      if (z.length < this.len - BATCH_HEADER) {
        // Smaller than what it replaces, so it fits in place.
        z.copy(b, BATCH_HEADER);
        end = BATCH_HEADER + z.length;
        magic = MAGIC[this.codec];
      }
    }
    b.writeUInt32BE(magic, 0);
    b.writeUInt32BE(end - BATCH_HEADER, 4);
    b.writeUInt32BE(crc32(b, BATCH_HEADER, end), 8);
    b.writeUInt32BE(Math.floor(this.baseOffset / 0x100000000), 12);
    b.writeUInt32BE(this.baseOffset >>> 0, 16);
    b.writeUInt32BE(this.count, 20);
    return b.subarray(0, end);
  }
}

export interface BatchHeader {
  codec: Codec;
  /** Bytes stored after the header (compressed, when the codec is not `none`). */
  payloadLength: number;
  crc: number;
  baseOffset: number;
  count: number;
}

export function readBatchHeader(b: Buffer, pos: number): BatchHeader | null {
  if (pos + BATCH_HEADER > b.length) return null;
  const codec = CODEC_OF.get(b.readUInt32BE(pos));
  if (codec === undefined) return null;
  return {
    codec,
    payloadLength: b.readUInt32BE(pos + 4),
    crc: b.readUInt32BE(pos + 8),
    baseOffset: b.readUInt32BE(pos + 12) * 0x100000000 + b.readUInt32BE(pos + 16),
    count: b.readUInt32BE(pos + 20),
  };
}

/**
 * The number of records in a batch's (decompressed) payload, by walking their length prefixes; -1
 * when the lengths do not end exactly at the end of the payload.
 */
export function countRecords(payload: Buffer): number {
  let p = 0;
  let n = 0;
  while (p + 4 <= payload.length) {
    p += 4 + payload.readUInt32BE(p);
    n++;
  }
  return p === payload.length ? n : -1;
}

/** The headers text last parsed, and its object (shared by every record that carries the same text). */
let lastHeaderBytes = Buffer.alloc(0);
let lastHeaders: Readonly<Record<string, string>> = {};

const u32 = (b: Buffer, p: number) => b[p] * 0x1000000 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
const i32 = (b: Buffer, p: number) => (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];

/**
 * The headers object of the headers text at `b[at, at + len)`. Consecutive records mostly carry
 * the same headers (a schema id): each text is parsed once, and records with equal headers share
 * one frozen object.
 */
export function headersAt(b: Buffer, at: number, len: number): Readonly<Record<string, string>> {
  if (!sameBytes(b, at, len, lastHeaderBytes)) {
    lastHeaders = Object.freeze(JSON.parse(b.toString('utf8', at, at + len)));
    lastHeaderBytes = Buffer.from(b.subarray(at, at + len));
  }
  return lastHeaders;
}

/** Whether `b[from, from + len)` holds the bytes of `last` (compared in place: no string per record). */
function sameBytes(b: Buffer, from: number, len: number, last: Buffer): boolean {
  if (len !== last.length) return false;
  // From the end: headers texts differ in their values (a schema id's hash), not their names.
  for (let i = len - 1; i >= 0; i--) if (b[from + i] !== last[i]) return false;
  return true;
}

/**
 * Where the fields of the record framed at byte `p` of a verified batch payload lie, written into
 * `f` (no allocation: the sink reader walks payloads with one Frame). A null key, value or
 * headers has length -1.
 */
export interface Frame {
  /** The whole record's bytes, its length prefix included: the next record starts there. */
  length: number;
  keyAt: number;
  keyLen: number;
  valueAt: number;
  valueLen: number;
  headersAt: number;
  headersLen: number;
}

export function frameAt(payload: Buffer, p: number, f: Frame): void {
  f.length = 4 + u32(payload, p);
  let q = p + 12;
  const kl = i32(payload, q);
  f.keyAt = q += 4;
  f.keyLen = kl;
  if (kl > 0) q += kl;
  const vl = i32(payload, q);
  f.valueAt = q += 4;
  f.valueLen = vl;
  if (vl > 0) q += vl;
  f.headersLen = i32(payload, q);
  f.headersAt = q + 4;
}

/** The record framed at byte `p` as a StoredRecord (what readers of `Log.read` get), at offset `offset`. */
export function recordAt(payload: Buffer, p: number, offset: number, topic: string, partition: number): import('../types.ts').StoredRecord {
  const out: import('../types.ts').StoredRecord[] = [];
  const size = 4 + u32(payload, p);
  decodeRecords(payload.subarray(p, p + size), offset, topic, partition, offset, out, 1);
  return out[0];
}

/**
 * Decodes the records of a verified batch payload. Keys and values are views of `payload` (the
 * caller allocates it per read and never reuses it), so a record keeps its batch's bytes alive
 * while it is held. Records with equal headers share one frozen headers object. It reads the
 * framing `frameAt` describes inline: through a Frame, `log.read` measured ~7 % slower.
 */
export function decodeRecords(payload: Buffer, baseOffset: number, topic: string, partition: number, from: number, out: import('../types.ts').StoredRecord[], maxBytes: number): number {
  let p = 0;
  let off = baseOffset;
  let bytes = 0;
  const end = payload.length;
  while (p < end) {
    const size = u32(payload, p);
    if (off >= from) {
      const ts = payload.readDoubleBE(p + 4);
      let q = p + 12;
      const kl = i32(payload, q);
      q += 4;
      const key = kl >= 0 ? payload.subarray(q, q + kl) : null;
      if (kl > 0) q += kl;
      const vl = i32(payload, q);
      q += 4;
      const value = vl >= 0 ? payload.subarray(q, q + vl) : null;
      if (vl > 0) q += vl;
      const hl = i32(payload, q);
      q += 4;
      const rec: import('../types.ts').StoredRecord = { topic, partition, offset: off, key, value, timestamp: ts };
      if (hl >= 0) rec.headers = headersAt(payload, q, hl) as Record<string, string>;
      out.push(rec);
      bytes += size;
      if (bytes >= maxBytes) return bytes;
    }
    p += 4 + size;
    off++;
  }
  return bytes;
}
