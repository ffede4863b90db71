/**
 * PostgreSQL sink. Each batch is one transaction: DDL for new tables/columns, the truncate if any,
 * deletes, upserts, and the consumed log offsets in `<schema>.sluice_offsets`. A statement
 * carries thousands of rows as one JSON array of the events' `after` objects, cut out of the
 * envelopes without parsing and read by `json_to_recordset` into text columns that SQL casts and
 * converts. Upserts are `INSERT … ON CONFLICT (key) DO UPDATE`.
 */
import pg from 'pg';
import type { PostgresSinkConfig } from '../../config/types.ts';
import { SluiceError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import type { Row } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { writeValue } from '../../core/serde/json.ts';
import { compatible, kindName, targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { bySchema, offsetsFromRows, type Sink, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { sinkError } from '../errors.ts';

export const qi = (s: string): string => '"' + s.replace(/"/g, '""') + '"';
const ql = (s: string): string => "'" + s.replace(/'/g, "''") + "'";

/** PostgreSQL built-in types a PostgreSQL source's column can keep as they are. */
const SAME_TYPES = /^(smallint|integer|bigint|real|double precision|numeric|text|character varying|character|varchar|char|bpchar|boolean|bytea|date|time|timestamp|uuid|json|jsonb|inet|cidr|macaddr|macaddr8|interval|xml|money)\b/;

function pgTypeOf(kind: Kind): string {
  switch (kind.k) {
    case 'bool':
      return 'boolean';
    case 'int':
      return kind.bytes <= 2 ? 'smallint' : kind.bytes === 4 ? 'integer' : 'bigint';
    case 'float':
      return kind.bytes === 4 ? 'real' : 'double precision';
    case 'decimal':
      return kind.precision ? `numeric(${kind.precision},${kind.scale ?? 0})` : 'numeric';
    case 'string':
      return kind.length ? `${kind.fixed ? 'character' : 'character varying'}(${kind.length})` : 'text';
    case 'bytes':
      return 'bytea';
    case 'date':
      return 'date';
    case 'time_us':
      return 'time';
    case 'timestamp_us':
      return 'timestamp';
    case 'timestamp_ms':
      return 'timestamp(3)';
    case 'timestamptz':
      return 'timestamptz';
    case 'timetz':
      return 'timetz';
    case 'json':
      return 'jsonb';
    case 'uuid':
      return 'uuid';
    case 'interval_us':
      return 'interval';
    case 'array':
      return pgTypeOf(kind.of) + '[]';
  }
}

export function pgColumnType(col: TargetColumn, connector: string): string {
  const base = col.sourceType.replace(/\[\]$/, '');
  if (connector === 'postgresql' && SAME_TYPES.test(base) && !/^bit/.test(base)) return col.sourceType;
  return pgTypeOf(col.kind);
}

/** SQL turning the JSON text `t` (or JSON value `j`, for arrays) into a value of `kind`. */
function conv(kind: Kind, t: string, j: string): string {
  switch (kind.k) {
    case 'bytes':
      return `decode(${t}, 'base64')`;
    case 'date':
      return `(DATE '1970-01-01' + (${t})::int4)`;
    case 'time_us':
      return `(TIME '00:00' + (${t})::int8 * INTERVAL '1 microsecond')`;
    case 'timestamp_us':
      return `(TIMESTAMP '1970-01-01' + (${t})::int8 * INTERVAL '1 microsecond')`;
    case 'timestamp_ms':
      return `(TIMESTAMP '1970-01-01' + (${t})::int8 * INTERVAL '1 millisecond')`;
    case 'interval_us':
      return `((${t})::int8 * INTERVAL '1 microsecond')`;
    case 'array':
      return `CASE WHEN jsonb_typeof(${j}) = 'array' THEN ARRAY(SELECT ${conv(kind.of, 'x.e', 'to_jsonb(x.e)')} FROM jsonb_array_elements_text(${j}) WITH ORDINALITY AS x(e, n) ORDER BY x.n) END`;
    default:
      return t;
  }
}

function family(formatType: string): { family: string; bytes?: number } {
  const t = formatType.toLowerCase();
  if (t.endsWith('[]')) return { family: 'array' };
  if (t === 'smallint') return { family: 'int', bytes: 2 };
  if (t === 'integer') return { family: 'int', bytes: 4 };
  if (t === 'bigint') return { family: 'int', bytes: 8 };
  if (t === 'real') return { family: 'float', bytes: 4 };
  if (t === 'double precision') return { family: 'float', bytes: 8 };
  if (t.startsWith('numeric')) return { family: 'decimal' };
  if (t === 'text' || t.startsWith('character')) return { family: 'string' };
  if (t === 'boolean') return { family: 'bool' };
  if (t === 'bytea') return { family: 'bytes' };
  if (t === 'date') return { family: 'date' };
  if (t.startsWith('timestamp') && t.includes('with time zone')) return { family: 'timestamptz' };
  if (t.startsWith('timestamp')) return { family: 'timestamp' };
  if (t.startsWith('time') && t.includes('with time zone')) return { family: 'timetz' };
  if (t.startsWith('time')) return { family: 'time_us' };
  if (t === 'json' || t === 'jsonb') return { family: 'json' };
  if (t === 'uuid') return { family: 'uuid' };
  if (t.startsWith('interval')) return { family: 'interval_us' };
  return { family: 'other' };
}

interface TableState {
  name: string;
  /** Column name → its type as format_type() prints it. */
  columns: Map<string, string>;
  keys: string[];
}

export class PostgresSink implements Sink {
  private client: pg.Client | null = null;
  private connectionError: Error | null = null;
  private readonly tables = new Map<string, TableState>();
  private readonly offsetsTable: string;

  constructor(
    private readonly cfg: PostgresSinkConfig,
    private readonly logger: Logger,
    private readonly id: string,
  ) {
    this.offsetsTable = `${qi(cfg.schema)}.${qi(cfg.offsetsTable)}`;
  }

  get name(): string {
    return this.cfg.name;
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const c = this.cfg.connection;
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, application_name: `sluice sink ${this.cfg.name}` });
    // A dropped connection surfaces as the next query's failure; keep its cause for the message.
    client.on('error', (e) => {
      this.connectionError ??= e;
    });
    await client.connect();
    this.client = client;
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'`);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(this.cfg.schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${this.offsetsTable} (sink text NOT NULL, topic text NOT NULL, "partition" integer NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sink, topic, "partition"))`);
    const r = await client.query({ text: `SELECT topic, "partition", next_offset FROM ${this.offsetsTable} WHERE sink = $1`, values: [this.id], rowMode: 'array' });
    return offsetsFromRows(r.rows);
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => {});
    this.client = null;
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.client!;
    try {
      await c.query('BEGIN');
      for (const t of batch.tables) await this.applyTable(c, t);
      if (batch.offsets.length) {
        await c.query(
          `INSERT INTO ${this.offsetsTable} (sink, topic, "partition", next_offset) SELECT $1, * FROM unnest($2::text[], $3::int[], $4::int8[])
           ON CONFLICT (sink, topic, "partition") DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
          [this.id, batch.offsets.map((o) => o.topic), batch.offsets.map((o) => o.partition), batch.offsets.map((o) => o.next)],
        );
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      this.tables.clear(); // DDL of this transaction is gone too
      if (this.connectionError) {
        const t = this.cfg.connection;
        throw sinkError('SINK_CONNECTION_LOST', `lost the connection to PostgreSQL ${t.host}:${t.port}/${t.database}: ${this.connectionError.message}; reconnecting`, { cause: e });
      }
      throw explain(e);
    }
  }

  private async applyTable(c: pg.Client, t: TableBatch): Promise<void> {
    const st = await this.ensureTable(c, t);
    const tn = st.name;
    if (t.truncate) await c.query(`TRUNCATE ${tn}`);
    if (t.keyless.length) {
      const bad = t.keyless.find((r) => r.op === 'u' || r.op === 'd');
      if (bad) throw noKey(t.schema, bad);
      await this.upsert(c, st, t.keyless, false);
    }
    if (t.deletes.length) await this.delete(c, st, t.deletes);
    if (t.upserts.length) await this.upsert(c, st, t.upserts, true);
  }

  private async ensureTable(c: pg.Client, t: TableBatch): Promise<TableState & { name: string }> {
    const name = `${qi(this.cfg.schema)}.${qi(targetName(this.cfg.tableName, t.schema))}`;
    let st = this.tables.get(name);
    if (!st) {
      const r = await c.query(
        `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [name],
      );
      st = { name, columns: new Map(r.rows.map((x) => [x.attname as string, x.type as string])), keys: t.schema.keyColumns };
      if (r.rows.length === 0) {
        const cols = targetColumns(t.schema, this.cfg);
        const defs = cols.map((col) => `${qi(col.name)} ${pgColumnType(col, t.schema.connector)}${col.key ? ' NOT NULL' : ''}`);
        if (t.schema.keyColumns.length) defs.push(`PRIMARY KEY (${t.schema.keyColumns.map(qi).join(', ')})`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${name} (${defs.join(', ')})`);
        this.logger.info('created target table', { sink: this.cfg.name, table: name, columns: cols.length });
        for (const col of cols) st.columns.set(col.name, pgColumnType(col, t.schema.connector));
      }
      this.tables.set(name, st);
    }
    for (const s of t.schemas) await this.evolve(c, st, s);
    return st;
  }

  /** Adds columns a newer source schema has; stops on a type the target column cannot hold. */
  private async evolve(c: pg.Client, st: TableState, s: SchemaRecord): Promise<void> {
    for (const col of targetColumns(s, this.cfg)) {
      const have = st.columns.get(col.name);
      if (have === undefined) {
        if (this.cfg.schemaEvolution === 'none') {
          throw sinkError('SINK_SCHEMA_CHANGED', `sink ${this.cfg.name}: source table ${s.schema}.${s.table} has a new column ${col.name} (${kindName(col.kind)}) that ${st.name} lacks, and schemaEvolution is none. Add the column to the target (ALTER TABLE ${st.name} ADD COLUMN ${qi(col.name)} ${pgColumnType(col, s.connector)}) or set schemaEvolution: add_columns, then restart`);
        }
        const type = pgColumnType(col, s.connector);
        await c.query(`ALTER TABLE ${st.name} ADD COLUMN IF NOT EXISTS ${qi(col.name)} ${type}`);
        this.logger.info('added target column', { sink: this.cfg.name, table: st.name, column: col.name, type });
        st.columns.set(col.name, type);
      } else if (!col.meta && !compatible(col.kind, family(have)) && family(have).family !== 'other') {
        throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: column ${col.name} of ${s.schema}.${s.table} now holds ${kindName(col.kind)} values, which target column ${st.name}.${qi(col.name)} of type ${have} cannot take. Change the target column (ALTER TABLE ${st.name} ALTER COLUMN ${qi(col.name)} TYPE ${pgColumnType(col, s.connector)} USING …), then restart the pipeline; the sink resumes at the first change it could not apply`);
      }
    }
  }

  /** SQL for column `col` from unnest column `u` (text). */
  private colExpr(st: TableState, col: TargetColumn, s: SchemaRecord, u: string): string {
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
    return `(${conv(col.kind, u, `${u}::jsonb`)})::${type}`;
  }

  private async upsert(c: pg.Client, st: TableState, records: SinkRecord[], byKey: boolean): Promise<void> {
    // One statement per schema version in the batch: its records have its columns.
    for (const [s, recs] of bySchema(records)) {
      const cols = targetColumns(s, this.cfg);
      const data = cols.filter((col) => !col.meta);
      const meta = cols.some((col) => col.meta === 'op' || col.meta === 'source_ts_ms');
      const exprs = cols.map((col) => this.colExpr(st, col, s, `u.${qi(col.name)}`));
      const from = `json_to_recordset($1::json) AS u(${[...data.map((col) => `${qi(col.name)} text`), '"__sluice_op" text', '"__sluice_ts" text'].join(', ')})`;
      const keys = s.keyColumns;
      const updates = cols.filter((col) => !keys.includes(col.name)).map((col) => `${qi(col.name)} = EXCLUDED.${qi(col.name)}`);
      let sql = `INSERT INTO ${st.name} (${cols.map((x) => qi(x.name)).join(', ')}) SELECT ${exprs.join(', ')} FROM ${from}`;
      if (byKey && keys.length) sql += ` ON CONFLICT (${keys.map(qi).join(', ')}) DO ${updates.length ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
      let rows = '[';
      for (let i = 0; i < recs.length; i++) rows += (i ? ',' : '') + rowJson(recs[i], meta);
      await c.query(sql, [rows + ']']);
    }
  }

  private async delete(c: pg.Client, st: TableState, records: SinkRecord[]): Promise<void> {
    const s = records[records.length - 1].schema;
    const keyCols = targetColumns(s, this.cfg).filter((x) => s.keyColumns.includes(x.name));
    const from = `json_to_recordset($1::json) AS u(${keyCols.map((col) => `${qi(col.name)} text`).join(', ')})`;
    const exprs = keyCols.map((col) => this.colExpr(st, col, s, `u.${qi(col.name)}`));
    let keys = '[';
    for (let i = 0; i < records.length; i++) keys += (i ? ',' : '') + records[i].key;
    keys += ']';
    if (this.cfg.deletes === 'soft') {
      const flag = qi(this.cfg.softDeleteColumn);
      await c.query(
        `INSERT INTO ${st.name} (${keyCols.map((x) => qi(x.name)).join(', ')}, ${flag}) SELECT ${exprs.join(', ')}, true FROM ${from}
         ON CONFLICT (${s.keyColumns.map(qi).join(', ')}) DO UPDATE SET ${flag} = true`,
        [keys],
      );
      return;
    }
    const match = keyCols.map((col, i) => `sluice_t.${qi(col.name)} = ${exprs[i]}`).join(' AND ');
    await c.query(`DELETE FROM ${st.name} AS sluice_t USING ${from} WHERE ${match}`, [keys]);
  }
}

const AFTER = '"after":';
const SOURCE = ',"source":{';
const TS = '"ts_ms":';
const LONG_INT = /\d{16}/;

/** The text of the envelope's `after` value, or null if the envelope is not laid out as Sluice writes it. */
export function afterText(value: string): string | null {
  const a = value.indexOf(AFTER);
  const b = value.lastIndexOf(SOURCE);
  return a >= 0 && b > a ? value.slice(a + AFTER.length, b) : null;
}

/** The `after` row parsed: natively, or exactly (bigint) when it holds an integer beyond 2^53. */
export function afterRow(value: string): Row | null {
  const t = afterText(value);
  if (t === null) return ((parseJson(value) as { after?: Row }).after ?? null) as Row | null;
  return (LONG_INT.test(t) ? parseJson(t) : JSON.parse(t)) as Row | null;
}

/** The source block's ts_ms as text. */
export function sourceTs(value: string): string | null {
  const b = value.lastIndexOf(SOURCE);
  const at = b < 0 ? -1 : value.indexOf(TS, b);
  if (at < 0) return null;
  let e = at + TS.length;
  while (e < value.length && value.charCodeAt(e) >= 48 && value.charCodeAt(e) <= 57) e++;
  return value.slice(at + TS.length, e);
}

/**
 * The `after` row of an envelope as JSON text, cut out without parsing: Sluice writes `before`,
 * `after`, `source` in that order, and neither marker can occur unescaped inside a value. With
 * `meta`, the op and the source commit time are added as `__sluice_op` / `__sluice_ts`.
 * PostgreSQL reads the rows with json_to_recordset: one parse of small objects, no client-side
 * work per value (jsonb parsing of whole envelopes capped this sink at ~90k rows/s).
 */
export function rowJson(r: SinkRecord, meta: boolean): string {
  const v = r.value;
  const row = afterText(v) ?? writeValue(((parseJson(v) as { after?: Row }).after ?? null) as Row | null);
  if (!meta || row === 'null') return row;
  const head = `{"__sluice_op":"${r.op}","__sluice_ts":${sourceTs(v) ?? 'null'}`;
  return row === '{}' ? head + '}' : head + ',' + row.slice(1);
}

export function noKey(s: SchemaRecord, r: SinkRecord): SluiceError {
  return sinkError('SINK_NO_KEY', `table ${s.schema}.${s.table} has no primary key, so its ${r.op === 'u' ? 'updates' : 'deletes'} (${r.topic}/${r.partition}@${r.offset}) cannot be applied to a target row; give the source table a primary key, then re-snapshot`);
}

function explain(e: unknown): unknown {
  const err = e as { code?: string; message?: string; column?: string; table?: string };
  if (err.code === '42P10') {
    return sinkError('SINK_NO_KEY', `the target table has no primary key or unique index matching the source key (${err.message}); add one (ALTER TABLE … ADD PRIMARY KEY (…)) or let the sink create the table`, { cause: e });
  }
  if (typeof err.code === 'string' && /^(22|23|42)/.test(err.code)) {
    return sinkError('SINK_REJECTED', `PostgreSQL refused the batch: ${err.message} (SQLSTATE ${err.code}); nothing of this batch was applied. Fix the target (or the source data) and restart`, { cause: e });
  }
  return e;
}
