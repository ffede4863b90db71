/**
 * A sink's `onError` policy: what its task does when the target refuses a batch for good (a
 * non-retriable error). `stop` ends the task, as before. `skip_table` and `dlq` first find what the
 * target refuses, without giving up exactly once for anything that goes on:
 *
 * 1. The batch is applied again table by table, each table in its own target transaction with its
 *    own topic's offsets (a table is one topic, and offsets are per topic and partition).
 * 2. A table that still fails is applied in halves of its changes, in log order, down to the one
 *    change (or truncate) the target refuses alone. Every such transaction holds a prefix of the
 *    table's changes per partition and commits the offsets just past that prefix, so the target
 *    never holds data without its offsets or offsets without their data. (Keys never span
 *    partitions, so applying the halves one after the other leaves what the whole would have.)
 * 3. The refused change holds its table (`skip_table`: nothing of the table past it is applied) or
 *    goes to the dead-letter topic (`dlq`), durably, before the target's offsets move past it.
 *
 * The dead-letter topic `<pipeline>.dlq` is written through one transactional producer per sink,
 * whose checkpoint is, per input partition, the position just past the last record it
 * dead-lettered. A crash between the dead-letter commit and the target's commit past the record
 * leaves the target's offset before it with nothing to apply in between; on the next start
 * (`pendingPast`) the task commits the target past it, so the record is neither applied nor
 * written twice.
 */
import { isRetriable } from '../core/errors.ts';
import { SCHEMA_HEADER } from '../core/schemas.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';
import type { SinkBaseConfig } from '../registry/spec.ts';
import type { OffsetPosition, SinkBatch, SinkRecord, TableBatch } from '../sinks/types.ts';
import { buildTables, type ReadBatch } from './batch-reader.ts';

export type OnError = SinkBaseConfig['onError'];

/** Headers of a dead-letter record. Its key is the input position, `<topic>/<partition>/<offset>`. */
export const DLQ_HEADERS = {
  code: 'sluice.error.code',
  message: 'sluice.error.message',
  sink: 'sluice.sink',
  /** The processor that could not transform the record (processor dead letters carry this instead of `sink`). */
  processor: 'sluice.processor',
  table: 'sluice.table',
  topic: 'sluice.input.topic',
  partition: 'sluice.input.partition',
  offset: 'sluice.input.offset',
  /** The input record's key, when it had one. */
  key: 'sluice.input.key',
  /** The input record's timestamp (ms), when known. */
  timestamp: 'sluice.input.timestamp',
} as const;

/** A record as the dead-letter topic takes it: a change the target refused, or a log record that is no change. */
export interface DeadRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string | Buffer | null;
  value: string | Buffer | null;
  /** The schema id header of the input record, kept so the record can be read like the input. */
  schemaId?: string;
  /** The input record's timestamp. */
  timestamp?: number;
}

/** A change the target refuses alone. */
export interface Refusal {
  /** `schema.table` of the source table (the topic when unknown). */
  table: string;
  topic: string;
  record: DeadRecord;
  /** The positions just past the record: its partition's, or for a truncate every partition's. */
  positions: OffsetPosition[];
  /** What the target's offsets move to when the task goes past it (may also cover what follows it in the batch). */
  past: OffsetPosition[];
  error: unknown;
}

export interface PolicyHost {
  /** Applies `batch` in one target transaction with its offsets, and counts them as applied. */
  commit(batch: SinkBatch): Promise<void>;
  /** Handles a refused change: true when its table goes on past it, false when the table is now held. */
  refused(r: Refusal): Promise<boolean>;
}

/** A batch that writes only offsets (past records that hold nothing to apply). */
export const offsetsOnly = (offsets: OffsetPosition[]): SinkBatch => ({ tables: [], offsets, records: 0, bytes: 0 });

/** One change, or a table's truncate, as the isolation applies or refuses it. */
interface Unit {
  record: SinkRecord;
  truncate: boolean;
  /** The positions just past it. */
  past: OffsetPosition[];
}

/**
 * Applies a batch the target refused (`failure`) table by table, then each failing table in halves,
 * handing each change refused alone to `host.refused`. Throws a retriable error as it comes (the
 * supervisor resumes from the offsets in the target, which hold whatever was committed here).
 */
export async function isolate(batch: ReadBatch, failure: unknown, host: PolicyHost): Promise<void> {
  const byTopic = new Map<string, OffsetPosition[]>();
  for (const o of batch.offsets) {
    const l = byTopic.get(o.topic);
    if (l) l.push(o);
    else byTopic.set(o.topic, [o]);
  }
  // Topics that moved only past tombstones or gaps.
  const loose = batch.offsets.filter((o) => !batch.tables.some((t) => t.topic === o.topic));
  if (loose.length) await host.commit(offsetsOnly(loose));
  for (const t of batch.tables) {
    const units = unitsOf(t, batch.truncated.get(t.topic));
    // With one table in the batch, the batch's failure is this table's: split it at once.
    await settle(units, 0, units.length, byTopic.get(t.topic) ?? [], batch.tables.length === 1 ? { failure } : null, host);
  }
}

function unitsOf(t: TableBatch, truncated: OffsetPosition[] | undefined): Unit[] {
  const units: Unit[] = [];
  if (t.truncate) units.push({ record: t.truncate, truncate: true, past: truncated ?? [{ topic: t.topic, partition: t.truncate.partition, next: t.truncate.offset + 1 }] });
  for (const r of t.changes) units.push({ record: r, truncate: false, past: [{ topic: r.topic, partition: r.partition, next: r.offset + 1 }] });
  return units;
}

/**
 * Applies units[lo, hi) (all of them before the ones after): whole, or when the target refuses
 * that (`known` says it already did), in halves. False once the table is held.
 */
async function settle(units: Unit[], lo: number, hi: number, tableOffsets: OffsetPosition[], known: { failure: unknown } | null, host: PolicyHost): Promise<boolean> {
  const last = hi === units.length;
  let failure: unknown;
  if (known) failure = known.failure;
  else {
    try {
      await host.commit(chunk(units, lo, hi, last ? tableOffsets : null));
      return true;
    } catch (e) {
      if (isRetriable(e)) throw e;
      failure = e;
    }
  }
  if (hi - lo === 1) {
    const u = units[lo];
    const r = u.record;
    return host.refused({
      table: `${r.schema.schema}.${r.schema.table}`,
      topic: r.topic,
      record: { topic: r.topic, partition: r.partition, offset: r.offset, key: r.key, value: r.value, schemaId: r.schema.id },
      positions: u.past,
      // The table's last change: past everything the batch read of the table (tombstones after it too).
      past: last ? tableOffsets : u.past,
      error: failure,
    });
  }
  const mid = lo + Math.ceil((hi - lo) / 2);
  return (await settle(units, lo, mid, tableOffsets, null, host)) && (await settle(units, mid, hi, tableOffsets, null, host));
}

/** units[lo, hi) as a batch; its offsets are those just past its units, or `final` for the table's last chunk. */
function chunk(units: Unit[], lo: number, hi: number, final: OffsetPosition[] | null): SinkBatch {
  const records: SinkRecord[] = [];
  const truncates = new Map<string, SinkRecord>();
  const pos = new Map<number, number>();
  let bytes = 0;
  for (let i = lo; i < hi; i++) {
    const u = units[i];
    if (u.truncate) truncates.set(u.record.topic, u.record);
    else records.push(u.record);
    bytes += u.record.value.length;
    for (const p of u.past) pos.set(p.partition, Math.max(pos.get(p.partition) ?? 0, p.next));
  }
  const topic = units[lo].record.topic;
  const offsets = final ?? [...pos].map(([partition, next]) => ({ topic, partition, next }));
  return { tables: buildTables(records, truncates), offsets, records: records.length + truncates.size, bytes };
}

/** Per log and dead-letter topic, the last write of any sink (they go one at a time). */
const WRITING = new WeakMap<Log, Map<string, Promise<void>>>();

/** Input positions as the dead-letter producer's checkpoint stores them: `topic` → partition → next offset. */
type Positions = Record<string, Record<string, number>>;

/** The dead-letter topic as one sink (or processor) writes it: its producer and what it has written. */
export class DeadLetters {
  private constructor(
    private readonly log: Log,
    private readonly producer: Producer,
    private positions: Positions,
    readonly topic: string,
    private readonly writer: { kind: 'sink' | 'processor'; name: string },
  ) {}

  /** The producer id: one per sink (or processor) of a pipeline. */
  static producerId(pipeline: string, name: string, kind: 'sink' | 'processor' = 'sink'): string {
    return `${kind}:${pipeline}:${name}:dlq`;
  }

  /** Opens the sink's (or with `processor`, that processor's) dead-letter producer, creating the topic when asked to. */
  static async open(log: Log, o: { pipeline: string; sink?: string; processor?: string; topic: string; topicDefaults?: TopicConfig; create: boolean }): Promise<DeadLetters> {
    // One partition: dead letters keep the order in which they were refused.
    if (o.create) await log.ensureTopic(o.topic, { ...(o.topicDefaults ?? { partitions: 1 }), partitions: 1 });
    const writer = o.processor !== undefined ? { kind: 'processor' as const, name: o.processor } : { kind: 'sink' as const, name: o.sink! };
    const { producer, checkpoint } = await log.openProducer(DeadLetters.producerId(o.pipeline, writer.name, writer.kind));
    return new DeadLetters(log, producer, checkpoint ? (JSON.parse(checkpoint) as Positions) : {}, o.topic, writer);
  }

  /** Whether the record at `offset` was dead-lettered already (its position is covered by a dead-letter commit). */
  covers(topic: string, partition: number, offset: number): boolean {
    return (this.positions[topic]?.[partition] ?? 0) > offset;
  }

  /**
   * Offsets the target must move to because the record just before each was dead-lettered and the
   * target's commit past it did not happen (a crash, a lost connection): a partition whose
   * dead-letter position is ahead of `stored` with nothing but tombstones or gaps in between. Where
   * the log holds changes in between, the target's offsets were moved back by hand, and the
   * records are read (and refused) again.
   */
  async pendingPast(stored: Map<string, Map<number, number>>): Promise<OffsetPosition[]> {
    const out: OffsetPosition[] = [];
    for (const [topic, parts] of Object.entries(this.positions)) {
      if (!(await this.log.topicInfo(topic))) continue;
      const ends = new Map((await this.log.offsets(topic)).map((o) => [o.partition, o]));
      for (const [p, next] of Object.entries(parts)) {
        const partition = Number(p);
        const at = stored.get(topic)?.get(partition) ?? 0;
        const range = ends.get(partition);
        if (at >= next || !range || at < range.start || next > range.end) continue;
        if (await this.onlyGaps(topic, partition, at, next - 1)) out.push({ topic, partition, next });
      }
    }
    return out;
  }

  /** Whether the log holds no change in [from, to) of the partition. */
  private async onlyGaps(topic: string, partition: number, from: number, to: number): Promise<boolean> {
    let at = from;
    while (at < to) {
      const { records, next } = await this.log.read(topic, partition, at, 1 << 16);
      for (const r of records) if (r.offset < to && r.value !== null) return false;
      if (next <= at) return true;
      at = next;
    }
    return true;
  }

  /**
   * Writes a refused record with its reason, durably (with the positions it covers as the
   * checkpoint). The sinks of a pipeline write one at a time: a partition takes the uncommitted
   * records of one producer at a time (the embedded log refuses a second with LOG_PARTITION_BUSY).
   */
  async write(r: Refusal): Promise<void> {
    let topics = WRITING.get(this.log);
    if (!topics) WRITING.set(this.log, (topics = new Map()));
    const before = topics.get(this.topic) ?? Promise.resolve();
    const mine = before.then(() => this.writeNow(r));
    topics.set(this.topic, mine.catch(() => {}));
    await mine;
  }

  private async writeNow(r: Refusal): Promise<void> {
    const d = r.record;
    const err = r.error as { code?: string; message?: string };
    const headers: Record<string, string> = {
      [DLQ_HEADERS.code]: err?.code ?? 'FAILED',
      [DLQ_HEADERS.message]: String(err?.message ?? r.error).slice(0, 8192),
      [this.writer.kind === 'sink' ? DLQ_HEADERS.sink : DLQ_HEADERS.processor]: this.writer.name,
      [DLQ_HEADERS.table]: r.table,
      [DLQ_HEADERS.topic]: d.topic,
      [DLQ_HEADERS.partition]: String(d.partition),
      [DLQ_HEADERS.offset]: String(d.offset),
    };
    if (d.key !== null) headers[DLQ_HEADERS.key] = d.key.toString();
    if (d.timestamp !== undefined) headers[DLQ_HEADERS.timestamp] = String(d.timestamp);
    if (d.schemaId) headers[SCHEMA_HEADER] = d.schemaId;
    this.producer.append(this.topic, { key: `${d.topic}/${d.partition}/${d.offset}`, value: d.value, timestamp: Date.now(), headers }, 0);
    const positions = structuredClone(this.positions);
    for (const p of r.positions) (positions[p.topic] ??= {})[p.partition] = p.next;
    try {
      await this.producer.commit(JSON.stringify(positions));
    } catch (e) {
      await this.producer.abort().catch(() => {});
      throw e;
    }
    this.positions = positions;
  }

  async close(): Promise<void> {
    await this.producer.close();
  }
}
