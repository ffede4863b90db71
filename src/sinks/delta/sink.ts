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
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from '../../core/logger.ts';
import { makeDirs } from '../../core/dirs.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import { conv, jsonType, objectSize } from '../duckdb/convert.ts';
import { duckdbDialect } from '../duckdb/dialect.ts';
import { changeId, writeChanges } from '../duckdb/lines.ts';
import { sinkError } from '../errors.ts';
import { targetColumns, targetName, kindName, type Kind, type TargetColumn } from '../sql/columns.ts';
import type { OffsetPosition, Sink, SinkBatch, TableBatch } from '../types.ts';
import { deltaError } from './errors.ts';
import { commit, readTableLog, type DeltaField, type TableLog } from './log.ts';
import type { DeltaSinkConfig } from './spec.ts';

const { qi, ql } = duckdbDialect;

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
function duckFor(k: Kind): string {
  const t = deltaType(k);
  if (typeof t !== 'string') return `${duckFor((k as { of: Kind }).of)}[]`;
  const m = /^decimal\((\d+),(\d+)\)$/.exec(t);
  if (m) return `DECIMAL(${m[1]},${m[2]})`;
  return { boolean: 'BOOLEAN', byte: 'TINYINT', short: 'SMALLINT', integer: 'INTEGER', long: 'BIGINT', float: 'FLOAT', double: 'DOUBLE', binary: 'BLOB', date: 'DATE', timestamp: 'TIMESTAMPTZ', string: 'VARCHAR' }[t] ?? 'VARCHAR';
}

/** SQL for a column's value from the JSON reader's field `x`. Kinds kept as text keep the source's own text (a UUID, JSON, an ISO interval). */
function valueSql(k: Kind, x: string): string {
  if (deltaType(k) === 'string' && (k.k === 'string' || k.k === 'json' || k.k === 'uuid' || k.k === 'interval' || k.k === 'timetz' || (k.k === 'decimal' && jsonType(k) === 'VARCHAR'))) return x;
  return `CAST(${conv(k, x)} AS ${duckFor(k)})`;
}

const sameType = (a: DeltaField['type'], b: DeltaField['type']) => JSON.stringify(a) === JSON.stringify(b);

export class DeltaSink implements Sink {
  private instance: DuckDBInstance | null = null;
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
    const { DuckDBInstance } = await import('@duckdb/node-api');
    try {
      await makeDirs(this.root);
    } catch (e) {
      throw sinkError('SINK_TARGET_PATH', `sink ${this.cfg.name}: cannot create the lake directory ${this.root}: ${(e as Error).message}. Set the sink's path to a directory this process can create and write`, { cause: e });
    }
    this.instance = await DuckDBInstance.create(':memory:');
    this.conn = await this.instance.connect();
    // Timestamps without a zone are written as UTC instants of the same wall time.
    await this.conn.run(`SET TimeZone = 'UTC'`);
    this.scratch = mkdtempSync(join(tmpdir(), 'sluice-delta-'));
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
    const dir = join(this.root, name);
    let log = this.logs.get(dir);
    if (!log) this.logs.set(dir, (log = await readTableLog(dir)));
    // A partition another worker applied meanwhile is not applied again.
    for (const o of offsets) {
      const have = log.txns.get(`${this.appPrefix}${o.topic}:${o.partition}`);
      if (o.from !== undefined && (have ?? 0) !== o.from) throw sinkError('SINK_FENCED', `sink ${this.cfg.name}: table ${name} holds ${o.topic}/${o.partition} up to ${have ?? 0}, not ${o.from}: another worker applied it`);
    }
    const cols = new Map<string, TargetColumn>();
    for (const s of t.schemas) for (const col of targetColumns(s, { addFields: [], deletes: 'hard', softDeleteColumn: '', tableName: '', schemaEvolution: 'add_columns' } as never)) cols.set(col.name, col);
    const colList = [...cols.values()];
    const fields = this.evolve(name, log, colList);
    const rows = t.changes.length + (t.truncate ? 1 : 0);
    const actions: object[] = [{ commitInfo: { timestamp: Date.now(), operation: 'WRITE', operationParameters: { mode: 'Append', partitionBy: '[]' }, isBlindAppend: true, engineInfo: `Sluice/${SLUICE_VERSION}` } }];
    if (log.version < 0) actions.push({ protocol: { minReaderVersion: 1, minWriterVersion: 2 } });
    if (fields) {
      actions.push({
        metaData: {
          id: log.metaData?.id ?? randomUUID(),
          format: { provider: 'parquet', options: {} },
          schemaString: JSON.stringify({ type: 'struct', fields }),
          partitionColumns: [],
          configuration: log.metaData?.configuration ?? {},
          createdTime: log.metaData?.createdTime ?? Date.now(),
        },
      });
    }
    let file: string | null = null;
    if (rows) {
      file = `part-${String(log.version + 1).padStart(5, '0')}-${randomUUID()}-c000.snappy.parquet`;
      await this.writeParquet(t, colList, join(dir, file));
      const size = (await stat(join(dir, file))).size;
      actions.push({ add: { path: file, partitionValues: {}, size, modificationTime: Date.now(), dataChange: true, stats: JSON.stringify({ numRecords: rows }) } });
    }
    for (const o of offsets) actions.push({ txn: { appId: `${this.appPrefix}${o.topic}:${o.partition}`, version: o.next, lastUpdated: Date.now() } });
    try {
      await commit(dir, log.version + 1, actions);
    } catch (e) {
      // Not committed: the file is referenced by no version; the log is read again before the retry.
      if (file) await rm(join(dir, file), { force: true });
      this.logs.delete(dir);
      throw e;
    }
    log.version++;
    if (fields) log.fields = fields;
    for (const o of offsets) log.txns.set(`${this.appPrefix}${o.topic}:${o.partition}`, o.next);
    if (log.version === 0) this.logger.info('created Delta table', { sink: this.cfg.name, table: name, dir });
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

  /** The table batch's changes (and its truncate) as one Parquet file, through DuckDB. */
  private async writeParquet(t: TableBatch, cols: TargetColumn[], path: string): Promise<void> {
    const c = this.conn!;
    const parts: string[] = [];
    let scratch: string | null = null;
    if (t.changes.length) {
      scratch = join(this.scratch, `changes-${++this.files}.ndjson`);
      const w = await writeChanges(scratch, t);
      const struct = `STRUCT(${cols.map((col) => `${qi(col.name)} ${jsonType(col.kind)}`).join(', ')})`;
      const columns = `{p: 'BIGINT', "at": 'BIGINT', u: 'TINYINT', k: 'VARCHAR', v: ${ql(`STRUCT(op VARCHAR, "before" ${struct}, "after" ${struct}, source STRUCT(ts_ms BIGINT))`)}}`;
      parts.push(
        `SELECT c AS __change_id, o AS __op, t AS __source_ts_ms, now() AS __synced_at, ${cols.map((col) => `${valueSql(col.kind, `i.${qi(col.name)}`)} AS ${qi(col.name)}`).join(', ')}
         FROM (SELECT (p << 40) + "at" AS c, v.op AS o, v.source.ts_ms AS t, coalesce(v."after", v."before") AS i FROM read_ndjson(${ql(w.path)}, maximum_object_size = ${objectSize(w.longest)}, columns = ${columns}))`,
      );
    }
    if (t.truncate) parts.unshift(`SELECT ${changeId(t.truncate)}::BIGINT AS __change_id, 't' AS __op, NULL::BIGINT AS __source_ts_ms, now() AS __synced_at, ${cols.map((col) => `NULL::${duckFor(col.kind)} AS ${qi(col.name)}`).join(', ')}`);
    try {
      await makeDirs(resolve(path, '..'));
      await c.run(`COPY (${parts.join(' UNION ALL ')}) TO ${ql(path)} (FORMAT parquet, COMPRESSION snappy)`);
    } finally {
      if (scratch) await rm(scratch, { force: true });
    }
  }

  async close(): Promise<void> {
    try {
      this.conn?.closeSync();
    } catch {
      /* closing */
    }
    this.conn = null;
    this.instance = null;
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }
}
