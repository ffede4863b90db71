/**
 * Reads sink batches from the log. Keeps one read-ahead buffer per partition and assembles batches
 * bounded by records, bytes and time. Two ordering rules make batches safe to apply as a set:
 *
 * - Keys are partition-local (the key hash picks the partition), so the last change per key within a
 *   batch is its final state: the batch is reduced to one upsert or delete per key.
 * - A truncate is written to every partition of its topic. The reader applies it only when every
 *   partition of the topic has reached it, and only as the first thing of that topic in a batch:
 *   changes before it (in any partition) are applied by an earlier batch, changes after it by this
 *   or a later one.
 *
 * A record that is not a change event (no `op`, no schema) fails the read, unless the reader was
 * made to reject such records (a sink with an `onError` policy): then it ends its partition's part
 * of the batch, which carries it in `rejected` for the sink task to dead-letter or hold.
 */
import { coreError, isRetriable } from '../core/errors.ts';
import { SCHEMA_HEADER, type SchemaRecord } from '../core/schemas.ts';
import { connectJson, isConnectJson, payloadText } from '../core/serde/connect-json.ts';
import type { SchemaStore } from './schema-topic.ts';
import type { Log, PayloadChunk, StoredRecord } from '../log/types.ts';
import { frameAt, headersAt, recordAt, type Frame } from '../log/embedded/format.ts';
import type { ChangeOp, OffsetPosition, SinkBatch, SinkRecord, TableBatch } from '../sinks/types.ts';
import { sinkError } from '../sinks/errors.ts';

/** How a sink worker paces its reads (adaptive batching). */
export interface ReadPace {
  /** The target's apply in flight (the batch before the one being read), or null when it is idle. */
  busy(): Promise<unknown> | null;
  /** Resolves when the sink should look at its topics again (one was created): an idle read ends. */
  wake?: Promise<void>;
  woken?(): boolean;
}

export interface BatchLimits {
  maxRecords: number;
  maxBytes: number;
  /** How long to wait for a batch to fill once it has a first record. */
  maxDelayMs: number;
}

/** A payload buffer of the reader's own, and the last batch (its `seq`) that took a record from it. */
interface Lease {
  buf: Buffer;
  use: number;
}

/** Slabs are at least this large. */
const MIN_BUFFER = 64 << 10;
/** A free slab no read took again for this long is left to the GC (the load shrank). */
const FREE_MS = 5000;

/** The size of a slab for `n` bytes: a multiple of an eighth of the power of two below it, so at most 1/8 is spare. */
function slabSize(n: number): number {
  if (n <= MIN_BUFFER) return MIN_BUFFER;
  const step = 2 ** Math.floor(Math.log2(n)) / 8;
  return Math.ceil(n / step) * step;
}

/**
 * The reader's payload buffers. The log decodes each batch into one of them (readPayloads'
 * `alloc`), and the changes a sink gets are ranges of it; once every batch that took records from
 * a buffer has been applied (the sink task's `release`) and its partition has read past it, the
 * buffer decodes another batch. A reader draining a log at full speed otherwise leaves tens of MiB
 * of decoded batches for V8 to collect, which it does only every ~64 MiB of them.
 *
 * The rule that makes this safe: a sink must not keep a record's `bytes` (a view of the buffer)
 * past the apply of its batch; whatever it keeps, it copies (strings, its own buffers).
 */
class Recycler {
  constructor(
    /** How much a partition reads at a time. */
    readonly readBytes: number,
  ) {}

  /** The batch being read (ReadBatch.seq). */
  seq = 0;
  /** Every batch up to this one is done with. */
  private released = 0;
  /** Buffers partitions have read past, waiting for the batches that took from them. */
  private retired: Lease[] = [];
  /** Free buffers, each with the time it became free. */
  private free: { buf: Buffer; at: number }[] = [];

  /** A buffer of at least `n` bytes: the smallest free one that fits (unless it is over twice too large), or a new one. */
  take(n: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i].buf.length;
      if (len >= n && len <= 2 * Math.max(n, MIN_BUFFER) && (best < 0 || len < this.free[best].buf.length)) best = i;
    }
    if (best >= 0) {
      const b = this.free[best].buf;
      this.free[best] = this.free[this.free.length - 1];
      this.free.pop();
      return b;
    }
    return Buffer.allocUnsafeSlow(slabSize(n));
  }

  /** A buffer nothing uses any more (one lent but not filled, or one whose batches are all done). */
  give(buf: Buffer): void {
    this.free.push({ buf, at: Date.now() });
  }

  /** A partition read past `l`: its buffer is free once the last batch that took from it is done. */
  retire(l: Lease): void {
    if (l.use <= this.released) this.give(l.buf);
    else this.retired.push(l);
  }

  /**
   * Batch `seq` and every one before it are done with: their buffers are free. What a steady load
   * frees, the next batch takes again; free buffers no read took for FREE_MS go.
   */
  release(seq: number): void {
    if (seq <= this.released) return;
    this.released = seq;
    let keep = 0;
    for (const l of this.retired) {
      if (l.use <= seq) this.give(l.buf);
      else this.retired[keep++] = l;
    }
    this.retired.length = keep;
    const old = Date.now() - FREE_MS;
    keep = 0;
    for (const f of this.free) if (f.at >= old) this.free[keep++] = f;
    this.free.length = keep;
  }
}

/** Scratch for walking payloads: the fields of the record being looked at. */
const FRAME: Frame = { length: 0, keyAt: 0, keyLen: 0, valueAt: 0, valueLen: 0, headersAt: 0, headersLen: 0 };

/**
 * One partition a reader reads: where it stands, what it has buffered, and the record at its
 * head (`has`), described by fields instead of an object per record. With a log that offers
 * `readPayloads` (the embedded log) the buffer is the batches' own payloads, walked in place;
 * otherwise it is the records of `Log.read`.
 */
class Part {
  /** Where the read that filled the buffer says the next read continues (past any gap after its records). */
  readNext: number;
  private recs: StoredRecord[] = [];
  private ri = 0;
  private chunks: PayloadChunk[] = [];
  /** Per chunk, the reader's buffer holding its payload (null where the payload is not one). */
  private leases: (Lease | null)[] = [];
  private ci = 0;
  /** Byte position and offset of the next record to look at in chunks[ci]. */
  private pos = 0;
  private off = 0;
  /** The head record, when `has`: its offset, value (null: a tombstone) and key, as ranges of buffers. */
  has = false;
  offset = 0;
  val: Buffer | null = null;
  vs = 0;
  ve = 0;
  keyBuf: Buffer | null = null;
  ks = 0;
  ke = 0;
  headers: Readonly<Record<string, string>> | undefined;
  /** The head's bytes in its payload (for recordAt), or its StoredRecord. */
  private len = 0;
  private rec: StoredRecord | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** Next offset to hand out. */
    public next: number,
    private readonly buffers: Recycler,
  ) {
    this.readNext = next;
  }

  /** Makes the next buffered record the head; false when the buffer is spent. */
  load(): boolean {
    if (this.has) return true;
    if (this.ri < this.recs.length) {
      const r = (this.rec = this.recs[this.ri]);
      this.offset = r.offset;
      this.val = r.value;
      this.vs = 0;
      this.ve = r.value === null ? 0 : r.value.length;
      this.keyBuf = r.key;
      this.ks = 0;
      this.ke = r.key === null ? 0 : r.key.length;
      this.headers = r.headers;
      return (this.has = true);
    }
    while (this.ci < this.chunks.length) {
      const c = this.chunks[this.ci];
      if (this.off >= c.end) {
        // Past the last chunk of a slab: the slab is retired.
        const l = this.leases[this.ci];
        if (l && this.leases[this.ci + 1] !== l) this.buffers.retire(l);
        const n = this.chunks[++this.ci];
        if (n) {
          this.pos = 0;
          this.off = n.base;
        }
        continue;
      }
      const b = c.payload;
      frameAt(b, this.pos, FRAME);
      if (this.off < c.from) {
        this.pos += FRAME.length;
        this.off++;
        continue;
      }
      this.offset = this.off;
      this.len = FRAME.length;
      this.val = FRAME.valueLen < 0 ? null : b;
      this.vs = FRAME.valueAt;
      this.ve = FRAME.valueAt + Math.max(0, FRAME.valueLen);
      this.keyBuf = FRAME.keyLen < 0 ? null : b;
      this.ks = FRAME.keyAt;
      this.ke = FRAME.keyAt + Math.max(0, FRAME.keyLen);
      this.headers = FRAME.headersLen < 0 ? undefined : headersAt(b, FRAME.headersAt, FRAME.headersLen);
      return (this.has = true);
    }
    return false;
  }

  /** Reads on from `next` into an empty buffer; then as load(). */
  async fill(log: Log): Promise<boolean> {
    if (this.load()) return true;
    if (log.readPayloads) {
      // The batches of one read are decoded one after the other into the reader's buffers (slabs),
      // as many to a slab as fit, so that a partition of small commits holds one slab, not one per commit.
      const slabs: Lease[] = [];
      let room = 0;
      const r = await log.readPayloads(this.topic, this.partition, this.next, this.buffers.readBytes, (n) => {
        let s = slabs[slabs.length - 1];
        if (!s || room < n) {
          slabs.push((s = { buf: this.buffers.take(n), use: this.buffers.seq }));
          room = s.buf.length;
        }
        const at = s.buf.length - room;
        room -= n;
        return s.buf.subarray(at, at + n);
      });
      // Each chunk's slab; a slab no chunk uses (its batch was found damaged once decoded) goes
      // back. A chunk whose payload is in no slab (Brotli's output) is left to the GC.
      const leases: (Lease | null)[] = [];
      const used = new Set<Lease>();
      let j = 0;
      for (const c of r.chunks) {
        let k = j;
        while (k < slabs.length && slabs[k].buf.buffer !== c.payload.buffer) k++;
        if (k === slabs.length) {
          leases.push(null);
          continue;
        }
        leases.push(slabs[k]);
        used.add(slabs[k]);
        j = k;
      }
      for (const sl of slabs) if (!used.has(sl)) this.buffers.give(sl.buf);
      this.chunks = r.chunks;
      this.leases = leases;
      this.ci = 0;
      this.pos = 0;
      this.off = r.chunks[0]?.base ?? 0;
      this.readNext = r.next;
    } else {
      const r = await log.read(this.topic, this.partition, this.next, this.buffers.readBytes);
      this.recs = r.records;
      this.ri = 0;
      this.readNext = r.next;
    }
    return this.load();
  }

  /** Hands out the head: the partition stands past it. */
  advance(): void {
    this.next = this.offset + 1;
    this.has = false;
    if (this.rec) {
      this.rec = undefined;
      this.ri++;
    } else {
      this.taken();
      this.pos += this.len;
      this.off++;
    }
  }

  /** The batch being read takes (something of) the head: its buffer must outlive that batch. */
  private taken(): void {
    const l = this.leases[this.ci];
    if (l) l.use = this.buffers.seq;
  }

  /** The head as a StoredRecord (for the rare paths: rejected records, Connect JSON, truncates). */
  stored(): StoredRecord {
    if (this.rec) return this.rec;
    this.taken();
    return recordAt(this.chunks[this.ci].payload, this.pos, this.offset, this.topic, this.partition);
  }

  /** The head's value bytes (a view). */
  value(): Buffer {
    if (!this.rec) this.taken();
    return this.val!.subarray(this.vs, this.ve);
  }

  /** Forgets what is buffered and stands at `next`. */
  reset(next: number): void {
    this.next = this.readNext = next;
    this.recs = [];
    this.ri = 0;
    for (let i = this.ci; i < this.leases.length; i++) {
      const l = this.leases[i];
      if (l && this.leases[i + 1] !== l) this.buffers.retire(l);
    }
    this.leases = [];
    this.chunks = [];
    this.ci = 0;
    this.has = false;
    this.rec = undefined;
  }

  /** Whether the buffer is spent and the last read ended past `next` (a gap). */
  get atGap(): boolean {
    return !this.has && this.ri >= this.recs.length && this.ci >= this.chunks.length && this.readNext > this.next;
  }
}

/** A record the reader could not read as a change (not a change event, a schema the log lacks). */
export interface RejectedRecord {
  record: StoredRecord;
  error: unknown;
}

/** A batch as the reader hands it to the sink task: what the sink applies, and what only the task needs. */
export interface ReadBatch extends SinkBatch {
  /** Its place in the reader's sequence of batches (for `release`). */
  seq: number;
  /** Records rejected (see the class); each one's partition stands just before it in `offsets`. */
  rejected: RejectedRecord[];
  /** Per topic truncated in the batch: the positions just past the truncate in each of its partitions. */
  truncated: Map<string, OffsetPosition[]>;
  /**
   * A truncate of a topic whose partitions the reader shares with other workers (addTopic's
   * `only`): its own partitions stand at it, nothing past it is read, and the batch holds nothing
   * else. The sink task decides with the other workers' offsets who applies it (sink-task.ts).
   */
  barrier?: TruncateBarrier;
}

export interface TruncateBarrier {
  topic: string;
  /** The truncate, as the sink applies it. */
  record: SinkRecord;
  /** Its bytes: the same record stands in every partition of the topic. */
  value: Buffer;
  /** The reader's partitions of the topic and the truncate's offset in each. */
  at: { partition: number; offset: number }[];
}

const OP_MARK = Buffer.from('"op":"');

/**
 * The op of a Debezium envelope without parsing it: `op` comes after every row field, and inside a
 * JSON string the sequence `"op":"` cannot occur unescaped, so its last occurrence is the field.
 */
function opOf(value: Buffer, start: number, end: number, where?: { topic: string; partition: number; offset: number }): ChangeOp {
  const at = lastOpMark(value, start, end);
  if (at < 0) {
    // Where, not what: the record's bytes are someone's data.
    const rec = where ? `record ${where.topic}/${where.partition}@${where.offset} (${end - start} bytes)` : 'a log record';
    throw sinkError('SINK_BAD_RECORD', `${rec} has no "op" field: it is not a Debezium change event (written by something else?). Point the sink's topics at change topics only, or set onError: dlq to set such records aside`);
  }
  return String.fromCharCode(value[at + OP_MARK.length]) as ChangeOp;
}

/** The last `"op":"` in `value[start, end)`, scanning back from the end in place: the field is near the end of an envelope. */
function lastOpMark(value: Buffer, start: number, end: number): number {
  // The rarest byte of `"op":"` ('p') first: most positions fail on one comparison.
  for (let i = end - OP_MARK.length; i >= start; i--) {
    if (value[i + 2] !== 0x70) continue;
    if (value[i + 1] === 0x6f && value[i] === 0x22 && value[i + 3] === 0x22 && value[i + 4] === 0x3a && value[i + 5] === 0x22) return i;
  }
  return -1;
}

export class BatchReader {
  private readonly parts = new Map<string, Part[]>();
  /** Topics of which the reader has only some partitions (the others are other workers'). */
  private readonly partial = new Set<string>();
  private readonly buffers: Recycler;

  /**
   * @param reject whether records that are not change events are handed back (`rejected`) instead of failing the read
   * @param readBytes how much each partition reads from the log at a time (about: whole stored batches)
   */
  constructor(
    private readonly log: Log,
    private readonly schemas: SchemaStore,
    private readonly reject = false,
    readBytes = 1 << 20,
  ) {
    this.buffers = new Recycler(readBytes);
  }

  /**
   * Adds a topic's partitions (`only` these, when the sink shares the topic with other members of
   * its consumer group), starting at the stored offsets (0 where none).
   */
  addTopic(topic: string, partitions: number, stored: Map<number, number> | undefined, only?: readonly number[]): void {
    if (this.parts.has(topic)) return;
    const list: Part[] = [];
    for (let p = 0; p < partitions; p++) {
      if (only && !only.includes(p)) continue;
      list.push(new Part(topic, p, stored?.get(p) ?? 0, this.buffers));
    }
    this.parts.set(topic, list);
    if (list.length < partitions) this.partial.add(topic);
  }

  /** A shared topic whose truncate the last batch stopped at: the next batch reads it first. */
  private barrierFirst: string | null = null;

  /** The topics in the order a batch reads them: the one with a truncate waiting first. */
  private visitOrder(): Iterable<[string, Part[]]> {
    const first = this.barrierFirst === null ? undefined : this.parts.get(this.barrierFirst);
    if (!first) return this.parts;
    return [[this.barrierFirst!, first], ...[...this.parts].filter(([t]) => t !== this.barrierFirst)];
  }

  /** Stops reading `topic` (a held table): later batches leave it out. */
  removeTopic(topic: string): void {
    this.parts.delete(topic);
    this.partial.delete(topic);
  }

  /** `topic/partition` → next offset handed out (applied, once the batch that reached it was). */
  positions(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [topic, list] of this.parts) for (const ps of list) m.set(`${topic}/${ps.partition}`, ps.next);
    return m;
  }

  get topics(): string[] {
    return [...this.parts.keys()];
  }

  /**
   * A partition whose buffered records are all consumed moves on to where its last read ended:
   * past a gap in the offsets (a backend's transaction marker), which holds nothing to apply.
   */
  private skipGap(ps: Part, moved: Set<Part>): boolean {
    if (!ps.atGap) return false;
    ps.next = ps.readNext;
    moved.add(ps);
    return true;
  }

  /** Resolves when any partition may have new records, or after `ms`. */
  private async wait(ms: number, signal?: AbortSignal, wake?: Promise<void>): Promise<void> {
    if (signal?.aborted) return;
    const waits: Promise<void>[] = wake ? [wake] : [];
    for (const list of this.parts.values()) for (const ps of list) waits.push(this.log.waitFor(ps.topic, ps.partition, ps.next, ms));
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((r) => signal?.addEventListener('abort', (onAbort = () => r()), { once: true }));
    if (waits.length === (wake ? 1 : 0)) waits.push(new Promise((r) => setTimeout(r, ms).unref()));
    await Promise.race([...waits, aborted]);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }

  /**
   * The next batch, or null when nothing arrived within `idleMs`. Moves the read positions past
   * what it returns; after a batch that was not applied, `rewind()` to the stored offsets.
   */
  async next(limits: BatchLimits, idleMs: number, signal?: AbortSignal, pace?: ReadPace): Promise<ReadBatch | null> {
    const seq = ++this.buffers.seq;
    const records: SinkRecord[] = [];
    const truncates = new Map<string, SinkRecord>();
    const truncated = new Map<string, OffsetPosition[]>();
    const rejected: RejectedRecord[] = [];
    const seenTopic = new Set<string>();
    /** Partitions whose position the batch moved (each one's `next` is where the batch leaves it). */
    const moved = new Set<Part>();
    let barrier: TruncateBarrier | undefined;
    let bytes = 0;
    let firstAt = 0;
    /** A shared truncate ends the batch (see ReadBatch.barrier). */
    let stop = false;
    const start = Date.now();
    let nparts = 0;
    for (const list of this.parts.values()) nparts += list.length;
    // The first pass takes at most a fair share from each partition, so that one busy partition
    // cannot starve the others.
    let share = Math.max(1, Math.ceil(limits.maxRecords / Math.max(1, nparts)));
    const log = this.log;
    for (;;) {
      let progressed = false;
      for (const [topic, list] of this.visitOrder()) {
        for (const ps of list) {
          let taken = 0;
          while (records.length < limits.maxRecords && bytes < limits.maxBytes && taken < share && rejected.length === 0 && !barrier) {
            // Buffered records are taken without a promise; only an empty buffer reads the log.
            if (!ps.load() && !(await ps.fill(log))) {
              if (this.skipGap(ps, moved)) progressed = true;
              break;
            }
            const v = ps.val;
            if (v === null) {
              // A tombstone: its delete came just before it; nothing to apply.
              ps.advance();
              moved.add(ps);
              progressed = true;
              continue;
            }
            let op: ChangeOp;
            let rec: SinkRecord;
            try {
              op = opOf(v, ps.vs, ps.ve, ps);
              if (op === 't') {
                if (seenTopic.has(topic) || truncates.has(topic)) break;
                // Every partition must stand at its copy of the truncate (a rejected record elsewhere is met in its turn).
                let all = true;
                for (const other of list) {
                  if (!(other.load() || (await other.fill(log))) || other.val === null || other.keyBuf !== null || !isTruncate(other.val, other.vs, other.ve, this.reject)) all = false;
                }
                if (!all) break;
                if (this.partial.has(topic)) {
                  // Other workers have the rest of the topic: the truncate comes alone (once what was read before it is applied).
                  if (records.length === 0 && truncates.size === 0 && moved.size === 0) {
                    barrier = { topic, record: await this.toSinkRecord(ps, op), value: ps.value(), at: list.map((o) => ({ partition: o.partition, offset: o.offset })) };
                    this.barrierFirst = null;
                  } else {
                    // The next batch starts with this topic, so that the truncate comes alone
                    // before other topics' new changes fill it again (they would, under load).
                    barrier = undefined;
                    this.barrierFirst = topic;
                  }
                  stop = true;
                  break;
                }
                truncates.set(topic, await this.toSinkRecord(ps, op));
                for (const other of list) {
                  other.advance();
                  moved.add(other);
                }
                truncated.set(topic, list.map((other) => ({ topic, partition: other.partition, next: other.next })));
                progressed = true;
                continue;
              }
              rec = this.headRecord(ps, op) ?? (await this.toSinkRecord(ps, op));
            } catch (e) {
              if (!this.reject || isRetriable(e)) throw e;
              rejected.push({ record: ps.stored(), error: e });
              break;
            }
            records.push(rec);
            if (taken === 0) {
              seenTopic.add(topic);
              moved.add(ps);
              progressed = true;
              if (firstAt === 0) firstAt = Date.now();
            }
            bytes += ps.ve - ps.vs + (ps.keyBuf === null ? 0 : ps.ke - ps.ks);
            ps.advance();
            taken++;
            // Read-ahead runs while the sink's target works on the batch before: let its answers in.
            if ((records.length & 1023) === 0) await new Promise((resolve) => setImmediate(resolve));
          }
        }
      }
      share = Infinity;
      const full = records.length >= limits.maxRecords || bytes >= limits.maxBytes;
      // A rejected record ends the batch: the sink task handles it once what came before is applied.
      if (full || signal?.aborted || rejected.length || stop) break;
      if (records.length > 0 || truncates.size > 0) {
        const left = limits.maxDelayMs - (Date.now() - (firstAt || start));
        if (left <= 0) break;
        if (!progressed) {
          if (!pace) await this.wait(left, signal);
          else {
            // Adaptive: nothing more to read now. An idle target takes the batch at once; a busy
            // one (the batch before this one applying) lets it grow until it is done.
            const busy = pace.busy();
            if (!busy) break;
            await Promise.race([busy, this.wait(left, signal)]);
          }
        }
        continue;
      }
      if (moved.size > 0 && !progressed) break; // only tombstones: still worth storing the offsets
      const left = idleMs - (Date.now() - start);
      if (left <= 0 || pace?.woken?.()) break;
      if (!progressed) await this.wait(Math.min(left, 250), signal, pace?.wake);
    }
    if (moved.size === 0 && rejected.length === 0 && !barrier) return null;
    const offsets: OffsetPosition[] = [...moved].map((ps) => ({ topic: ps.topic, partition: ps.partition, next: ps.next }));
    return { seq, tables: buildTables(records, truncates), offsets, records: records.length + truncates.size, bytes, rejected, truncated, barrier };
  }

  /**
   * The sink task is done with `batch` and every batch read before it (applied, dead-lettered or
   * dropped): the buffers their records are ranges of may hold other batches now.
   */
  release(batch: ReadBatch): void {
    this.buffers.release(batch.seq);
  }

  /** Forgets read-ahead and moves back to `offsets` (after a failed apply). */
  rewind(offsets: Map<string, Map<number, number>>): void {
    this.barrierFirst = null;
    for (const [topic, list] of this.parts) for (const ps of list) ps.reset(offsets.get(topic)?.get(ps.partition) ?? 0);
  }

  /**
   * The partition's head record as a change, without a promise when its schema is already known
   * (the common case) or it carries its schema inline; undefined when the schema must be fetched.
   */
  private headRecord(ps: Part, op: ChangeOp): SinkRecord | undefined {
    const id = ps.headers?.[SCHEMA_HEADER];
    if (!id) {
      const r = ps.stored();
      // No schema header: Kafka Connect's JsonConverter output (Debezium's connectors) carries its schema inline.
      if (isConnectJson(r.value!)) return { topic: r.topic, partition: r.partition, offset: r.offset, op, ...connectJson.decode(r.topic, r.key, r.value!, `${r.topic}/${r.partition}@${r.offset}`) };
      throw sinkError('SINK_BAD_RECORD', `record ${r.topic}/${r.partition}@${r.offset} has no schema header: it was not written by a Sluice source (or by one older than sinks), nor by Kafka Connect's JsonConverter with schemas.enable=true; point the sink at a log written by \`sluice run\` or at Debezium topics with schemas`);
    }
    const schema = this.schemas.peek(id);
    return schema && changeOf(ps, op, schema);
  }

  /** headRecord, fetching the schema from the schema topic when it is not known yet. */
  private async toSinkRecord(ps: Part, op: ChangeOp): Promise<SinkRecord> {
    return this.headRecord(ps, op) ?? changeOf(ps, op, await this.schemas.get(ps.headers![SCHEMA_HEADER]));
  }
}

const SCHEMAS_MARK = Buffer.from('{"schema":');

function startsWith(b: Buffer, start: number, end: number, mark: Buffer): boolean {
  if (end - start < mark.length) return false;
  for (let i = 0; i < mark.length; i++) if (b[start + i] !== mark[i]) return false;
  return true;
}

/**
 * A change a Sluice source wrote, held as ranges of the log's bytes: its envelope is decoded from
 * UTF-8 only when a sink asks for the text (`value`), its key only when asked for (`key`: the
 * reduction to one change per key compares key bytes), and the sinks that load from bytes
 * (`bytes`) never pay for either.
 */
class LoggedChange implements SinkRecord {
  private text: string | undefined;
  private keyText: string | null | undefined;
  private view: Buffer | undefined;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    /** The envelope is `buf[at, end)`. */
    readonly buf: Buffer,
    readonly at: number,
    readonly end: number,
    /** The key JSON is `keyBuf[keyAt, keyEnd)` (not wrapped in a Connect schema), or null. */
    readonly keyBuf: Buffer | null,
    readonly keyAt: number,
    readonly keyEnd: number,
    readonly op: ChangeOp,
    readonly schema: SchemaRecord,
  ) {}
  get bytes(): Buffer {
    return (this.view ??= this.buf.subarray(this.at, this.end));
  }
  get value(): string {
    return (this.text ??= this.buf.toString('utf8', this.at, this.end));
  }
  get key(): string | null {
    if (this.keyText === undefined) this.keyText = this.keyBuf === null ? null : this.keyBuf.toString('utf8', this.keyAt, this.keyEnd);
    return this.keyText;
  }
}

/**
 * The head of `ps`, a change a Sluice source wrote. With `serialization.schemas` its key and value
 * carry their Connect schema (`{"schema":…,"payload":…}`); the sinks take the schema from the
 * schema topic and read the payloads, so they get the same key and envelope text either way.
 */
function changeOf(ps: Part, op: ChangeOp, schema: SchemaRecord): SinkRecord {
  const v = ps.val!;
  const k = ps.keyBuf;
  // Sluice's envelopes start `{"before":`; only `{"s…` may be a schema wrapper.
  const wrapped = (v[ps.vs + 2] === 0x73 && startsWith(v, ps.vs, ps.ve, SCHEMAS_MARK)) || (k !== null && k[ps.ks + 2] === 0x73 && startsWith(k, ps.ks, ps.ke, SCHEMAS_MARK));
  if (!wrapped) return new LoggedChange(ps.topic, ps.partition, ps.offset, v, ps.vs, ps.ve, k, ps.ks, ps.ke, op, schema);
  return { topic: ps.topic, partition: ps.partition, offset: ps.offset, key: k === null ? null : payloadText(k.toString('utf8', ps.ks, ps.ke)), value: payloadText(v.toString('utf8', ps.vs, ps.ve)), op, schema };
}

/** Whether a record is a truncate; a record that is no change event is not one (when rejecting: it is met in its turn). */
function isTruncate(value: Buffer, start: number, end: number, reject: boolean): boolean {
  try {
    return opOf(value, start, end) === 't';
  } catch (e) {
    if (reject) return false;
    throw e;
  }
}

/** FNV-1a over a key's UTF-8 bytes: the same for a LoggedChange's key bytes and any record's key text. */
function keyHash(r: SinkRecord): number {
  let h = 0x811c9dc5;
  if (r instanceof LoggedChange && r.keyBuf !== null) {
    const b = r.keyBuf;
    for (let i = r.keyAt; i < r.keyEnd; i++) h = Math.imul(h ^ b[i], 0x01000193);
  } else {
    // A key text's UTF-8 bytes: its char codes while they are ASCII (the common case), then encoded.
    const k = r.key!;
    let i = 0;
    for (; i < k.length; i++) {
      const c = k.charCodeAt(i);
      if (c >= 0x80) break;
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (i < k.length) {
      const b = Buffer.from(k.slice(i), 'utf8');
      for (let j = 0; j < b.length; j++) h = Math.imul(h ^ b[j], 0x01000193);
    }
  }
  return h | 1; // never 0: 0 marks an empty slot
}

function sameKey(a: SinkRecord, b: SinkRecord): boolean {
  if (a.topic !== b.topic) return false;
  if (a instanceof LoggedChange && b instanceof LoggedChange && a.keyBuf !== null && b.keyBuf !== null) {
    const n = a.keyEnd - a.keyAt;
    if (n !== b.keyEnd - b.keyAt) return false;
    const x = a.keyBuf;
    const y = b.keyBuf;
    for (let i = 0; i < n; i++) if (x[a.keyAt + i] !== y[b.keyAt + i]) return false;
    return true;
  }
  return a.key === b.key;
}

/** A table sink given a topic of MongoDB documents in Debezium's shape (text, no columns). */
function documentTopic(topic: string): Error {
  return coreError('ENGINE_GRAPH', `topic ${topic} holds MongoDB documents as Extended JSON text (the mongodb source's shape: debezium), which have no columns for a table sink to write. Capture with \`shape: row\` (one typed column per top-level field), or put a map processor in between that makes the columns`);
}

/** Groups a batch's records by table and reduces them to the last change per key. */
export function buildTables(records: SinkRecord[], truncates: Map<string, SinkRecord>): TableBatch[] {
  const byTopic = new Map<string, TableBatch>();
  const get = (topic: string, schema: SchemaRecord): TableBatch => {
    let t = byTopic.get(topic);
    if (!t) {
      if (schema.document) throw documentTopic(topic);
      t = { topic, schema, schemas: [schema], truncate: truncates.get(topic) ?? null, changes: [], upserts: [], deletes: [], keyless: [] };
      byTopic.set(topic, t);
    }
    return t;
  };
  for (const [topic, tr] of truncates) get(topic, tr.schema);
  // The last change per (topic, key), in the order keys first appear: an open-addressing table of
  // key hashes over `last` (no string per key).
  const size = 1 << (32 - Math.clz32(Math.max(16, records.length * 2) - 1));
  const mask = size - 1;
  const hashes = new Int32Array(size);
  const slots = new Int32Array(size);
  const last: SinkRecord[] = [];
  const lastTable: TableBatch[] = [];
  // Runs of records share a topic and schema (a partition's records come together): look up once per run.
  let topic = '';
  let t: TableBatch | undefined;
  let schema: SchemaRecord | undefined;
  for (let n = 0; n < records.length; n++) {
    const r = records[n];
    if (r.topic !== topic || !t) {
      topic = r.topic;
      t = get(topic, r.schema);
      schema = undefined;
    }
    if (r.schema !== schema) {
      schema = r.schema;
      if (t.schema.id !== schema.id && !t.schemas.some((s) => s.id === schema!.id)) {
        t.schemas.push(schema);
        t.schemas.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
        t.schema = t.schemas[t.schemas.length - 1];
      }
    }
    t.changes.push(r);
    if (r instanceof LoggedChange ? r.keyBuf === null : r.key === null) {
      t.keyless.push(r);
      continue;
    }
    const h = keyHash(r);
    let i = h & mask;
    for (;;) {
      if (hashes[i] === 0) {
        hashes[i] = h;
        slots[i] = last.length;
        last.push(r);
        lastTable.push(t);
        break;
      }
      if (hashes[i] === h && sameKey(last[slots[i]], r)) {
        last[slots[i]] = r;
        break;
      }
      i = (i + 1) & mask;
    }
  }
  for (let i = 0; i < last.length; i++) {
    const r = last[i];
    (r.op === 'd' ? lastTable[i].deletes : lastTable[i].upserts).push(r);
  }
  return [...byTopic.values()];
}
