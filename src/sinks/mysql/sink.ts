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
import { sinkError } from '../errors.ts';
import { clockText, dateParts, infinityOf, pgDateText, pgTimestampText, pgZonedText, Refused, splitMicros, unrepresentable } from '../sql/values.ts';
import { SqlSink } from '../sql/sink.ts';
import { inTable } from '../sql/driver-errors.ts';
import type { TargetTable } from '../sql/tables.ts';
import { bySchema, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { mysqlDialect as dialect } from './dialect.ts';
import { closeWithin, connectFailure, withStatementDeadline } from '../timeouts.ts';
import { timeoutsOf } from '../../config/fields.ts';

const { qi } = dialect;
/** Bytes of row JSON per INSERT statement (well under the default max_allowed_packet of 16 MiB). */
const STATEMENT_BYTES = 4 << 20;

const NO_INFINITY = 'MySQL has no infinity';

/** The characters mysql2 escapes with a backslash (each takes one more byte in a statement). */
// eslint-disable-next-line no-control-regex
const ESCAPED = /['\\\0\n\r\x1a"]/g;

/** `YYYY-MM-DD` of a day number, within MySQL's years 0000–9999. */
function mysqlDate(days: number): string {
  const { year, text } = dateParts(days);
  if (year < 0 || year > 9999) throw new Refused("MySQL's DATE and DATETIME hold the years 0000 to 9999");
  return text;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch, within MySQL's DATETIME range. */
function datetimeOfMicros(v: Value): string {
  if (infinityOf('timestamp', v)) throw new Refused(NO_INFINITY);
  const [days, us] = splitMicros(v);
  return `${mysqlDate(days)} ${clockText(us, 'always')}`;
}

/** DECIMAL(p,s) as mysqlType declares it for `kind`. */
function decimalBounds(kind: Extract<Kind, { k: 'decimal' }>): [number, number] {
  return kind.precision && kind.precision <= 65 && (kind.scale ?? 0) <= 30 ? [kind.precision, kind.scale ?? 0] : [65, 30];
}

/** Refuses decimal text that DECIMAL(p,s) would round (MySQL only notes that) or cannot hold. */
function checkDecimal(kind: Extract<Kind, { k: 'decimal' }>, v: string): string {
  const m = /^[-+]?(\d*)(?:\.(\d*))?$/.exec(v);
  if (!m) throw new Refused(`MySQL's DECIMAL has no ${v}`);
  const [p, s] = decimalBounds(kind);
  const int = m[1].replace(/^0+/, '');
  const frac = (m[2] ?? '').replace(/0+$/, '');
  if (int.length > p - s || frac.length > s) throw new Refused(`the target column is DECIMAL(${p},${s}), which keeps ${p - s} digits before the point and ${s} after`);
  return v;
}

/** A JSON value of `kind` as the value mysql2 should send; `Refused` when MySQL cannot hold it exactly. */
export function mysqlValue(kind: Kind, v: Value, key = false): unknown {
  if (v === null || v === undefined) return null;
  switch (kind.k) {
    case 'bool':
      return v ? 1 : 0;
    case 'int':
      return typeof v === 'bigint' ? v.toString() : v;
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Refused("MySQL's FLOAT and DOUBLE have no NaN or infinity");
      // A float32 as its exact value: its shortest decimal (3.40282347e38) may lie past FLT_MAX.
      return kind.bytes === 4 ? Math.fround(v) : v;
    case 'decimal':
      return checkDecimal(kind, String(v));
    case 'bytes': {
      const b = Buffer.from(String(v), 'base64');
      if (key && b.length > 255) throw new Refused('a key column of bytes is VARBINARY(255)');
      return b;
    }
    case 'string':
      if (key && !kind.length && typeof v === 'string' && v.length > 255 && [...v].length > 255) throw new Refused('a key column of text is VARCHAR(255)');
      return v;
    case 'date':
      if (infinityOf('date', v)) throw new Refused(NO_INFINITY);
      return mysqlDate(Number(v));
    case 'time_us':
      return clockText(Number(v), 'always');
    case 'interval_us': {
      if (!kind.clock) return typeof v === 'bigint' ? v.toString() : v;
      // A signed duration as MySQL TIME text: -838:59:59.000000 … 838:59:59.000000.
      const us = Number(v);
      return (us < 0 ? '-' : '') + clockText(Math.abs(us), 'always');
    }
    case 'timestamp_us':
      return datetimeOfMicros(v);
    case 'timestamp_ms':
      return datetimeOfMicros(BigInt(v as number | bigint) * 1000n);
    case 'timestamptz': {
      // ISO-8601 in UTC ("2024-02-29T07:44:15.123456Z") → "2024-02-29 07:44:15.123456"
      const t = String(v);
      if (t === 'infinity' || t === '-infinity') throw new Refused(NO_INFINITY);
      const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d)?$/.exec(t);
      if (!m) {
        if (/^[+-]\d/.test(t)) throw new Refused("MySQL's DATETIME holds the years 0000 to 9999");
        return t;
      }
      if (m[3] && m[3] !== 'Z') {
        const d = new Date(t);
        return datetimeOfMicros(BigInt(d.getTime()) * 1000n);
      }
      return `${m[1]} ${m[2]}`;
    }
    case 'array':
      return jsonText(kind.of, v);
    default:
      return typeof v === 'bigint' ? v.toString() : v;
  }
}

/**
 * An array as MySQL JSON, elements in their text form where JSON has no type for them (dates
 * `2024-02-29`, timestamps `2024-02-29 13:14:15.123456`, times, as PostgreSQL spells them; bytes
 * base64) and integers with every digit; any number of dimensions.
 */
function jsonText(element: Kind, v: Value): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return '[' + v.map((x) => jsonText(element, x)).join(',') + ']';
  switch (element.k) {
    case 'bool':
      return v ? 'true' : 'false';
    case 'int':
      return String(v);
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Refused('JSON has no NaN or infinity');
      return String(v);
    case 'date':
      return JSON.stringify(pgDateText(Number(v)));
    case 'time_us':
      return JSON.stringify(clockText(Number(v)));
    case 'timestamp_us':
      return JSON.stringify(pgTimestampText(v));
    case 'timestamp_ms':
      return JSON.stringify(pgTimestampText(BigInt(v as number | bigint) * 1000n));
    case 'timestamptz':
      return JSON.stringify(pgZonedText(String(v)));
    default:
      return typeof v === 'bigint' ? v.toString() : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  }
}

export class MysqlSink extends SqlSink<MysqlSinkConfig> {
  private conn: Connection | null = null;
  private packet: number | null = null;

  constructor(cfg: MysqlSinkConfig, logger: Logger, id: string) {
    super(dialect, cfg, logger, id, qi(cfg.offsetsTable));
  }

  async open(): Promise<Map<string, Map<number, number>>> {
    const mysql = await import('mysql2/promise');
    const c = this.cfg.connection;
    const { connectMs } = timeoutsOf(c);
    const connect = (o: Parameters<typeof mysql.createConnection>[0]) =>
      mysql.createConnection(o).catch((e) => {
        throw connectFailure(e, c, 'MySQL/MariaDB') ?? e;
      });
    const boot = withStatementDeadline(await connect({ host: c.host, port: c.port, user: c.user, password: c.password, connectTimeout: connectMs }), c, 'MySQL/MariaDB', () => boot.destroy());
    boot.on('error', () => {});
    try {
      await boot.query(`CREATE DATABASE IF NOT EXISTS ${qi(c.database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    } finally {
      await closeWithin(() => boot.end(), () => boot.destroy());
    }
    const conn = await connect({ host: c.host, port: c.port, user: c.user, password: c.password, database: c.database, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, charset: 'utf8mb4', connectTimeout: connectMs, enableKeepAlive: true });
    conn.on('error', () => {}); // surfaced by the next query
    withStatementDeadline(conn, c, 'MySQL/MariaDB', () => conn.destroy());
    this.conn = conn;
    this.session = {
      run: async (sql, params) => void (await conn.query(sql, params)),
      rows: async (sql, params) => (await conn.query({ sql, values: params, rowsAsArray: true }))[0] as unknown[][],
    };
    await conn.query(`SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'`);
    return this.offsets.open(this.session);
  }

  async close(): Promise<void> {
    const conn = this.conn;
    if (conn) await closeWithin(() => conn.end(), () => conn.destroy());
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
        states.set(t, await this.tables.ensure(this.session!, { sql: qi(table), table }, t).catch((e) => Promise.reject(inTable(e, t))));
      }
    };
    const data = async () => {
      for (const t of batch.tables) await this.applyTable(c, t, states.get(t)!).catch((e) => Promise.reject(inTable(e, t)));
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
      const v = img[col.name] ?? null;
      try {
        return mysqlValue(col.kind, v, col.key);
      } catch (e) {
        if (e instanceof Refused) throw unrepresentable(this.cfg.name, 'MySQL', s, col.name, v, e.why);
        throw e;
      }
    });
  }

  /** The server's max_allowed_packet (read once): no statement, so no row, may be larger. */
  private async maxPacket(c: Connection): Promise<number> {
    if (this.packet === null) {
      const [rows] = await c.query({ sql: 'SELECT @@max_allowed_packet', rowsAsArray: true });
      this.packet = Number((rows as unknown[][])[0][0]);
    }
    return this.packet;
  }

  /** Refuses a row whose INSERT would exceed max_allowed_packet (the server would drop the connection, and a retry would too). */
  private checkPacket(s: SchemaRecord, cols: TargetColumn[], values: unknown[], limit: number): void {
    let size = 0;
    let biggest = 0;
    let most = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      // mysql2 writes bytes as X'…' (two characters a byte) and escapes text.
      const n = Buffer.isBuffer(v) ? 2 * v.length + 3 : typeof v === 'string' ? Buffer.byteLength(v) + 2 + (v.match(ESCAPED)?.length ?? 0) : 24;
      size += n;
      if (n > most) [most, biggest] = [n, i];
    }
    if (size + 4096 > limit) {
      throw sinkError(
        'SINK_VALUE_UNREPRESENTABLE',
        `sink ${this.cfg.name}: a row of table ${s.schema}.${s.table} takes ${(size / 1048576).toFixed(1)} MiB as a MySQL statement (column ${cols[biggest].name} most of it), more than the server's max_allowed_packet of ${(limit / 1048576).toFixed(1)} MiB allows. Nothing of this batch was applied. Raise it on the target (SET GLOBAL max_allowed_packet = ${Math.min(1 << 30, 2 ** Math.ceil(Math.log2(size + 65536)))}; and in the server's config), then restart`,
      );
    }
  }

  private async upsert(c: Connection, st: TargetTable, records: SinkRecord[], byKey: boolean): Promise<void> {
    for (const [s, recs] of bySchema(records)) {
      const cols = targetColumns(s, this.cfg);
      const updates = cols.filter((col) => !s.keyColumns.includes(col.name)).map((col) => `${qi(col.name)} = VALUES(${qi(col.name)})`);
      let sql = `INSERT INTO ${st.name} (${cols.map((x) => qi(x.name)).join(', ')}) VALUES ?`;
      if (byKey && s.keyColumns.length) sql += updates.length ? ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}` : ` ON DUPLICATE KEY UPDATE ${qi(s.keyColumns[0])} = ${qi(s.keyColumns[0])}`;
      const limit = await this.maxPacket(c);
      let rows: unknown[][] = [];
      let bytes = 0;
      for (const r of recs) {
        const values = this.rowValues(cols, s, r, afterRow(r.value) ?? {}, r.op, sourceTs(r.value));
        // Hex of bytes is 1.5 × their base64 in the event: only a row near the limit is measured.
        if (r.value.length * 1.5 + 65536 > limit) this.checkPacket(s, cols, values, limit);
        // A big row goes in a statement of its own rather than on top of a full one.
        if (rows.length && bytes + r.value.length >= STATEMENT_BYTES) {
          await c.query(sql, [rows]);
          rows = [];
          bytes = 0;
        }
        rows.push(values);
        bytes += r.value.length;
      }
      if (rows.length) await c.query(sql, [rows]);
    }
  }

  private async delete(c: Connection, st: TargetTable, records: SinkRecord[]): Promise<void> {
    const s = records[records.length - 1].schema;
    const keyCols = targetColumns(s, this.cfg).filter((x) => s.keyColumns.includes(x.name));
    const keys = records.map((r) => {
      const k = parseJson(r.key!) as Row;
      return keyCols.map((col) => {
        try {
          return mysqlValue(col.kind, k[col.name] ?? null, true);
        } catch (e) {
          if (e instanceof Refused) throw unrepresentable(this.cfg.name, 'MySQL', s, col.name, k[col.name], e.why);
          throw e;
        }
      });
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
