/**
 * The schema topic as the engine reads it: which schema ids a writer has already put there
 * (SchemaLedger), and schema records by id for readers (SchemaStore). See core/schemas.ts for what
 * the topic holds and why.
 */
import type { Log } from '../log/types.ts';
import { schemaTopicOf, type SchemaRecord } from '../core/schemas.ts';

const SCHEMA_TOPIC_SUFFIX = schemaTopicOf('');
import { sinkError } from '../sinks/errors.ts';

/**
 * Which schema ids the log already holds. `pending` ids were appended to the batch being built and
 * become `committed` only when that batch commits; an aborted batch forgets them.
 */
export class SchemaLedger {
  readonly committed = new Set<string>();
  /** Appended since the last commit started. */
  readonly pending = new Set<string>();
  /** Handed to commits still in flight. */
  private readonly sealed = new Set<string>();
  has(id: string): boolean {
    return this.committed.has(id) || this.pending.has(id) || this.sealed.has(id);
  }
  /** The ids a commit starting now carries: `promote` them once it is durable. */
  seal(): string[] {
    const ids = [...this.pending];
    for (const id of ids) this.sealed.add(id);
    this.pending.clear();
    return ids;
  }
  promote(ids: readonly string[]): void {
    for (const id of ids) {
      this.sealed.delete(id);
      this.committed.add(id);
    }
  }
  /** After a failed attempt: what was not committed must be written again. */
  forget(): void {
    this.pending.clear();
    this.sealed.clear();
  }
  /** Loads the ids already in the log's schema topic. */
  static async load(log: Log, topic: string): Promise<SchemaLedger> {
    const ledger = new SchemaLedger();
    const store = new SchemaStore(log, topic);
    await store.refresh();
    for (const id of store.ids()) ledger.committed.add(id);
    return ledger;
  }
}

/**
 * The sink side: schema records by id, read from the pipeline's schema topic and re-read on a
 * miss. A sink may read topics another pipeline wrote (a pipeline without a source, applying what
 * a capture pipeline of another name wrote): an id its own schema topic lacks is looked up in every
 * `*.__schemas` topic of the log.
 */
export class SchemaStore {
  private readonly byId = new Map<string, SchemaRecord>();
  /** Schema topic → the offset read up to. */
  private readonly next = new Map<string, number>();
  constructor(private readonly log: Log, readonly topic: string) {}

  ids(): IterableIterator<string> {
    return this.byId.keys();
  }

  /** The schemas loaded so far. */
  all(): IterableIterator<SchemaRecord> {
    return this.byId.values();
  }

  async refresh(topic = this.topic): Promise<void> {
    if (!(await this.log.topicInfo(topic))) return;
    for (;;) {
      const at = this.next.get(topic) ?? 0;
      const { records, next } = await this.log.read(topic, 0, at, 1 << 20);
      for (const r of records) {
        if (r.value) {
          const s = JSON.parse(r.value.toString('utf8')) as SchemaRecord;
          // Orders one table's schemas, oldest first (all of a table's are in one topic).
          s.seq = r.offset;
          if (!this.byId.has(s.id) || topic === this.topic) this.byId.set(s.id, s);
        }
      }
      if (next === at) return;
      this.next.set(topic, next);
    }
  }

  /** The schema if already loaded (no I/O). */
  peek(id: string): SchemaRecord | undefined {
    return this.byId.get(id);
  }

  async get(id: string): Promise<SchemaRecord> {
    let s = this.byId.get(id);
    if (s) return s;
    await this.refresh();
    s = this.byId.get(id);
    if (!s) {
      for (const t of await this.log.listTopics()) if (t.name !== this.topic && t.name.endsWith(SCHEMA_TOPIC_SUFFIX)) await this.refresh(t.name);
      s = this.byId.get(id);
    }
    if (!s) {
      throw sinkError('SINK_SCHEMA_MISSING', `schema ${id} is in neither the log's ${this.topic} topic nor another *.__schemas topic of the log: the log was written by an older Sluice or the topic was deleted; re-snapshot the source into a fresh log`);
    }
    return s;
  }
}
