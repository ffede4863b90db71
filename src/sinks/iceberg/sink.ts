/**
 * Apache Iceberg sink, written from the Iceberg table spec (format version 2; no JVM): one table
 * per source table at `<path>/<namespace>/<table>`, Parquet data files with the schema's field
 * ids, Avro manifests and manifest lists, and a `metadata.json` per commit.
 *
 * - append (bronze): every change event a row, with the lead columns `__change_id`, `__op`,
 *   `__source_ts_ms`, `__synced_at`; each batch of a table is one `append` snapshot.
 * - merge (silver): the current row per key, merge-on-read. Each batch is one snapshot adding the
 *   keys' last rows and an equality-delete file (on the key columns' field ids) of every key it
 *   changed. A delete applies to data files of lower sequence numbers, so it hides the keys'
 *   older rows and not the new ones beside it. Delete files are written in the unpartitioned spec
 *   (id 0), which makes them apply across partitions: a row that moved partition is hidden too.
 *
 * Exactly once: each snapshot's summary carries, per log partition the sink applied to the table,
 * `sluice:<pipeline>/<sink>:<topic>:<partition>` = the next offset (those of earlier snapshots
 * carried forward), and the commit is one put-if-absent metadata file: the rows and the offsets
 * become visible together. At start the sink reads each table's current snapshot for them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { makeDirs } from '../../core/dirs.ts';
import type { Logger } from '../../core/logger.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { duckdbDialect } from '../duckdb/dialect.ts';
import { changeId } from '../duckdb/lines.ts';
import { sinkError } from '../errors.ts';
import { LEAD_NAMES, loadBatch, openWorkspace, scratchFile, type LakeWorkspace } from '../lake/batch.ts';
import { kindName, targetColumns, targetName, type TargetColumn } from '../sql/columns.ts';
import { checkKeyless } from '../sql/records.ts';
import type { OffsetPosition, Sink, SinkBatch, TableBatch } from '../types.ts';
import { registerBucketFunctions } from './bucket.ts';
import { icebergError } from './errors.ts';
import { manifestListOf, manifestOf, readManifest, readManifestList, type ContentFile, type ManifestFile } from './manifest.ts';
import { FilesystemCatalog, JdbcCatalog, type Catalog, type Current } from './catalog.ts';
import { writeSynced, type IcebergType, type PartitionField, type PartitionSpec, type SchemaField, type TableMetadata, type TableSchema } from './metadata.ts';
import { PARTITION_FIELD, type IcebergSinkConfig } from './spec.ts';
import { duckOf, icebergType, sameType } from './types.ts';

const { qi, ql } = duckdbDialect;

const LEAD_TYPES: Record<(typeof LEAD_NAMES)[number], IcebergType> = { __change_id: 'long', __op: 'string', __source_ts_ms: 'long', __synced_at: 'timestamptz' };

/** A partition field's value in SQL, as the manifest's Avro wants it (days, hours, … since the epoch). */
function partitionSql(transform: string, col: string, type: IcebergType): string {
  const x = qi(col);
  const isDate = type === 'date';
  switch (transform) {
    case 'identity':
      return isDate ? `(${x} - DATE '1970-01-01')::INTEGER` : type === 'timestamp' || type === 'timestamptz' ? `epoch_us(${x})` : x;
    case 'year':
      return `(date_part('year', ${x}) - 1970)::INTEGER`;
    case 'month':
      return `((date_part('year', ${x}) - 1970) * 12 + date_part('month', ${x}) - 1)::INTEGER`;
    case 'day':
      return isDate ? `(${x} - DATE '1970-01-01')::INTEGER` : `floor(epoch_us(${x}) / 86400000000)::INTEGER`;
    case 'hour':
      return `floor(epoch_us(${x}) / 3600000000)::INTEGER`;
    default: {
      const b = /^bucket\[(\d+)\]$/.exec(transform);
      if (!b) throw new Error(`unknown transform ${transform}`);
      // The spec hashes ints, dates and timestamps as longs (days, microseconds), text as UTF-8.
      if (type === 'string') return `sluice_bucket_text(${x}, ${b[1]})`;
      if (type === 'binary') return `sluice_bucket_blob(${x}, ${b[1]})`;
      const long = isDate ? `(${x} - DATE '1970-01-01')::BIGINT` : type === 'timestamp' || type === 'timestamptz' ? `epoch_us(${x})` : `${x}::BIGINT`;
      return `sluice_bucket_long(${long}, ${b[1]})`;
    }
  }
}

/** The type a transform yields from a column of type `t` (Iceberg's: day is a date). */
const resultType = (transform: string, t: IcebergType): IcebergType => (transform === 'identity' ? t : transform === 'day' ? 'date' : 'int');

/** The partition fields a transform may take a column of type `t` for. */
const TRANSFORMABLE: Record<string, (t: IcebergType) => boolean> = {
  bucket: (t) => typeof t === 'string' && ['int', 'long', 'string', 'binary', 'date', 'timestamp', 'timestamptz'].includes(t),
  identity: (t) => typeof t === 'string' && ['boolean', 'int', 'long', 'string', 'date', 'timestamp', 'timestamptz'].includes(t),
  year: (t) => t === 'date' || t === 'timestamp' || t === 'timestamptz',
  month: (t) => t === 'date' || t === 'timestamp' || t === 'timestamptz',
  day: (t) => t === 'date' || t === 'timestamp' || t === 'timestamptz',
  hour: (t) => t === 'timestamp' || t === 'timestamptz',
};

/** What the sink keeps of a table between batches. */
interface TableState {
  dir: string;
  /** Its current metadata (null: not created yet). */
  current: Current | null;
  /** The current snapshot's manifests. */
  manifests: ManifestFile[];
}

const SQL_LITERAL = (v: unknown): string => (v === null || v === undefined ? 'NULL' : typeof v === 'string' ? ql(v) : typeof v === 'boolean' ? (v ? 'TRUE' : 'FALSE') : String(v));

export class IcebergSink implements Sink {
  private ws: LakeWorkspace | null = null;
  private conn: DuckDBConnection | null = null;
  private scratch = '';
  private files = 0;
  private readonly tables = new Map<string, TableState>();
  private readonly appPrefix: string;
  private readonly catalog: Catalog;

  constructor(
    private readonly cfg: IcebergSinkConfig,
    private readonly logger: Logger,
    id: string,
  ) {
    this.appPrefix = `sluice:${id}:`;
    this.catalog = cfg.catalog.type === 'jdbc' ? new JdbcCatalog(cfg.catalog.connection, cfg.catalog.name, cfg.name) : new FilesystemCatalog();
  }

  get name(): string {
    return this.cfg.name;
  }

  private get root(): string {
    return resolve(this.cfg.path);
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    this.ws = await openWorkspace(this.cfg.name, 'warehouse', this.root);
    this.conn = this.ws.conn;
    this.scratch = this.ws.scratch;
    await registerBucketFunctions(this.conn);
    this.tables.clear();
    const offsets = new Map<string, Map<number, number>>();
    for (const t of await this.catalog.tables(this.root)) {
      const cur = await this.catalog.load(t.ns, t.table, t.dir);
      if (!cur) continue;
      for (const [appId, next] of Object.entries(this.summaryOffsets(cur.metadata))) {
        const rest = appId.slice(this.appPrefix.length);
        const at = rest.lastIndexOf(':');
        const topic = rest.slice(0, at);
        let m = offsets.get(topic);
        if (!m) offsets.set(topic, (m = new Map()));
        m.set(Number(rest.slice(at + 1)), next);
      }
    }
    return offsets;
  }

  /** The offsets this sink recorded in the table's current snapshot. */
  private summaryOffsets(m: TableMetadata): Record<string, number> {
    const snap = m.snapshots.find((s) => s['snapshot-id'] === m['current-snapshot-id']);
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(snap?.summary ?? {})) if (k.startsWith(this.appPrefix)) out[k] = Number(v);
    return out;
  }

  async apply(batch: SinkBatch): Promise<void> {
    for (const t of batch.tables) {
      await this.applyTable(
        t,
        batch.offsets.filter((o) => o.topic === t.topic),
      );
    }
  }

  private plainName(what: string, name: string, t: TableBatch, template: string): void {
    if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
      throw sinkError('SINK_TARGET_PATH', `sink ${this.cfg.name}: the Iceberg ${what} of ${t.schema.schema}.${t.schema.table} would be the directory ${JSON.stringify(name)} (${what === 'table' ? 'tableName' : 'namespace'} ${JSON.stringify(template)}), which is not one directory name. Set it to a template that gives a plain name, or exclude the table with the sink's tables`);
    }
  }

  private async tableState(ns: string, name: string, dir: string): Promise<TableState> {
    let st = this.tables.get(dir);
    if (st) return st;
    const cur = await this.catalog.load(ns, name, dir);
    const metadata = cur?.metadata ?? null;
    const snap = metadata?.snapshots.find((s) => s['snapshot-id'] === metadata['current-snapshot-id']);
    let manifests: ManifestFile[] = [];
    if (snap) {
      try {
        manifests = await readManifestList(snap['manifest-list']);
      } catch (e) {
        throw icebergError('ICEBERG_METADATA_UNREADABLE', `the manifest list ${snap['manifest-list']} of the Iceberg table at ${dir} cannot be read: ${(e as Error).message}`, { cause: e });
      }
    }
    st = { dir, current: cur, manifests };
    this.tables.set(dir, st);
    return st;
  }

  private async applyTable(t: TableBatch, offsets: OffsetPosition[]): Promise<void> {
    const ns = targetName(this.cfg.namespace, t.schema);
    const name = targetName(this.cfg.tableName, t.schema);
    this.plainName('namespace', ns, t, this.cfg.namespace);
    this.plainName('table', name, t, this.cfg.tableName);
    const dir = join(this.root, ns, name);
    const st = await this.tableState(ns, name, dir);
    const applied = st.current ? this.summaryOffsets(st.current.metadata) : {};
    for (const o of offsets) {
      const have = applied[`${this.appPrefix}${o.topic}:${o.partition}`];
      if (o.from !== undefined && (have ?? 0) !== o.from) throw sinkError('SINK_FENCED', `sink ${this.cfg.name}: table ${ns}.${name} holds ${o.topic}/${o.partition} up to ${have ?? 0}, not ${o.from}: another worker applied it`);
    }
    const cols = new Map<string, TargetColumn>();
    for (const s of t.schemas) for (const col of targetColumns(s, { addFields: [], deletes: 'hard', softDeleteColumn: '', tableName: '', schemaEvolution: 'add_columns' } as never)) cols.set(col.name, col);
    const colList = [...cols.values()];
    const now = Date.now();
    const meta = this.evolve(`${ns}.${name}`, st.current?.metadata ?? null, colList, dir, now);
    const schema = meta.schemas.find((s) => s['schema-id'] === meta['current-schema-id'])!;
    const byName = new Map(schema.fields.map((f) => [f.name, f]));
    const merge = this.cfg.mode === 'merge' && t.schema.keyColumns.length > 0;
    if (merge) checkKeyless(t);
    const snapshotId = Number(BigInt(`0x${randomBytes(7).toString('hex')}`) & ((1n << 52n) - 1n)) || 1;
    const sequence = meta['last-sequence-number'] + 1;
    const written: string[] = [];
    try {
      // The batch's rows, as the table's fields (a field the batch lacks, dropped at the source, as null).
      const select = (where: string) => `SELECT ${schema.fields.map((f) => (f.name in LEAD_TYPES || cols.has(f.name) ? qi(f.name) : `NULL::${duckOf(f.type)} AS ${qi(f.name)}`)).join(', ')} FROM sluice_batch ${where}`;
      const parts: string[] = [];
      if (t.changes.length) {
        await loadBatch(this.conn!, scratchFile(this.scratch, ++this.files), t, colList, (c) => duckOf(byName.get(c.name)!.type));
        parts.push(select(merge ? 'WHERE u = 1' : ''));
      }
      if (t.truncate && !merge) parts.push(`SELECT ${schema.fields.map((f) => (f.name === '__change_id' ? `${changeId(t.truncate!)}::BIGINT AS __change_id` : f.name === '__op' ? `'t' AS __op` : f.name === '__synced_at' ? `now() AS __synced_at` : `NULL::${duckOf(f.type)} AS ${qi(f.name)}`)).join(', ')}`);
      const spec = meta['partition-specs'].find((s) => s['spec-id'] === meta['default-spec-id'])!;
      const dataFiles = parts.length ? await this.writeData(parts.join(' UNION ALL '), schema, spec, dir, sequence, written) : [];
      const deleteFiles: ContentFile[] = [];
      if (merge && t.changes.length) {
        const keys = t.schema.keyColumns.map((k) => byName.get(k)!);
        const path = join(dir, 'data', `${String(sequence).padStart(5, '0')}-${randomUUID()}-eq-deletes.parquet`);
        written.push(path);
        const rows = await this.copy(`SELECT DISTINCT ${keys.map((k) => qi(k.name)).join(', ')} FROM sluice_batch WHERE u > 0`, keys, path);
        if (rows) deleteFiles.push({ content: 2, path, partition: {}, records: rows, bytes: (await stat(path)).size, equalityIds: keys.map((k) => k.id) });
      }
      // The snapshot's manifests: the previous snapshot's (none after a merge table's truncate), and the new ones.
      let manifests = merge && t.truncate ? [] : [...st.manifests];
      const unpartitioned = meta['partition-specs'].find((s) => s['spec-id'] === 0)!;
      const writeManifest = async (files: ContentFile[], sp: PartitionSpec): Promise<ManifestFile> => {
        const path = join(dir, 'metadata', `${randomUUID()}-m0.avro`);
        const types = sp.fields.map((p) => resultType(p.transform, schema.fields.find((f) => f.id === p['source-id'])!.type));
        const m = manifestOf(files, { schema, specId: sp['spec-id'], spec: sp.fields, partitionTypes: types, snapshotId, sequence, path });
        written.push(path);
        await makeDirs(join(dir, 'metadata'));
        await writeSynced(path, m.bytes);
        return m.entry;
      };
      // Manifests pile up one or two per commit: once manifestMergeCount of a kind (data or
      // deletes, per spec) are carried, they become one manifest of their files as EXISTING entries.
      for (const content of [0, 1] as const) {
        for (const sp of meta['partition-specs']) {
          const group = manifests.filter((m) => m.content === content && m.partition_spec_id === sp['spec-id']);
          if (group.length < this.cfg.manifestMergeCount) continue;
          const files: ContentFile[] = [];
          for (const m of group) files.push(...(await readManifest(m)));
          const merged = files.length ? [await writeManifest(files, sp)] : [];
          manifests = [...merged, ...manifests.filter((m) => !group.includes(m))];
        }
      }
      for (const [files, sp] of [
        [dataFiles, spec],
        [deleteFiles, unpartitioned],
      ] as const) {
        if (files.length) manifests.unshift(await writeManifest(files, sp));
      }
      const listPath = join(dir, 'metadata', `snap-${snapshotId}-1-${randomUUID()}.avro`);
      await makeDirs(join(dir, 'metadata'));
      written.push(listPath);
      const parent = meta['current-snapshot-id'] >= 0 ? meta['current-snapshot-id'] : null;
      await writeSynced(listPath, manifestListOf(manifests, { snapshotId, parentId: parent, sequence }));
      const addedRecords = dataFiles.reduce((n, x) => n + x.records, 0);
      const summary: Record<string, string> = {
        operation: deleteFiles.length || (merge && t.truncate) ? 'overwrite' : 'append',
        'added-data-files': String(dataFiles.length),
        'added-records': String(addedRecords),
        'added-files-size': String(dataFiles.reduce((n, x) => n + x.bytes, 0)),
        'added-delete-files': String(deleteFiles.length),
        'added-equality-deletes': String(deleteFiles.reduce((n, x) => n + x.records, 0)),
        'engine-name': 'sluice',
        'engine-version': SLUICE_VERSION,
        ...Object.fromEntries(Object.entries(applied).map(([k, v]) => [k, String(v)])),
      };
      for (const o of offsets) summary[`${this.appPrefix}${o.topic}:${o.partition}`] = String(o.next);
      const next: TableMetadata = {
        ...meta,
        'last-sequence-number': sequence,
        'last-updated-ms': now,
        'current-snapshot-id': snapshotId,
        refs: { ...meta.refs, main: { 'snapshot-id': snapshotId, type: 'branch' } },
        snapshots: [...meta.snapshots, { 'snapshot-id': snapshotId, ...(parent === null ? {} : { 'parent-snapshot-id': parent }), 'sequence-number': sequence, 'timestamp-ms': now, 'manifest-list': listPath, summary: summary as TableMetadata['snapshots'][number]['summary'], 'schema-id': schema['schema-id'] }],
        'snapshot-log': [...meta['snapshot-log'], { 'timestamp-ms': now, 'snapshot-id': snapshotId }],
        // The last 100 metadata files (Iceberg's write.metadata.previous-versions-max).
        'metadata-log': (st.current ? [...meta['metadata-log'], { 'timestamp-ms': st.current.metadata['last-updated-ms'], 'metadata-file': st.current.file }] : meta['metadata-log']).slice(-100),
      };
      const created = !st.current;
      st.current = await this.catalog.commit(ns, name, dir, st.current, next);
      st.manifests = manifests;
      if (created) this.logger.info('created Iceberg table', { sink: this.cfg.name, table: `${ns}.${name}`, dir, mode: this.cfg.mode });
    } catch (e) {
      // Not committed: no metadata references these files; the table is read again before the retry.
      for (const p of written) await rm(p, { force: true });
      this.tables.delete(dir);
      throw e;
    }
  }

  /**
   * The table's metadata with this batch's schema: a new table gets the lead columns and the
   * source's, the partition specs of `partitionBy` (spec 0 is unpartitioned: equality deletes go
   * there); a new source column is added with a new field id, in a new schema.
   */
  private evolve(name: string, m: TableMetadata | null, cols: TargetColumn[], dir: string, now: number): TableMetadata {
    if (!m) {
      let id = 0;
      const nextId = () => ++id;
      const fields: SchemaField[] = LEAD_NAMES.map((n) => ({ id: nextId(), name: n, required: false, type: LEAD_TYPES[n] }));
      for (const c of cols) {
        const fid = nextId();
        fields.push({ id: fid, name: c.name, required: false, type: icebergType(c.kind, nextId) });
      }
      const pfields: PartitionField[] = [];
      for (const p of this.cfg.partitionBy) {
        const mm = PARTITION_FIELD.exec(p)!;
        const transform = mm[1] ?? 'identity';
        const col = mm[2] ?? mm[3];
        const f = fields.find((x) => x.name === col);
        if (!f) continue;
        const kind = transform.startsWith('bucket[') ? 'bucket' : transform;
        if (!TRANSFORMABLE[kind](f.type)) throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: table ${name} cannot be partitioned by ${p}: ${col} is ${JSON.stringify(f.type)}. ${kind === 'identity' ? 'Partition by a text, integer, boolean, date or timestamp column' : kind === 'bucket' ? 'bucket[N]() takes an integer, text, binary, date or timestamp column' : `${transform}() takes a date or timestamp column${transform === 'hour' ? ' (hour: a timestamp)' : ''}`} (partitionBy)`);
        pfields.push({ 'source-id': f.id, 'field-id': 1000 + pfields.length, name: kind === 'identity' ? col : `${col}_${kind}`, transform });
      }
      const specs: PartitionSpec[] = [{ 'spec-id': 0, fields: [] }];
      if (pfields.length) specs.push({ 'spec-id': 1, fields: pfields });
      return {
        'format-version': 2,
        'table-uuid': randomUUID(),
        location: dir,
        'last-sequence-number': 0,
        'last-updated-ms': now,
        'last-column-id': id,
        'current-schema-id': 0,
        schemas: [{ type: 'struct', 'schema-id': 0, fields }],
        'default-spec-id': pfields.length ? 1 : 0,
        'partition-specs': specs,
        'last-partition-id': pfields.length ? 999 + pfields.length : 999,
        'default-sort-order-id': 0,
        'sort-orders': [{ 'order-id': 0, fields: [] }],
        properties: { 'write.format.default': 'parquet', 'sluice.writer': `Sluice/${SLUICE_VERSION}` },
        'current-snapshot-id': -1,
        refs: {},
        snapshots: [],
        'snapshot-log': [],
        'metadata-log': [],
      };
    }
    const schema = m.schemas.find((s) => s['schema-id'] === m['current-schema-id'])!;
    const have = new Map(schema.fields.map((f) => [f.name, f]));
    for (const n of LEAD_NAMES) {
      if (!have.has(n) || !sameType(have.get(n)!.type, LEAD_TYPES[n])) throw icebergError('ICEBERG_TABLE_FOREIGN', `sink ${this.cfg.name}: the Iceberg table ${name} has no ${n} ${JSON.stringify(LEAD_TYPES[n])} column: it was not written by this sink. Point namespace, tableName or path elsewhere`);
    }
    let last = m['last-column-id'];
    const nextId = () => ++last;
    const added: SchemaField[] = [];
    for (const c of cols) {
      const f = have.get(c.name);
      if (!f) {
        const fid = nextId();
        added.push({ id: fid, name: c.name, required: false, type: icebergType(c.kind, nextId) });
        continue;
      }
      const want = icebergType(c.kind, () => 0);
      if (!sameType(f.type, want)) throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: column ${c.name} of Iceberg table ${name} is ${JSON.stringify(f.type)} and the source's ${c.name} is now ${kindName(c.kind)} (${JSON.stringify(want)} in Iceberg), which this sink does not change in place. Write the table anew under another tableName, or exclude the table with the sink's tables`);
    }
    if (!added.length) return m;
    if (this.cfg.schemaEvolution === 'none') throw sinkError('SINK_SCHEMA_CHANGED', `sink ${this.cfg.name}: the source added ${added.map((f) => f.name).join(', ')} to ${name}, and schemaEvolution is none. Set schemaEvolution: add_columns to add them to the Iceberg table`);
    const id = Math.max(...m.schemas.map((s) => s['schema-id'])) + 1;
    return { ...m, 'last-column-id': last, 'current-schema-id': id, schemas: [...m.schemas, { type: 'struct', 'schema-id': id, fields: [...schema.fields, ...added] }] };
  }

  /** `FIELD_IDS` for DuckDB's Parquet writer: each column's field id, lists' element ids nested. */
  private fieldIds(fields: SchemaField[]): string {
    const one = (t: IcebergType, id: number): string => (typeof t === 'string' ? String(id) : `{__duckdb_field_id: ${id}, element: ${one(t.element, t['element-id'])}}`);
    return `{${fields.map((f) => `${qi(f.name)}: ${one(f.type, f.id)}`).join(', ')}}`;
  }

  /** Writes the rows of `select` (yielding `fields`) to a Parquet file with their field ids; how many. */
  private async copy(select: string, fields: SchemaField[], path: string): Promise<number> {
    await makeDirs(resolve(path, '..'));
    return Number((await this.conn!.runAndReadAll(`COPY (${select}) TO ${ql(path)} (FORMAT parquet, COMPRESSION zstd, FIELD_IDS ${this.fieldIds(fields)})`)).getRows()[0][0]);
  }

  /** Data files of `select`'s rows: one, or one per partition of `spec`. */
  private async writeData(select: string, schema: TableSchema, spec: PartitionSpec, dir: string, sequence: number, written: string[]): Promise<ContentFile[]> {
    const file = (sub: string) => join(dir, 'data', sub, `${String(sequence).padStart(5, '0')}-${randomUUID()}.parquet`);
    if (!spec.fields.length) {
      const path = file('');
      written.push(path);
      const rows = await this.copy(select, schema.fields, path);
      return rows ? [{ content: 0, path, partition: {}, records: rows, bytes: (await stat(path)).size }] : [];
    }
    const src = spec.fields.map((p) => schema.fields.find((f) => f.id === p['source-id'])!);
    const names = schema.fields.map((f) => qi(f.name)).join(', ');
    await this.conn!.run(`CREATE OR REPLACE TEMP TABLE sluice_out AS SELECT *, ${spec.fields.map((p, i) => `${partitionSql(p.transform, src[i].name, src[i].type)} AS __pv${i}`).join(', ')} FROM (${select})`);
    const tuples = (await this.conn!.runAndReadAll(`SELECT DISTINCT ${spec.fields.map((_, i) => `__pv${i}`).join(', ')} FROM sluice_out`)).getRows();
    const out: ContentFile[] = [];
    for (const tuple of tuples) {
      const path = file(spec.fields.map((p, i) => `${p.name}=${tuple[i] === null ? 'null' : encodeURIComponent(String(tuple[i]))}`).join('/'));
      written.push(path);
      const rows = await this.copy(`SELECT ${names} FROM sluice_out WHERE ${tuple.map((v, i) => `__pv${i} IS NOT DISTINCT FROM ${SQL_LITERAL(v)}`).join(' AND ')}`, schema.fields, path);
      if (rows) out.push({ content: 0, path, partition: Object.fromEntries(spec.fields.map((p, i) => [p.name, tuple[i]])), records: rows, bytes: (await stat(path)).size });
    }
    await this.conn!.run('DROP TABLE sluice_out');
    return out;
  }

  async close(): Promise<void> {
    await this.catalog.close();
    this.ws?.close();
    this.ws = null;
    this.conn = null;
  }

}
