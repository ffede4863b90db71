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
import { isRetriable } from '../core/errors.ts';
import { SCHEMA_HEADER, type SchemaRecord } from '../core/schemas.ts';
import { connectJson, isConnectJson, payloadText } from '../core/serde/connect-json.ts';
import type { SchemaStore } from './schema-topic.ts';
import type { Log, StoredRecord } from '../log/types.ts';
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

interface PartState {
  topic: string;
  partition: number;
  /** Next offset to hand out. */
  next: number;
  buf: StoredRecord[];
  /** Index of the first unconsumed record in buf. */
  i: number;
  /** Where the read that filled buf says the next read continues (past any gap after its records). */
  readNext: number;
}

/** A record the reader could not read as a change (not a change event, a schema the log lacks). */
export interface RejectedRecord {
  record: StoredRecord;
  error: unknown;
}

/** A batch as the reader hands it to the sink task: what the sink applies, and what only the task needs. */
export interface ReadBatch extends SinkBatch {
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
export function opOf(value: Buffer, where?: { topic: string; partition: number; offset: number }): ChangeOp {
  const at = lastOpMark(value);
  if (at < 0) {
    // Where, not what: the record's bytes are someone's data.
    const rec = where ? `record ${where.topic}/${where.partition}@${where.offset} (${value.length} bytes)` : 'a log record';
    throw sinkError('SINK_BAD_RECORD', `${rec} has no "op" field: it is not a Debezium change event (written by something else?). Point the sink's topics at change topics only, or set onError: dlq to set such records aside`);
  }
  return String.fromCharCode(value[at + OP_MARK.length]) as ChangeOp;
}

/** `value.lastIndexOf(OP_MARK)`, scanning back from the end in place: the field is near the end of an envelope. */
function lastOpMark(value: Buffer): number {
  // The rarest byte of `"op":"` ('p') first: most positions fail on one comparison.
  for (let i = value.length - OP_MARK.length; i >= 0; i--) {
    if (value[i + 2] !== 0x70) continue;
    if (value[i + 1] === 0x6f && value[i] === 0x22 && value[i + 3] === 0x22 && value[i + 4] === 0x3a && value[i + 5] === 0x22) return i;
  }
  return -1;
}

export class BatchReader {
  private readonly parts = new Map<string, PartState[]>();
  /** Topics of which the reader has only some partitions (the others are other workers'). */
  private readonly partial = new Set<string>();

  /** @param reject whether records that are not change events are handed back (`rejected`) instead of failing the read */
  constructor(
    private readonly log: Log,
    private readonly schemas: SchemaStore,
    private readonly reject = false,
  ) {}

  /**
   * Adds a topic's partitions (`only` these, when the sink shares the topic with other members of
   * its consumer group), starting at the stored offsets (0 where none).
   */
  addTopic(topic: string, partitions: number, stored: Map<number, number> | undefined, only?: readonly number[]): void {
    if (this.parts.has(topic)) return;
    const list: PartState[] = [];
    for (let p = 0; p < partitions; p++) {
      if (only && !only.includes(p)) continue;
      const next = stored?.get(p) ?? 0;
      list.push({ topic, partition: p, next, buf: [], i: 0, readNext: next });
    }
    this.parts.set(topic, list);
    if (list.length < partitions) this.partial.add(topic);
  }

  /** A shared topic whose truncate the last batch stopped at: the next batch reads it first. */
  private barrierFirst: string | null = null;

  /** The topics in the order a batch reads them: the one with a truncate waiting first. */
  private visitOrder(): Iterable<[string, PartState[]]> {
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

  private async fill(ps: PartState): Promise<StoredRecord | undefined> {
    if (ps.i < ps.buf.length) return ps.buf[ps.i];
    const r = await this.log.read(ps.topic, ps.partition, ps.next, 1 << 20);
    ps.buf = r.records;
    ps.i = 0;
    ps.readNext = r.next;
    return ps.buf[0];
  }

  /**
   * A partition whose buffered records are all consumed moves on to where its last read ended:
   * past a gap in the offsets (a backend's transaction marker), which holds nothing to apply.
   */
  private skipGap(ps: PartState, moved: Set<PartState>): boolean {
    if (ps.i < ps.buf.length || ps.readNext <= ps.next) return false;
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
    const records: SinkRecord[] = [];
    const truncates = new Map<string, SinkRecord>();
    const truncated = new Map<string, OffsetPosition[]>();
    const rejected: RejectedRecord[] = [];
    const seenTopic = new Set<string>();
    /** Partitions whose position the batch moved (each one's `next` is where the batch leaves it). */
    const moved = new Set<PartState>();
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
    for (;;) {
      let progressed = false;
      for (const [topic, list] of this.visitOrder()) {
        for (const ps of list) {
          let taken = 0;
          while (records.length < limits.maxRecords && bytes < limits.maxBytes && taken < share && rejected.length === 0 && !barrier) {
            // Buffered records are taken without a promise; only an empty buffer reads the log.
            const r = ps.i < ps.buf.length ? ps.buf[ps.i] : await this.fill(ps);
            if (!r) {
              if (this.skipGap(ps, moved)) progressed = true;
              break;
            }
            if (r.value === null) {
              // A tombstone: its delete came just before it; nothing to apply.
              ps.i++;
              ps.next = r.offset + 1;
              moved.add(ps);
              progressed = true;
              continue;
            }
            let op: ChangeOp;
            let rec: SinkRecord;
            try {
              op = opOf(r.value, r);
              if (op === 't') {
                if (seenTopic.has(topic) || truncates.has(topic)) break;
                // Every partition must stand at its copy of the truncate (a rejected record elsewhere is met in its turn).
                let all = true;
                for (const other of list) {
                  const h = await this.fill(other);
                  if (!h || h.value === null || h.key !== null || !isTruncate(h.value, this.reject)) all = false;
                }
                if (!all) break;
                if (this.partial.has(topic)) {
                  // Other workers have the rest of the topic: the truncate comes alone (once what was read before it is applied).
                  if (records.length === 0 && truncates.size === 0 && moved.size === 0) {
                    barrier = { topic, record: await this.toSinkRecord(r, op), value: r.value, at: list.map((o) => ({ partition: o.partition, offset: o.buf[o.i].offset })) };
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
                truncates.set(topic, await this.toSinkRecord(r, op));
                for (const other of list) {
                  const h = other.buf[other.i];
                  other.i++;
                  other.next = h.offset + 1;
                  moved.add(other);
                }
                truncated.set(topic, list.map((other) => ({ topic, partition: other.partition, next: other.next })));
                progressed = true;
                continue;
              }
              rec = this.toSinkRecordSync(r, op) ?? (await this.toSinkRecord(r, op));
            } catch (e) {
              if (!this.reject || isRetriable(e)) throw e;
              rejected.push({ record: r, error: e });
              break;
            }
            records.push(rec);
            if (taken === 0) {
              seenTopic.add(topic);
              moved.add(ps);
              progressed = true;
              if (firstAt === 0) firstAt = Date.now();
            }
            bytes += r.value.length + (r.key === null ? 0 : r.key.length);
            ps.i++;
            ps.next = r.offset + 1;
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
    return { tables: buildTables(records, truncates), offsets, records: records.length + truncates.size, bytes, rejected, truncated, barrier };
  }

  /** Forgets read-ahead and moves back to `offsets` (after a failed apply). */
  rewind(offsets: Map<string, Map<number, number>>): void {
    this.barrierFirst = null;
    for (const [topic, list] of this.parts) {
      for (const ps of list) {
        ps.next = offsets.get(topic)?.get(ps.partition) ?? 0;
        ps.buf = [];
        ps.i = 0;
        ps.readNext = ps.next;
      }
    }
  }

  /** The record when its schema is already known (the common case), without a promise. */
  private toSinkRecordSync(r: StoredRecord, op: ChangeOp): SinkRecord | undefined {
    const id = r.headers?.[SCHEMA_HEADER];
    // No schema header: Kafka Connect's JsonConverter output (Debezium's connectors) carries its schema inline.
    if (!id && isConnectJson(r.value!)) return { topic: r.topic, partition: r.partition, offset: r.offset, op, ...connectJson.decode(r.topic, r.key, r.value!, `${r.topic}/${r.partition}@${r.offset}`) };
    const schema = id ? this.schemas.peek(id) : undefined;
    if (!schema) return undefined;
    return sluiceRecord(r, op, schema);
  }

  private async toSinkRecord(r: StoredRecord, op: ChangeOp): Promise<SinkRecord> {
    const id = r.headers?.[SCHEMA_HEADER];
    if (!id && isConnectJson(r.value!)) return { topic: r.topic, partition: r.partition, offset: r.offset, op, ...connectJson.decode(r.topic, r.key, r.value!, `${r.topic}/${r.partition}@${r.offset}`) };
    if (!id) {
      throw sinkError('SINK_BAD_RECORD', `record ${r.topic}/${r.partition}@${r.offset} has no schema header: it was not written by a Sluice source (or by one older than sinks), nor by Kafka Connect's JsonConverter with schemas.enable=true; point the sink at a log written by \`sluice run\` or at Debezium topics with schemas`);
    }
    const schema = this.schemas.peek(id) ?? (await this.schemas.get(id));
    return sluiceRecord(r, op, schema);
  }
}

const SCHEMAS_MARK = Buffer.from('{"schema":');

/**
 * A change a Sluice source wrote, its envelope decoded from UTF-8 only when a sink asks for the
 * text (`value`): the sinks that load from bytes (`bytes`) never pay for it.
 */
class LoggedChange implements SinkRecord {
  private text: string | undefined;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly key: string | null,
    readonly bytes: Buffer,
    readonly op: ChangeOp,
    readonly schema: SchemaRecord,
  ) {}
  get value(): string {
    return (this.text ??= this.bytes.toString('utf8'));
  }
}

/**
 * A record a Sluice source wrote. With `serialization.schemas` its key and value carry their
 * Connect schema (`{"schema":…,"payload":…}`); the sinks take the schema from the schema topic and
 * read the payloads, so they get the same key and envelope text either way.
 */
function sluiceRecord(r: StoredRecord, op: ChangeOp, schema: SchemaRecord): SinkRecord {
  const v = r.value!;
  const key = r.key ? payloadText(r.key.toString('utf8')) : null;
  // Sluice's envelopes start `{"before":`; only `{"s…` may be a schema wrapper.
  if (v[2] !== 0x73 || v.length < SCHEMAS_MARK.length || v.compare(SCHEMAS_MARK, 0, SCHEMAS_MARK.length, 0, SCHEMAS_MARK.length) !== 0) return new LoggedChange(r.topic, r.partition, r.offset, key, v, op, schema);
  return { topic: r.topic, partition: r.partition, offset: r.offset, key, value: payloadText(v.toString('utf8')), op, schema };
}

/** Whether a record is a truncate; a record that is no change event is not one (when rejecting: it is met in its turn). */
function isTruncate(value: Buffer, reject: boolean): boolean {
  try {
    return opOf(value) === 't';
  } catch (e) {
    if (reject) return false;
    throw e;
  }
}

/** Groups a batch's records by table and reduces them to the last change per key. */
export function buildTables(records: SinkRecord[], truncates: Map<string, SinkRecord>): TableBatch[] {
  const byTopic = new Map<string, TableBatch>();
  const last = new Map<string, Map<string, SinkRecord>>();
  const get = (topic: string, schema: SchemaRecord): TableBatch => {
    let t = byTopic.get(topic);
    if (!t) {
      t = { topic, schema, schemas: [schema], truncate: truncates.get(topic) ?? null, changes: [], upserts: [], deletes: [], keyless: [] };
      byTopic.set(topic, t);
      last.set(topic, new Map());
    }
    return t;
  };
  for (const [topic, tr] of truncates) get(topic, tr.schema);
  // Runs of records share a topic and schema (a partition's records come together): look up once per run.
  let topic = '';
  let t: TableBatch | undefined;
  let keys: Map<string, SinkRecord> | undefined;
  let schema: SchemaRecord | undefined;
  for (const r of records) {
    if (r.topic !== topic || !t) {
      topic = r.topic;
      t = get(topic, r.schema);
      keys = last.get(topic)!;
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
    if (r.key === null) t.keyless.push(r);
    else keys!.set(r.key, r);
  }
  for (const [topic, m] of last) {
    const t = byTopic.get(topic)!;
    for (const r of m.values()) (r.op === 'd' ? t.deletes : t.upserts).push(r);
  }
  return [...byTopic.values()];
}
