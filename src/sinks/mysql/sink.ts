/**
 * MySQL/MariaDB sink (mysql2). DDL auto-commits in MySQL, so new tables and columns are created
 * first (idempotent: IF NOT EXISTS), with the session's staging tables (see `bulk.ts`), then one
 * transaction applies the batch — truncate as `DELETE FROM` (TRUNCATE would commit), deletes,
 * upserts — and stores the consumed offsets in `sluice_offsets`.
 *
 * Upserts of a table and schema version, 128 rows or more, are loaded with `LOAD DATA LOCAL
 * INFILE` into a staging table and moved with one `INSERT … SELECT … ON DUPLICATE KEY UPDATE`.
 * The load's text is made from the envelopes' bytes (`after.ts`), for a batch read ahead while
 * the batch before applies (`prepare`), else in chunks while the server works on the chunk
 * before. Fewer rows, a server that does not allow LOAD DATA LOCAL (`local_infile` off: logged
 * once), a value the load's text would not carry exactly, or a load the server stored with
 * warnings take multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements, whose values, refusals
 * and messages are the reference the load is held to. Tables are created utf8mb4 with binary
 * collation (see `dialect.ts`).
 */
import { Readable } from 'node:stream';
import type { Connection, ResultSetHeader } from 'mysql2/promise';
import type { MysqlSinkConfig } from './spec.ts';
import type { Logger } from '../../core/logger.ts';
import type { Row, Value } from '../../core/event.ts';
import { parseJson } from '../../core/serde/parse.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { targetColumns, targetName, type Kind, type TargetColumn } from '../sql/columns.ts';
import { afterRow, checkKeyless, sourceTs } from '../sql/records.ts';
import { afterSpan, AfterSpans, isUtf8, plainDecimal, Span, zonedClockEnd } from './after.ts';
import { sinkError } from '../errors.ts';
import { clockText, dateParts, infinityOf, pgDateText, pgTimestampText, pgZonedText, Refused, splitMicros, unrepresentable } from '../sql/values.ts';
import { SqlSink } from '../sql/sink.ts';
import { SluiceError } from '../../core/errors.ts';
import { field, fieldText, LOAD_FORMAT, LoadWriter, LOCAL_INFILE_OFF, NotBulk, type Stage, type StagingColumn, StagingTables, stagingColumns } from './bulk.ts';
import { inTable } from '../sql/driver-errors.ts';
import type { TargetTable } from '../sql/tables.ts';
import { bySchema, type SinkBatch, type SinkRecord, type TableBatch } from '../types.ts';
import { mysqlDialect as dialect } from './dialect.ts';
import { closeWithin, connectFailure, withStatementDeadline } from '../timeouts.ts';
import { timeoutsOf } from '../../config/fields.ts';

const { qi } = dialect;
/** Bytes of row JSON per INSERT statement (well under the default max_allowed_packet of 16 MiB). */
const STATEMENT_BYTES = 4 << 20;
/** Bytes of load text per piece handed to the driver (each a protocol packet, under max_allowed_packet). */
const PIECE = 256 << 10;
/**
 * A group loads in chunks of at least CHUNK_ROWS rows, at most CHUNKS of them, each into a staging
 * table of its own: the sink makes the text of a chunk while the server loads and moves the one
 * before.
 */
const CHUNK_ROWS = 1000;
const CHUNKS = 4;
/** A staging table loaded with at most this many rows is emptied with DELETE at once, not with TRUNCATE after the commit. */
const EMPTY_NOW = 1000;
/**
 * Groups of fewer rows take the INSERT path: a load costs more statements (a savepoint, the load
 * and its data, the move), which only pay for themselves with rows enough.
 */
const LOAD_MIN_ROWS = 128;

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

/** A group of upserts of one table written with one schema version: one load, one INSERT … SELECT. */
interface Group {
  s: SchemaRecord;
  recs: SinkRecord[];
  cols: TargetColumn[];
  /** Its staging tables, one per chunk, or null: the group takes the INSERT path. */
  stages: Stage[] | null;
  /** Its load's bytes, made by `prepare` while the batch before applied (then one chunk), or null. */
  text: Buffer[] | null;
}

/** A group's load made ahead of its batch, for the staging columns `key` names. */
interface Prepared {
  key: string;
  text: Buffer[];
}

/** The staging columns as a key: a prepared load fits a group whose staging columns are the same. */
const stagingKey = (cols: StagingColumn[]) => cols.map((c) => `${c.name} ${c.type} ${c.carry}`).join('\u0000');

/** A schema version's target columns, and how they load into a table with the columns `of` (`size` of them then). */
interface Layout {
  cols: TargetColumn[];
  staged: StagingColumn[] | null;
  key: string;
  of: ReadonlyMap<string, string>;
  size: number;
}

/** A table's upserts (keyless inserts, or upserts by key) in groups. */
interface Planned {
  keyless: Group[];
  upserts: Group[];
}

export class MysqlSink extends SqlSink<MysqlSinkConfig> {
  private conn: Connection | null = null;
  private packet: number | null = null;
  /** The session's staging tables; null while the bulk path is off (see `bulkOff`). */
  private staging: StagingTables | null = null;
  /** The columns of each target table as the last batch left them (SQL name → name → type), for `prepare`. */
  private readonly columns = new Map<string, ReadonlyMap<string, string>>();
  /** Target tables whose load had warnings (logged once). */
  private readonly warned = new Set<string>();
  /** Loads made by `prepare`, per table of a batch read ahead and schema version. */
  private prepared = new WeakMap<TableBatch, Map<SchemaRecord, Prepared>>();
  /** Per schema version: its target columns and staging columns, for the target columns they were made for. */
  private readonly layouts = new WeakMap<SchemaRecord, Layout>();

  constructor(
    cfg: MysqlSinkConfig,
    private readonly logger: Logger,
    id: string,
  ) {
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
    const [[local, packet, aria]] = await this.session.rows(`SELECT @@local_infile, @@max_allowed_packet, (SELECT COUNT(*) FROM information_schema.ENGINES WHERE ENGINE = 'Aria' AND SUPPORT IN ('YES', 'DEFAULT'))`);
    this.packet = Number(packet);
    this.staging = null;
    if (Number(local) !== 1) {
      this.bulkOff('the server does not allow LOAD DATA LOCAL INFILE (local_infile is OFF)');
    } else {
      // Aria (MariaDB) loads and scans a staging table faster than InnoDB, and keeps no undo for it.
      this.staging = new StagingTables(`${Number(aria) ? ' ENGINE=Aria' : ''} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`, qi);
    }
    return this.offsets.open(this.session);
  }

  /** Turns the bulk path off for this connection, saying why, what it costs and how to have it. */
  private bulkOff(why: string, remedy = "allow it with SET GLOBAL local_infile = 1 (and local_infile = 1 in the server's config)"): void {
    this.staging = null;
    this.logger.warn(`${why}: the sink applies upserts with INSERT statements, several times slower than loading them; ${remedy}`, { sink: this.cfg.name });
  }

  async close(): Promise<void> {
    const conn = this.conn;
    if (conn) await closeWithin(() => conn.end(), () => conn.destroy());
    this.conn = null;
    this.session = null;
    this.staging?.clear();
  }

  async apply(batch: SinkBatch): Promise<void> {
    const c = this.conn!;
    const states = new Map<TableBatch, TargetTable>();
    const plans = new Map<TableBatch, Planned>();
    // DDL first: in MySQL it commits implicitly, so it cannot share the data's transaction.
    const ddl = async () => {
      this.staging?.startBatch();
      for (const t of batch.tables) {
        const table = targetName(this.cfg.tableName, t.schema);
        const st = await this.tables.ensure(this.session!, { sql: qi(table), table }, t).catch((e) => Promise.reject(inTable(e, t)));
        states.set(t, st);
        this.columns.set(st.name, st.columns);
        plans.set(t, await this.plan(st, t).catch((e) => Promise.reject(inTable(e, t))));
      }
    };
    const data = async () => {
      for (const t of batch.tables) await this.applyTable(c, t, states.get(t)!, plans.get(t)!).catch((e) => Promise.reject(inTable(e, t)));
    };
    await this.transact(batch, data, ddl);
    this.staging?.emptyLoaded((sql) => this.session!.run(sql));
  }

  /** The layout of schema version `s` in a target table with `columns` (kept while those stay as they are: columns are only added). */
  private layout(s: SchemaRecord, columns: ReadonlyMap<string, string>): Layout {
    let l = this.layouts.get(s);
    if (!l || l.of !== columns || l.size !== columns.size) {
      const cols = targetColumns(s, this.cfg);
      const staged = stagingColumns(cols, columns, dialect.family);
      l = { cols, staged, key: staged ? stagingKey(staged) : '', of: columns, size: columns.size };
      this.layouts.set(s, l);
    }
    return l;
  }

  /**
   * The upserts of `t` in groups, each with its staging tables readied (outside the transaction:
   * TRUNCATE commits) and its load taken from `prepare` where it made one that fits.
   */
  private async plan(st: TargetTable, t: TableBatch): Promise<Planned> {
    const ready = this.prepared.get(t);
    this.prepared.delete(t);
    const groups = async (records: SinkRecord[]): Promise<Group[]> => {
      const out: Group[] = [];
      for (const [s, recs] of bySchema(records)) {
        const { cols, staged, key } = this.layout(s, st.columns);
        if (!staged || !this.staging || recs.length < LOAD_MIN_ROWS) {
          out.push({ s, recs, cols, stages: null, text: null });
          continue;
        }
        const made = ready?.get(s);
        const text = made && made.key === key ? made.text : null;
        const chunks = text ? 1 : Math.min(CHUNKS, Math.ceil(recs.length / CHUNK_ROWS));
        let stages: Stage[] | null = null;
        try {
          stages = await this.staging!.ready((sql) => this.session!.run(sql), st.name, staged, chunks);
        } catch (e) {
          // No right to create temporary tables, or one the server will not make: the INSERT path.
          if (!dialect.refusal(e)) throw e;
          this.bulkOff(`the server refused a staging table for loading rows (${(e as Error).message})`, 'grant the sink\'s user CREATE TEMPORARY TABLES on its database');
        }
        out.push({ s, recs, cols, stages, text });
      }
      return out;
    };
    return { keyless: await groups(t.keyless), upserts: await groups(t.upserts) };
  }

  /**
   * Makes the loads of a batch read ahead while the batch before applies, for the tables whose
   * columns are known (the target is not touched). Whatever fails here is left to `apply`, which
   * makes the load again and fails in its place.
   */
  async prepare(batch: SinkBatch): Promise<void> {
    const limit = this.packet;
    if (!this.staging || limit === null) return;
    for (const t of batch.tables) {
      const columns = this.columns.get(qi(targetName(this.cfg.tableName, t.schema)));
      if (!columns) continue;
      const made = new Map<SchemaRecord, Prepared>();
      for (const records of [t.keyless, t.upserts]) {
        for (const [s, recs] of bySchema(records)) {
          const { cols, staged, key } = this.layout(s, columns);
          if (!staged || recs.length < LOAD_MIN_ROWS) continue;
          try {
            made.set(s, { key, text: await this.loadText({ s, recs, cols }, staged, 0, recs.length, limit, { now: false }) });
          } catch {
            // apply makes it again, and fails in its place
          }
        }
      }
      if (made.size) this.prepared.set(t, made);
    }
  }

  private async applyTable(c: Connection, t: TableBatch, st: TargetTable, plan: Planned): Promise<void> {
    if (t.truncate) await c.query(`DELETE FROM ${st.name}`);
    if (t.keyless.length) {
      checkKeyless(t);
      for (const g of plan.keyless) await this.upsert(c, st, g, false);
    }
    if (t.deletes.length) await this.delete(c, st, t.deletes);
    for (const g of plan.upserts) await this.upsert(c, st, g, true);
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

  /** The server's max_allowed_packet (read when the sink opens): no statement, so no row, may be larger. */
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

  /**
   * `ON DUPLICATE KEY UPDATE …` of an upsert by key (every column but the key takes the new
   * value), or ''. `table`: the target, to name its columns by when the rows come from a SELECT
   * (the staging table has the same names).
   */
  private onDuplicate(s: SchemaRecord, cols: TargetColumn[], byKey: boolean, table?: string): string {
    if (!byKey || !s.keyColumns.length) return '';
    const t = table ? `${table}.` : '';
    const updates = cols.filter((col) => !s.keyColumns.includes(col.name)).map((col) => `${t}${qi(col.name)} = VALUES(${qi(col.name)})`);
    return updates.length ? ` ON DUPLICATE KEY UPDATE ${updates.join(', ')}` : ` ON DUPLICATE KEY UPDATE ${t}${qi(s.keyColumns[0])} = ${t}${qi(s.keyColumns[0])}`;
  }

  private async upsert(c: Connection, st: TargetTable, g: Group, byKey: boolean): Promise<void> {
    if (g.stages && this.staging && (await this.load(c, st, g, g.stages, byKey))) return;
    await this.insert(c, st, g, byKey);
  }

  /**
   * Applies a group through its staging tables. False when the group must take the INSERT path
   * instead (nothing of it applied then): a value the load's text would not carry exactly, a load
   * the server stored with warnings, a refusal (the INSERT path refuses with the server's own
   * words for its statements), or LOAD DATA LOCAL switched off.
   */
  private async load(c: Connection, st: TargetTable, g: Group, stages: Stage[], byKey: boolean): Promise<boolean> {
    // Sent without waiting: the driver sends the statements in turn, the answers are awaited below.
    let ahead: Promise<unknown> = c.query('SAVEPOINT sluice_load');
    ahead.catch(() => {});
    const names = stages[0].cols.map((x) => qi(x.name));
    const select = stages[0].cols.map((x, i) => (x.carry === 'hex' ? `UNHEX(${names[i]})` : names[i])).join(', ');
    const onDuplicate = this.onDuplicate(g.s, g.cols, byKey, st.name);
    const limit = await this.maxPacket(c);
    const n = g.recs.length;
    const size = Math.ceil(n / stages.length);
    const stop = { now: false };
    const chunk = (k: number) => {
      const p = g.text ? Promise.resolve(g.text) : this.loadText(g, stages[0].cols, k * size, Math.min(n, (k + 1) * size), limit, stop);
      p.catch(() => {}); // awaited in its turn
      return p;
    };
    const back = async (e: unknown): Promise<false> => {
      // The savepoint is gone when the server rolled the whole transaction back (a deadlock): the error stands.
      await c.query('ROLLBACK TO SAVEPOINT sluice_load').catch((se) => Promise.reject(e ?? se));
      return false;
    };
    let next = chunk(0);
    try {
      for (let k = 0; k < stages.length; k++) {
        const text = await next;
        if (k + 1 < stages.length) next = chunk(k + 1);
        const stage = stages[k];
        if (stage.dirty) {
          ahead = Promise.all([ahead, c.query(`DELETE FROM ${stage.name}`)]);
          ahead.catch(() => {});
        }
        stage.dirty = true;
        const loading = c.query<ResultSetHeader>({
          sql: `LOAD DATA LOCAL INFILE 'sluice' INTO TABLE ${stage.name} ${LOAD_FORMAT} (${names.join(', ')})`,
          infileStreamFactory: () => Readable.from(text),
        } as Parameters<Connection['query']>[0]);
        loading.catch(() => {});
        await ahead;
        ahead = Promise.resolve();
        const [res] = await loading;
        if (res.warningStatus) {
          // A LOCAL load stores what it cannot store exactly anyway and says so: the INSERT path refuses it.
          if (!this.warned.has(st.name)) {
            this.warned.add(st.name);
            const [w] = await c.query({ sql: 'SHOW WARNINGS LIMIT 1', rowsAsArray: true });
            this.logger.warn('the server loaded rows of a table with warnings: they are applied with INSERT statements instead, which refuse what the target cannot hold exactly (logged once per table)', { sink: this.cfg.name, table: st.name, warning: String((w as unknown[][])[0]?.[2] ?? '') });
          }
          return await back(null);
        }
        const moved = c.query(`INSERT INTO ${st.name} (${names.join(', ')}) SELECT ${select} FROM ${stage.name}${onDuplicate}`);
        // A few rows are deleted right away, in the transaction (cheaper than a TRUNCATE after it).
        const emptied = size <= EMPTY_NOW ? c.query(`DELETE FROM ${stage.name}`) : null;
        emptied?.catch(() => {});
        await moved;
        if (emptied) {
          await emptied;
          stage.dirty = false;
        }
      }
      return true;
    } catch (e) {
      if (e instanceof NotBulk) return await back(e);
      if (e instanceof SluiceError) throw e;
      if (LOCAL_INFILE_OFF.includes((e as { errno?: number }).errno ?? 0)) {
        this.bulkOff(`the server refused LOAD DATA LOCAL INFILE (${(e as Error).message})`);
        return await back(e);
      }
      if (dialect.refusal(e)) return await back(e);
      throw e;
    } finally {
      stop.now = true;
    }
  }

  /**
   * The load's bytes of rows `from` to `to` of a group, in pieces of at most PIECE bytes (a packet
   * each); made a piece at a time, letting the driver's and the log reader's work in between.
   */
  private async loadText(g: Pick<Group, 's' | 'recs' | 'cols'>, staged: StagingColumn[], from: number, to: number, limit: number, stop: { now: boolean }): Promise<Buffer[]> {
    const { s, cols } = g;
    const carry = staged.map((x) => x.carry);
    const fast = cols.map((col, i) => fastWay(col, carry[i]));
    const bounds = cols.map((col) => (col.kind.k === 'decimal' ? decimalBounds(col.kind) : [0, 0]));
    let clock: number;
    const spans = new AfterSpans(cols.map((x) => x.name));
    const table = fieldText(`${s.schema}.${s.table}`);
    const piece = Math.max(1024, Math.min(PIECE, limit >> 1));
    const value = (col: TargetColumn, v: Value): unknown => {
      try {
        return mysqlValue(col.kind, v, col.key);
      } catch (e) {
        if (e instanceof Refused) throw unrepresentable(this.cfg.name, 'MySQL', s, col.name, v, e.why);
        throw e;
      }
    };
    let guess = 0;
    for (let j = from; j < to; j++) guess += g.recs[j].bytes?.length ?? g.recs[j].value.length;
    const w = new LoadWriter(piece, Math.min(piece, guess + 1024));
    let pause = piece;
    for (let j = from; j < to; j++) {
      const r = g.recs[j];
      // The envelope's bytes where the log reader has them (not decoded then), else its text's.
      const b = r.bytes ?? Buffer.from(r.value);
      const span = afterSpan(b);
      // The row parsed, where its text is not as Sluice writes it (or is not JSON: this throws then).
      let img: Row | null = span && spans.scan(b, span[0], span[1]) ? null : (afterRow(r.value) ?? {});
      // A row near max_allowed_packet is refused as on the INSERT path, with the same words.
      if (b.length * 1.5 + 65536 > limit) {
        img ??= afterRow(r.value) ?? {};
        this.checkPacket(s, cols, this.rowValues(cols, s, r, img, r.op, sourceTs(r.value)), limit);
      }
      for (let i = 0; i < cols.length; i++) {
        if (i) w.byte(TAB);
        const col = cols[i];
        if (col.meta) {
          w.text(col.meta === 'op' ? fieldText(r.op) : col.meta === 'table' ? table : col.meta === 'deleted' ? '0' : field(carry[i], sourceTs(r.value)));
          continue;
        }
        if (img) {
          w.text(field(carry[i], value(col, img[col.name] ?? null)));
          continue;
        }
        const k = spans.kind[i];
        const way = fast[i];
        const at = spans.start[i];
        const end = spans.end[i];
        if (k === Span.Absent || k === Span.Null) {
          w.byte(BACKSLASH);
          w.byte(N);
        } else if ((k === Span.Plain || (k === Span.Wide && isUtf8(b, at + 1, end - 1))) && (way === TEXT || (way === KEY_TEXT && end - at <= 257))) {
          // No escapes, so no backslash, tab, newline or NUL: the field is the string's UTF-8 as it is.
          w.copy(b, at + 1, end - 1);
        } else if (k === Span.Integer && way === INT) {
          w.copy(b, at, end);
        } else if ((k === Span.True || k === Span.False) && way === BOOL) {
          w.byte(k === Span.True ? ONE : ZERO);
        } else if (k === Span.Plain && way === DECIMAL && plainDecimal(b, at + 1, end - 1, bounds[i][0], bounds[i][1])) {
          w.copy(b, at + 1, end - 1);
        } else if (k === Span.Plain && way === ZONED && (clock = zonedClockEnd(b, at + 1, end - 1)) > 0) {
          w.copy(b, at + 1, at + 11);
          w.byte(SPACE);
          w.copy(b, at + 12, clock);
        } else {
          let v: Value;
          try {
            v = spans.value(b, i);
          } catch (e) {
            afterRow(r.value); // throws what the INSERT path would (the text is not JSON)
            throw e;
          }
          w.text(field(carry[i], value(col, v)));
        }
      }
      w.byte(NEWLINE);
      if (w.size >= pause) {
        pause = w.size + piece;
        // Let the driver send and receive, and the log reader read ahead, while this waits.
        await new Promise((r) => setImmediate(r));
        if (stop.now) break;
      }
    }
    w.flush();
    return w.pieces;
  }

  /** Applies a group with multi-row `INSERT … ON DUPLICATE KEY UPDATE` statements. */
  private async insert(c: Connection, st: TargetTable, g: Group, byKey: boolean): Promise<void> {
    const { s, recs, cols } = g;
    const sql = `INSERT INTO ${st.name} (${cols.map((x) => qi(x.name)).join(', ')}) VALUES ?${this.onDuplicate(s, cols, byKey)}`;
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

/**
 * How a column's plain value goes into the load as spelled in the event: none, text, a key's text
 * (at most 255 characters), an integer, a boolean, a decimal (within its DECIMAL(p,s)), a UTC
 * timestamp (as DATETIME text).
 */
const [NONE, TEXT, KEY_TEXT, INT, BOOL, DECIMAL, ZONED] = [0, 1, 2, 3, 4, 5, 6];
const [TAB, NEWLINE, BACKSLASH, N, ZERO, ONE, SPACE] = [0x09, 0x0a, 0x5c, 0x4e, 0x30, 0x31, 0x20];

/**
 * Which spellings of a column's value the load takes as they are: those `mysqlValue` returns
 * unchanged (text of the string kinds; a key without a declared length is checked for its 255
 * characters), an integer literal (mysql2 writes the same digits), true/false as 1/0, a decimal
 * `checkDecimal` returns as it is, a UTC timestamp in the one spelling whose DATETIME text
 * `mysqlValue` makes by taking out the `T` and `Z`.
 */
function fastWay(col: TargetColumn, carry: string): number {
  switch (col.kind.k) {
    case 'string':
      if (carry !== 'text') return NONE;
      return col.key && !col.kind.length ? KEY_TEXT : TEXT;
    case 'uuid':
    case 'timetz':
    case 'interval':
    case 'json':
      return carry === 'text' ? TEXT : NONE;
    case 'int':
      return carry === 'num' ? INT : NONE;
    case 'bool':
      return carry === 'num' ? BOOL : NONE;
    case 'decimal':
      return carry === 'num' ? DECIMAL : NONE;
    case 'timestamptz':
      return carry === 'text' ? ZONED : NONE;
    default:
      return NONE;
  }
}
