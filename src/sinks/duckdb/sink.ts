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
import type { DuckdbSinkConfig } from './spec.ts';
import type { Logger } from '../../core/logger.ts';
import { targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { checkKeyless } from '../sql/records.ts';
import { SqlSink } from '../sql/sink.ts';
import type { SinkBatch, SinkRecord, TableBatch } from '../types.ts';
import { sinkError } from '../errors.ts';
import { duckdbDialect as dialect, duckType } from './dialect.ts';

const { qi, ql } = dialect;
/** The change table's own columns, before the source's. */
const CHANGE_COLUMNS = ['__change_id BIGINT PRIMARY KEY', '__op VARCHAR NOT NULL', '__source_ts_ms BIGINT', '__synced_at TIMESTAMPTZ NOT NULL'];

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

export class DuckdbSink extends SqlSink<DuckdbSinkConfig> {
  private instance: DuckDBInstance | null = null;
  private conn: DuckDBConnection | null = null;
  private scratch = '';

  constructor(cfg: DuckdbSinkConfig, logger: Logger, id: string) {
    super(dialect, cfg, logger, id, qi(cfg.offsetsTable));
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
    const conn = (this.conn = await this.instance.connect());
    type Values = Parameters<DuckDBConnection['run']>[1];
    this.session = {
      run: async (sql, params) => void (await conn.run(sql, params as Values)),
      rows: async (sql, params) => (await conn.runAndReadAll(sql, params as Values)).getRows(),
    };
    this.scratch = mkdtempSync(join(tmpdir(), 'sluice-duckdb-'));
    await conn.run(`SET TimeZone = 'UTC'`);
    return this.offsets.open(this.session);
  }

  async close(): Promise<void> {
    try {
      this.conn?.closeSync();
    } catch {
      // already closed
    }
    this.conn = null;
    this.session = null;
    this.instance = null;
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.conn!;
    await this.transact(batch, async () => {
      let i = 0;
      for (const t of batch.tables) await this.applyTable(c, t, join(this.scratch, `batch-${i++}.ndjson`));
    });
  }

  private async applyTable(c: DuckDBConnection, t: TableBatch, file: string): Promise<void> {
    const session = this.session!;
    const curName = targetName(this.cfg.tableName, t.schema);
    const cur = await this.tables.ensure(session, { sql: qi(curName), table: curName }, t);
    const chgName = this.cfg.changeTableName && targetName(this.cfg.changeTableName, t.schema);
    const chg = chgName ? await this.tables.ensure(session, { sql: qi(chgName), table: chgName }, t, { lead: CHANGE_COLUMNS, meta: false, primaryKey: false }) : null;
    if (t.truncate) await c.run(`DELETE FROM ${cur.name}`);
    if (t.changes.length === 0) {
      if (t.truncate && chg) await c.run(`INSERT OR IGNORE INTO ${chg.name} (__change_id, __op, __source_ts_ms, __synced_at) VALUES (${changeId(t.truncate)}, 't', NULL, now())`);
      return;
    }
    checkKeyless(t);
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
}

function changeId(r: SinkRecord): number {
  return r.partition * 2 ** 40 + r.offset;
}
