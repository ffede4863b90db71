/**
 * Table schemas in the log. Events are written without their schema (Debezium JSON with
 * `schemas.enable=false` by default), but sinks need column types to create and evolve target
 * tables. So each distinct table schema is written once, content-addressed, to the topic
 * `<prefix>.__schemas` in the same atomic commit as the first event that uses it, and every event
 * carries its schema id in the record header `s`. A sink that meets an id it does not know re-reads
 * that topic: the schema is committed no later than the data, so it is always there.
 */
import { createHash } from 'node:crypto';
import type { FieldSchema, TableSchema } from './event.ts';
import type { Log } from '../log/types.ts';
import { SluiceError } from './errors.ts';
import { sinkError } from '../sinks/errors.ts';

export interface SchemaColumn {
  name: string;
  /** The source database's type name, e.g. `numeric(10,2)`, `text[]`, `varchar(40)`. */
  sourceType: string;
  optional: boolean;
  key: boolean;
  /** The Kafka Connect schema of the column's values in events. */
  connect: FieldSchema;
}

export interface SchemaRecord {
  id: string;
  /** Source connector, e.g. `postgresql`. */
  connector: string;
  topic: string;
  schema: string;
  table: string;
  keyColumns: string[];
  columns: SchemaColumn[];
  /** Position in the schema topic (set by SchemaStore; orders a table's schemas oldest first). */
  seq?: number;
}

export const SCHEMA_HEADER = 's';
export const schemaTopicOf = (prefix: string): string => `${prefix}.__schemas`;

const cache = new WeakMap<TableSchema, Map<string, SchemaRecord>>();

/** The schema record of `table` as written to `topic` (cached per table object). */
export function schemaRecordOf(connector: string, topic: string, table: TableSchema): SchemaRecord {
  let byTopic = cache.get(table);
  if (!byTopic) cache.set(table, (byTopic = new Map()));
  let rec = byTopic.get(topic);
  if (rec) return rec;
  const body = {
    connector,
    topic,
    schema: table.schema,
    table: table.table,
    keyColumns: table.keyColumns,
    columns: table.columns.map((c) => ({ name: c.name, sourceType: c.typeName, optional: c.optional, key: c.key, connect: c.schema })),
  };
  const id = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  rec = { id, ...body };
  byTopic.set(topic, rec);
  return rec;
}

/**
 * Which schema ids the log already holds. `pending` ids were appended to the batch being built and
 * become `committed` only when that batch commits; an aborted batch forgets them.
 */
export class SchemaLedger {
  readonly committed = new Set<string>();
  readonly pending = new Set<string>();
  has(id: string): boolean {
    return this.committed.has(id) || this.pending.has(id);
  }
  promote(): void {
    for (const id of this.pending) this.committed.add(id);
    this.pending.clear();
  }
  forget(): void {
    this.pending.clear();
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

/** The sink side: schema records by id, read from the schema topic and re-read on a miss. */
export class SchemaStore {
  private readonly byId = new Map<string, SchemaRecord>();
  private next = 0;
  constructor(private readonly log: Log, readonly topic: string) {}

  ids(): IterableIterator<string> {
    return this.byId.keys();
  }

  async refresh(): Promise<void> {
    if (!(await this.log.topicInfo(this.topic))) return;
    for (;;) {
      const recs = await this.log.read(this.topic, 0, this.next, 1 << 20);
      if (recs.length === 0) return;
      for (const r of recs) {
        if (r.value) {
          const s = JSON.parse(r.value.toString('utf8')) as SchemaRecord;
          s.seq = r.offset;
          this.byId.set(s.id, s);
        }
        this.next = r.offset + 1;
      }
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
      throw sinkError('SINK_SCHEMA_MISSING', `schema ${id} is not in the log's ${this.topic} topic: the log was written by an older Sluice or the topic was deleted; re-snapshot the source into a fresh log`);
    }
    return s;
  }
}
