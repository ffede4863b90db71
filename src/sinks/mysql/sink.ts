/**
 * MySQL/MariaDB sink (mysql2). DDL auto-commits in MySQL, so new tables and columns are created
 * first (idempotent: IF NOT EXISTS), then one transaction applies the batch — truncate as
 * `DELETE FROM` (TRUNCATE would commit), deletes, multi-row `INSERT … ON DUPLICATE KEY UPDATE` —
 * and stores the consumed offsets in `sluice_offsets`. Tables are created utf8mb4 with binary
 * collation (see `dialect.ts`).
 */
import type { Connection } from 'mysql2/promise';
import type { MysqlSinkConfig } from './spec.ts';
import type { Logger } from '../../core/logger.ts';
import type { Row, Value } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { afterRow, checkKeyless, sourceTs } from '../sql/records.ts';
import { SqlSink } from '../sql/sink.ts';
import type { TargetTable } from '../sql/tables.ts';
import { bySchema, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { mysqlDialect as dialect } from './dialect.ts';

const { qi } = dialect;
/** Bytes of row JSON per INSERT statement (well under the default max_allowed_packet of 16 MiB). */
const STATEMENT_BYTES = 4 << 20;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function datetimeOfMicros(us: bigint): string {
  const ms = Number(us / 1000n) - (us % 1000n < 0n ? 1 : 0);
  const frac = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(Number(frac), 6)}`;
}

const toBig = (v: Value): bigint => (typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v))));

/** A JSON value of `kind` as the value mysql2 should send. */
export function mysqlValue(kind: Kind, v: Value): unknown {
  if (v === null || v === undefined) return null;
  switch (kind.k) {
    case 'bool':
      return v ? 1 : 0;
    case 'int':
      return typeof v === 'bigint' ? v.toString() : v;
    case 'float':
      return typeof v === 'number' ? v : null; // NaN/±Infinity have no MySQL value
    case 'bytes':
      return Buffer.from(String(v), 'base64');
    case 'date': {
      const d = new Date(Number(v) * 86_400_000);
      return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    }
    case 'time_us': {
      const us = toBig(v);
      const s = Number(us / 1_000_000n);
      return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}.${pad(Number(us % 1_000_000n), 6)}`;
    }
    case 'interval_us': {
      if (!kind.clock) return typeof v === 'bigint' ? v.toString() : v;
      // A signed duration as MySQL TIME text: -838:59:59.000000 … 838:59:59.000000.
      const us = toBig(v);
      const a = us < 0n ? -us : us;
      const s = Number(a / 1_000_000n);
      return `${us < 0n ? '-' : ''}${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}.${pad(Number(a % 1_000_000n), 6)}`;
    }
    case 'timestamp_us':
      return datetimeOfMicros(toBig(v));
    case 'timestamp_ms':
      return datetimeOfMicros(toBig(v) * 1000n);
    case 'timestamptz': {
      // ISO-8601 in UTC ("2024-02-29T07:44:15.123456Z") → "2024-02-29 07:44:15.123456"
      const m = /^(\d{4,}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d)?$/.exec(String(v));
      if (!m) return String(v);
      if (m[3] && m[3] !== 'Z') {
        const d = new Date(String(v));
        return datetimeOfMicros(BigInt(d.getTime()) * 1000n);
      }
      return `${m[1]} ${m[2]}`;
    }
    case 'array':
      return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? Number(x) : x));
    default:
      return typeof v === 'bigint' ? v.toString() : v;
  }
}

export class MysqlSink extends SqlSink<MysqlSinkConfig> {
  private conn: Connection | null = null;

  constructor(cfg: MysqlSinkConfig, logger: Logger, id: string) {
    super(dialect, cfg, logger, id, qi(cfg.offsetsTable));
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const mysql = await import('mysql2/promise');
    const c = this.cfg.connection;
    const boot = await mysql.createConnection({ host: c.host, port: c.port, user: c.user, password: c.password });
    await boot.query(`CREATE DATABASE IF NOT EXISTS ${qi(c.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    await boot.end();
    const conn = await mysql.createConnection({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, charset: 'utf8mb4' });
    conn.on('error', () => {}); // surfaced by the next query
    this.conn = conn;
    this.session = {
      run: async (sql, params) => void (await conn.query(sql, params)),
      rows: async (sql, params) => (await conn.query({ sql, values: params, rowsAsArray: true }))[0] as unknown[][],
    };
    await conn.query(`SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'`);
    return this.offsets.open(this.session);
  }

  async close(): Promise<void> {
    await this.conn?.end().catch(() => {});
    this.conn = null;
    this.session = null;
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.conn!;
    const states = new Map<TableBatch, TargetTable>();
    // DDL first: in MySQL it commits implicitly, so it cannot share the data's transaction.
    const ddl = async () => {
      for (const t of batch.tables) {
        const table = targetName(this.cfg.tableName, t.schema);
        states.set(t, await this.tables.ensure(this.session!, { sql: qi(table), table }, t));
      }
    };
    const data = async () => {
      for (const t of batch.tables) await this.applyTable(c, t, states.get(t)!);
    };
    await this.transact(batch, data, ddl);
  }

  private async applyTable(c: Connection, t: TableBatch, st: TargetTable): Promise<void> {
    if (t.truncate) await c.query(`DELETE FROM ${st.name}`);
    if (t.keyless.length) {
      checkKeyless(t);
      await this.upsert(c, st, t.keyless, false);
    }
    if (t.deletes.length) await this.delete(c, st, t.deletes);
    if (t.upserts.length) await this.upsert(c, st, t.upserts, true);
  }

  private rowValues(cols: TargetColumn[], s: SchemaRecord, r: SinkRecord, img: Row, op: string, ts: unknown): unknown[] {
    return cols.map((col) => {
      switch (col.meta) {
        case 'op':
          return op;
        case 'table':
          return `${s.schema}.${s.table}`;
        case 'source_ts_ms':
          return ts;
        case 'deleted':
          return 0;
      }
      return mysqlValue(col.kind, img[col.name] ?? null);
    });
  }

  private async upsert(c: Connection, st: TargetTable, records: SinkRecord[], byKey: boolean): Promise<void> {
    for (const [s, recs] of bySchema(records)) {
      const cols = targetColumns(s, this.cfg);
      const updates = cols.filter((col) => !s.keyColumns.includes(col.name)).map((col) => `${qi(col.name)} = VALUES(${qi(col.name)})`);
      let sql = `INSERT INTO ${st.name} (${cols.map((x) => qi(x.name)).join(', ')}) VALUES ?`;
      if (byKey && s.keyColumns.length) sql += updates.length ? ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}` : ` ON DUPLICATE KEY UPDATE ${qi(s.keyColumns[0])} = ${qi(s.keyColumns[0])}`;
      let rows: unknown[][] = [];
      let bytes = 0;
      for (const r of recs) {
        rows.push(this.rowValues(cols, s, r, afterRow(r.value) ?? {}, r.op, sourceTs(r.value)));
        bytes += r.value.length;
        if (bytes >= STATEMENT_BYTES) {
          await c.query(sql, [rows]);
          rows = [];
          bytes = 0;
        }
      }
      if (rows.length) await c.query(sql, [rows]);
    }
  }

  private async delete(c: Connection, st: TargetTable, records: SinkRecord[]): Promise<void> {
    const s = records[records.length - 1].schema;
    const keyCols = targetColumns(s, this.cfg).filter((x) => s.keyColumns.includes(x.name));
    const keys = records.map((r) => {
      const k = parseJson(r.key!) as Row;
      return keyCols.map((col) => mysqlValue(col.kind, k[col.name] ?? null));
    });
    for (let i = 0; i < keys.length; i += 5000) {
      const chunk = keys.slice(i, i + 5000);
      if (this.cfg.deletes === 'soft') {
        const flag = qi(this.cfg.softDeleteColumn);
        await c.query(`INSERT INTO ${st.name} (${keyCols.map((x) => qi(x.name)).join(', ')}, ${flag}) VALUES ? ON DUPLICATE KEY UPDATE ${flag} = 1`, [chunk.map((k) => [...k, 1])]);
      } else if (keyCols.length === 1) {
        await c.query(`DELETE FROM ${st.name} WHERE ${qi(keyCols[0].name)} IN (?)`, [chunk.map((k) => k[0])]);
      } else {
        await c.query(`DELETE FROM ${st.name} WHERE (${keyCols.map((x) => qi(x.name)).join(', ')}) IN (?)`, [chunk]);
      }
    }
  }
}
