/**
 * MySQL/MariaDB sink (mysql2). DDL auto-commits in MySQL, so new tables and columns are created
 * first (idempotent: IF NOT EXISTS), then one transaction applies the batch — truncate as
 * `DELETE FROM` (TRUNCATE would commit), deletes, multi-row `INSERT … ON DUPLICATE KEY UPDATE` —
 * and stores the consumed offsets in `sluice_offsets`. Tables are created utf8mb4 with binary
 * collation so that keys differing only in case or accents stay distinct, as in the source.
 */
import type { Connection } from 'mysql2/promise';
import type { MysqlSinkConfig } from '../../config/types.ts';
import { SluiceError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { Row, Value } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { compatible, kindName, targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { bySchema, offsetsFromRows, type Sink, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { afterRow, noKey, sourceTs } from '../postgres/sink.ts';
import { sinkError } from '../errors.ts';

const qi = (s: string): string => '`' + s.replace(/`/g, '``') + '`';
/** Bytes of row JSON per INSERT statement (well under the default max_allowed_packet of 16 MiB). */
const STATEMENT_BYTES = 4 << 20;

export function mysqlType(kind: Kind, key: boolean): string {
  switch (kind.k) {
    case 'bool':
      return 'TINYINT(1)';
    case 'int':
      return ['', 'TINYINT', 'SMALLINT', '', 'INT', '', '', '', 'BIGINT'][kind.bytes];
    case 'float':
      return kind.bytes === 4 ? 'FLOAT' : 'DOUBLE';
    case 'decimal':
      return kind.precision && kind.precision <= 65 && (kind.scale ?? 0) <= 30 ? `DECIMAL(${kind.precision},${kind.scale ?? 0})` : 'DECIMAL(65,30)';
    case 'string':
      if (kind.length && kind.length <= 16383) return `${kind.fixed && kind.length <= 255 ? 'CHAR' : 'VARCHAR'}(${kind.length})`;
      return key ? 'VARCHAR(255)' : 'LONGTEXT';
    case 'bytes':
      return key ? 'VARBINARY(255)' : 'LONGBLOB';
    case 'date':
      return 'DATE';
    case 'time_us':
      return 'TIME(6)';
    case 'timestamp_us':
    case 'timestamp_ms':
    case 'timestamptz':
      return 'DATETIME(6)';
    case 'timetz':
      return 'VARCHAR(32)';
    case 'json':
      return 'JSON';
    case 'uuid':
      return 'CHAR(36)';
    case 'interval_us':
      return kind.clock ? 'TIME(6)' : 'BIGINT';
    case 'array':
      return 'JSON';
  }
}

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

function family(columnType: string): { family: string; bytes?: number } {
  const t = columnType.toLowerCase();
  if (t.startsWith('tinyint(1)')) return { family: 'bool' };
  const ints: Record<string, number> = { tinyint: 1, smallint: 2, mediumint: 4, int: 4, bigint: 8 };
  const base = t.replace(/\(.*$/, '').replace(/ unsigned$/, '');
  if (base in ints) return { family: 'int', bytes: ints[base] };
  if (base === 'float') return { family: 'float', bytes: 4 };
  if (base === 'double') return { family: 'float', bytes: 8 };
  if (base === 'decimal') return { family: 'decimal' };
  if (/char|text/.test(base) || base === 'json') return { family: 'string' };
  if (/blob|binary/.test(base)) return { family: 'bytes' };
  if (base === 'date') return { family: 'date' };
  if (base === 'time') return { family: 'time_us' };
  if (base === 'datetime' || base === 'timestamp') return { family: 'timestamp' };
  return { family: 'other' };
}

interface TableState {
  name: string;
  columns: Map<string, string>;
}

export class MysqlSink implements Sink {
  private conn: Connection | null = null;
  private readonly tables = new Map<string, TableState>();
  private readonly offsetsTable: string;

  constructor(
    private readonly cfg: MysqlSinkConfig,
    private readonly logger: Logger,
    private readonly id: string,
  ) {
    this.offsetsTable = qi(cfg.offsetsTable);
  }

  get name(): string {
    return this.cfg.name;
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
    await conn.query(`SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'`);
    await conn.query(`CREATE TABLE IF NOT EXISTS ${this.offsetsTable} (sink VARCHAR(255) NOT NULL, topic VARCHAR(255) NOT NULL, \`partition\` INT NOT NULL, next_offset BIGINT NOT NULL, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), PRIMARY KEY (sink, topic, \`partition\`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    const [rows] = await conn.query({ sql: `SELECT topic, \`partition\`, next_offset FROM ${this.offsetsTable} WHERE sink = ?`, values: [this.id], rowsAsArray: true });
    return offsetsFromRows(rows as unknown[][]);
  }

  async close(): Promise<void> {
    await this.conn?.end().catch(() => {});
    this.conn = null;
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.conn!;
    try {
      // DDL first: in MySQL it commits implicitly, so it cannot share the data's transaction.
      const states = new Map<TableBatch, TableState>();
      for (const t of batch.tables) states.set(t, await this.ensureTable(c, t));
      await c.query('START TRANSACTION');
      for (const t of batch.tables) await this.applyTable(c, t, states.get(t)!);
      if (batch.offsets.length) {
        await c.query(`INSERT INTO ${this.offsetsTable} (sink, topic, \`partition\`, next_offset) VALUES ? ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)`, [
          batch.offsets.map((o) => [this.id, o.topic, o.partition, o.next]),
        ]);
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      this.tables.clear();
      throw explain(e);
    }
  }

  private async applyTable(c: Connection, t: TableBatch, st: TableState): Promise<void> {
    if (t.truncate) await c.query(`DELETE FROM ${st.name}`);
    if (t.keyless.length) {
      const bad = t.keyless.find((r) => r.op === 'u' || r.op === 'd');
      if (bad) throw noKey(t.schema, bad);
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

  private async upsert(c: Connection, st: TableState, records: SinkRecord[], byKey: boolean): Promise<void> {
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

  private async delete(c: Connection, st: TableState, records: SinkRecord[]): Promise<void> {
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

  private async ensureTable(c: Connection, t: TableBatch): Promise<TableState> {
    const table = targetName(this.cfg.tableName, t.schema);
    const name = qi(table);
    let st = this.tables.get(name);
    if (!st) {
      const [rows] = await c.query(`SELECT COLUMN_NAME AS n, COLUMN_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, [table]);
      st = { name, columns: new Map((rows as { n: string; t: string }[]).map((x) => [x.n, x.t])) };
      if (st.columns.size === 0) {
        const cols = targetColumns(t.schema, this.cfg);
        const defs = cols.map((col) => `${qi(col.name)} ${mysqlType(col.kind, col.key)}${col.key ? ' NOT NULL' : ' NULL'}`);
        if (t.schema.keyColumns.length) defs.push(`PRIMARY KEY (${t.schema.keyColumns.map(qi).join(', ')})`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${name} (${defs.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
        this.logger.info('created target table', { sink: this.cfg.name, table, columns: cols.length });
        for (const col of cols) st.columns.set(col.name, mysqlType(col.kind, col.key));
      }
      this.tables.set(name, st);
    }
    for (const s of t.schemas) {
      for (const col of targetColumns(s, this.cfg)) {
        const have = st.columns.get(col.name);
        if (have === undefined) {
          if (this.cfg.schemaEvolution === 'none') {
            throw sinkError('SINK_SCHEMA_CHANGED', `sink ${this.cfg.name}: source table ${s.schema}.${s.table} has a new column ${col.name} (${kindName(col.kind)}) that ${name} lacks, and schemaEvolution is none. Add it (ALTER TABLE ${name} ADD COLUMN ${qi(col.name)} ${mysqlType(col.kind, false)}) or set schemaEvolution: add_columns, then restart`);
          }
          await c.query(`ALTER TABLE ${name} ADD COLUMN IF NOT EXISTS ${qi(col.name)} ${mysqlType(col.kind, false)} NULL`);
          this.logger.info('added target column', { sink: this.cfg.name, table, column: col.name });
          st.columns.set(col.name, mysqlType(col.kind, false));
        } else if (!col.meta && !compatible(col.kind, family(have)) && family(have).family !== 'other') {
          throw sinkError('SINK_SCHEMA_INCOMPATIBLE', `sink ${this.cfg.name}: column ${col.name} of ${s.schema}.${s.table} now holds ${kindName(col.kind)} values, which ${name}.${qi(col.name)} of type ${have} cannot take. Change the target column (ALTER TABLE ${name} MODIFY ${qi(col.name)} ${mysqlType(col.kind, col.key)}), then restart the pipeline`);
        }
      }
    }
    return st;
  }
}

function explain(e: unknown): unknown {
  if (e instanceof SluiceError) return e;
  const err = e as { code?: string; errno?: number; sqlMessage?: string; message?: string };
  // Data and definition errors (1xxx/3xxx/4xxx server errors other than locks and connection loss) are permanent.
  if (typeof err.errno === 'number' && err.errno >= 1000 && err.errno < 5000 && ![1205, 1213, 1040, 1053].includes(err.errno)) {
    return sinkError('SINK_REJECTED', `MySQL refused the batch: ${err.sqlMessage ?? err.message} (${err.code}); nothing of this batch was applied. Fix the target (or the source data) and restart`, { cause: e });
  }
  return e;
}
