/**
 * On-disk format of segment files. A segment is a sequence of batches; a batch holds consecutive
 * records of one partition written by one flush:
 *   batch header (24 bytes): magic 'SLB1' u32 | payload length u32 | crc32(payload) u32 |
 *                            base offset (u64 as hi,lo u32) | record count u32
 *   payload: records, each: length u32 | timestamp f64 | key length i32 (-1 null) | key |
 *                           value length i32 (-1 null) | value | headers length i32 (-1 none) | headers JSON
 * A torn or corrupt batch (short, bad magic, bad crc) ends the valid part of the file.
 */
import type { AppendRecord } from '../types.ts';

const maxLen = (v: Buffer | string | null) => (v === null ? 0 : typeof v === 'string' ? v.length * 3 : v.length);
import { crc32 } from '../../core/crc32.ts';
import { ByteSink } from '../../core/bytes.ts';

export const BATCH_MAGIC = 0x534c4231; // 'SLB1'
export const BATCH_HEADER = 24;

/** Growing buffer that encodes records of one batch. */
export class BatchEncoder extends ByteSink {
  count = 0;
  baseOffset = 0;

  constructor() {
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

  /** Finishes the header and returns the batch bytes (a view of the internal buffer). */
  seal(): Buffer {
    const b = this.buf;
    b.writeUInt32BE(BATCH_MAGIC, 0);
    b.writeUInt32BE(this.len - BATCH_HEADER, 4);
    b.writeUInt32BE(crc32(b, BATCH_HEADER, this.len), 8);
    b.writeUInt32BE(Math.floor(this.baseOffset / 0x100000000), 12);
    b.writeUInt32BE(this.baseOffset >>> 0, 16);
    b.writeUInt32BE(this.count, 20);
    return b.subarray(0, this.len);
  }
}

export interface BatchHeader {
  payloadLength: number;
  crc: number;
  baseOffset: number;
  count: number;
}

export function readBatchHeader(b: Buffer, pos: number): BatchHeader | null {
  if (pos + BATCH_HEADER > b.length) return null;
  if (b.readUInt32BE(pos) !== BATCH_MAGIC) return null;
  return {
    payloadLength: b.readUInt32BE(pos + 4),
    crc: b.readUInt32BE(pos + 8),
    baseOffset: b.readUInt32BE(pos + 12) * 0x100000000 + b.readUInt32BE(pos + 16),
    count: b.readUInt32BE(pos + 20),
  };
}

/**
 * The number of records a batch payload holds, by walking their length prefixes; -1 when the
 * lengths do not end exactly at the end of the payload.
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

let lastHeaderText = '';
let lastHeaders: Readonly<Record<string, string>> = {};

/**
 * Decodes the records of a verified batch payload. Keys and values are views of `payload` (the
 * caller allocates it per read and never reuses it), so a record keeps its batch's bytes alive
 * while it is held. Records with equal headers share one frozen headers object.
 */
export function decodeRecords(payload: Buffer, baseOffset: number, topic: string, partition: number, from: number, out: import('../types.ts').StoredRecord[], maxBytes: number): number {
  let p = 0;
  let off = baseOffset;
  let bytes = 0;
  while (p < payload.length) {
    const size = payload.readUInt32BE(p);
    if (off >= from) {
      const ts = payload.readDoubleBE(p + 4);
      let q = p + 12;
      const kl = payload.readInt32BE(q);
      q += 4;
      const key = kl >= 0 ? payload.subarray(q, q + kl) : null;
      q += Math.max(kl, 0);
      const vl = payload.readInt32BE(q);
      q += 4;
      const value = vl >= 0 ? payload.subarray(q, q + vl) : null;
      q += Math.max(vl, 0);
      const hl = payload.readInt32BE(q);
      q += 4;
      const rec: import('../types.ts').StoredRecord = { topic, partition, offset: off, key, value, timestamp: ts };
      if (hl >= 0) {
        // Consecutive records mostly carry the same headers (a schema id): parse each text once.
        const text = payload.toString('latin1', q, q + hl);
        if (text !== lastHeaderText) {
          lastHeaderText = text;
          lastHeaders = Object.freeze(JSON.parse(payload.toString('utf8', q, q + hl)));
        }
        rec.headers = lastHeaders as Record<string, string>;
      }
      out.push(rec);
      bytes += size;
      if (bytes >= maxBytes) return bytes;
    }
    p += 4 + size;
    off++;
  }
  return bytes;
}
