/**
 * Delta Lake sink, written from Delta's PROTOCOL.md (no Spark, no JVM): one Delta table per source
 * table under `path`, with every change event as a row (the bronze layer of a medallion lake):
 * `__change_id` (the change's log position, partition × 2^40 + offset), `__op`, `__source_ts_ms`,
 * `__synced_at`, then the row image (after; before for deletes; nulls for a truncate).
 *
 * Each batch of a table becomes one Parquet file and one commit. Parquet is written by an
 * in-memory DuckDB from the changes' own JSON bytes (the DuckDB sink's exact conversions:
 * decimals, int64, microsecond timestamps), so no value passes through a JS number.
 *
 * Exactly once: each commit carries, beside its `add`, a `txn` action per log partition it
 * applied, `appId` = `sluice:<pipeline>/<sink>:<topic>:<partition>`, `version` = the next offset
 * to read. The commit is one put-if-absent file, so the rows and the offsets they reflect become
 * visible together or not at all; at start the sink replays each table's log for its offsets.
 * A Parquet file whose commit never happened (a kill in between) is referenced by no version.
 */
import { randomUUID } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Logger } from '../../core/logger.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { duckdbDialect } from '../duckdb/dialect.ts';
import { changeId } from '../duckdb/lines.ts';
import { loadBatch, openWorkspace, scratchFile, type LakeWorkspace } from '../lake/batch.ts';
import { sinkError } from '../errors.ts';
import { targetColumns, targetName, kindName, type Kind, type TargetColumn } from '../sql/columns.ts';
import type { OffsetPosition, Sink, SinkBatch, TableBatch } from '../types.ts';
import { checkKeyless } from '../sql/records.ts';
import { deltaError } from './errors.ts';
import { writeCheckpoint } from './checkpoint.ts';
import { duckOfDelta, partitionable, readFilesSql, writeFiles, type WrittenFile } from './files.ts';
import { cdfOn, commit, readTableLog, retentionMs, type AddAction, type DeltaField, type MetaData, type Protocol, type TableLog } from './log.ts';
import type { DeltaSinkConfig } from './spec.ts';

const { qi } = duckdbDialect;

/** The columns every row starts with, before the source's. */
const LEAD: DeltaField[] = [
  { name: '__change_id', type: 'long', nullable: false, metadata: {} },
  { name: '__op', type: 'string', nullable: false, metadata: {} },
  { name: '__source_ts_ms', type: 'long', nullable: true, metadata: {} },
  { name: '__synced_at', type: 'timestamp', nullable: false, metadata: {} },
];

/** The Delta type of a source column's kind (PROTOCOL.md's primitive types; what has none is text). */
export function deltaType(k: Kind): DeltaField['type'] {
  switch (k.k) {
    case 'bool':
      return 'boolean';
    case 'int':
      return ({ 1: 'byte', 2: 'short', 4: 'integer', 8: 'long' } as const)[k.bytes];
    case 'float':
      return k.bytes === 4 ? 'float' : 'double';
    case 'decimal':
      return k.precision && k.precision <= 38 ? `decimal(${k.precision},${k.scale ?? 0})` : 'string';
    case 'bytes':
      return 'binary';
    case 'date':
      return 'date';
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'timestamptz':
      return 'timestamp';
    case 'array':
      return { type: 'array', elementType: deltaType(k.of), containsNull: true };
    default:
      return 'string';
  }
}

/** The DuckDB type whose Parquet column a Delta reader reads as `deltaType(k)`. */
const duckFor = (k: Kind): string => duckOfDelta(deltaType(k));


const sameType = (a: DeltaField['type'], b: DeltaField['type']) => JSON.stringify(a) === JSON.stringify(b);

export class DeltaSink implements Sink {
  private ws: LakeWorkspace | null = null;
  private conn: DuckDBConnection | null = null;
  private scratch = '';
  private files = 0;
  /** Each table's log as of the sink's last commit to it, by directory. */
  private readonly logs = new Map<string, TableLog>();
  private readonly appPrefix: string;

  constructor(
    private readonly cfg: DeltaSinkConfig,
    private readonly logger: Logger,
    id: string,
  ) {
    this.appPrefix = `sluice:${id}:`;
  }

  get name(): string {
    return this.cfg.name;
  }

  private get root(): string {
    return resolve(this.cfg.path);
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    this.ws = await openWorkspace(this.cfg.name, 'lake', this.root);
    this.conn = this.ws.conn;
    this.scratch = this.ws.scratch;
    this.logs.clear();
    const offsets = new Map<string, Map<number, number>>();
    for (const entry of await readdir(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(this.root, entry.name);
      const log = await readTableLog(dir);
      if (log.version < 0) continue;
      this.logs.set(dir, log);
      for (const [appId, version] of log.txns) {
        if (!appId.startsWith(this.appPrefix)) continue;
        const rest = appId.slice(this.appPrefix.length);
        const at = rest.lastIndexOf(':');
        const topic = rest.slice(0, at);
        let m = offsets.get(topic);
        if (!m) offsets.set(topic, (m = new Map()));
        m.set(Number(rest.slice(at + 1)), version);
      }
    }
    return offsets;
  }

  async apply(batch: SinkBatch): Promise<void> {
    for (const t of batch.tables) {
      await this.applyTable(
        t,
        batch.offsets.filter((o) => o.topic === t.topic),
      );
    }
  }

  private async applyTable(t: TableBatch, offsets: OffsetPosition[]): Promise<void> {
    const name = targetName(this.cfg.tableName, t.schema);
    // A source table named `..` or `a/b` must not put its Delta table outside the lake.
    if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name)) {
      throw sinkError('SINK_TARGET_PATH', `sink ${this.cfg.name}: the Delta table of ${t.schema.schema}.${t.schema.table} would be the directory ${JSON.stringify(name)} (tableName ${JSON.stringify(this.cfg.tableName)}), which is not one directory name under ${this.root}. Set the sink's tableName to a template that gives a plain name for it, or exclude the table with the sink's tables`);
    }
    const dir = join(this.root, name);
    let log = this.logs.get(dir);
    if (!log) this.logs.set(dir, (log = await readTableLog(dir)));
    // A partition another worker applied meanwhile is not applied again.
    for (const o of offsets) {
      const have = log.txns.get(`${this.appPrefix}${o.topic}:${o.partition}`);
      if (o.from !== undefined && (have ?? 0) !== o.from) throw sinkError('SINK_FENCED', `sink ${this.cfg.name}: table ${name} holds ${o.topic}/${o.partition} up to ${have ?? 0}, not ${o.from}: another worker applied it`);
    }
    const p = log.protocol;
    if (p && (p.minReaderVersion > 1 || p.minWriterVersion > 4)) {
      throw deltaError('DELTA_TABLE_FOREIGN', `sink ${this.cfg.name}: the Delta table ${name} needs reader version ${p.minReaderVersion} and writer version ${p.minWriterVersion}${p.writerFeatures ? ` (features ${p.writerFeatures.join(', ')})` : ''}; this sink writes tables of reader 1 and writer up to 4 (Change Data Feed) only. Point tableName or path elsewhere`);
    }
    const cols = new Map<string, TargetColumn>();
    for (const s of t.schemas) for (const col of targetColumns(s, { addFields: [], deletes: 'hard', softDeleteColumn: '', tableName: '', schemaEvolution: 'add_columns' } as never)) cols.set(col.name, col);
    const colList = [...cols.values()];
    const fields = this.evolve(name, log, colList);
    const allFields = fields ?? log.fields;
    const partitionColumns = log.metaData?.partitionColumns ?? this.cfg.partitionBy.filter((c) => allFields.some((f) => f.name === c));
    for (const c of log.metaData ? [] : partitionColumns) {
      const f = allFields.find((x) => x.name === c)!;
      if (!partitionable(f.type)) throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: table ${name} cannot be partitioned by ${c}, a ${JSON.stringify(f.type)} column: partition by a text, integer, decimal, boolean, date or timestamp column (partitionBy)`);
    }
    const cdf = cdfOn(log) || this.cfg.changeDataFeed;
    const merge = this.cfg.mode === 'merge';
    const actions: object[] = [{ commitInfo: { timestamp: Date.now(), operation: merge ? 'MERGE' : 'WRITE', operationParameters: merge ? { predicate: '[key columns]' } : { mode: 'Append', partitionBy: JSON.stringify(partitionColumns) }, isBlindAppend: !merge, engineInfo: `Sluice/${SLUICE_VERSION}` } }];
    const protocol: Protocol = { minReaderVersion: 1, minWriterVersion: cdf ? 4 : 2 };
    const newProtocol = !p || p.minWriterVersion < protocol.minWriterVersion;
    if (newProtocol) actions.push({ protocol });
    const configuration = { ...(log.metaData?.configuration ?? {}), ...(cdf ? { 'delta.enableChangeDataFeed': 'true' } : {}) };
    const metaData: MetaData | null =
      fields || !log.metaData || cdfOn(log) !== cdf
        ? {
            id: log.metaData?.id ?? randomUUID(),
            format: { provider: 'parquet', options: {} },
            schemaString: JSON.stringify({ type: 'struct', fields: allFields }),
            partitionColumns,
            configuration,
            createdTime: log.metaData?.createdTime ?? Date.now(),
          }
        : null;
    if (metaData) actions.push({ metaData });
    const prefix = `part-${String(log.version + 1).padStart(5, '0')}`;
    const out = merge ? await this.mergeParquet(t, colList, allFields, partitionColumns, log, dir, prefix, cdf) : { added: await this.appendParquet(t, colList, allFields, partitionColumns, dir, prefix), removed: [], cdc: [] };
    const now = Date.now();
    for (const path of out.removed) {
      const f = log.files.get(path)!;
      actions.push({ remove: { path, deletionTimestamp: now, dataChange: true, extendedFileMetadata: true, partitionValues: f.partitionValues, size: f.size } });
    }
    const adds: AddAction[] = out.added.map((w) => ({ path: w.path, partitionValues: w.partitionValues, size: w.size, modificationTime: now, dataChange: true, stats: JSON.stringify({ numRecords: w.rows }) }));
    for (const add of adds) actions.push({ add });
    for (const c of out.cdc) actions.push({ cdc: { path: c.path, partitionValues: c.partitionValues, size: c.size, dataChange: false } });
    for (const o of offsets) actions.push({ txn: { appId: `${this.appPrefix}${o.topic}:${o.partition}`, version: o.next, lastUpdated: now } });
    try {
      await commit(dir, log.version + 1, actions);
    } catch (e) {
      // Not committed: the files are referenced by no version; the log is read again before the retry.
      for (const w of [...out.added, ...out.cdc]) await rm(join(dir, decodeURIComponent(w.path)), { force: true });
      this.logs.delete(dir);
      throw e;
    }
    log.version++;
    if (newProtocol) log.protocol = protocol;
    if (metaData) {
      log.metaData = metaData;
      log.fields = allFields;
    }
    for (const path of out.removed) {
      const f = log.files.get(path)!;
      log.files.delete(path);
      log.removed.set(path, { path, deletionTimestamp: now, dataChange: true, extendedFileMetadata: true, partitionValues: f.partitionValues, size: f.size });
    }
    for (const add of adds) log.files.set(add.path, add);
    for (const o of offsets) log.txns.set(`${this.appPrefix}${o.topic}:${o.partition}`, o.next);
    if (log.version === 0) this.logger.info('created Delta table', { sink: this.cfg.name, table: name, dir, mode: this.cfg.mode, partitionColumns, changeDataFeed: cdf });
    if (log.version > 0 && log.version % this.cfg.checkpointInterval === 0) {
      // A checkpoint speeds readers up; failing to write one loses nothing (the commits stay).
      try {
        await writeCheckpoint(this.conn!, dir, log, retentionMs(log), this.scratch);
      } catch (e) {
        this.logger.warn('could not write a Delta checkpoint; readers replay the commits instead', { sink: this.cfg.name, table: name, version: log.version, error: (e as Error).message });
      }
    }
  }

  /**
   * The table's schema after this batch, or null when it does not change: a new table gets the
   * lead columns and the source's; a new source column is added (nullable) at the end. A column
   * whose type changed cannot be appended to.
   */
  private evolve(name: string, log: TableLog, cols: TargetColumn[]): DeltaField[] | null {
    if (!log.fields.length) return [...LEAD, ...cols.map((c) => ({ name: c.name, type: deltaType(c.kind), nullable: true, metadata: {} }))];
    const have = new Map(log.fields.map((f) => [f.name, f]));
    for (const f of LEAD) {
      if (!sameType(have.get(f.name)?.type ?? '', f.type)) throw deltaError('DELTA_TABLE_FOREIGN', `sink ${this.cfg.name}: the Delta table ${name} has no ${f.name} ${JSON.stringify(f.type)} column: it was not written by this sink. Point tableName or path elsewhere`);
    }
    const added: DeltaField[] = [];
    for (const c of cols) {
      const want = deltaType(c.kind);
      const f = have.get(c.name);
      if (!f) added.push({ name: c.name, type: want, nullable: true, metadata: {} });
      else if (!sameType(f.type, want)) {
        throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: column ${c.name} of Delta table ${name} is ${JSON.stringify(f.type)} and the source's ${c.name} is now ${kindName(c.kind)} (${JSON.stringify(want)} in Delta), which Delta cannot change in place. Write the table anew under another tableName, or exclude the table with the sink's tables`);
      }
    }
    if (!added.length) return null;
    if (this.cfg.schemaEvolution === 'none') throw sinkError('SINK_SCHEMA_CHANGED', `sink ${this.cfg.name}: the source added ${added.map((f) => f.name).join(', ')} to ${name}, and schemaEvolution is none. Set schemaEvolution: add_columns to add them to the Delta table`);
    return [...log.fields, ...added];
  }

  /**
   * The table batch's changes as the temporary table `sluice_batch`: the row columns, `u` (the
   * change's fate in the batch: 1 its key's last change and not a delete, 2 its key's last change,
   * a delete, 0 superseded) and the lead columns.
   */
  private async loadBatch(t: TableBatch, cols: TargetColumn[]): Promise<void> {
    await loadBatch(this.conn!, scratchFile(this.scratch, ++this.files), t, cols, (c) => duckFor(c.kind));
  }

  /** Append: the table batch's changes (and its truncate) as Parquet files (one per partition). */
  private async appendParquet(t: TableBatch, cols: TargetColumn[], fields: DeltaField[], partitionColumns: string[], dir: string, prefix: string): Promise<WrittenFile[]> {
    const parts: string[] = [];
    if (t.truncate) parts.push(`SELECT ${changeId(t.truncate)}::BIGINT AS __change_id, 't' AS __op, NULL::BIGINT AS __source_ts_ms, now() AS __synced_at, ${cols.map((col) => `NULL::${duckFor(col.kind)} AS ${qi(col.name)}`).join(', ')}`);
    if (t.changes.length) {
      await this.loadBatch(t, cols);
      parts.push(`SELECT __change_id, __op, __source_ts_ms, __synced_at, ${cols.map((col) => qi(col.name)).join(', ')} FROM sluice_batch`);
    }
    if (!parts.length) return [];
    return writeFiles(this.conn!, this.ofFields(fields, cols, parts.join(' UNION ALL ')), fields, partitionColumns, dir, { prefix });
  }

  /** `from`'s rows as the table's fields, in order: a field the batch lacks (dropped at the source) as null. */
  private ofFields(fields: DeltaField[], cols: TargetColumn[], from: string): string {
    const inBatch = new Set([...LEAD.map((f) => f.name), ...cols.map((col) => col.name)]);
    return `SELECT ${fields.map((f) => (inBatch.has(f.name) ? qi(f.name) : `NULL::${duckOfDelta(f.type)} AS ${qi(f.name)}`)).join(', ')} FROM (${from})`;
  }

  /**
   * Merge (copy-on-write): the current row of each key. The files holding a key the batch
   * changed are rewritten without those keys, together with the batch's last row of each key
   * that still exists; a truncate removes every file first. With the Change Data Feed on, the
   * commit's changes per key (its row before, its row after) go to `_change_data/` files.
   */
  private async mergeParquet(t: TableBatch, cols: TargetColumn[], fields: DeltaField[], partitionColumns: string[], log: TableLog, dir: string, prefix: string, cdf: boolean): Promise<{ added: WrittenFile[]; removed: string[]; cdc: WrittenFile[] }> {
    const c = this.conn!;
    const keys = t.schema.keyColumns;
    const live = [...log.files.values()];
    const removed: string[] = t.truncate ? live.map((f) => f.path) : [];
    const none = { added: [], removed, cdc: [] };
    if (!t.changes.length && !(t.truncate && cdf && live.length)) return none;
    if (t.changes.length) {
      checkKeyless(t);
      await this.loadBatch(t, cols);
    }
    const k = keys.map(qi).join(', ');
    const fromBatch = t.changes.length ? this.ofFields(fields, cols, 'SELECT * FROM sluice_batch WHERE u = 1') : null;
    // The rows the batch replaces or deletes, as they were: the old side of the change feed.
    let old: string | null = null;
    let kept: string | null = null;
    if (t.truncate) {
      if (live.length) old = await readFilesSql(c, live, fields, partitionColumns, dir);
    } else if (keys.length && live.length) {
      const all = await readFilesSql(c, live, fields, partitionColumns, dir, true);
      const touched = new Set((await c.runAndReadAll(`SELECT DISTINCT filename FROM (${all}) WHERE (${k}) IN (SELECT ${k} FROM sluice_batch WHERE u > 0)`)).getRows().map((r) => String(r[0])));
      if (touched.size) {
        const files = live.filter((f) => touched.has(join(dir, decodeURIComponent(f.path))));
        for (const f of files) removed.push(f.path);
        await c.run(`CREATE OR REPLACE TEMP TABLE sluice_touched AS ${await readFilesSql(c, files, fields, partitionColumns, dir)}`);
        kept = `SELECT * FROM sluice_touched WHERE (${k}) NOT IN (SELECT ${k} FROM sluice_batch WHERE u > 0)`;
        old = `SELECT * FROM sluice_touched WHERE (${k}) IN (SELECT ${k} FROM sluice_batch WHERE u > 0)`;
      }
    }
    const rows = [kept, fromBatch].filter((x): x is string => x !== null);
    const added = rows.length ? await writeFiles(c, rows.join(' UNION ALL '), fields, partitionColumns, dir, { prefix }) : [];
    let cdc: WrittenFile[] = [];
    // A keyless table is only appended to: its commits' adds are its change feed.
    if (cdf && (t.truncate || keys.length)) {
      const names = fields.map((f) => qi(f.name)).join(', ');
      const feed: string[] = [];
      if (t.truncate) {
        if (old) feed.push(`SELECT ${names}, 'delete' AS _change_type FROM (${old})`);
        if (fromBatch) feed.push(`SELECT ${names}, 'insert' AS _change_type FROM (${fromBatch})`);
      } else if (fromBatch) {
        await c.run(`CREATE OR REPLACE TEMP TABLE sluice_new AS ${fromBatch}`);
        const oldRows = old ?? `SELECT ${fields.map((f) => `NULL::${duckOfDelta(f.type)} AS ${qi(f.name)}`).join(', ')} WHERE false`;
        const was = `(${k}) IN (SELECT ${k} FROM (${oldRows}))`;
        feed.push(
          `SELECT ${names}, 'update_preimage' AS _change_type FROM (${oldRows}) WHERE (${k}) IN (SELECT ${k} FROM sluice_new)`,
          `SELECT ${names}, 'update_postimage' AS _change_type FROM sluice_new WHERE ${was}`,
          `SELECT ${names}, 'insert' AS _change_type FROM sluice_new WHERE NOT ${was}`,
          `SELECT ${names}, 'delete' AS _change_type FROM (${oldRows}) WHERE (${k}) IN (SELECT ${k} FROM sluice_batch WHERE u = 2)`,
        );
      }
      if (feed.length) cdc = await writeFiles(c, feed.join(' UNION ALL '), fields, partitionColumns, dir, { prefix: prefix.replace('part-', 'cdc-'), sub: '_change_data', extra: ['_change_type'] });
    }
    return { added, removed, cdc };
  }

  async close(): Promise<void> {
    this.ws?.close();
    this.ws = null;
    this.conn = null;
  }

}
