/**
 * Avro object container files (specification 1.12, "Object Container Files"): the header (magic
 * `Obj` 1, the metadata map with `avro.schema` and `avro.codec`, a 16-byte sync marker), then
 * blocks of records (count, byte size, the records — compressed by the codec —, the sync marker).
 * Codecs: `null` and `deflate` (raw RFC 1951, node:zlib); others are AVRO_CODEC_UNSUPPORTED.
 *
 * Writing: a ContainerWriter encodes records into one open block and ends it after
 * `blockRecords` records or once it holds `blockBytes`; finished output is taken in chunks, so
 * a file of any size is written in bounded memory (writeContainerFile does that to a path).
 *
 * Reading: every block is checked (its count and size are sane, its sync marker is the header's,
 * its data inflates, it holds exactly its count of records); a failure is AVRO_FILE_CORRUPT naming
 * the block (0-based) and the byte offset it starts at. readContainer reads a whole buffer;
 * ContainerStreamReader reads from any stream of chunks holding one block at a time.
 *
 * The schema in the file is parsed leniently (as the specification asks of readers: unknown and
 * invalid logical types fall back to their underlying type); the header keeps its text as written.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { SluiceError } from '../errors.ts';
import { AvroCodec, AvroReader, AvroWriter, MAX_EMPTY_ITEMS, type CodecOptions } from './binary.ts';
import { avroError } from './errors.ts';
import { parseSchemaText, stringifySchema, type AvroSchema } from './schema.ts';

const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1
const SYNC_SIZE = 16;
/** The largest block data a file may declare (Java's limit too: a block is read into one array). */
const MAX_BLOCK_BYTES = 0x7fffffff;
/** A header larger than this is taken as corrupt rather than read on. */
const MAX_HEADER_BYTES = 64 << 20;

export type ContainerCodec = 'null' | 'deflate';
const CODECS: ReadonlySet<string> = new Set(['null', 'deflate']);

export interface ContainerWriteOptions {
  /** Block compression (default `deflate`). */
  codec?: ContainerCodec;
  /** zlib's deflate level, 0 (none) to 9 (smallest); default zlib's (6). */
  deflateLevel?: number;
  /** A block ends after this many records (default 10,000)… */
  blockRecords?: number;
  /** …or once its encoded records reach this many bytes (default 64,000, as Java's writer). */
  blockBytes?: number;
  /** File metadata besides `avro.schema` and `avro.codec` (keys starting `avro.` are reserved), e.g. Iceberg's `schema`, `partition-spec`, `format-version`. */
  metadata?: Record<string, string | Uint8Array>;
  /** The 16-byte sync marker (default: random, as the specification asks); set for reproducible files. */
  syncMarker?: Uint8Array;
}

/** A file's header: its schema, codec, metadata and sync marker. */
export class ContainerHeader {
  constructor(
    readonly schema: AvroSchema,
    /** `avro.schema` as written in the file. */
    readonly schemaText: string,
    readonly codec: ContainerCodec,
    /** Every metadata entry, `avro.schema` and `avro.codec` included. */
    readonly metadata: Map<string, Buffer>,
    readonly sync: Buffer,
    /** The header's size in bytes: where the first block starts. */
    readonly size: number,
  ) {}

  /** A metadata entry as UTF-8 text (undefined when absent). */
  text(key: string): string | undefined {
    return this.metadata.get(key)?.toString('utf8');
  }
}

export interface ContainerBlock {
  /** 0-based position of the block in the file. */
  index: number;
  /** Byte offset of the block in the file. */
  offset: number;
  records: unknown[];
}

// ---------- writing ----------

/** Writes a container file: append records, take the output as it is ready. */
export class ContainerWriter {
  readonly sync: Buffer;
  readonly codec: ContainerCodec;
  /** Records appended. */
  records = 0;
  /** Bytes of output produced so far (taken or not). */
  bytes = 0;
  private readonly avro: AvroCodec;
  private readonly block: AvroWriter;
  private readonly head = new AvroWriter(32);
  private readonly blockRecords: number;
  private readonly blockBytes: number;
  private readonly level: number | undefined;
  private inBlock = 0;
  private out: Buffer[] = [];
  private outBytes = 0;
  private finished = false;

  constructor(
    readonly schema: AvroSchema,
    opts: ContainerWriteOptions = {},
  ) {
    this.codec = opts.codec ?? 'deflate';
    if (!CODECS.has(this.codec)) throw avroError('AVRO_CODEC_UNSUPPORTED', `the codec ${JSON.stringify(this.codec)} is not one Sluice writes (null, deflate)`);
    this.level = opts.deflateLevel;
    this.blockRecords = Math.max(1, opts.blockRecords ?? 10_000);
    this.blockBytes = Math.max(1, opts.blockBytes ?? 64_000);
    this.avro = new AvroCodec(schema);
    this.block = new AvroWriter(Math.min(this.blockBytes * 2, 1 << 20));
    const sync = opts.syncMarker ?? randomBytes(SYNC_SIZE);
    if (sync.length !== SYNC_SIZE) throw avroError('AVRO_VALUE_INVALID', `a sync marker is ${SYNC_SIZE} bytes, not ${sync.length}`);
    this.sync = Buffer.from(sync);
    this.push(this.header(opts.metadata ?? {}));
  }

  private header(metadata: Record<string, string | Uint8Array>): Buffer {
    const w = new AvroWriter(4096);
    w.writeFixed(MAGIC);
    const entries: [string, Uint8Array][] = [
      ['avro.schema', Buffer.from(stringifySchema(this.schema), 'utf8')],
      ['avro.codec', Buffer.from(this.codec, 'utf8')],
    ];
    for (const [k, v] of Object.entries(metadata)) {
      if (k.startsWith('avro.')) throw avroError('AVRO_VALUE_INVALID', `the metadata key ${JSON.stringify(k)} is reserved (keys starting "avro." are Avro's own)`);
      if (typeof v !== 'string' && !(v instanceof Uint8Array)) throw avroError('AVRO_VALUE_INVALID', `the metadata ${JSON.stringify(k)} must be a string or bytes`);
      entries.push([k, typeof v === 'string' ? Buffer.from(v, 'utf8') : v]);
    }
    w.writeLong(entries.length);
    for (const [k, v] of entries) {
      w.writeString(k);
      w.writeBytes(v);
    }
    w.writeByte(0);
    w.writeFixed(this.sync);
    return w.toBuffer();
  }

  private push(b: Buffer): void {
    this.out.push(b);
    this.outBytes += b.length;
    this.bytes += b.length;
  }

  /** Appends one record (AVRO_VALUE_INVALID if it does not match the schema; the file stays as it was). */
  append(value: unknown): void {
    if (this.finished) throw new Error('bug: ContainerWriter.append after finish');
    this.avro.write(this.block, value);
    this.records++;
    if (++this.inBlock >= this.blockRecords || this.block.pos >= this.blockBytes) this.endBlock();
  }

  /** Ends the open block now (a no-op when it is empty), e.g. before taking output mid-file. */
  endBlock(): void {
    if (this.inBlock === 0) return;
    const raw = this.block.view();
    const data = this.codec === 'deflate' ? deflateRawSync(raw, this.level === undefined ? {} : { level: this.level }) : raw;
    const h = this.head;
    h.reset();
    h.writeLong(this.inBlock);
    h.writeLong(data.length);
    const b = Buffer.allocUnsafe(h.pos + data.length + SYNC_SIZE);
    h.buf.copy(b, 0, 0, h.pos);
    data.copy(b, h.pos);
    this.sync.copy(b, h.pos + data.length);
    this.push(b);
    this.block.reset();
    this.inBlock = 0;
  }

  /** Bytes of output ready to be taken. */
  get pendingBytes(): number {
    return this.outBytes;
  }

  /** The output ready since the last call: the header first, then finished blocks. */
  take(): Buffer[] {
    const out = this.out;
    this.out = [];
    this.outBytes = 0;
    return out;
  }

  /** Ends the last block and returns the rest of the output; nothing can be appended after. */
  finish(): Buffer[] {
    this.endBlock();
    this.finished = true;
    return this.take();
  }
}

/** A whole container file in memory. */
export function encodeContainer(schema: AvroSchema, records: Iterable<unknown>, opts: ContainerWriteOptions = {}): Buffer {
  const w = new ContainerWriter(schema, opts);
  for (const r of records) w.append(r);
  return Buffer.concat(w.finish());
}

/**
 * Writes a container file at `path` (created or truncated), taking records from a (sync or async)
 * iterable, writing each megabyte of output as it is ready. `fsync`: flush to disk before returning.
 * On an error (a record that does not match, a failed write) the partial file is removed.
 */
export async function writeContainerFile(
  path: string,
  schema: AvroSchema,
  records: Iterable<unknown> | AsyncIterable<unknown>,
  opts: ContainerWriteOptions & { fsync?: boolean } = {},
): Promise<{ records: number; bytes: number }> {
  const w = new ContainerWriter(schema, opts);
  const fh = await open(path, 'w');
  let done = false;
  try {
    for await (const r of records) {
      w.append(r);
      if (w.pendingBytes >= 1 << 20) await fh.writev(w.take());
    }
    await fh.writev(w.finish());
    if (opts.fsync) await fh.sync();
    done = true;
  } finally {
    await fh.close();
    if (!done) await rm(path, { force: true });
  }
  return { records: w.records, bytes: w.bytes };
}

// ---------- reading ----------

function corrupt(message: string, cause?: unknown): SluiceError {
  return avroError('AVRO_FILE_CORRUPT', message, cause === undefined ? undefined : { cause });
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');

/**
 * The header at the start of `buf[0, end)`, or undefined when the data ends before the header does
 * (a stream reads on; a whole file is corrupt). Throws when what is there is no header.
 */
function parseHeader(buf: Buffer, end: number): ContainerHeader | undefined {
  const head = Math.min(MAGIC.length, end);
  if (buf.compare(MAGIC, 0, head, 0, head) !== 0) {
    throw corrupt(`not an Avro object container file: it starts with ${hex(buf.subarray(0, head))}, not 4f 62 6a 01 ("Obj" 1)`);
  }
  if (end < MAGIC.length) return undefined;
  const r = new AvroReader(buf, MAGIC.length, end);
  const metadata = new Map<string, Buffer>();
  /** A length-prefixed string of the metadata map; undefined when it goes past the data. */
  const chunk = (what: string): Buffer | undefined => {
    const at = r.pos;
    const n = r.readLong();
    if (r.overrun) return undefined;
    if (typeof n !== 'number' || n < 0) throw corrupt(`the header's metadata has a ${what} of length ${n} (at byte ${at})`);
    if (r.pos + n > end) return undefined;
    r.pos += n;
    return buf.subarray(r.pos - n, r.pos);
  };
  for (;;) {
    const at = r.pos;
    let n = r.readLong();
    if (r.overrun) return undefined;
    if (n === 0) break;
    if (typeof n !== 'number') throw corrupt(`the header's metadata declares ${n} entries (at byte ${at})`);
    if (n < 0) {
      n = -n;
      r.readLong();
    }
    for (let i = 0; i < n; i++) {
      const k = chunk('key');
      const v = k && chunk('value');
      if (!k || !v) return undefined;
      metadata.set(k.toString('utf8'), Buffer.from(v));
    }
  }
  if (r.pos + SYNC_SIZE > end) return undefined;
  const sync = Buffer.from(buf.subarray(r.pos, r.pos + SYNC_SIZE));
  const text = metadata.get('avro.schema')?.toString('utf8');
  if (text === undefined) throw corrupt(`the header has no avro.schema (its metadata keys: ${[...metadata.keys()].join(', ') || 'none'})`);
  let schema: AvroSchema;
  try {
    schema = parseSchemaText(text, { mode: 'lenient' });
  } catch (e) {
    throw avroError('AVRO_SCHEMA_INVALID', `the file's avro.schema: ${(e as Error).message}`, { cause: e });
  }
  const codec = metadata.get('avro.codec')?.toString('utf8') ?? 'null';
  if (!CODECS.has(codec)) throw avroError('AVRO_CODEC_UNSUPPORTED', `the file is compressed with the codec ${JSON.stringify(codec)}; Sluice reads null and deflate`);
  return new ContainerHeader(schema, text, codec as ContainerCodec, metadata, sync, r.pos + SYNC_SIZE);
}

function headerEnded(end: number): SluiceError {
  return corrupt(`the file ends inside its header (after ${end} bytes): it was cut short, or is no Avro file`);
}

interface Frame {
  count: number;
  /** Where the block's data starts and ends. */
  start: number;
  end: number;
}

/** The block whose frame starts at `pos` (file offset `base + pos`); undefined when `buf[pos, end)` holds less than the whole block. */
function parseFrame(buf: Buffer, pos: number, end: number, index: number, header: ContainerHeader, base = 0): Frame | undefined {
  const where = `block ${index} (at byte ${base + pos})`;
  const r = new AvroReader(buf, pos, end);
  let count: number | bigint;
  let size: number | bigint;
  try {
    count = r.readLong();
    size = r.readLong();
  } catch (e) {
    // Two longs take at most 20 bytes: with fewer there, the rest may be on its way.
    if (end - pos < 20) return undefined;
    throw corrupt(`${where}: its record count and size do not decode (${(e as Error).message})`, e);
  }
  if (r.overrun) return undefined;
  if (typeof count !== 'number' || count < 0) throw corrupt(`${where}: its record count ${count} is negative or absurd`);
  if (typeof size !== 'number' || size < 0 || size > MAX_BLOCK_BYTES) throw corrupt(`${where}: its byte size ${size} is negative or beyond ${MAX_BLOCK_BYTES}`);
  const start = r.pos;
  if (start + size + SYNC_SIZE > end) return undefined;
  if (buf.compare(header.sync, 0, SYNC_SIZE, start + size, start + size + SYNC_SIZE) !== 0) {
    throw corrupt(`${where}: the sync marker after its ${size} bytes of data is not the header's (${hex(buf.subarray(start + size, start + size + SYNC_SIZE))}): the block is damaged, or the file was cut or spliced`);
  }
  return { count, start, end: start + size };
}

/** The records of a block's data (already split off the file). */
function decodeBlock(data: Buffer, count: number, header: ContainerHeader, avro: AvroCodec, index: number, offset: number): unknown[] {
  const where = `block ${index} (at byte ${offset})`;
  let raw = data;
  if (header.codec === 'deflate') {
    try {
      raw = inflateRawSync(data);
    } catch (e) {
      throw corrupt(`${where}: its deflate data does not inflate (${(e as Error).message})`, e);
    }
  }
  if (avro.minBytes > 0 ? count * avro.minBytes > raw.length : count > MAX_EMPTY_ITEMS) {
    throw corrupt(`${where}: it declares ${count} records, more than its ${raw.length} bytes of ${header.codec === 'deflate' ? 'inflated ' : ''}data can hold`);
  }
  const r = new AvroReader(raw);
  const records: unknown[] = new Array(count);
  let i = 0;
  try {
    for (; i < count; i++) records[i] = avro.read(r);
  } catch (e) {
    if (e instanceof SluiceError && e.code === 'AVRO_DATA_INVALID') throw corrupt(`${where}, record ${i} of ${count}: ${e.message} in the block's ${header.codec === 'deflate' ? 'inflated ' : ''}data`, e);
    throw e;
  }
  if (r.pos !== raw.length) throw corrupt(`${where}: ${raw.length - r.pos} bytes are left over after its ${count} records`);
  return records;
}

function endedEarly(index: number, pos: number, end: number): SluiceError {
  return corrupt(`block ${index} (at byte ${pos}): the file ends inside the block (${end - pos} bytes of it are there): the file was cut short`);
}

/** Reads a container file held whole in memory (bytes and fixed values are views into it). */
export class ContainerReader {
  readonly header: ContainerHeader;
  private readonly buf: Buffer;
  private readonly avro: AvroCodec;

  constructor(bytes: Uint8Array, opts: CodecOptions = {}) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const header = parseHeader(this.buf, this.buf.length);
    if (!header) throw headerEnded(this.buf.length);
    this.header = header;
    this.avro = new AvroCodec(this.header.schema, opts);
  }

  *blocks(): Generator<ContainerBlock> {
    const { buf, header } = this;
    let pos = header.size;
    for (let index = 0; pos < buf.length; index++) {
      const f = parseFrame(buf, pos, buf.length, index, header);
      if (!f) throw endedEarly(index, pos, buf.length);
      yield { index, offset: pos, records: decodeBlock(buf.subarray(f.start, f.end), f.count, header, this.avro, index, pos) };
      pos = f.end + SYNC_SIZE;
    }
  }

  *records(): Generator<unknown> {
    for (const b of this.blocks()) yield* b.records;
  }
}

/** A whole container file's header and records. */
export function readContainer(bytes: Uint8Array, opts: CodecOptions = {}): { header: ContainerHeader; records: unknown[] } {
  const r = new ContainerReader(bytes, opts);
  const records: unknown[] = [];
  for (const b of r.blocks()) for (const x of b.records) records.push(x);
  return { header: r.header, records };
}

/** Reads a container file from a stream of chunks, holding one block (and a chunk) in memory at a time. */
export class ContainerStreamReader {
  private buf: Buffer;
  private start = 0;
  private end = 0;
  /** File offset of buf[0]. */
  private base = 0;
  private eof = false;
  private readonly avro: AvroCodec;

  private constructor(
    private readonly it: AsyncIterator<Uint8Array>,
    buf: Buffer,
    end: number,
    readonly header: ContainerHeader,
    opts: CodecOptions,
    eof: boolean,
  ) {
    this.buf = buf;
    this.end = end;
    this.start = header.size;
    this.eof = eof;
    this.avro = new AvroCodec(header.schema, opts);
  }

  /** Reads the header from `source` (AVRO_FILE_CORRUPT when it is not there). */
  static async open(source: AsyncIterable<Uint8Array>, opts: CodecOptions = {}): Promise<ContainerStreamReader> {
    const it = source[Symbol.asyncIterator]();
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (;;) {
        const next = await it.next();
        if (!next.done) {
          chunks.push(next.value);
          size += next.value.length;
        }
        const buf = Buffer.concat(chunks, size);
        const header = parseHeader(buf, size);
        if (header) return new ContainerStreamReader(it, buf, size, header, opts, next.done === true);
        if (next.done) throw headerEnded(size);
        if (size > MAX_HEADER_BYTES) throw corrupt(`the header is larger than ${MAX_HEADER_BYTES} bytes: the file is damaged`);
      }
    } catch (e) {
      await it.return?.();
      throw e;
    }
  }

  /** Appends the next chunk to what is unread; false at the end of the stream. */
  private async more(): Promise<boolean> {
    if (this.eof) return false;
    const next = await this.it.next();
    if (next.done) {
      this.eof = true;
      return false;
    }
    const chunk = next.value;
    if (this.end + chunk.length > this.buf.length) {
      // What was read is dropped; the buffer grows only when what is unread and the chunk do not fit.
      const live = this.end - this.start;
      const need = live + chunk.length;
      if (need > this.buf.length) {
        const nb = Buffer.allocUnsafe(Math.max(need, 2 * this.buf.length));
        this.buf.copy(nb, 0, this.start, this.end);
        this.buf = nb;
      } else {
        this.buf.copyWithin(0, this.start, this.end);
      }
      this.base += this.start;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
    return true;
  }

  async *blocks(): AsyncGenerator<ContainerBlock> {
    try {
      for (let index = 0; ; index++) {
        while (this.start === this.end) if (!(await this.more())) return;
        let f: Frame | undefined;
        while (!(f = parseFrame(this.buf, this.start, this.end, index, this.header, this.base))) {
          if (!(await this.more())) throw endedEarly(index, this.base + this.start, this.base + this.end);
        }
        const offset = this.base + this.start;
        // The data is copied when it is not inflated: the buffer is reused, and bytes values are views into it.
        const data = this.header.codec === 'null' ? Buffer.from(this.buf.subarray(f.start, f.end)) : this.buf.subarray(f.start, f.end);
        this.start = f.end + SYNC_SIZE;
        yield { index, offset, records: decodeBlock(data, f.count, this.header, this.avro, index, offset) };
      }
    } finally {
      await this.it.return?.();
    }
  }

  /** Record by record (each through the async iterator: blocks() is several times cheaper per record). */
  async *records(): AsyncGenerator<unknown> {
    for await (const b of this.blocks()) yield* b.records;
  }
}

/** Opens a container file for reading block by block. */
export function openContainerFile(path: string, opts: CodecOptions = {}): Promise<ContainerStreamReader> {
  return ContainerStreamReader.open(createReadStream(path, { highWaterMark: 1 << 20 }), opts);
}

/** A whole container file's header and records. */
export async function readContainerFile(path: string, opts: CodecOptions = {}): Promise<{ header: ContainerHeader; records: unknown[] }> {
  const r = await openContainerFile(path, opts);
  const records: unknown[] = [];
  for await (const b of r.blocks()) for (const x of b.records) records.push(x);
  return { header: r.header, records };
}
