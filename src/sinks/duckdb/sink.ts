/**
 * DuckDB warehouse sink (embedded, @duckdb/node-api). Per source table it keeps:
 * - a current-state table (`tableName`), primary key = the source key, kept in step by upserts and
 *   deletes;
 * - an append-only change table (`changeTableName`) with one row per change: `__change_id` (primary
 *   key), `__op`, `__source_ts_ms`, `__synced_at`, then the row image (after; before for deletes).
 *   `__change_id` is the change's position in the log, partition × 2^40 + offset: deterministic, so
 *   a replayed batch inserts nothing twice (`INSERT OR IGNORE`), the dedup seed 001 asks for.
 *   Batches of ids above all the table holds (see highestIds) skip the lookups with a plain INSERT.
 *
 * A batch is written as newline-delimited JSON (the events' own bytes, framed with their log
 * position: lines.ts) to a scratch file, by prepare() while the batch before it applies; DuckDB's
 * JSON reader reads it into typed structs, converted once per change into a temporary table, and
 * set-based SQL applies that in one transaction together with the consumed offsets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { DuckdbSinkConfig } from './spec.ts';
import type { Logger } from '../../core/logger.ts';
import { targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { checkKeyless } from '../sql/records.ts';
import { inTable } from '../sql/driver-errors.ts';
import { SqlSink } from '../sql/sink.ts';
import type { SinkBatch, TableBatch } from '../types.ts';
import { sinkError } from '../errors.ts';
import type { Row, Value } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { unrepresentable } from '../sql/values.ts';
import { duckdbDialect as dialect, duckType } from './dialect.ts';
import { changeId, writeChanges, type ChangesFile } from './lines.ts';
import { conv, jsonType, objectSize } from './convert.ts';
import { makeDirs } from '../../core/dirs.ts';
import { SluiceError } from '../../core/errors.ts';

/** How long opening the DuckDB file may take. */
const DUCKDB_OPEN_MS = 60_000;

const { qi, ql } = dialect;
/** The change table's own columns, before the source's. */
const CHANGE_COLUMNS = ['__change_id BIGINT PRIMARY KEY', '__op VARCHAR NOT NULL', '__source_ts_ms BIGINT', '__synced_at TIMESTAMPTZ NOT NULL'];

export class DuckdbSink extends SqlSink<DuckdbSinkConfig> {
  private instance: DuckDBInstance | null = null;
  private conn: DuckDBConnection | null = null;
  private scratch = '';
  /** Scratch files numbered in the order written. */
  private files = 0;
  /** Scratch files written for table batches not applied yet (see prepare). */
  private readonly prepared = new Map<TableBatch, ChangesFile>();
  /** The tables of the batch prepare() saw last. */
  private preparedLast: TableBatch[] = [];
  /** Change table → partition → highest change id it holds (see highestIds). */
  private readonly highest = new Map<string, Map<number, number>>();

  constructor(cfg: DuckdbSinkConfig, logger: Logger, id: string) {
    super(dialect, cfg, logger, id, qi(cfg.offsetsTable));
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const path = resolve(this.cfg.path);
    try {
      // Not mkdir's recursive mode: it never returns for some paths (/proc/x/…).
      await makeDirs(dirname(path));
    } catch (e) {
      throw sinkError('SINK_TARGET_PATH', `sink ${this.cfg.name}: cannot create the directory of DuckDB file ${path}: ${(e as Error).message}. Set the sink's path to a file in a directory this process can create and write`, { cause: e });
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      // One instance per file per process (DuckDB allows one writer): a restarted sink, or a
      // reader in the same process, shares it. Opening replays the file's write-ahead log, which
      // takes long only on a hung file system.
      this.instance = await Promise.race([
        DuckDBInstance.fromCache(path),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(sinkError('SINK_TARGET_BUSY', `sink ${this.cfg.name}: DuckDB did not open ${path} within ${DUCKDB_OPEN_MS / 1000} s (a hung or very slow file system); retrying`)), DUCKDB_OPEN_MS))),
      ]);
    } catch (e) {
      if (e instanceof SluiceError) throw e;
      const msg = (e as Error).message;
      if (/lock/i.test(msg)) throw sinkError('SINK_TARGET_BUSY', `DuckDB file ${path} is open in another process (${msg.split('\n')[0]}); close that process (DuckDB allows one writer), the sink retries meanwhile`, { cause: e });
      if (/cannot open|No such file|Permission denied|Read-only|IO Error/i.test(msg)) throw sinkError('SINK_TARGET_PATH', `sink ${this.cfg.name}: DuckDB cannot open ${path}: ${msg.split('\n')[0]}. Set the sink's path to a file this process can create and write`, { cause: e });
      throw e;
    } finally {
      clearTimeout(timer);
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
    this.highest.clear();
    this.prepared.clear();
    this.preparedLast = [];
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }

  /**
   * Writes the scratch files of a batch read ahead while the batch before it applies (DuckDB works
   * on that one in its own threads meanwhile); apply() takes them. A batch is applied after every
   * batch read before it, so only the newest file before this batch's can still be in use: older
   * ones, of batches never applied (a rebalance, a batch applied in parts), are removed. Anything
   * that fails here is left to apply(), which writes the file itself and reports what it meets.
   */
  async prepare(batch: SinkBatch): Promise<void> {
    for (const t of [...this.prepared.keys()]) if (!this.preparedLast.includes(t)) await this.dropFile(t);
    this.preparedLast = batch.tables;
    for (const t of batch.tables) {
      if (!t.changes.length) continue;
      const path = this.nextFile();
      try {
        this.prepared.set(t, await writeChanges(path, t, true));
      } catch {
        await rm(path, { force: true }).catch(() => {});
      }
    }
  }

  private nextFile(): string {
    return join(this.scratch, `changes-${++this.files}.ndjson`);
  }

  private async dropFile(t: TableBatch): Promise<void> {
    const f = this.prepared.get(t);
    this.prepared.delete(t);
    if (f) await rm(f.path, { force: true }).catch(() => {});
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.conn!;
    /** Change table → partition → the highest change id this batch writes there. */
    const written = new Map<string, Map<number, number>>();
    /** Files this apply writes itself (of tables prepare() did not see). */
    const own: string[] = [];
    try {
      await this.transact(batch, async () => {
        for (const t of batch.tables) await this.applyTable(c, t, written, own).catch((e) => Promise.reject(inTable(e, t)));
      });
    } catch (e) {
      // Rolled back: what the tables hold is read again when next needed.
      this.highest.clear();
      throw e;
    } finally {
      for (const t of batch.tables) await this.dropFile(t);
      for (const path of own) await rm(path, { force: true }).catch(() => {});
    }
    for (const [table, m] of written) {
      const known = this.highest.get(table);
      if (known) for (const [p, id] of m) if (id > (known.get(p) ?? -1)) known.set(p, id);
    }
  }

  /**
   * Per partition, the highest `__change_id` the change table holds (read once, then kept up to date
   * by the batches this sink commits; DuckDB lets one process write the file).
   */
  private async highestIds(table: string): Promise<Map<number, number>> {
    let m = this.highest.get(table);
    if (!m) {
      const rows = await this.session!.rows(`SELECT __change_id >> 40, max(__change_id) FROM ${table} GROUP BY 1`);
      m = new Map(rows.map(([p, id]) => [Number(p), Number(id)]));
      this.highest.set(table, m);
    }
    return m;
  }

  private async applyTable(c: DuckDBConnection, t: TableBatch, written: Map<string, Map<number, number>>, own: string[]): Promise<void> {
    const session = this.session!;
    const curName = targetName(this.cfg.tableName, t.schema);
    const cur = await this.tables.ensure(session, { sql: qi(curName), table: curName }, t);
    const chgName = this.cfg.changeTableName && targetName(this.cfg.changeTableName, t.schema);
    const chg = chgName ? await this.tables.ensure(session, { sql: qi(chgName), table: chgName }, t, { lead: CHANGE_COLUMNS, meta: false, primaryKey: false }) : null;
    /** This batch's change ids so far in the change table, per partition. */
    let mine = chg ? written.get(chg.name) : undefined;
    if (chg && !mine) written.set(chg.name, (mine = new Map()));
    const note = (p: number, id: number) => {
      if (mine && id > (mine.get(p) ?? -1)) mine.set(p, id);
    };
    if (t.truncate) await c.run(`DELETE FROM ${cur.name}`);
    if (t.truncate && chg) {
      await c.run(`INSERT OR IGNORE INTO ${chg.name} (__change_id, __op, __source_ts_ms, __synced_at) VALUES (${changeId(t.truncate)}, 't', NULL, now())`);
      note(t.truncate.partition, changeId(t.truncate));
    }
    if (t.changes.length === 0) return;
    checkKeyless(t);
    // Union of the batch's schemas (newest type wins): records of an older schema read NULL for newer columns.
    const cols = new Map<string, TargetColumn>();
    for (const s of t.schemas) for (const col of targetColumns(s, this.cfg)) if (!col.meta) cols.set(col.name, col);
    checkDimensions(this.cfg.name, t, [...cols.values()]);
    const colList = [...cols.values()];
    const keyCols = colList.filter((col) => t.schema.keyColumns.includes(col.name));
    let w = this.prepared.get(t);
    if (!w) {
      const path = this.nextFile();
      own.push(path);
      w = await writeChanges(path, t);
    }
    // The JSON reader types each field (jsonType); `conv` turns it into the column's value, once per
    // change, into a temporary table the statements below read. Without a change table only what
    // the current-state table takes is converted: the final upserts' rows and the deletes' keys.
    const struct = `STRUCT(${colList.map((col) => `${qi(col.name)} ${jsonType(col.kind)}`).join(', ')})`;
    const keyStruct = keyCols.length ? `STRUCT(${keyCols.map((col) => `${qi(col.name)} ${jsonType(col.kind)}`).join(', ')})` : 'VARCHAR';
    const columns = `{p: 'BIGINT', "at": 'BIGINT', u: 'TINYINT', k: ${ql(keyStruct)}, v: ${ql(`STRUCT(op VARCHAR, "before" ${struct}, "after" ${struct}, source STRUCT(ts_ms BIGINT))`)}}`;
    const from = `(SELECT (p << 40) + "at" AS c, u, k, v.op AS o, v.source.ts_ms AS t, coalesce(v."after", v."before") AS i FROM read_ndjson(${ql(w.path)}, maximum_object_size = ${objectSize(w.longest)}, columns = ${columns}))`;
    await c.run(
      `CREATE OR REPLACE TEMP TABLE sluice_batch AS SELECT c, u, o, t, ${[
        ...colList.map((x, n) => `${chg ? conv(x.kind, `i.${qi(x.name)}`) : `CASE WHEN u = 1 THEN ${conv(x.kind, `i.${qi(x.name)}`)} END`} AS d${n}`),
        ...keyCols.map((x, n) => `${conv(x.kind, `k.${qi(x.name)}`)} AS k${n}`),
      ].join(', ')} FROM ${from}${chg ? '' : ' WHERE u > 0'}`,
    );
    const data = colList.map((_, n) => `d${n}`).join(', ');
    if (chg) {
      // A change id above every id the table holds in its partition cannot be there yet: a plain
      // insert (half the cost of checking each id in the primary key). Anything else (a replay) is
      // inserted unless present.
      const highest = await this.highestIds(chg.name);
      const fresh = [...w.lowest].every(([p, id]) => id > Math.max(highest.get(p) ?? -1, mine!.get(p) ?? -1));
      await c.run(`INSERT ${fresh ? '' : 'OR IGNORE '}INTO ${chg.name} (__change_id, __op, __source_ts_ms, __synced_at, ${colList.map((x) => qi(x.name)).join(', ')}) SELECT c, o, t, now(), ${data} FROM sluice_batch`);
      for (const [p, id] of w.highest) note(p, id);
    }
    const metaCols = targetColumns(t.schema, this.cfg).filter((x) => x.meta);
    const metaVal = (m: TargetColumn) => (m.meta === 'op' ? 'o' : m.meta === 'table' ? ql(`${t.schema.schema}.${t.schema.table}`) : m.meta === 'source_ts_ms' ? 't' : 'false');
    const insertCols = [...colList, ...metaCols].map((x) => qi(x.name)).join(', ');
    const insertVals = [data, ...metaCols.map(metaVal)].join(', ');
    if (t.deletes.length) {
      if (this.cfg.deletes === 'soft') {
        const flag = qi(this.cfg.softDeleteColumn);
        await c.run(
          `INSERT INTO ${cur.name} (${keyCols.map((x) => qi(x.name)).join(', ')}, ${flag}) SELECT ${keyCols.map((_, n) => `k${n}`).join(', ')}, true FROM sluice_batch WHERE u = 2
           ON CONFLICT DO UPDATE SET ${flag} = true`,
        );
      } else {
        await c.run(`DELETE FROM ${cur.name} AS t USING (SELECT ${keyCols.map((_, n) => `k${n}`).join(', ')} FROM sluice_batch WHERE u = 2) AS d WHERE ${keyCols.map((x, n) => `t.${qi(x.name)} = d.k${n}`).join(' AND ')}`);
      }
    }
    if (t.upserts.length) await c.run(`INSERT OR REPLACE INTO ${cur.name} (${insertCols}) SELECT ${insertVals} FROM sluice_batch WHERE u = 1`);
    if (t.keyless.length) await c.run(`INSERT INTO ${cur.name} (${insertCols}) SELECT ${insertVals} FROM sluice_batch WHERE u = 1`);
  }

  /** A batch DuckDB refused: the value it could not take, named, when a check finds it. */
  protected override diagnose(batch: SinkBatch): Error | null {
    for (const t of batch.tables) {
      const cols = new Map<string, TargetColumn>();
      for (const s of t.schemas) for (const col of targetColumns(s, this.cfg)) if (!col.meta) cols.set(col.name, col);
      for (const r of t.changes) {
        const env = parseJson(r.value) as { after?: Row | null; before?: Row | null };
        const img = env.after ?? env.before ?? {};
        for (const [name, col] of cols) {
          const why = img[name] == null ? null : duckRefusal(col.kind, img[name]);
          if (why) return unrepresentable(this.cfg.name, 'DuckDB', r.schema, name, img[name], why);
        }
      }
    }
    return null;
  }
}


/** Why DuckDB's column for `kind` cannot hold `v` exactly, or null (values its SQL conversion fails on). */
function duckRefusal(kind: Kind, v: Value): string | null {
  switch (kind.k) {
    case 'decimal': {
      if (duckType(kind) === 'VARCHAR') return null;
      const m = /^[-+]?(\d*)(?:\.(\d*))?$/.exec(String(v));
      if (!m) return `DuckDB's DECIMAL has no ${String(v)}`;
      const p = kind.precision ?? 18;
      const s = kind.scale ?? 0;
      if (m[1].replace(/^0+/, '').length > p - s || (m[2] ?? '').replace(/0+$/, '').length > s) return `the column is DECIMAL(${p},${s})`;
      return null;
    }
    case 'timestamptz': {
      const y = /^([+-]?\d+)-/.exec(String(v));
      return y && (Number(y[1]) > 294246 || Number(y[1]) < -290307) ? "DuckDB's TIMESTAMPTZ holds the years 290308 BC to 294246 AD" : null;
    }
    case 'array':
      return Array.isArray(v) ? (v.map((x) => (x == null ? null : duckRefusal(kind.of, x))).find((x) => x) ?? null) : null;
    default:
      return null;
  }
}

/** The nesting depth of a kind (`text[]` 1) and of a value. */
const kindDepth = (k: Kind): number => (k.k === 'array' ? 1 + kindDepth(k.of) : 0);
function valueDepth(v: Value): number {
  if (!Array.isArray(v)) return 0;
  let d = 0;
  for (const x of v) if (x !== null) d = Math.max(d, valueDepth(x));
  return 1 + d;
}

/**
 * Refuses arrays with more dimensions than their DuckDB list column: the JSON reader would turn the
 * inner arrays into their JSON text without a word. (A PostgreSQL array type has any number of
 * dimensions; the list column has the one the schema gives.)
 */
function checkDimensions(sink: string, t: TableBatch, cols: TargetColumn[]): void {
  const arrays = cols.filter((c) => c.kind.k === 'array');
  if (!arrays.length) return;
  for (const r of t.changes) {
    const env = parseJson(r.value) as { after?: Row | null; before?: Row | null };
    for (const img of [env.after, env.before]) {
      if (!img) continue;
      for (const c of arrays) {
        const v = img[c.name];
        if (v == null) continue;
        const depth = kindDepth(c.kind);
        if (valueDepth(v) > depth) throw unrepresentable(sink, 'DuckDB', r.schema, c.name, v, `the column is a list of ${depth} dimension${depth > 1 ? 's' : ''} (${duckType(c.kind)}) and the value has ${valueDepth(v)}`);
      }
    }
  }
}
