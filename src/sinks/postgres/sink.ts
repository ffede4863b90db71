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
import type { Row } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { writeValue } from '../../core/serde/json.ts';
import { targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { batchError, type LostConnection } from '../sql/driver-errors.ts';
import { isRetriable } from '../../core/errors.ts';
import { afterText, checkKeyless, sourceTs } from '../sql/records.ts';
import { SqlSink } from '../sql/sink.ts';
import type { TargetTable } from '../sql/tables.ts';
import { bySchema, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { postgresDialect as dialect } from './dialect.ts';

const { qi, ql } = dialect;

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

export class PostgresSink extends SqlSink<PostgresSinkConfig> {
  private client: pg.Client | null = null;
  private connectionError: Error | null = null;

  constructor(cfg: PostgresSinkConfig, logger: Logger, id: string) {
    super(dialect, cfg, logger, id, `${qi(cfg.schema)}.${qi(cfg.offsetsTable)}`);
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const c = this.cfg.connection;
    const client = new pg.Client({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, application_name: `sluice sink ${this.cfg.name}` });
    // A dropped connection surfaces as the next query's failure; keep its cause for the message.
    client.on('error', (e) => {
      this.connectionError ??= e;
    });
    try {
      await client.connect();
      this.client = client;
      this.session = {
        run: async (sql, params) => void (await client.query(sql, params)),
        rows: async (sql, params) => (await client.query({ text: sql, values: params, rowMode: 'array' })).rows,
      };
      await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'`);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(this.cfg.schema)}`);
      return await this.offsets.open(this.session);
    } catch (e) {
      // A connection refused or dropped while opening is retried like one lost mid-batch.
      if (!isRetriable(e)) throw e;
      throw batchError(dialect, e, { address: `${c.host}:${c.port}/${c.database}`, error: this.connectionError ?? (e as Error) });
    }
  }

  async close(): Promise<void> {
    await this.client?.end().catch(() => {});
    this.client = null;
    this.session = null;
  }

  /** One transaction: DDL, data and offsets. */
  async apply(batch: SinkBatch): Promise<void> {
    const c = this.client!;
    await this.transact(batch, async () => {
      for (const t of batch.tables) await this.applyTable(c, t);
    });
  }

  protected override lostConnection(): LostConnection | null {
    const t = this.cfg.connection;
    return this.connectionError && { address: `${t.host}:${t.port}/${t.database}`, error: this.connectionError };
  }

  private async applyTable(c: pg.Client, t: TableBatch): Promise<void> {
    const table = targetName(this.cfg.tableName, t.schema);
    const st = await this.tables.ensure(this.session!, { sql: `${qi(this.cfg.schema)}.${qi(table)}`, table }, t);
    if (t.truncate) await c.query(`TRUNCATE ${st.name}`);
    if (t.keyless.length) {
      checkKeyless(t);
      await this.upsert(c, st, t.keyless, false);
    }
    if (t.deletes.length) await this.delete(c, st, t.deletes);
    if (t.upserts.length) await this.upsert(c, st, t.upserts, true);
  }

  /** SQL for column `col` from unnest column `u` (text). */
  private colExpr(st: TargetTable, col: TargetColumn, s: SchemaRecord, u: string): string {
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

  private async upsert(c: pg.Client, st: TargetTable, records: SinkRecord[], byKey: boolean): Promise<void> {
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

  private async delete(c: pg.Client, st: TargetTable, records: SinkRecord[]): Promise<void> {
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
