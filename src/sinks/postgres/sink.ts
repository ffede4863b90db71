/**
 * PostgreSQL sink. Each batch is one transaction: DDL for new tables/columns, the truncate if any,
 * deletes, upserts, and the consumed log offsets in `<schema>.sluice_offsets`. A statement
 * carries thousands of rows as one JSON array of the events' `after` objects, cut out of the
 * envelopes without parsing and read by `json_to_recordset` into text columns that SQL casts and
 * converts. Upserts are `INSERT … ON CONFLICT (key) DO UPDATE`.
 */
import pg from 'pg';
import type { PostgresSinkConfig } from './spec.ts';
import type { Logger } from '../../core/logger.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import type { Row, Value } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { writeValue } from '../../core/serde/json.ts';
import { targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { batchError, inTable, type LostConnection } from '../sql/driver-errors.ts';
import { isRetriable } from '../../core/errors.ts';
import { afterText, checkKeyless, sourceTs } from '../sql/records.ts';
import { clockText, pgDateText, pgTimestampText, pgZonedText } from '../sql/values.ts';
import { SqlSink } from '../sql/sink.ts';
import type { TargetTable } from '../sql/tables.ts';
import type { SqlSession } from '../sql/dialect.ts';
import { bySchema, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { postgresDialect as dialect } from './dialect.ts';
import { closeWithin, connectFailure, pgDeadlineOptions, underDeadline, withStatementDeadline } from '../timeouts.ts';
import { ByteSink } from '../../core/bytes.ts';
import { copyIn, copyRow, type CopyLayout } from './copy.ts';

/** Gives up a connection (a statement past its deadline). */
const destroyStream = (client: pg.Client, why?: Error): void => (client as unknown as { connection: { stream: { destroy(e?: Error): void } } }).connection.stream.destroy(why);

const { qi, ql } = dialect;

/**
 * Tables with more columns than this are upserted from JSON (upsertJson) instead of a staging
 * table: a stored row of that many short text values can pass PostgreSQL's 8 kB row limit.
 */
const STAGE_COLUMNS = 100;

/** COPY buffers a sink keeps for later batches: one per table being applied and per table read ahead, for a few tables. */
const SPARE_BUFFERS = 4;

/**
 * A batch of at most this many rows (and bytes) is sent as statements with their rows inline
 * (VALUES lists), held back and sent in one message with the offsets and COMMIT: BEGIN, then one
 * round trip, where the COPY path takes one for BEGIN, the COPY, each statement, the offsets and
 * COMMIT. Small batches are those of a sink keeping up with a live source, where the round trips
 * are the latency; larger ones load faster through COPY.
 */
const INLINE_ROWS = 512;
const INLINE_BYTES = 1 << 20;

/**
 * SQL turning the JSON text `t` of a value into a value of `kind`, exactly: integer arithmetic on
 * microseconds (an int8 times an interval would go through a double and round past 2^53), the
 * ±infinity markers of dates and timestamps, `24:00:00`, ISO years before 1 and after 9999.
 * Arrays arrive as PostgreSQL array literals (`arrayLiteral`), any number of dimensions.
 */
function conv(kind: Kind, t: string): string {
  switch (kind.k) {
    case 'bytes':
      return `decode(${t}, 'base64')`;
    case 'date':
      return `CASE ${t} WHEN '2147483647' THEN DATE 'infinity' WHEN '-2147483648' THEN DATE '-infinity' ELSE DATE '1970-01-01' + (${t})::int4 END`;
    case 'time_us':
      return `CASE ${t} WHEN '86400000000' THEN TIME '24:00:00' ELSE TIME '00:00' + (${t})::int8 * INTERVAL '1 microsecond' END`;
    case 'timestamp_us':
      return `CASE ${t} WHEN '9223372036854775807' THEN TIMESTAMP 'infinity' WHEN '-9223372036854775808' THEN TIMESTAMP '-infinity' ELSE TIMESTAMP '1970-01-01' + (${t} || ' us')::interval END`;
    case 'timestamp_ms':
      return `(TIMESTAMP '1970-01-01' + (${t} || ' ms')::interval)`;
    case 'timestamptz':
      // ISO's signed and zero years (`+010000-…`, `-000099-…`, `0000-…`) in PostgreSQL's spelling (values.ts pgZonedText).
      return `CASE WHEN left(${t}, 1) = '+' THEN ltrim(substr(${t}, 2), '0') WHEN (left(${t}, 1) = '-' AND ${t} <> '-infinity') OR left(${t}, 5) = '0000-' THEN lpad((1 + CASE WHEN left(${t}, 1) = '-' THEN substr(${t}, 2, strpos(substr(${t}, 2), '-') - 1)::int ELSE 0 END)::text, 4, '0') || substr(${t}, strpos(substr(${t}, 2), '-') + 1) || ' BC' ELSE ${t} END`;
    case 'interval_us':
      return `(${t} || ' us')::interval`;
    default:
      return t;
  }
}

export class PostgresSink extends SqlSink<PostgresSinkConfig> {
  private client: pg.Client | null = null;
  private connectionError: Error | null = null;
  /** Staging tables of this connection, and those used in the open transaction (stage()). */
  private readonly staged = new Set<string>();
  private readonly stagedInTx = new Set<string>();
  /** COPY rows made by prepare(), by the record list (TableBatch.upserts / keyless) and schema. */
  private readonly prepared = new WeakMap<SinkRecord[], Map<SchemaRecord, ByteSink>>();
  /**
   * COPY buffers whose rows the server has: the next batch's rows are written into them, so that
   * a sink at full speed makes no new buffer per batch (at most SPARE_BUFFERS kept).
   */
  private readonly spare: ByteSink[] = [];
  /** The staging layout of each schema version. */
  private readonly layouts = new WeakMap<SchemaRecord, CopyLayout>();
  /** Statements of the open transaction held back to go with its COMMIT (a small batch), or null. */
  private held: string[] | null = null;

  constructor(cfg: PostgresSinkConfig, logger: Logger, id: string) {
    super(dialect, cfg, logger, id, `${qi(cfg.schema)}.${qi(cfg.offsetsTable)}`);
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const c = this.cfg.connection;
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, application_name: `sluice sink ${this.cfg.name}`, ...pgDeadlineOptions(c) });
    withStatementDeadline(client, c, 'PostgreSQL', (why) => destroyStream(client, why));
    // A dropped connection surfaces as the next query's failure; keep its cause for the message.
    client.on('error', (e) => {
      this.connectionError ??= e;
    });
    try {
      await client.connect();
      this.client = client;
      this.staged.clear();
      this.session = {
        run: async (sql, params) => void (await client.query(sql, params)),
        rows: async (sql, params) => (await client.query({ text: sql, values: params, rowMode: 'array' })).rows,
      };
      // Literals are written with standard strings ('' for a quote) or E'' strings.
      await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET standard_conforming_strings = on`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(this.cfg.schema)}`);
      return await this.offsets.open(this.session);
    } catch (e) {
      const unreachable = connectFailure(e, c, 'PostgreSQL');
      if (unreachable) throw unreachable;
      // A connection refused or dropped while opening is retried like one lost mid-batch.
      if (!isRetriable(e)) throw e;
      throw batchError(dialect, e, { address: `${c.host}:${c.port}/${c.database}`, error: this.connectionError ?? (e as Error) });
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    if (client) await closeWithin(() => client.end(), () => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy());
    this.client = null;
    this.session = null;
  }

  /** One transaction: DDL, data and offsets. */
  async apply(batch: SinkBatch): Promise<void> {
    const c = this.client!;
    this.stagedInTx.clear();
    this.held = inlined(batch) ? [] : null;
    await this.transact(batch, async () => {
      for (const t of batch.tables) await this.applyTable(c, t).catch((e) => Promise.reject(inTable(e, t)));
    })
      .catch((e) => {
        // The rollback undid staging tables created in it.
        this.staged.clear();
        throw e;
      })
      .finally(() => (this.held = null));
  }

  /** Runs `sql` now, or holds it back for the commit (a small batch); statements keep their order. */
  private async exec(c: pg.Client, sql: string, params?: unknown[]): Promise<void> {
    if (this.held && !params) {
      this.held.push(sql);
      return;
    }
    await this.flushHeld(c);
    await c.query(sql, params);
  }

  private async flushHeld(c: pg.Client): Promise<void> {
    if (!this.held?.length) return;
    const sql = this.held.join(';\n');
    this.held.length = 0;
    await c.query(sql);
  }

  /** The offsets and COMMIT, sent with the statements held back (one message, one round trip). */
  protected override async finish(s: SqlSession, batch: SinkBatch): Promise<void> {
    const held = this.held;
    const offsets = held && this.offsets.plainWrite(batch.offsets);
    if (!held || !offsets || offsets.params?.length) {
      await this.flushHeld(this.client!);
      return super.finish(s, batch);
    }
    if (offsets.sql) held.push(offsets.sql);
    held.push('COMMIT');
    // An inlined batch holds one table (inlined()): a refusal is that table's, as when applied
    // statement by statement (a lost connection is nobody's).
    await this.flushHeld(this.client!).catch((e) => Promise.reject(this.dialect.refusal(e) ? inTable(e, batch.tables[0]) : e));
  }

  protected override lostConnection(): LostConnection | null {
    const t = this.cfg.connection;
    return this.connectionError && { address: `${t.host}:${t.port}/${t.database}`, error: this.connectionError };
  }

  private async applyTable(c: pg.Client, t: TableBatch): Promise<void> {
    const table = targetName(this.cfg.tableName, t.schema);
    const st = await this.tables.ensure(this.session!, { sql: `${qi(this.cfg.schema)}.${qi(table)}`, table }, t);
    if (t.truncate) await this.exec(c, `TRUNCATE ${st.name}`);
    if (t.keyless.length) {
      checkKeyless(t);
      await this.upsert(c, st, t.keyless, false);
    }
    if (t.deletes.length) await this.delete(c, st, t.deletes);
    if (t.upserts.length) await this.upsert(c, st, t.upserts, true);
  }

  /** SQL for column `col` from unnest column `u` (text). */
  /** @param staged the value was staged by copyRow, which already spelled timestamptz years PostgreSQL's way */
  private colExpr(st: TargetTable, col: TargetColumn, s: SchemaRecord, u: string, staged = false): string {
    const type = st.columns.get(col.name)!;
    switch (col.meta) {
      case 'op':
        return 'u."__sluice_op"';
      case 'table':
        return ql(`${s.schema}.${s.table}`);
      case 'source_ts_ms':
        return 'u."__sluice_ts"::int8';
      case 'deleted':
        return 'false';
    }
    if (staged && col.kind.k === 'timestamptz') return `(${u})::${type}`;
    return `(${conv(col.kind, u)})::${type}`;
  }

  /**
   * Turns a batch read ahead into COPY rows while the batch before it applies (the server works on
   * that one meanwhile): what `upsert` sends, per table and schema version. Touches no target.
   */
  async prepare(batch: SinkBatch): Promise<void> {
    for (const t of batch.tables) {
      for (const records of [t.keyless, t.upserts]) {
        if (!records.length) continue;
        const rows = new Map<SchemaRecord, ByteSink>();
        for (const [s, recs] of bySchema(records)) if (s.columns.length <= STAGE_COLUMNS) rows.set(s, await this.copyRows(s, recs, true));
        this.prepared.set(records, rows);
      }
    }
  }

  /** The COPY text rows of `recs` (all of schema `s`), in the staging layout (see upsert). */
  private async copyRows(s: SchemaRecord, recs: SinkRecord[], slices: boolean): Promise<ByteSink> {
    const data = targetColumns(s, this.cfg).filter((col) => !col.meta);
    const layout = this.layoutOf(s, data);
    const out = this.spare.pop() ?? new ByteSink(Math.max(1 << 16, recs.length * 128));
    out.len = 0;
    const cells = new Int32Array(2 * data.length);
    for (let i = 0; i < recs.length; i++) {
      const r = recs[i];
      copyRow(out, r.bytes ?? Buffer.from(r.value), r.op, layout, cells);
      // Let the connection's answers in: the batch before this one is in flight.
      if (slices && (i & 1023) === 1023) await new Promise((resolve) => setImmediate(resolve));
    }
    return out;
  }

  private layoutOf(s: SchemaRecord, data: TargetColumn[]): CopyLayout {
    let l = this.layouts.get(s);
    if (!l) {
      const meta = targetColumns(s, this.cfg).some((col) => col.meta === 'op' || col.meta === 'source_ts_ms');
      this.layouts.set(s, (l = { names: data.map((col) => col.name), rewrite: data.map(arrayRewrite), zoned: data.map((col) => col.kind.k === 'timestamptz'), meta }));
    }
    return l;
  }

  private async upsert(c: pg.Client, st: TargetTable, records: SinkRecord[], byKey: boolean): Promise<void> {
    const prepared = this.prepared.get(records);
    // One statement per schema version in the batch: its records have its columns.
    for (const [s, recs] of bySchema(records)) {
      const cols = targetColumns(s, this.cfg);
      const data = cols.filter((col) => !col.meta);
      if (data.length > STAGE_COLUMNS) {
        await this.upsertJson(c, st, s, recs, byKey);
        continue;
      }
      const meta = cols.some((col) => col.meta === 'op' || col.meta === 'source_ts_ms');
      // Staged as text: c1…cN (the data columns in order), then the op and commit time when a column takes them.
      const staged = [...data.map((_, i) => `c${i + 1}`), ...(meta ? ['"__sluice_op"', '"__sluice_ts"'] : [])];
      const exprs = cols.map((col) => this.colExpr(st, col, s, `u.c${data.indexOf(col) + 1}`, true));
      const keys = s.keyColumns;
      const updates = cols.filter((col) => !keys.includes(col.name)).map((col) => `${qi(col.name)} = EXCLUDED.${qi(col.name)}`);
      // Taken once: a batch applied again (a retry) makes its rows again, since the buffer goes back to `spare` below.
      const made = prepared?.get(s) ?? (await this.copyRows(s, recs, false));
      prepared?.delete(s);
      const rows = made.view();
      let from: string;
      if (this.held) from = `(VALUES ${copyRowsAsValues(rows)}) AS u(${staged.join(', ')})`; // a small batch: its rows inline, the same text as E'' literals
      else {
        const stage = await this.stage(c, data.length, meta);
        await underDeadline(copyIn(c, stage, rows), this.cfg.connection, 'PostgreSQL', (why) => destroyStream(c, why));
        from = `${stage} AS u`;
      }
      let sql = `INSERT INTO ${st.name} (${cols.map((x) => qi(x.name)).join(', ')}) SELECT ${exprs.join(', ')} FROM ${from}`;
      if (byKey && keys.length) sql += ` ON CONFLICT (${keys.map(qi).join(', ')}) DO ${updates.length ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
      await this.exec(c, sql);
      // The server has the rows (the COPY ended with its ReadyForQuery): the buffer may take others.
      if (this.spare.length < SPARE_BUFFERS) this.spare.push(made);
    }
  }

  /**
   * Rows of schema `s` as one JSON array read by json_to_recordset: for tables too wide to stage
   * (a stored row of hundreds of text columns passes PostgreSQL's 8 kB row limit).
   */
  private async upsertJson(c: pg.Client, st: TargetTable, s: SchemaRecord, recs: SinkRecord[], byKey: boolean): Promise<void> {
    const cols = targetColumns(s, this.cfg);
    const data = cols.filter((col) => !col.meta);
    const meta = cols.some((col) => col.meta === 'op' || col.meta === 'source_ts_ms');
    const exprs = cols.map((col) => this.colExpr(st, col, s, `u.${qi(col.name)}`));
    // The op and commit time only when a column takes them: a record of 1600 columns is PostgreSQL's limit.
    const from = `json_to_recordset($1::json) AS u(${[...data.map((col) => `${qi(col.name)} text`), ...(meta ? ['"__sluice_op" text', '"__sluice_ts" text'] : [])].join(', ')})`;
    const keys = s.keyColumns;
    const updates = cols.filter((col) => !keys.includes(col.name)).map((col) => `${qi(col.name)} = EXCLUDED.${qi(col.name)}`);
    let sql = `INSERT INTO ${st.name} (${cols.map((x) => qi(x.name)).join(', ')}) SELECT ${exprs.join(', ')} FROM ${from}`;
    if (byKey && keys.length) sql += ` ON CONFLICT (${keys.map(qi).join(', ')}) DO ${updates.length ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
    const arrays = arrayColumns(data);
    let rows = '[';
    for (let i = 0; i < recs.length; i++) rows += (i ? ',' : '') + rowJson(recs[i], meta, arrays);
    await this.exec(c, sql, [rows + ']']);
  }

  /**
   * The session's staging table for rows of `n` text columns (and the op and commit time with
   * `meta`), empty: created once per connection, emptied by every commit (ON COMMIT DELETE ROWS) and
   * before a second use in the same transaction.
   */
  private async stage(c: pg.Client, n: number, meta: boolean): Promise<string> {
    const name = `sluice_stage_${n}${meta ? '_m' : ''}`;
    if (!this.staged.has(name)) {
      const cols = Array.from({ length: n }, (_, i) => `c${i + 1} text`);
      if (meta) cols.push('"__sluice_op" text', '"__sluice_ts" text');
      await c.query(`CREATE TEMPORARY TABLE IF NOT EXISTS ${name} (${cols.join(', ')}) ON COMMIT DELETE ROWS`);
      this.staged.add(name);
    } else if (this.stagedInTx.has(name)) await c.query(`TRUNCATE ${name}`);
    this.stagedInTx.add(name);
    return name;
  }

  private async delete(c: pg.Client, st: TargetTable, records: SinkRecord[]): Promise<void> {
    const s = records[records.length - 1].schema;
    const keyCols = targetColumns(s, this.cfg).filter((x) => s.keyColumns.includes(x.name));
    const arrays = arrayColumns(keyCols);
    let keys = '[';
    for (let i = 0; i < records.length; i++) keys += (i ? ',' : '') + (arrays.length ? withArrayLiterals(parseJson(records[i].key!) as Row, arrays) : records[i].key);
    keys += ']';
    // A small batch's keys inline (held back with its other statements), else as a parameter.
    const params = this.held ? undefined : [keys];
    const from = `json_to_recordset(${params ? '$1' : ql(keys)}::json) AS u(${keyCols.map((col) => `${qi(col.name)} text`).join(', ')})`;
    const exprs = keyCols.map((col) => this.colExpr(st, col, s, `u.${qi(col.name)}`));
    if (this.cfg.deletes === 'soft') {
      const flag = qi(this.cfg.softDeleteColumn);
      await this.exec(
        c,
        `INSERT INTO ${st.name} (${keyCols.map((x) => qi(x.name)).join(', ')}, ${flag}) SELECT ${exprs.join(', ')}, true FROM ${from}
         ON CONFLICT (${s.keyColumns.map(qi).join(', ')}) DO UPDATE SET ${flag} = true`,
        params,
      );
      return;
    }
    const match = keyCols.map((col, i) => `sluice_t.${qi(col.name)} = ${exprs[i]}`).join(' AND ');
    await this.exec(c, `DELETE FROM ${st.name} AS sluice_t USING ${from} WHERE ${match}`, params);
  }
}

/**
 * The `after` row of an envelope as JSON text, cut out without parsing: Sluice writes `before`,
 * `after`, `source` in that order, and neither marker can occur unescaped inside a value. With
 * `meta`, the op and the source commit time are added as `__sluice_op` / `__sluice_ts`.
 * PostgreSQL reads the rows with json_to_recordset: one parse of small objects, no client-side
 * work per value (jsonb parsing of whole envelopes capped this sink at ~90k rows/s).
 */
export function rowJson(r: SinkRecord, meta: boolean, arrays: ArrayColumn[] = []): string {
  const v = r.value;
  let row = afterText(v) ?? writeValue(((parseJson(v) as { after?: Row }).after ?? null) as Row | null);
  if (arrays.length && row !== 'null') row = withArrayLiterals(parseJson(row) as Row, arrays);
  if (!meta || row === 'null') return row;
  const head = `{"__sluice_op":"${r.op}","__sluice_ts":${sourceTs(v) ?? 'null'}`;
  return row === '{}' ? head + '}' : head + ',' + row.slice(1);
}

// ---------- arrays ----------

/** An array column and the kind of its elements. */
export interface ArrayColumn {
  name: string;
  element: Kind;
}

/** A staged array value: its PostgreSQL array literal (see withArrayLiterals); null for other columns. */
function arrayRewrite(col: TargetColumn): ((v: unknown) => string) | null {
  if (col.kind.k !== 'array') return null;
  let k: Kind = col.kind;
  while (k.k === 'array') k = k.of;
  const element = k;
  return (v) => (Array.isArray(v) ? arrayLiteral(v as Value[], element) : typeof v === 'string' ? v : writeValue(v as Value));
}

/** The array columns among `cols` (once per statement). */
function arrayColumns(cols: TargetColumn[]): ArrayColumn[] {
  const out: ArrayColumn[] = [];
  for (const c of cols) {
    if (c.kind.k !== 'array') continue;
    let k: Kind = c.kind;
    while (k.k === 'array') k = k.of;
    out.push({ name: c.name, element: k });
  }
  return out;
}

/**
 * A row as JSON with its array values as PostgreSQL array literals (`{{a,"b,c"},{NULL,d}}`), which
 * the column's type reads whatever the number of dimensions. (A JSON array cannot be cast to a
 * PostgreSQL array, and element conversion in SQL works for one dimension only.)
 */
function withArrayLiterals(row: Row, arrays: ArrayColumn[]): string {
  for (const a of arrays) {
    const v = row[a.name];
    if (Array.isArray(v)) row[a.name] = arrayLiteral(v, a.element);
  }
  return writeValue(row);
}

function arrayLiteral(v: Value[], element: Kind): string {
  let s = '{';
  for (let i = 0; i < v.length; i++) {
    if (i) s += ',';
    const x = v[i];
    if (x === null) s += 'NULL';
    else if (Array.isArray(x)) s += arrayLiteral(x, element);
    else s += '"' + elementText(element, x).replace(/[\\"]/g, '\\$&') + '"';
  }
  return s + '}';
}

/** A value of `kind` as PostgreSQL's input text (what `conv` computes in SQL for a column). */
function elementText(kind: Kind, v: Value): string {
  switch (kind.k) {
    case 'bool':
      return v ? 't' : 'f';
    case 'bytes':
      return '\\x' + Buffer.from(String(v), 'base64').toString('hex');
    case 'date':
      return pgDateText(Number(v));
    case 'time_us':
      return clockText(Number(v));
    case 'timestamp_us':
      return pgTimestampText(v);
    case 'timestamp_ms':
      return pgTimestampText(BigInt(v as number | bigint) * 1000n);
    case 'timestamptz':
      return pgZonedText(String(v));
    case 'interval_us':
      return `${v} us`;
    default:
      return typeof v === 'object' ? writeValue(v) : String(v);
  }
}

/**
 * Whether a batch goes inline (see INLINE_ROWS): small, of one table (so that a refusal, which
 * comes with the COMMIT's message, is known to be that table's), narrow enough to stage.
 */
function inlined(batch: SinkBatch): boolean {
  if (batch.tables.length !== 1) return false;
  const t = batch.tables[0];
  if (t.schemas.some((s) => s.columns.length > STAGE_COLUMNS)) return false;
  return t.upserts.length + t.keyless.length + t.deletes.length <= INLINE_ROWS && batch.bytes <= INLINE_BYTES;
}

const TAB_BYTE = 0x09;
const NEWLINE_BYTE = 0x0a;

/**
 * COPY text rows (copyRow's) as the rows of a VALUES list of E'' literals. COPY's text escapes
 * (\\, \b, \f, \n, \r, \t, \xHH) mean the same inside an E'' string, so a field is taken byte
 * for byte with only its quotes doubled; \N, a whole field, is NULL.
 */
export function copyRowsAsValues(rows: Buffer): string {
  const out: string[] = [];
  let i = 0;
  while (i < rows.length) {
    let row = '(';
    for (;;) {
      let j = i;
      while (j < rows.length && rows[j] !== TAB_BYTE && rows[j] !== NEWLINE_BYTE) j++;
      if (j - i === 2 && rows[i] === 0x5c && rows[i + 1] === 0x4e) row += 'NULL';
      else row += "E'" + rows.toString('utf8', i, j).replace(/'/g, "''") + "'";
      i = j + 1;
      if (j >= rows.length || rows[j] === NEWLINE_BYTE) break;
      row += ', ';
    }
    out.push(row + ')');
  }
  return out.join(', ');
}
