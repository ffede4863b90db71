/**
 * DuckDB warehouse sink (embedded, @duckdb/node-api). Per source table it keeps:
 * - a current-state table (`tableName`), primary key = the source key, kept in step by upserts and
 *   deletes;
 * - an append-only change table (`changeTableName`) with one row per change: `__change_id` (primary
 *   key), `__op`, `__source_ts_ms`, `__synced_at`, then the row image (after; before for deletes).
 *   `__change_id` is the change's position in the log, partition × 2^40 + offset: deterministic, so
 *   a replayed batch inserts nothing twice (`INSERT OR IGNORE`), the dedup seed 001 asks for.
 *
 * A batch is written as newline-delimited JSON (the events' own bytes, framed with their log
 * position) to a scratch file, read by DuckDB's parallel JSON reader into typed structs, and
 * applied with set-based SQL in one transaction together with the consumed offsets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { DuckdbSinkConfig } from '../../config/types.ts';
import { SluiceError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { compatible, kindName, targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { offsetsFromRows, type Sink, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { noKey } from '../postgres/sink.ts';
import { sinkError } from '../errors.ts';

const qi = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
const ql = (s: string): string => "'" + s.replace(/'/g, "''") + "'";

export function duckType(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'BOOLEAN';
    case 'int':
      return ['', 'TINYINT', 'SMALLINT', '', 'INTEGER', '', '', '', 'BIGINT'][kind.bytes];
    case 'float':
      return kind.bytes === 4 ? 'FLOAT' : 'DOUBLE';
    case 'decimal':
      return kind.precision && kind.precision <= 38 ? `DECIMAL(${kind.precision},${kind.scale ?? 0})` : 'VARCHAR';
    case 'bytes':
      return 'BLOB';
    case 'date':
      return 'DATE';
    case 'time_us':
      return 'TIME';
    case 'timestamp_us':
    case 'timestamp_ms':
      return 'TIMESTAMP';
    case 'timestamptz':
      return 'TIMESTAMPTZ';
    case 'json':
      return 'JSON';
    case 'uuid':
      return 'UUID';
    case 'interval_us':
      return 'INTERVAL';
    case 'array':
      return duckType(kind.of) + '[]';
    default:
      return 'VARCHAR';
  }
}

/** How the JSON reader should type the field before conversion. */
function jsonType(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'BOOLEAN';
    case 'int':
    case 'time_us':
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'interval_us':
      return 'BIGINT';
    case 'date':
      return 'INTEGER';
    case 'array':
      return jsonType(kind.of) + '[]';
    default:
      return 'VARCHAR';
  }
}

function conv(kind: Kind, x: string): string {
  switch (kind.k) {
    case 'float':
      return `${x}::${duckType(kind)}`;
    case 'decimal':
      return `${x}::${duckType(kind)}`;
    case 'bytes':
      return `from_base64(${x})`;
    case 'date':
      return `(DATE '1970-01-01' + ${x})`;
    case 'time_us':
      return `(TIME '00:00:00' + to_microseconds(${x}))`;
    case 'timestamp_us':
      return `make_timestamp(${x})`;
    case 'timestamp_ms':
      return `make_timestamp(${x} * 1000)`;
    case 'timestamptz':
      return `${x}::TIMESTAMPTZ`;
    case 'json':
      return `${x}::JSON`;
    case 'uuid':
      return `${x}::UUID`;
    case 'interval_us':
      return `to_microseconds(${x})`;
    case 'array':
      return `list_transform(${x}, e -> ${conv(kind.of, 'e')})`;
    default:
      return x;
  }
}

function family(t: string): { family: string; bytes?: number } {
  const u = t.toUpperCase();
  if (u.endsWith('[]')) return { family: 'array' };
  const ints: Record<string, number> = { TINYINT: 1, SMALLINT: 2, INTEGER: 4, BIGINT: 8, HUGEINT: 16 };
  if (u in ints) return { family: 'int', bytes: ints[u] };
  if (u === 'FLOAT') return { family: 'float', bytes: 4 };
  if (u === 'DOUBLE') return { family: 'float', bytes: 8 };
  if (u.startsWith('DECIMAL')) return { family: 'decimal' };
  if (u === 'VARCHAR') return { family: 'string' };
  if (u === 'BOOLEAN') return { family: 'bool' };
  if (u === 'BLOB') return { family: 'bytes' };
  if (u === 'DATE') return { family: 'date' };
  if (u === 'TIME') return { family: 'time_us' };
  if (u === 'TIMESTAMP WITH TIME ZONE' || u === 'TIMESTAMPTZ') return { family: 'timestamptz' };
  if (u.startsWith('TIMESTAMP')) return { family: 'timestamp' };
  if (u === 'JSON') return { family: 'json' };
  if (u === 'UUID') return { family: 'uuid' };
  if (u === 'INTERVAL') return { family: 'interval_us' };
  return { family: 'other' };
}

interface TableState {
  name: string;
  columns: Map<string, string>;
}

export class DuckdbSink implements Sink {
  private instance: DuckDBInstance | null = null;
  private conn: DuckDBConnection | null = null;
  private readonly tables = new Map<string, TableState>();
  private scratch = '';

  constructor(
    private readonly cfg: DuckdbSinkConfig,
    private readonly logger: Logger,
    private readonly id: string,
  ) {}

  get name(): string {
    return this.cfg.name;
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const path = resolve(this.cfg.path);
    await mkdir(dirname(path), { recursive: true });
    try {
      // One instance per file per process (DuckDB allows one writer): a restarted sink, or a
      // reader in the same process, shares it.
      this.instance = await DuckDBInstance.fromCache(path);
    } catch (e) {
      const msg = (e as Error).message;
      if (/lock/i.test(msg)) throw sinkError('SINK_TARGET_BUSY', `DuckDB file ${path} is open in another process (${msg.split('\n')[0]}); close that process (DuckDB allows one writer), the sink retries meanwhile`, { cause: e });
      throw e;
    }
    this.conn = await this.instance.connect();
    this.scratch = mkdtempSync(join(tmpdir(), 'sluice-duckdb-'));
    await this.conn.run(`SET TimeZone = 'UTC'`);
    await this.conn.run(`CREATE TABLE IF NOT EXISTS ${qi(this.cfg.offsetsTable)} (sink VARCHAR NOT NULL, topic VARCHAR NOT NULL, "partition" INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (sink, topic, "partition"))`);
    const r = await this.conn.runAndReadAll(`SELECT topic, "partition", next_offset FROM ${qi(this.cfg.offsetsTable)} WHERE sink = $1`, [this.id]);
    return offsetsFromRows(r.getRows());
  }

  async close(): Promise<void> {
    try {
      this.conn?.closeSync();
    } catch {
      // already closed
    }
    this.conn = null;
    this.instance = null;
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.conn!;
    await c.run('BEGIN TRANSACTION');
    try {
      let i = 0;
      for (const t of batch.tables) await this.applyTable(c, t, join(this.scratch, `batch-${i++}.ndjson`));
      if (batch.offsets.length) {
        const values = batch.offsets.map((o) => `(${ql(this.id)}, ${ql(o.topic)}, ${o.partition}, ${o.next}, now())`).join(', ');
        await c.run(`INSERT OR REPLACE INTO ${qi(this.cfg.offsetsTable)} VALUES ${values}`);
      }
      await c.run('COMMIT');
    } catch (e) {
      await c.run('ROLLBACK').catch(() => {});
      this.tables.clear();
      throw explain(e);
    }
  }

  private async applyTable(c: DuckDBConnection, t: TableBatch, file: string): Promise<void> {
    const cur = await this.ensure(c, targetName(this.cfg.tableName, t.schema), t, false);
    const chg = this.cfg.changeTableName ? await this.ensure(c, targetName(this.cfg.changeTableName, t.schema), t, true) : null;
    if (t.truncate) await c.run(`DELETE FROM ${cur.name}`);
    if (t.changes.length === 0) {
      if (t.truncate && chg) await c.run(`INSERT OR IGNORE INTO ${chg.name} (__change_id, __op, __source_ts_ms, __synced_at) VALUES (${changeId(t.truncate)}, 't', NULL, now())`);
      return;
    }
    if (t.keyless.some((r) => r.op === 'u' || r.op === 'd')) throw noKey(t.schema, t.keyless.find((r) => r.op === 'u' || r.op === 'd')!);
    // Union of the batch's schemas (newest type wins): records of an older schema read NULL for newer columns.
    const cols = new Map<string, TargetColumn>();
    for (const s of t.schemas) for (const col of targetColumns(s, this.cfg)) if (!col.meta) cols.set(col.name, col);
    await this.writeBatch(file, t);
    const struct = `STRUCT(${[...cols.values()].map((col) => `${qi(col.name)} ${jsonType(col.kind)}`).join(', ')})`;
    const keyCols = [...cols.values()].filter((col) => t.schema.keyColumns.includes(col.name));
    const keyStruct = keyCols.length ? `STRUCT(${keyCols.map((col) => `${qi(col.name)} ${jsonType(col.kind)}`).join(', ')})` : 'VARCHAR';
    await c.run(
      `CREATE OR REPLACE TEMP TABLE sluice_batch AS SELECT p, o, u, k, v.op AS op, v.source.ts_ms AS ts, coalesce(v."after", v."before") AS img
       FROM read_ndjson(${ql(file)}, columns = {p: 'BIGINT', o: 'BIGINT', u: 'TINYINT', k: ${ql(keyStruct)}, v: ${ql(`STRUCT(op VARCHAR, "before" ${struct}, "after" ${struct}, source STRUCT(ts_ms BIGINT))`)}})`,
    );
    const colList = [...cols.values()];
    const val = (col: TargetColumn, from: string) => `${conv(col.kind, `${from}.${qi(col.name)}`)}`;
    if (chg) {
      if (t.truncate) await c.run(`INSERT OR IGNORE INTO ${chg.name} (__change_id, __op, __source_ts_ms, __synced_at) VALUES (${changeId(t.truncate)}, 't', NULL, now())`);
      await c.run(
        `INSERT OR IGNORE INTO ${chg.name} (__change_id, __op, __source_ts_ms, __synced_at, ${colList.map((x) => qi(x.name)).join(', ')})
         SELECT (p << 40) + o, op, ts, now(), ${colList.map((x) => val(x, 'img')).join(', ')} FROM sluice_batch`,
      );
    }
    const metaCols = targetColumns(t.schema, this.cfg).filter((x) => x.meta);
    const metaVal = (m: TargetColumn) => (m.meta === 'op' ? 'op' : m.meta === 'table' ? ql(`${t.schema.schema}.${t.schema.table}`) : m.meta === 'source_ts_ms' ? 'ts' : 'false');
    const all = [...colList, ...metaCols];
    const insertCols = all.map((x) => qi(x.name)).join(', ');
    const insertVals = [...colList.map((x) => val(x, 'img')), ...metaCols.map(metaVal)].join(', ');
    if (t.deletes.length) {
      if (this.cfg.deletes === 'soft') {
        const flag = qi(this.cfg.softDeleteColumn);
        await c.run(
          `INSERT INTO ${cur.name} (${keyCols.map((x) => qi(x.name)).join(', ')}, ${flag}) SELECT ${keyCols.map((x) => val(x, 'k')).join(', ')}, true FROM sluice_batch WHERE u = 2
           ON CONFLICT DO UPDATE SET ${flag} = true`,
        );
      } else {
        await c.run(`DELETE FROM ${cur.name} AS t USING (SELECT k FROM sluice_batch WHERE u = 2) AS d WHERE ${keyCols.map((x) => `t.${qi(x.name)} = ${val(x, 'd.k')}`).join(' AND ')}`);
      }
    }
    if (t.upserts.length) await c.run(`INSERT OR REPLACE INTO ${cur.name} (${insertCols}) SELECT ${insertVals} FROM sluice_batch WHERE u = 1`);
    if (t.keyless.length) await c.run(`INSERT INTO ${cur.name} (${insertCols}) SELECT ${insertVals} FROM sluice_batch WHERE u = 1`);
  }

  /** One line per change: `{"p":…,"o":…,"u":…,"k":…,"v":…}`; u = 1 final upsert, 2 final delete, 0 superseded. */
  private async writeBatch(file: string, t: TableBatch): Promise<void> {
    const fate = new Map<SinkRecord, number>();
    for (const r of t.upserts) fate.set(r, 1);
    for (const r of t.deletes) fate.set(r, 2);
    for (const r of t.keyless) fate.set(r, 1);
    const fh = await openFile(file, 'w');
    try {
      let chunk = '';
      for (const r of t.changes) {
        chunk += `{"p":${r.partition},"o":${r.offset},"u":${fate.get(r) ?? 0},"k":${r.key ?? 'null'},"v":${r.value}}\n`;
        if (chunk.length > 1 << 20) {
          await fh.write(chunk);
          chunk = '';
        }
      }
      if (chunk) await fh.write(chunk);
    } finally {
      await fh.close();
    }
  }

  private async ensure(c: DuckDBConnection, table: string, t: TableBatch, changes: boolean): Promise<TableState> {
    const name = qi(table);
    let st = this.tables.get(name);
    if (!st) {
      const r = await c.runAndReadAll(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND table_name = $1 ORDER BY ordinal_position`, [table]);
      st = { name, columns: new Map(r.getRows().map(([n, ty]) => [String(n), String(ty)])) };
      if (st.columns.size === 0) {
        const cols = targetColumns(t.schema, this.cfg).filter((x) => !changes || !x.meta);
        const defs = changes ? ['__change_id BIGINT PRIMARY KEY', '__op VARCHAR NOT NULL', '__source_ts_ms BIGINT', '__synced_at TIMESTAMPTZ NOT NULL'] : [];
        defs.push(...cols.map((col) => `${qi(col.name)} ${duckType(col.kind)}`));
        if (!changes && t.schema.keyColumns.length) defs.push(`PRIMARY KEY (${t.schema.keyColumns.map(qi).join(', ')})`);
        await c.run(`CREATE TABLE IF NOT EXISTS ${name} (${defs.join(', ')})`);
        this.logger.info('created target table', { sink: this.cfg.name, table, columns: defs.length });
        for (const col of cols) st.columns.set(col.name, duckType(col.kind));
      }
      this.tables.set(name, st);
    }
    for (const s of t.schemas) {
      for (const col of targetColumns(s, this.cfg)) {
        if (changes && col.meta) continue;
        const have = st.columns.get(col.name);
        if (have === undefined) {
          if (this.cfg.schemaEvolution === 'none') {
            throw sinkError('SINK_SCHEMA_CHANGED', `sink ${this.cfg.name}: source table ${s.schema}.${s.table} has a new column ${col.name} (${kindName(col.kind)}) that ${name} lacks, and schemaEvolution is none. Add it (ALTER TABLE ${name} ADD COLUMN ${qi(col.name)} ${duckType(col.kind)}) or set schemaEvolution: add_columns, then restart`);
          }
          await c.run(`ALTER TABLE ${name} ADD COLUMN ${qi(col.name)} ${duckType(col.kind)}`);
          this.logger.info('added target column', { sink: this.cfg.name, table, column: col.name });
          st.columns.set(col.name, duckType(col.kind));
        } else if (!col.meta && !compatible(col.kind, family(have)) && family(have).family !== 'other') {
          throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: column ${col.name} of ${s.schema}.${s.table} now holds ${kindName(col.kind)} values, which ${name}.${qi(col.name)} of type ${have} cannot take. Change the target column (ALTER TABLE ${name} ALTER ${qi(col.name)} TYPE ${duckType(col.kind)}), then restart the pipeline`);
        }
      }
    }
    return st;
  }
}

function changeId(r: SinkRecord): number {
  return r.partition * 2 ** 40 + r.offset;
}

function explain(e: unknown): unknown {
  if (e instanceof SluiceError) return e;
  const msg = (e as Error).message ?? String(e);
  if (/Conversion Error|Constraint Error|Binder Error|Invalid Input Error|Catalog Error|Parser Error/i.test(msg)) {
    return sinkError('SINK_REJECTED', `DuckDB refused the batch: ${msg.split('\n')[0]}; nothing of this batch was applied. Fix the target (or the source data) and restart`, { cause: e });
  }
  return e;
}

