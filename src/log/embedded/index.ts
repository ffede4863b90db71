/**
 * The embedded log backend: topics and partitions as segment files on local disk, atomic
 * multi-partition commits through a journal, recovery that truncates whatever was not committed.
 * See docs/log.md for the format and guarantees.
 */
import { closeSync, constants, existsSync, watch, type FSWatcher, fdatasync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { partitionFor } from '../partitioner.ts';
import type { AppendRecord, Consumer, Log, LogCapabilities, PartitionOffsets, PayloadChunk, PayloadRead, Producer, ReadResult, StoredRecord, TopicConfig, TopicInfo } from '../types.ts';
import { ReadConsumer } from '../consumer.ts';
import { BATCH_HEADER, BatchEncoder, batchRecords, codecFor, countRecords, DEFAULT_COMPRESSION, decodeRecords, readBatchHeader, type Codec, type Compression } from './format.ts';
import { crc32 } from '../../core/crc32.ts';
import { JournalWriter, partKey, readJournal, type JournalState, type PartEnd } from './journal.ts';
import { logError } from '../errors.ts';
import { makeDirsSync } from '../../core/dirs.ts';

const fdatasyncP = promisify(fdatasync);
const FLUSH_BYTES = 1 << 20;
const JOURNAL_COMPACT_BYTES = 8 << 20;
/** Log directories this process has open for writing. */
const OPEN_FOR_WRITE = new Set<string>();
const TOPIC_RE = /^[A-Za-z0-9._-]{1,249}$/;

export interface EmbeddedLogOptions {
  dir: string;
  segmentBytes?: number;
  defaultPartitions?: number;
  retentionCheckMs?: number;
  readOnly?: boolean;
  /** How new batches are stored (log.compression); batches already written keep theirs. */
  compression?: Compression;
}

interface Part {
  topic: string;
  partition: number;
  dir: string;
  /** Base offsets of segment files, ascending. */
  segments: number[];
  committedEnd: number;
  committedSeg: number;
  committedPos: number;
  writeEnd: number;
  writeSeg: number;
  writePos: number;
  fd: number | null;
  enc: BatchEncoder;
  owner: EmbeddedProducer | null;
  /**
   * Where the last read stopped: offset `offset` lies in the batch at byte `pos` of segment `seg`,
   * which starts at offset `base`, and `payload` (when set) holds that batch's verified records. A
   * read that stops inside a batch (maxBytes) thus goes on without reading and checking the batch
   * again.
   */
  readCache: { offset: number; seg: number; pos: number; base: number; payload: Buffer | null } | null;
}

interface Topic {
  info: TopicInfo;
  parts: Part[];
}

const segName = (base: number) => `${String(base).padStart(20, '0')}.seg`;
/** How long a compacted topic keeps a tombstone by default (Kafka's delete.retention.ms). */
const TOMBSTONE_RETENTION_MS = 24 * 3600_000;

export class EmbeddedLog implements Log {
  readonly backend = 'embedded';
  /**
   * One process writes; commits of any size span partitions through the journal; offsets are
   * dense, but in compacted topics, whose closed segments compaction rewrites (`compact`).
   */
  readonly capabilities: LogCapabilities = { atomicMultiPartition: true, maxCommitBytes: null, maxCommitRecords: null, compaction: true, denseOffsets: true, concurrentReaders: true };
  readonly dir: string;
  readonly segmentBytes: number;
  readonly readOnly: boolean;
  /** Pending bytes of a partition written out as a batch before commit (bounds memory; lets segments roll). */
  readonly flushBytes: number;
  /** The codec new batches are written with (`auto` resolved; `none` for read-only handles). */
  readonly compression: Codec;
  private readonly topics = new Map<string, Topic>();
  private readonly state: JournalState = { producers: new Map(), parts: new Map() };
  private journal: JournalWriter | null = null;
  private journalRead = { validEnd: 0, size: 0, ino: 0 };
  private readonly producers = new Map<string, EmbeddedProducer>();
  private readonly readFds = new Map<string, number>();
  private readonly closedSizes = new Map<string, number>();
  private waiters: { topic: string; partition: number; offset: number; resolve: () => void }[] = [];
  private retentionTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: EmbeddedLogOptions) {
    this.dir = opts.dir;
    this.segmentBytes = opts.segmentBytes ?? 64 << 20;
    this.readOnly = opts.readOnly ?? false;
    this.flushBytes = Math.min(FLUSH_BYTES, this.segmentBytes);
    this.compression = this.readOnly ? 'none' : codecFor(opts.compression ?? DEFAULT_COMPRESSION);
  }

  // ---------- open / recovery ----------

  async open(retentionCheckMs: number): Promise<void> {
    if (this.readOnly) {
      if (!existsSync(this.dir)) throw logError('LOG_MISSING', `no log at ${this.dir}: run the pipeline first, or pass the right --log-dir / --config`);
    } else {
      try {
        makeDirsSync(join(this.dir, 'topics'));
        makeDirsSync(join(this.dir, 'groups'));
      } catch (e) {
        throw logError('LOG_DIR', `cannot create the log directory ${this.dir}: ${(e as Error).message}. Set log.dir to a directory this process can create and write`, { cause: e });
      }
      this.lock();
    }
    try {
      this.journalRead = readJournal(this.journalPath, this.state);
      this.loadTopics();
      if (!this.readOnly) {
        this.journal = new JournalWriter(this.journalPath, this.journalRead.validEnd);
        for (const t of this.topics.values()) for (const p of t.parts) this.recoverPart(p, true);
      }
    } catch (e) {
      // A damaged log is not left locked by this process.
      this.journal?.close();
      this.journal = null;
      if (!this.readOnly) {
        rmSync(join(this.dir, 'LOCK'), { force: true });
        OPEN_FOR_WRITE.delete(resolve(this.dir));
      }
      throw e;
    }
    if (!this.readOnly) {
      if (retentionCheckMs > 0) {
        this.retentionTimer = setInterval(() => void this.enforceRetention().catch(() => {}), retentionCheckMs);
        this.retentionTimer.unref();
      }
    }
  }

  private get journalPath(): string {
    return join(this.dir, 'commits.journal');
  }

  private lock(): void {
    const path = join(this.dir, 'LOCK');
    if (OPEN_FOR_WRITE.has(resolve(this.dir))) throw logError('LOG_LOCKED', `the log at ${this.dir} is open for writing by process ${process.pid} (this one) already. Open it once, or read-only for readers.`);
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, 'utf8').trim());
      let alive = false;
      if (pid && pid !== process.pid) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch {
          alive = false;
        }
      }
      if (alive) throw logError('LOG_LOCKED', `the log at ${this.dir} is open for writing by process ${pid}. Stop that process (or use another log.dir); readers such as sluice tail open it read-only.`);
    }
    writeFileSync(path, String(process.pid));
    OPEN_FOR_WRITE.add(resolve(this.dir));
  }

  private loadTopics(): void {
    const tdir = join(this.dir, 'topics');
    if (!existsSync(tdir)) return;
    for (const name of readdirSync(tdir)) {
      if (this.topics.has(name)) continue;
      const cfgPath = join(tdir, name, 'topic.json');
      if (!existsSync(cfgPath)) continue;
      const info = JSON.parse(readFileSync(cfgPath, 'utf8')) as TopicInfo;
      this.topics.set(name, { info, parts: Array.from({ length: info.partitions }, (_, i) => this.loadPart(name, i)) });
    }
  }

  private loadPart(topic: string, partition: number): Part {
    const dir = join(this.dir, 'topics', topic, String(partition));
    makeDirsSync(dir);
    const segments = readdirSync(dir)
      .filter((f) => f.endsWith('.seg'))
      .map((f) => Number(f.slice(0, -4)))
      .sort((a, b) => a - b);
    const pe = this.state.parts.get(partKey(topic, partition));
    const [end, seg, pos] = pe ? [pe[2], pe[3], pe[4]] : [0, 0, 0];
    return { topic, partition, dir, segments, committedEnd: end, committedSeg: seg, committedPos: pos, writeEnd: end, writeSeg: seg, writePos: pos, fd: null, enc: new BatchEncoder(this.compression), owner: null, readCache: null };
  }

  /**
   * Truncates a partition to its committed end: drops torn and uncommitted data. With `verify`
   * (on open), also reads the committed part of the active segment, the one written last, and
   * checks every batch in it (header, offsets, checksum): damage there is reported now, before
   * anything is appended after it.
   */
  private recoverPart(p: Part, verify = false): void {
    for (const base of p.segments.filter((b) => b > p.committedSeg)) rmSync(join(p.dir, segName(base)));
    p.segments = p.segments.filter((b) => b <= p.committedSeg);
    const path = join(p.dir, segName(p.committedSeg));
    if (existsSync(path)) {
      const fd = openSync(path, 'r+');
      const size = fstatSync(fd).size;
      if (size < p.committedPos) {
        closeSync(fd);
        throw logError('LOG_CORRUPT', `log segment ${path} has ${size} bytes but the journal says ${p.committedPos} were committed: committed records were lost (disk damage or a file changed by hand). Restore the log directory from a backup, or move it away to start a new log.`);
      }
      if (size !== p.committedPos) {
        ftruncateSync(fd, p.committedPos);
        fsyncSync(fd);
      }
      try {
        if (verify) verifySegment(fd, path, p);
      } finally {
        closeSync(fd);
      }
    } else if (p.committedEnd > 0 && p.committedPos > 0) {
      throw logError('LOG_CORRUPT', `log segment ${path} is missing but the journal says it holds committed records up to offset ${p.committedEnd}. The log directory was damaged; restore it or start a new one.`);
    }
  }

  /** Read-only handles pick up commits made by the writing process. */
  private refresh(): void {
    if (!this.readOnly) return;
    let st: { size: number; ino: number };
    try {
      st = statSync(this.journalPath);
    } catch {
      return;
    }
    if (st.ino !== this.journalRead.ino || st.size < this.journalRead.validEnd) {
      this.state.producers.clear();
      this.state.parts.clear();
      this.journalRead = readJournal(this.journalPath, this.state, 0);
    } else if (st.size > this.journalRead.validEnd) {
      this.journalRead = readJournal(this.journalPath, this.state, this.journalRead.validEnd);
    } else return;
    this.loadTopics();
    for (const t of this.topics.values()) {
      for (const p of t.parts) {
        const pe = this.state.parts.get(partKey(p.topic, p.partition));
        if (!pe) continue;
        [p.committedEnd, p.committedSeg, p.committedPos] = [pe[2], pe[3], pe[4]];
        const before = p.segments;
        p.segments = readdirSync(p.dir)
          .filter((f) => f.endsWith('.seg'))
          .map((f) => Number(f.slice(0, -4)))
          .filter((b) => b <= p.committedSeg)
          .sort((a, b) => a - b);
        // Segments retention removed: their records are gone for this reader too.
        const gone = before.filter((b) => !p.segments.includes(b));
        for (const b of gone) this.dropReadFd(join(p.dir, segName(b)));
        let replaced = false;
        if (t.info.compaction) {
          // Segments compaction rewrote (a new file under the same name): read the new one, and
          // let the old one's space go.
          for (const b of p.segments) {
            const path = join(p.dir, segName(b));
            const fd = this.readFds.get(path);
            if (fd === undefined || b >= p.committedSeg) continue;
            let ino = -1;
            try {
              ino = statSync(path).ino;
            } catch {
              // Removed meanwhile: the next refresh drops it.
            }
            if (ino !== fstatSync(fd).ino) {
              this.dropReadFd(path);
              replaced = true;
            }
          }
        }
        if (gone.length || replaced) p.readCache = null;
      }
    }
  }

  // ---------- topics ----------

  async createTopic(name: string, config: TopicConfig): Promise<void> {
    if (this.readOnly) throw logError('LOG_READ_ONLY', 'this log handle is read-only');
    if (!TOPIC_RE.test(name) || name === '.' || name === '..') throw logError('LOG_TOPIC_NAME', `topic name ${JSON.stringify(name)} is not valid: use letters, digits, '.', '_' and '-' (at most 249), other than '.' and '..'`);
    if (this.topics.has(name)) throw logError('LOG_TOPIC_EXISTS', `topic ${name} already exists`);
    if (!Number.isInteger(config.partitions) || config.partitions < 1) throw logError('LOG_TOPIC_CONFIG', `topic ${name}: partitions must be a positive integer`);
    const tdir = join(this.dir, 'topics', name);
    makeDirsSync(tdir);
    const info: TopicInfo = { name, ...config };
    const tmp = join(tdir, 'topic.json.tmp');
    writeFileSync(tmp, JSON.stringify(info));
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(tdir, 'topic.json'));
    this.fsyncDir(tdir);
    this.fsyncDir(join(this.dir, 'topics'));
    this.topics.set(name, { info, parts: Array.from({ length: config.partitions }, (_, i) => this.loadPart(name, i)) });
    for (const l of this.topicListeners) l(name);
  }

  private readonly topicListeners = new Set<(topic: string) => void>();

  onTopicCreated(listener: (topic: string) => void): () => void {
    this.topicListeners.add(listener);
    return () => this.topicListeners.delete(listener);
  }

  async ensureTopic(name: string, config: TopicConfig): Promise<TopicInfo> {
    this.refresh();
    const t = this.topics.get(name);
    if (t) return t.info;
    await this.createTopic(name, config);
    return this.topics.get(name)!.info;
  }

  async listTopics(): Promise<TopicInfo[]> {
    this.refresh();
    return [...this.topics.values()].map((t) => t.info).sort((a, b) => a.name.localeCompare(b.name));
  }

  async topicInfo(name: string): Promise<TopicInfo | null> {
    this.refresh();
    return this.topics.get(name)?.info ?? null;
  }

  private topic(name: string): Topic {
    const t = this.topics.get(name);
    if (!t) throw logError('LOG_TOPIC_MISSING', `topic ${name} does not exist in the log at ${this.dir}; see the topics with: sluice status --log-dir ${this.dir}`);
    return t;
  }

  private part(topic: string, partition: number): Part {
    const t = this.topic(topic);
    const p = t.parts[partition];
    if (!p) throw logError('LOG_PARTITION_MISSING', `topic ${topic} has partitions 0..${t.parts.length - 1}, not ${partition}`);
    return p;
  }

  async offsets(topic: string): Promise<PartitionOffsets[]> {
    this.refresh();
    return this.topic(topic).parts.map((p) => ({ partition: p.partition, start: Math.min(p.segments[0] ?? p.committedEnd, p.committedEnd), end: p.committedEnd }));
  }

  // ---------- writing ----------

  async openProducer(id: string): Promise<{ producer: Producer; checkpoint: string | null }> {
    if (this.readOnly) throw logError('LOG_READ_ONLY', 'this log handle is read-only');
    if (this.producers.has(id)) throw logError('LOG_PRODUCER_BUSY', `producer ${id} is already open on this log`);
    const p = new EmbeddedProducer(this, id);
    this.producers.set(id, p);
    return { producer: p, checkpoint: this.state.producers.get(id) ?? null };
  }

  /** @internal */ partForWrite(topic: string, key: Buffer | string | null, partition: number | undefined): Part {
    const t = this.topic(topic);
    const idx = partition ?? partitionFor(key, t.parts.length);
    const p = t.parts[idx];
    if (!p) throw logError('LOG_PARTITION_MISSING', `topic ${topic} has partitions 0..${t.parts.length - 1}, not ${idx}`);
    return p;
  }

  /** @internal Writes the partition's pending batch to its segment file (not yet committed). */
  flushPart(p: Part, dirty: Set<number>): void {
    if (p.enc.count === 0) return;
    const batch = p.enc.seal();
    if (p.fd !== null && p.writePos >= this.segmentBytes) {
      // Roll: the full segment is made durable now, later batches go to a new file.
      fsyncSync(p.fd);
      dirty.delete(p.fd);
      closeSync(p.fd);
      p.fd = null;
    }
    if (p.fd === null) {
      if (p.writePos >= this.segmentBytes) {
        p.writeSeg = p.enc.baseOffset;
        p.writePos = 0;
      }
      if (!p.segments.includes(p.writeSeg)) {
        p.segments.push(p.writeSeg);
        p.segments.sort((a, b) => a - b);
      }
      p.fd = openSync(join(p.dir, segName(p.writeSeg)), constants.O_RDWR | constants.O_CREAT);
      if (fstatSync(p.fd).size === 0) this.fsyncDir(p.dir);
    }
    writeSync(p.fd, batch, 0, batch.length, p.writePos);
    p.writePos += batch.length;
    dirty.add(p.fd);
    p.enc.reset(p.writeEnd);
  }

  /**
   * @internal Writes out `parts` (the set the producer handed over; it keeps appending to a new one
   * meanwhile) and returns their ends, to commit. The ends are taken at once, before any await, so
   * records appended while the fsyncs run belong to the next commit.
   */
  sealParts(parts: Set<Part>, dirty: Set<number>): PartEnd[] {
    for (const p of parts) this.flushPart(p, dirty);
    return [...parts].map((p) => [p.topic, p.partition, p.writeEnd, p.writeSeg, p.writePos]);
  }

  /** @internal Makes the sealed data of a commit durable (its segment files' pending writes). */
  syncData(dirty: Set<number>): Promise<unknown> {
    return Promise.all([...dirty].map((fd) => fdatasyncP(fd)));
  }

  /**
   * @internal Makes a commit whose data is durable (`syncData`) visible: its journal record,
   * written once the producer's previous commit is in the journal, and synced.
   */
  async journalParts(producer: EmbeddedProducer, parts: Set<Part>, ends: PartEnd[], checkpoint: string): Promise<void> {
    const j = this.journal!;
    const fd = j.append({ p: producer.id, c: checkpoint, parts: ends });
    await fdatasyncP(fd);
    this.state.producers.set(producer.id, checkpoint);
    for (const pe of ends) this.state.parts.set(partKey(pe[0], pe[1]), pe);
    const list = [...parts];
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      [p.committedEnd, p.committedSeg, p.committedPos] = [ends[i][2], ends[i][3], ends[i][4]];
      if (!producer.owns(p)) p.owner = null;
    }
    if (j.size > JOURNAL_COMPACT_BYTES) j.compact(this.state, () => this.fsyncDir(this.dir));
    this.notify();
  }

  /** @internal */ abortParts(parts: Set<Part>): void {
    for (const p of parts) {
      p.enc.reset(p.committedEnd);
      if (p.fd !== null) {
        closeSync(p.fd);
        p.fd = null;
      }
      p.writeEnd = p.committedEnd;
      p.writeSeg = p.committedSeg;
      p.writePos = p.committedPos;
      p.owner = null;
      this.recoverPart(p);
    }
  }

  /** @internal */ producerClosed(id: string): void {
    this.producers.delete(id);
  }

  private fsyncDir(dir: string): void {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private notify(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      const t = this.topics.get(w.topic);
      const p = t?.parts[w.partition];
      if (p && p.committedEnd > w.offset) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  // ---------- reading ----------

  private dropReadFd(path: string): void {
    this.closedSizes.delete(path);
    const fd = this.readFds.get(path);
    if (fd === undefined) return;
    closeSync(fd);
    this.readFds.delete(path);
  }

  /** The size of a closed segment (it no longer changes), looked up once. */
  private closedSize(p: Part, seg: number, fd: number): number {
    const path = join(p.dir, segName(seg));
    let size = this.closedSizes.get(path);
    if (size === undefined) this.closedSizes.set(path, (size = fstatSync(fd).size));
    return size;
  }

  private scratchBuf = Buffer.allocUnsafe(0);

  /** `n` bytes of scratch for a compressed batch's stored bytes (walk is synchronous); a batch above 4 MiB gets its own. */
  private scratch(n: number): Buffer {
    if (n > 4 << 20) return Buffer.allocUnsafe(n);
    if (this.scratchBuf.length < n) this.scratchBuf = Buffer.allocUnsafe(Math.max(n, Math.min(4 << 20, this.scratchBuf.length * 2)));
    return this.scratchBuf.subarray(0, n);
  }

  private readFd(p: Part, seg: number): number {
    const path = join(p.dir, segName(seg));
    let fd = this.readFds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r');
      this.readFds.set(path, fd);
    }
    return fd;
  }

  async read(topic: string, partition: number, offset: number, maxBytes = 1 << 20): Promise<ReadResult> {
    const records = await this.readRecords(topic, partition, offset, maxBytes);
    if (records.length) return { records, next: records[records.length - 1].offset + 1 };
    // Nothing from `offset` to the committed end: in a compacted topic that may be a gap (records
    // compaction removed), which the next read must not start in again.
    return { records, next: Math.max(offset, this.part(topic, partition).committedEnd) };
  }

  openConsumer(): Consumer {
    return new ReadConsumer(this);
  }

  private async readRecords(topic: string, partition: number, offset: number, maxBytes: number): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    let bytes = 0;
    const end = this.walk(
      topic,
      partition,
      offset,
      (payload, base, _count, from) => {
        const before = out.length;
        bytes += decodeRecords(payload, base, topic, partition, from, out, maxBytes - bytes);
        return out.length > before ? out[out.length - 1].offset + 1 : from;
      },
      () => bytes < maxBytes,
      () => out.length > 0,
    );
    return out[out.length - 1]?.offset >= end ? out.filter((r) => r.offset < end) : out;
  }

  async readPayloads(topic: string, partition: number, offset: number, maxBytes = 1 << 20, alloc?: (length: number) => Buffer): Promise<PayloadRead> {
    const chunks: PayloadChunk[] = [];
    let bytes = 0;
    const end = this.walk(
      topic,
      partition,
      offset,
      (payload, base, count, from) => {
        chunks.push({ payload, base, from: Math.max(from, base), end: base + count });
        bytes += payload.length;
        return base + count;
      },
      () => bytes < maxBytes,
      () => chunks.length > 0,
      alloc,
    );
    const last = chunks[chunks.length - 1];
    if (!last) return { chunks, next: Math.max(offset, end) };
    if (last.end > end) last.end = end;
    return { chunks, next: last.end };
  }

  /**
   * Walks the committed batches of a partition from the one holding `offset`, checking each (its
   * place, CRC, codec, count) and handing its records to `take(payload, base, count, from)`, which
   * returns the offset it got to: the batch's end to go on (while `more()`), less to stop inside
   * it (the next read from there goes on from the verified payload). Damage is thrown, or ends the
   * walk when `got()` says something was taken already. Returns the partition's committed end.
   * With `alloc`, payloads are decoded (or read, when stored as they are) into its buffers.
   */
  private walk(topic: string, partition: number, offset: number, take: (payload: Buffer, base: number, count: number, from: number) => number, more: () => boolean, got: () => boolean, alloc?: (length: number) => Buffer): number {
    this.refresh();
    const p = this.part(topic, partition);
    const start = Math.min(p.segments[0] ?? p.committedEnd, p.committedEnd);
    if (offset < start) throw logError('LOG_OFFSET_OUT_OF_RANGE', `offset ${offset} of ${topic}/${partition} is no longer in the log (retention); the earliest available offset is ${start}`);
    if (offset >= p.committedEnd) return p.committedEnd;
    let si = 0;
    for (let i = 0; i < p.segments.length; i++) if (p.segments[i] <= offset) si = i;
    let seg = p.segments[si];
    let pos = 0;
    const c = p.readCache;
    if (c && c.offset === offset) {
      seg = c.seg;
      pos = c.pos;
      si = p.segments.indexOf(seg);
      if (si < 0) {
        si = 0;
        seg = p.segments[0];
        pos = 0;
      }
    }
    const head = Buffer.allocUnsafe(BATCH_HEADER);
    // The offset the batch at `pos` must start with: batches follow each other without gaps, and
    // a segment's first batch starts at the offset it is named by. Anything else is damage, which
    // is reported, never stepped over (a reader must not skip committed records): what was read
    // before it is returned, and the read that starts at it fails.
    let expected = pos === 0 ? seg : c!.base;
    // In a compacted topic a batch may start past where the one before it ended (compaction
    // removed the records between), never before it.
    const gaps = this.topic(topic).info.compaction === true;
    const misplaced = (at: number) => (gaps ? at < expected : at !== expected);
    const stop = (err: Error): true => {
      if (got()) return true;
      throw err;
    };
    for (;;) {
      const closed = seg !== p.committedSeg;
      const fd = this.readFd(p, seg);
      const limit = closed ? this.closedSize(p, seg, fd) : p.committedPos;
      if (pos >= limit && !closed) break;
      const path = join(p.dir, segName(seg));
      if (pos >= limit) {
        // The end of a closed segment: the next one must continue where it stopped.
        const nextSeg = p.segments[si + 1];
        if (nextSeg === undefined || seg > p.committedSeg) break;
        if (misplaced(nextSeg) && stop(damaged(path, pos, topic, partition, expected, `the segment ends at offset ${expected} but the next one starts at ${nextSeg}`))) break;
        si++;
        seg = nextSeg;
        pos = 0;
        continue;
      }
      const n = readSync(fd, head, 0, BATCH_HEADER, pos);
      const h = n === BATCH_HEADER ? readBatchHeader(head, 0) : null;
      if (!h && stop(damaged(path, pos, topic, partition, expected, n < BATCH_HEADER ? `a batch header is cut short (${n} of ${BATCH_HEADER} bytes)` : 'no batch header where one must start (bad magic)'))) break;
      if (misplaced(h!.baseOffset) && stop(damaged(path, pos, topic, partition, expected, `the batch header says offset ${h!.baseOffset}, but the batch before it ends at ${expected}`))) break;
      const next = pos + BATCH_HEADER + h!.payloadLength;
      if ((next > limit || h!.count === 0) && stop(damaged(path, pos, topic, partition, expected, h!.count === 0 ? 'a batch header counts no records' : `a batch runs past the ${closed ? 'end of the file' : `committed end (byte ${limit})`}`))) break;
      if (h!.baseOffset + h!.count <= offset) {
        expected = h!.baseOffset + h!.count;
        pos = next;
        continue;
      }
      let payload: Buffer;
      // A payload cached by `read` may be held by its records: never handed out as a buffer of the caller's own.
      if (!alloc && c?.payload && c.seg === seg && c.pos === pos && c.base === h!.baseOffset) payload = c.payload;
      else {
        const n = h!.payloadLength;
        // A compressed batch's stored bytes are dead once decoded, so they are read into scratch;
        // an uncompressed batch's are its records, read into the caller's buffer when it gives one.
        const stored = h!.codec !== 'none' ? this.scratch(n) : alloc ? alloc(n).subarray(0, n) : Buffer.allocUnsafe(n);
        readSync(fd, stored, 0, n, pos + BATCH_HEADER);
        if (crc32(stored) !== h!.crc && stop(damaged(path, pos, topic, partition, expected, 'checksum mismatch'))) break;
        const records = batchRecords(h!.codec, stored, alloc);
        if (typeof records === 'string' && stop(damaged(path, pos, topic, partition, expected, records))) break;
        payload = records as Buffer;
        if (countRecords(payload) !== h!.count && stop(damaged(path, pos, topic, partition, expected, `the batch header counts ${h!.count} records, its payload holds another number`))) break;
      }
      const lastOff = take(payload, h!.baseOffset, h!.count, offset) - 1;
      if (lastOff === h!.baseOffset + h!.count - 1) {
        p.readCache = { offset: lastOff + 1, seg, pos: next, base: lastOff + 1, payload: null };
        offset = lastOff + 1;
        expected = offset;
        pos = next;
      } else {
        // Stopped inside the batch: the next read goes on from its verified records.
        p.readCache = { offset: lastOff + 1, seg, pos, base: h!.baseOffset, payload };
        break;
      }
      if (!more()) break;
    }
    return p.committedEnd;
  }

  async waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<void> {
    this.refresh();
    const p = this.part(topic, partition);
    if (p.committedEnd > offset) return;
    if (this.readOnly) {
      // Another process writes: its commits append to the journal, which wakes this at once
      // (inotify on the log directory, which also sees the journal replaced when it is
      // compacted); a 50 ms poll stays as the fallback where such events do not arrive.
      const end = Date.now() + timeoutMs;
      while (Date.now() < end && !this.closed) {
        await this.journalChanged(Math.min(50, end - Date.now()));
        this.refresh();
        if (p.committedEnd > offset) return;
      }
      return;
    }
    // The timer is not unref'd: a process awaiting only this wait must not exit with it pending.
    await new Promise<void>((resolve) => {
      const w = { topic, partition, offset, resolve: () => (clearTimeout(timer), resolve()) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve();
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  private watcher: FSWatcher | null | undefined;
  private journalWaiters = new Set<() => void>();

  /** Resolves when the journal changes, or after `ms` (read-only handles). */
  private journalChanged(ms: number): Promise<void> {
    if (this.watcher === undefined) {
      try {
        this.watcher = watch(this.dir, { persistent: false }, (_event, file) => {
          if (file !== null && file !== 'commits.journal') return;
          const ws = [...this.journalWaiters];
          this.journalWaiters.clear();
          for (const w of ws) w();
        });
        this.watcher.on('error', () => {
          this.watcher?.close();
          this.watcher = null;
        });
      } catch {
        this.watcher = null; // no inotify (or no watch left): polling alone
      }
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.journalWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.journalWaiters.add(done);
    });
  }

  // ---------- consumer groups ----------

  private groupPath(group: string): string {
    return join(this.dir, 'groups', encodeURIComponent(group) + '.json');
  }

  async commitOffsets(group: string, offsets: { topic: string; partition: number; offset: number }[]): Promise<void> {
    const path = this.groupPath(group);
    makeDirsSync(join(this.dir, 'groups'));
    const cur: Record<string, Record<string, number>> = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
    for (const o of offsets) (cur[o.topic] ??= {})[String(o.partition)] = o.offset;
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, JSON.stringify(cur));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
    this.fsyncDir(join(this.dir, 'groups'));
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    const path = this.groupPath(group);
    const m = new Map<number, number>();
    if (!existsSync(path)) return m;
    const cur = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Record<string, number>>;
    for (const [p, o] of Object.entries(cur[topic] ?? {})) m.set(Number(p), o);
    return m;
  }

  async listGroups(): Promise<string[]> {
    const dir = join(this.dir, 'groups');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => decodeURIComponent(f.slice(0, -5)));
  }

  // ---------- retention ----------

  async enforceRetention(): Promise<void> {
    if (this.readOnly) return;
    const now = Date.now();
    let removed = false;
    for (const t of this.topics.values()) {
      if (t.info.compaction) for (const p of t.parts) if (await this.compact(p, t.info.tombstoneRetentionMs ?? TOMBSTONE_RETENTION_MS, now)) removed = true;
      const { retentionMs, retentionBytes } = t.info;
      if (retentionMs === undefined && retentionBytes === undefined) continue;
      for (const p of t.parts) {
        // Never the segment being written or holding the committed end.
        const closed = p.segments.filter((b) => b < p.committedSeg && b < p.writeSeg);
        const sizes = new Map(p.segments.map((b) => [b, statSync(join(p.dir, segName(b))).size]));
        let total = [...sizes.values()].reduce((a, b) => a + b, 0);
        for (const base of closed) {
          const path = join(p.dir, segName(base));
          const tooOld = retentionMs !== undefined && statSync(path).mtimeMs < now - retentionMs;
          const tooBig = retentionBytes !== undefined && total > retentionBytes;
          if (!tooOld && !tooBig) break;
          this.dropReadFd(path);
          rmSync(path);
          removed = true;
          total -= sizes.get(base) ?? 0;
          p.segments = p.segments.filter((b) => b !== base);
          p.readCache = null;
        }
      }
    }
    // An empty journal record tells read-only handles (which follow the journal) to look again.
    if (removed) this.journal!.append({ parts: [] });
  }

  /**
   * Compacts a partition of a compacted topic: each closed segment (never the one being written
   * or holding the committed end) is rewritten without the records a later record of the same key
   * replaces, and without tombstones (null values) that are their key's latest record and whose
   * segment closed more than `tombstoneMs` ago. Records keep their offsets: a record survives as
   * a batch of its own, so batches skip the removed offsets (the read path allows that in
   * compacted topics only). The new file replaces the old one by rename, so a crash leaves either
   * whole (a leftover `.compacting` file is ignored, and overwritten by the next compaction); readers in other
   * processes keep the old file open and read it to its end. Records without a key are kept.
   * Returns whether a segment was rewritten.
   */
  private async compact(p: Part, tombstoneMs: number, now: number): Promise<boolean> {
    const closed = p.segments.filter((b) => b < p.committedSeg && b < p.writeSeg);
    if (!closed.length) return false;
    // The latest offset of every key, over all committed records of the partition.
    const latest = new Map<string, number>();
    const all: StoredRecord[] = [];
    for (let at = p.segments[0]; at < p.committedEnd; ) {
      const rs = await this.readRecords(p.topic, p.partition, at, 8 << 20);
      if (!rs.length) break;
      for (const r of rs) if (r.key !== null) latest.set(r.key.toString('latin1'), r.offset);
      all.push(...rs.filter((r) => r.offset < p.committedSeg));
      at = rs[rs.length - 1].offset + 1;
    }
    let rewritten = false;
    for (let i = 0; i < closed.length; i++) {
      const base = closed[i];
      const end = closed[i + 1] ?? p.committedSeg;
      const path = join(p.dir, segName(base));
      const oldTombstones = statSync(path).mtimeMs < now - tombstoneMs;
      const inSeg = all.filter((r) => r.offset >= base && r.offset < end);
      const keep = inSeg.filter((r) => r.key === null || (latest.get(r.key.toString('latin1')) === r.offset && !(r.value === null && oldTombstones)));
      if (keep.length === inSeg.length) continue;
      const tmp = `${path}.compacting`;
      const fd = openSync(tmp, 'w');
      try {
        const enc = new BatchEncoder(this.compression);
        for (const r of keep) {
          enc.reset(r.offset);
          enc.add(r);
          const b = enc.seal();
          writeSync(fd, b, 0, b.length);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      this.dropReadFd(path);
      renameSync(tmp, path);
      rewritten = true;
    }
    if (rewritten) {
      this.fsyncDir(p.dir);
      p.readCache = null;
    }
    return rewritten;
  }

  /**
   * @internal For tests: writes pending batches to disk and drops every handle without committing
   * or cleaning up, as a crash would leave things (the LOCK file names this live pid, so the
   * process-local lock is released too).
   */
  simulateCrash(): void {
    for (const t of this.topics.values()) for (const p of t.parts) this.flushPart(p, new Set());
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    for (const t of this.topics.values()) for (const p of t.parts) if (p.fd !== null) closeSync(p.fd);
    this.journal?.close();
    rmSync(join(this.dir, 'LOCK'), { force: true });
    OPEN_FOR_WRITE.delete(resolve(this.dir));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    for (const p of this.producers.values()) await p.close();
    for (const fd of this.readFds.values()) closeSync(fd);
    this.readFds.clear();
    for (const t of this.topics.values()) for (const p of t.parts) if (p.fd !== null) closeSync(p.fd);
    this.journal?.close();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    this.watcher?.close();
    for (const w of [...this.journalWaiters]) w();
    if (!this.readOnly) {
      rmSync(join(this.dir, 'LOCK'), { force: true });
      OPEN_FOR_WRITE.delete(resolve(this.dir));
    }
  }
}

export class EmbeddedProducer implements Producer {
  private parts = new Set<Part>();
  private dirty = new Set<number>();
  /** The last commit called, settled or not (rejected when it failed). */
  private last: Promise<void> = Promise.resolve();
  pendingBytes = 0;
  pendingRecords = 0;
  private closed = false;

  constructor(private readonly log: EmbeddedLog, readonly id: string) {}

  append(topic: string, record: AppendRecord, partition?: number): number {
    if (this.closed) throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} is closed`);
    const p = this.log.partForWrite(topic, record.key, partition);
    // Membership in this commit's set, not ownership: a partition of the commit in flight is
    // still owned by this producer but belongs to the next commit's set too once appended to.
    if (!this.parts.has(p)) {
      if (p.owner !== null && p.owner !== this) throw logError('LOG_PARTITION_BUSY', `${topic}/${p.partition} has uncommitted records of producer ${p.owner.id}`);
      p.owner = this;
      this.parts.add(p);
    }
    if (p.enc.count === 0) p.enc.reset(p.writeEnd);
    this.pendingBytes += p.enc.add(record);
    p.writeEnd++;
    this.pendingRecords++;
    if (p.enc.len >= this.log.flushBytes) this.log.flushPart(p, this.dirty);
    return p.partition;
  }

  async commit(checkpoint: string): Promise<void> {
    if (this.closed) throw logError('LOG_PRODUCER_CLOSED', `producer ${this.id} is closed`);
    // Hand the current records over; appends may continue while this commit's fsyncs run.
    const parts = this.parts;
    const dirty = this.dirty;
    this.parts = new Set();
    this.dirty = new Set();
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    const ends = this.log.sealParts(parts, dirty);
    // Pipelined: this commit's data is synced at once, beside the journal sync of the commit
    // before it. Its journal record is written only once that data is durable and the previous
    // record is in the journal, so a durable record still proves its data durable, and commits
    // reach the journal in the order they were called. One that follows a failed commit fails too.
    const synced = this.log.syncData(dirty);
    // Its failure is reported below, once the commit before has settled: handled from now on, so a
    // failed sync during that wait is not an unhandled rejection (which would end the process).
    synced.catch(() => {});
    const previous = this.last;
    const done = (async () => {
      try {
        await previous;
      } finally {
        await synced;
      }
      await this.log.journalParts(this, parts, ends, checkpoint);
    })();
    this.last = done;
    done.catch(() => {}); // reported to the caller below; a later commit sees it through `previous`
    await done;
  }

  /** @internal */ owns(p: Part): boolean {
    return this.parts.has(p);
  }

  async abort(): Promise<void> {
    // A commit in flight keeps its records: drop only what was appended after it, once it is done
    // (rolling back to the committed ends before would cut its data from under its fsync).
    await this.last.catch(() => {});
    // After an abort the producer starts afresh: a failed commit before it fails no later one.
    this.last = Promise.resolve();
    this.log.abortParts(this.parts);
    this.parts.clear();
    this.dirty.clear();
    this.pendingBytes = 0;
    this.pendingRecords = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.abort();
    this.closed = true;
    this.log.producerClosed(this.id);
  }
}

/** Checks every batch of a partition's active segment up to its committed end (see recoverPart). */
function verifySegment(fd: number, path: string, p: Part): void {
  const head = Buffer.allocUnsafe(BATCH_HEADER);
  let pos = 0;
  let expected = p.committedSeg;
  while (pos < p.committedPos) {
    const n = readSync(fd, head, 0, BATCH_HEADER, pos);
    const h = n === BATCH_HEADER ? readBatchHeader(head, 0) : null;
    if (!h) throw damaged(path, pos, p.topic, p.partition, expected, n < BATCH_HEADER ? 'a batch header is cut short' : 'no batch header where one must start (bad magic)', true);
    if (h.baseOffset !== expected) throw damaged(path, pos, p.topic, p.partition, expected, `the batch header says offset ${h.baseOffset}, but the batch before it ends at ${expected}`, true);
    const next = pos + BATCH_HEADER + h.payloadLength;
    if (next > p.committedPos || h.count === 0) throw damaged(path, pos, p.topic, p.partition, expected, h.count === 0 ? 'a batch header counts no records' : `a batch runs past the committed end (byte ${p.committedPos})`, true);
    const stored = Buffer.allocUnsafe(h.payloadLength);
    if (readSync(fd, stored, 0, h.payloadLength, pos + BATCH_HEADER) !== h.payloadLength) throw damaged(path, pos, p.topic, p.partition, expected, 'the file ends inside a batch', true);
    if (crc32(stored) !== h.crc) throw damaged(path, pos, p.topic, p.partition, expected, 'checksum mismatch', true);
    const payload = batchRecords(h.codec, stored);
    if (typeof payload === 'string') throw damaged(path, pos, p.topic, p.partition, expected, payload, true);
    if (countRecords(payload) !== h.count) throw damaged(path, pos, p.topic, p.partition, expected, `the batch header counts ${h.count} records, its payload holds another number`, true);
    expected += h.count;
    pos = next;
  }
  if (expected !== p.committedEnd) throw damaged(path, pos, p.topic, p.partition, expected, `the segment's batches end at offset ${expected}, the journal says ${p.committedEnd} were committed`, true);
}

/**
 * LOG_CORRUPT for damage found in a committed segment: where, what, which records cannot be read,
 * and what to do. Nothing at or after the damaged batch is returned.
 */
function damaged(path: string, pos: number, topic: string, partition: number, offset: number, what: string, opening = false): Error {
  const effect = opening
    ? 'the log is not opened for writing, so nothing is appended after the damage'
    : 'nothing at or past it is returned (a sink or processor that reaches it stops there, applying nothing past it)';
  return logError('LOG_CORRUPT', `log segment ${path} is damaged at byte ${pos} (${what}): the records of ${topic}/${partition} from offset ${offset} on cannot be read, and ${effect}. ${RECOVERY}`);
}

/** What to do about a damaged log. */
const RECOVERY = 'Restore the log directory from a backup taken after those records were written (a source refuses a copy older than its replication position), or start over: stop the pipeline, move the log directory away, empty the sinks\' targets (their stored offsets refer to this log) and run again, which takes a new snapshot';

export async function openEmbeddedLog(opts: EmbeddedLogOptions): Promise<EmbeddedLog> {
  const log = new EmbeddedLog(opts);
  await log.open(opts.retentionCheckMs ?? 60_000);
  return log;
}
