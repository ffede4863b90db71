/**
 * The document sink (`mongodb`, `postgres_jsonb`): each source table's changes become documents
 * of a collection, reshaped by the table's template; then derived collections are recomputed for
 * the keys the batch touched; then the batch's log offsets are stored (`sluice_offsets`
 * collection, `{_id: sink|topic|partition, sink, topic, partition, next}`).
 *
 * PostgreSQL JSONB does all of it in one transaction when the derived schema is in the same
 * database. MongoDB writes as it goes, in the order data → derived → offsets: a crash leaves the
 * offsets behind the data, the batch is applied again on restart, and since every write is an
 * upsert or delete by `_id` (and derived documents are recomputed from the layer) the replay ends
 * in the same documents.
 */
import type { DocumentCollectionConfig, DocumentSinkConfig } from './spec.ts';
import { isRetriable, SluiceError } from '../../core/errors.ts';
import type { Row } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { targetName } from '../sql/columns.ts';
import { offsetsFromRows, type Sink, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { deriveBatch, loadDerivers } from './derive.ts';
import { sourceTsOf, TableShape, templateError } from './reshape.ts';
import type { DocumentStores } from './stores.ts';
import { compileTemplate, type Compiled } from './template.ts';
import type { DerivedChange, Deriver, Doc } from './types.ts';
import { sinkError } from '../errors.ts';

/** `schema.table` patterns with `*` wildcards. */
function matches(pattern: string, table: string): boolean {
  return new RegExp('^' + pattern.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$').test(table);
}

interface Target {
  collection: string;
  entry: DocumentCollectionConfig | null;
  template: Compiled | null;
}

export class DocumentSink implements Sink {
  private stores: (DocumentStores & { connectionError?: () => Error | null }) | null = null;
  private derivers: Deriver[] = [];
  private readonly targets = new Map<string, Target>();
  private readonly shapes = new Map<string, TableShape>();
  /** Whether an error is the store's driver saying the connection is gone (set on open). */
  private isStoreConnectionError: (e: unknown) => boolean = () => false;

  constructor(
    private readonly cfg: DocumentSinkConfig,
    private readonly logger: Logger,
    private readonly id: string,
  ) {}

  get name(): string {
    return this.cfg.name;
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const c = this.cfg;
    try {
      // Each store's module (and driver) loads only when used: a PostgreSQL JSONB sink runs
      // without the mongodb package installed.
      if (c.type === 'mongodb') {
        const m = await import('./mongodb.ts');
        this.isStoreConnectionError = m.isMongoConnectionError;
        this.stores = await m.openMongoStores({ url: c.connection, database: c.database, derive: c.derive && { url: c.derive.connection, database: c.derive.database } });
      } else {
        const { openPgJsonStores } = await import('./pgjson.ts');
        this.stores = await openPgJsonStores({ name: c.name, connection: c.connection, schema: c.schema, derive: c.derive && { connection: c.derive.connection, schema: c.derive.schema } });
      }
      if (c.derive) this.derivers = await loadDerivers(c.derive.module);
      const { data, derived } = this.stores;
      await data.ensureCollection(c.offsetsTable, [['sink']]);
      for (const d of this.derivers) await derived!.ensureCollection(d.collection, d.indexes);
      const rows = await data.find(c.offsetsTable, { sink: this.id });
      this.logger.info('document sink open', { sink: c.name, type: c.type, derivers: this.derivers.map((d) => d.collection), transactional: this.stores.transactional });
      return offsetsFromRows(rows.map((r) => [r.topic, r.partition, r.next]));
    } catch (e) {
      throw this.explain(e);
    }
  }

  async storedOffsets(): Promise<Map<string, Map<number, number>>> {
    const rows = await this.stores!.data.find(this.cfg.offsetsTable, { sink: this.id });
    return offsetsFromRows(rows.map((r) => [r.topic, r.partition, r.next]));
  }

  async close(): Promise<void> {
    await this.stores?.close();
    this.stores = null;
  }

  async apply(batch: SinkBatch): Promise<void> {
    const stores = this.stores!;
    try {
      const now = new Date();
      // Collections and indexes first, outside the batch's transaction (idempotent DDL).
      for (const t of batch.tables) {
        const target = this.target(t.schema);
        for (const s of t.schemas) this.shape(s, target);
        await stores.data.ensureCollection(target.collection, target.entry?.indexes);
      }
      await stores.atomically(async () => {
        const changes: DerivedChange[] = [];
        for (const t of batch.tables) await this.applyTable(t, now, changes);
        if (this.derivers.length && changes.length) await deriveBatch(this.derivers, changes, stores.data, stores.derived!, now, stores.parallelism);
        if (batch.offsets.length) {
          await stores.data.upsert(
            this.cfg.offsetsTable,
            batch.offsets.map((o) => ({ _id: `${this.id}|${o.topic}|${o.partition}`, sink: this.id, topic: o.topic, partition: o.partition, next: o.next })),
          );
        }
      });
    } catch (e) {
      throw this.explain(e);
    }
  }

  /** The collection (and template) of a source table. */
  private target(s: SchemaRecord): Target {
    const table = `${s.schema}.${s.table}`;
    let t = this.targets.get(table);
    if (!t) {
      const entry = this.cfg.collections.find((c) => matches(c.table, table)) ?? null;
      const template = entry?.document
        ? compileTemplate(entry.document, (path, msg) => {
            throw templateError(`${entry.positions[path.join('.')] ?? entry.at}: sink ${this.cfg.name}, collection ${entry.collection}: document.${path.join('.')}: ${msg}`);
          })
        : null;
      t = { collection: targetName(entry?.collection ?? this.cfg.tableName, s), entry, template };
      this.targets.set(table, t);
    }
    return t;
  }

  /** How records of schema `s` become documents; fails when the template reads a column `s` lacks. */
  private shape(s: SchemaRecord, target = this.target(s)): TableShape {
    let shape = this.shapes.get(s.id);
    if (!shape) {
      shape = new TableShape(s, target.template, { name: this.cfg.name, label: this.cfg.type === 'mongodb' ? 'MongoDB' : 'PostgreSQL JSONB', json: this.cfg.type !== 'mongodb' });
      const missing = shape.missingColumns();
      if (missing.length) {
        const e = target.entry!;
        const cols = s.columns.map((c) => c.name).join(', ');
        throw templateError(
          missing
            .map((m) => `${e.positions[m.path] ?? e.at}: sink ${this.cfg.name}, collection ${target.collection}: document.${m.path}: $${m.name} is not a column of ${s.schema}.${s.table} (its columns: ${cols})`)
            .join('\n') + `\nFix the template in the config (or the source table) and restart the pipeline; nothing of this batch was written`,
        );
      }
      this.shapes.set(s.id, shape);
    }
    return shape;
  }

  private async applyTable(t: TableBatch, now: Date, changes: DerivedChange[]): Promise<void> {
    const { data } = this.stores!;
    const target = this.target(t.schema);
    const table = `${t.schema.schema}.${t.schema.table}`;
    const wantChanges = this.derivers.length > 0;
    const parsed = new Map<SinkRecord, Row>();
    const envelope = (r: SinkRecord): Row => {
      let env = parsed.get(r);
      if (!env) parsed.set(r, (env = parseJson(r.value) as Row));
      return env;
    };
    if (t.truncate) {
      await data.deleteAll(target.collection);
      if (wantChanges) changes.push({ table, op: 't', before: null, after: null });
    }
    const docOf = (r: SinkRecord, id?: string | number): Doc => {
      const env = envelope(r);
      const shape = this.shape(r.schema, target);
      const row = shape.convert((env.after ?? {}) as Row);
      return shape.document(id ?? shape.idOf(row), row, { sourceTs: sourceTsOf(env), syncTs: now, op: r.op });
    };
    if (t.keyless.length) {
      const bad = t.keyless.find((r) => r.op === 'u' || r.op === 'd');
      if (bad) {
        throw sinkError('SINK_NO_KEY', `table ${table} has no primary key, so its ${bad.op === 'u' ? 'updates' : 'deletes'} (${bad.topic}/${bad.partition}@${bad.offset}) cannot be applied to a document; give the source table a primary key, then re-snapshot`);
      }
      // Inserts of a keyless table: the change's log position is the document's _id (a replay rewrites the same one).
      await data.upsert(target.collection, t.keyless.map((r) => docOf(r, `${r.topic}|${r.partition}|${r.offset}`)));
    }
    if (t.deletes.length) {
      const ids = t.deletes.map((r) => {
        const shape = this.shape(r.schema, target);
        return shape.idOf(shape.convert(parseJson(r.key!) as Row));
      });
      await data.deleteIds(target.collection, ids);
    }
    if (t.upserts.length) await data.upsert(target.collection, t.upserts.map((r) => docOf(r)));
    if (wantChanges) {
      for (const r of t.changes) {
        const env = envelope(r);
        const shape = this.shape(r.schema, target);
        const image = (v: unknown) => (v && typeof v === 'object' ? shape.convert(v as Row) : null);
        changes.push({ table, op: r.op, before: image(env.before), after: image(env.after) });
      }
    }
  }

  private explain(e: unknown): unknown {
    if (e instanceof SluiceError) return e;
    const err = e as { code?: string; message?: string; name?: string };
    const lost = this.stores?.connectionError?.();
    if (lost || this.isStoreConnectionError(e) || isRetriable(e)) {
      return sinkError('SINK_CONNECTION_LOST', `sink ${this.cfg.name}: lost the connection to the document store (${(lost ?? (e as Error)).message}); reconnecting and resuming from the stored offsets`, { cause: e });
    }
    if (typeof err.code === 'string' && /^(22|23|42)/.test(err.code)) {
      return sinkError('SINK_REJECTED', `sink ${this.cfg.name}: PostgreSQL refused the batch: ${err.message} (SQLSTATE ${err.code}); nothing of this batch was applied. Fix the cause and restart`, { cause: e });
    }
    if (/^Mongo(Server|BulkWrite|WriteConcern)Error$/.test(err.name ?? '')) {
      return sinkError('SINK_REJECTED', `sink ${this.cfg.name}: MongoDB refused a write: ${err.message}. Fix the cause and restart; the batch is applied again from its start`, { cause: e });
    }
    return e;
  }
}
