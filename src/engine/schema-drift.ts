/**
 * Schema drift as a processor sees it: a change event whose schema (its header `s`) is a newer
 * schema of its table than the one before it in the schema topic. The difference (columns added,
 * removed, retyped, or changed in nullability or key) becomes a schema-change event on the
 * pipeline's `<pipeline>.schema-changes` topic, committed before the batch that met it (the
 * processors of a pipeline share the topic, so each event is a short commit of its own), with a
 * metric and a log line; or, with `onSchemaChange: stop`, the end of the processor.
 *
 * "The one before it" comes from the schema topic itself (schemas of a table in the order the
 * source wrote them), so a restart neither forgets nor repeats a change: the events this processor
 * already wrote are read back from the topic when it starts.
 */
import type { SchemaColumn, SchemaRecord } from '../core/schemas.ts';
import type { Log, Producer, TopicConfig } from '../log/types.ts';

export const schemaChangesTopicOf = (pipeline: string): string => `${pipeline}.schema-changes`;

export interface SchemaChange {
  /** The processor that met it. */
  processor: string;
  /** The topic of the record that carried the new schema, and its table. */
  topic: string;
  table: string;
  from: string;
  to: string;
  added: { name: string; type: string }[];
  removed: { name: string; type: string }[];
  changed: { name: string; from: string; to: string }[];
  /** When the processor met it (ms). */
  ts_ms: number;
}

const describe = (c: SchemaColumn): string => `${c.sourceType}${c.optional ? '' : ' not null'}${c.key ? ' key' : ''}`;

/** The difference between two schemas of a table; null when the columns are the same (a change of key order, say). */
export function diffSchemas(before: SchemaRecord, after: SchemaRecord): Pick<SchemaChange, 'added' | 'removed' | 'changed'> | null {
  const old = new Map(before.columns.map((c) => [c.name, c]));
  const now = new Map(after.columns.map((c) => [c.name, c]));
  const added = after.columns.filter((c) => !old.has(c.name)).map((c) => ({ name: c.name, type: describe(c) }));
  const removed = before.columns.filter((c) => !now.has(c.name)).map((c) => ({ name: c.name, type: describe(c) }));
  const changed: SchemaChange['changed'] = [];
  for (const c of after.columns) {
    const o = old.get(c.name);
    if (o && describe(o) !== describe(c)) changed.push({ name: c.name, from: describe(o), to: describe(c) });
  }
  return added.length || removed.length || changed.length ? { added, removed, changed } : null;
}

/** The schema of the same table written just before `s` (by position in the schema topic), if any. */
export function previousSchema(s: SchemaRecord, known: Iterable<SchemaRecord>): SchemaRecord | null {
  let best: SchemaRecord | null = null;
  for (const x of known) {
    if (x.topic !== s.topic || x.id === s.id || (x.seq ?? -1) >= (s.seq ?? -1)) continue;
    if (!best || (x.seq ?? -1) > (best.seq ?? -1)) best = x;
  }
  return best;
}

/** The schema ids `processor` has already reported (read back from the schema-changes topic). */
export async function reportedSchemas(log: Log, pipeline: string, processor: string): Promise<Set<string>> {
  const out = new Set<string>();
  const topic = schemaChangesTopicOf(pipeline);
  if (!(await log.topicInfo(topic))) return out;
  for (const { partition, start, end } of await log.offsets(topic)) {
    let at = start;
    while (at < end) {
      const r = await log.read(topic, partition, at, 1 << 20);
      for (const rec of r.records) {
        if (!rec.value) continue;
        const c = JSON.parse(rec.value.toString('utf8')) as SchemaChange;
        if (c.processor === processor) out.add(c.to);
      }
      if (r.next <= at) break;
      at = r.next;
    }
  }
  return out;
}

/** Commits in flight to each log's schema-changes topic: one producer's uncommitted records at a time. */
const WRITING = new WeakMap<Log, Promise<void>>();

/** Writes one processor's schema-change events, each durable before the processor goes on. */
export class ChangeReporter {
  private constructor(
    private readonly log: Log,
    private readonly producer: Producer,
    readonly topic: string,
    private readonly topicDefaults: TopicConfig,
  ) {}

  static async open(log: Log, pipeline: string, processor: string, topicDefaults: TopicConfig): Promise<ChangeReporter> {
    const { producer } = await log.openProducer(`schema-changes:${pipeline}:${processor}`);
    return new ChangeReporter(log, producer, schemaChangesTopicOf(pipeline), topicDefaults);
  }

  async write(change: SchemaChange, key: string): Promise<void> {
    const before = WRITING.get(this.log) ?? Promise.resolve();
    const mine = before.then(async () => {
      await this.log.ensureTopic(this.topic, { ...this.topicDefaults, partitions: 1 });
      this.producer.append(this.topic, { key, value: JSON.stringify(change), timestamp: change.ts_ms }, 0);
      await this.producer.commit('');
    });
    WRITING.set(this.log, mine.catch(() => {}));
    await mine;
  }

  close(): Promise<void> {
    return this.producer.close();
  }
}
