/**
 * Binlog events → change events. Tracks transactions (GTID / BEGIN … XID or COMMIT), the GTID set
 * executed so far and the file position, so that `fillCheckpoint` can describe exactly what is in
 * the log at any moment, including in the middle of a large transaction. Rows of tables that are
 * not captured are ignored; rows of a table re-read by a later snapshot are skipped up to that
 * snapshot's position.
 */
import type { MysqlSourceConfig } from './spec.ts';
import type { ChangeEvent, Row, SourceInfo, TableSchema, TransactionInfo, Value } from '../../core/event.ts';
import type { Logger } from '../../core/logger.ts';
import type { EventSink } from '../../core/source.ts';
import { SLUICE_VERSION } from '../../core/version.ts';
import type { ComponentMetrics } from '../../core/metrics.ts';
import { xaKey } from './binlog/decoder.ts';
import type { BinlogColumn } from './binlog/types.ts';
import { changeParts, TransactionMeta } from '../common/events.ts';
import { keyComparator } from '../common/keys.ts';
import { tableKey, tableTopic } from '../common/names.ts';
import { SnapshotFilter } from '../common/ranges.ts';
import { mysqlDebezium } from './debezium.ts';
import { mysqlKeyColumns } from './keys.ts';
import type { BinlogEvent, EventHeader } from './binlog/types.ts';
import { comparePos, formatPos, GtidSet, type BinlogPos, type MysqlCheckpoint } from './position.ts';
import type { TableSchemas } from './tables.ts';
import { mysqlError } from './errors.ts';
import { parseSignal, type IncrementalSnapshots } from '../common/incremental.ts';

interface Target {
  db: string;
  table: string;
  /** `db.table` */
  name: string;
  topic: string;
}

interface OpenTx {
  start: BinlogPos;
  gtid: string | null;
  /** A MariaDB DDL group: ends after its one statement. */
  standalone: boolean;
  thread: number | null;
  /** Row changes seen in this transaction (written or skipped as already durable). */
  events: number;
  /** Changes of this transaction already in the log before this run (from the checkpoint). */
  skip: number;
  began: boolean;
  meta: TransactionMeta | null;
}

export interface StreamOptions {
  cfg: MysqlSourceConfig;
  sink: EventSink;
  schemas: TableSchemas;
  log: Logger;
  metrics: ComponentMetrics;
  /** Whether rows of `database.table` are captured. */
  captured(database: string, table: string): boolean;
  checkpoint: MysqlCheckpoint;
  /** How to start over (for messages). */
  resetHint: string;
  /** `source.connector` of the events (`mysql`, or `mariadb` for a MariaDB server: mysql/debezium.ts). */
  connector?: string;
  /** Incremental snapshots (sources/common/incremental.ts): told of every change, truncate and schema change. */
  incremental?: IncrementalSnapshots;
  /** Whether `database.table` is source.signalTable: its inserts are requests, not events. */
  isSignal?(database: string, table: string): boolean;
}

export class BinlogStreamer {
  private file: string;
  private pos: number;
  private readonly executed: GtidSet;
  private tx: OpenTx | null = null;
  /** Changes of the first transaction already durable (from the checkpoint): applies once. */
  private pendingSkip: number;
  /** Tables whose snapshot holds some of the changes still to come (sources/common/ranges.ts). */
  private readonly snapshotFilters = new Map<string, SnapshotFilter<BinlogPos>>();
  /** Key order of a table map's columns, for filters of tables read in several ranges. */
  private readonly keyOrders = new WeakMap<BinlogColumn[], ((a: Row, b: Row) => number) | null>();
  private readonly declared = new Set<string>();
  private readonly targets = new Map<string, Target>();
  /** XA transactions whose prepared changes are in the log, awaiting XA COMMIT or ROLLBACK. */
  private readonly preparedXa: Set<string>;
  private readonly prefix: string;
  lastEventTs = 0;

  private readonly skipped: Set<ChangeEvent['op']>;
  private readonly connector: string;

  constructor(private readonly o: StreamOptions) {
    this.skipped = new Set(o.cfg.skippedOperations);
    this.connector = o.connector ?? mysqlDebezium.connector;
    const c = o.checkpoint;
    this.file = c.file;
    this.pos = c.pos;
    this.executed = new GtidSet(c.gtid);
    this.pendingSkip = c.skip;
    this.preparedXa = new Set(c.xa ?? []);
    this.prefix = o.cfg.topicPrefix;
    for (const [name, t] of Object.entries(c.tables)) {
      if (!t.ranges.length) continue;
      // The key order comes from the rows' own table map (a snapshot split in ranges has a key).
      const f = new SnapshotFilter(t.ranges, comparePos, (a, b) => this.currentKeyOrder?.(a, b) ?? 0);
      if (comparePos(f.until, { file: c.file, pos: c.pos }) > 0) this.snapshotFilters.set(name, f);
    }
  }

  get position(): BinlogPos {
    return this.tx ? this.tx.start : { file: this.file, pos: this.pos };
  }

  get inTransaction(): boolean {
    return this.tx !== null;
  }

  get gtid(): string {
    return this.executed.toString();
  }

  /** Writes the current resume point into `c` (what is in the log once the pending batch commits). */
  fillCheckpoint(c: MysqlCheckpoint): void {
    c.phase = 'stream';
    if (this.tx) {
      c.file = this.tx.start.file;
      c.pos = this.tx.start.pos;
      c.skip = this.tx.events;
    } else {
      c.file = this.file;
      c.pos = this.pos;
      c.skip = 0;
    }
    c.gtid = this.executed.toString();
    c.xa = this.preparedXa.size ? [...this.preparedXa] : undefined;
    // Snapshot filters the stream has passed stop being checked (the checkpoint keeps the
    // tables' snapshot entries; their positions are behind it, so they filter nothing on resume).
    for (const [name, f] of this.snapshotFilters) {
      if (comparePos(f.until, { file: c.file, pos: c.pos }) <= 0) this.snapshotFilters.delete(name);
    }
  }

  /** Topics must exist before their first event; the caller awaits this for rows events. */
  needsTopic(ev: BinlogEvent): string | null {
    if (ev.type !== 'rows') return null;
    if (!this.o.captured(ev.map.database, ev.map.table)) return null;
    const topic = this.target(ev.map.database, ev.map.table).topic;
    return this.declared.has(topic) ? null : topic;
  }

  topicDeclared(topic: string): void {
    this.declared.add(topic);
  }

  handle(ev: BinlogEvent): void {
    switch (ev.type) {
      case 'rotate':
        // The server starts every dump with an artificial rotate (timestamp 0, flag 0x20) naming
        // the file; its position is not where the stream resumes, so it only moves us when the
        // file changes. A real rotate ends a file: the next event is at `pos` of the new one.
        if (ev.header.timestamp === 0 || (ev.header.flags & 0x20) !== 0) {
          if (ev.file === this.file) return;
        }
        this.file = ev.file;
        if (!this.tx) this.pos = ev.pos;
        return;
      case 'gtid':
        this.beginTx(ev.header, ev.gtid, ev.standalone);
        return;
      case 'query': {
        const q = ev.query.trim();
        if (/^BEGIN$/i.test(q)) {
          if (!this.tx) this.beginTx(ev.header, null, false);
          this.tx!.thread = ev.threadId;
          return;
        }
        if (/^COMMIT$/i.test(q)) {
          this.endTx(ev.header);
          return;
        }
        this.statement(ev.header, ev.database, q);
        // A DDL group, or the group of an XA COMMIT/ROLLBACK, ends with its one statement.
        // (XA END is inside the prepared group, which its XA_PREPARE event ends.)
        if (!this.tx || this.tx.standalone || /^\s*XA\s+(COMMIT|ROLLBACK)\b/i.test(q)) this.endTx(ev.header);
        return;
      }
      case 'xid':
        this.endTx(ev.header);
        return;
      case 'xa_prepare':
        // The prepared half of an XA transaction: its changes go to the log now (XA COMMIT is the
        // usual outcome); a later XA ROLLBACK of it is caught in statement().
        if (!ev.onePhase && this.tx && this.tx.events > 0) this.preparedXa.add(ev.xid);
        this.endTx(ev.header);
        return;
      case 'rows':
        this.rows(ev);
        return;
      default:
        if (!this.tx && ev.header.nextPos > 0 && ev.type !== 'format' && ev.type !== 'heartbeat') this.pos = ev.header.nextPos;
    }
  }

  private beginTx(h: EventHeader, gtid: string | null, standalone: boolean): void {
    // A transaction left open (its end was never seen) cannot be resumed inside: close it first.
    if (this.tx) this.endTx(h, false);
    const start = h.nextPos > 0 ? h.nextPos - h.eventSize : this.pos;
    const skip = this.pendingSkip;
    this.pendingSkip = 0;
    this.tx = { start: { file: this.file, pos: start }, gtid, standalone, thread: null, events: 0, skip, began: skip > 0, meta: null };
    if (this.o.cfg.transactionMetadata) this.tx.meta = new TransactionMeta(this.txId(this.tx));
  }

  private endTx(h: EventHeader, advance = true): void {
    const tx = this.tx;
    if (tx) {
      if (tx.gtid) this.executed.add(tx.gtid);
      if (tx.began && tx.meta) this.o.sink.appendTransaction(tx.meta.end(h.timestamp * 1000));
      this.tx = null;
    }
    if (advance && h.nextPos > 0) this.pos = h.nextPos;
  }

  private txId(tx: OpenTx): string {
    return tx.gtid ?? `${tx.start.file}:${tx.start.pos}`;
  }

  /**
   * A statement (DDL mostly). TRUNCATE of a captured table becomes a truncate event; DML written as
   * a statement (a session with binlog_format=STATEMENT/MIXED) cannot be decoded into rows, so it
   * stops the pipeline rather than lose changes; partition maintenance that drops rows is warned
   * about; other DDL is logged.
   */
  private statement(h: EventHeader, database: string, query: string): void {
    const q = stripLeadingComments(query);
    const t = TRUNCATE.exec(q);
    if (t) {
      const first = (t[1] ?? t[2]).replace(/``/g, '`');
      const second = (t[3] ?? t[4])?.replace(/``/g, '`');
      const db = second ? first : database;
      const table = second ?? first;
      if (!this.o.captured(db, table)) return;
      this.o.incremental?.invalidate(tableKey(db, table), 'it was truncated');
      // A truncate the table's later snapshot already reflects, or one it cannot be placed in.
      const f = this.snapshotFilters.get(tableKey(db, table));
      const at = { file: this.file, pos: h.nextPos > 0 ? h.nextPos - h.eventSize : this.pos };
      const cov = f ? f.truncate(at) : 'streamed';
      if (cov === 'covered') return;
      if (cov === 'split') {
        throw mysqlError('MYSQL_SNAPSHOT_TRUNCATED', `${db}.${table} was truncated (at ${formatPos(at)}) after part of its snapshot was read and before the rest was: the log holds rows the truncate removed. Start over with a new snapshot (${this.o.resetHint} and run again)`);
      }
      const schema = this.o.schemas.latest(db, table);
      if (!schema) {
        this.o.log.warn('truncate of a captured table whose columns are not known yet: not emitted', { table: `${db}.${table}` });
        return;
      }
      if (!this.tx) this.beginTx(h, null, true);
      this.emit(this.tx!, h, schema, this.target(db, table), 't', null, null, 0);
      return;
    }
    const xa = /^XA\s+(COMMIT|ROLLBACK)\s+(.+?)\s*;?$/is.exec(q);
    if (xa) {
      const xid = parseXid(xa[2]);
      if (xid && this.preparedXa.delete(xid) && /^ROLLBACK$/i.test(xa[1])) {
        throw mysqlError(
          'MYSQL_XA_ROLLBACK',
          `XA transaction ${xa[2]} was rolled back (at ${this.file}:${h.nextPos - h.eventSize}) after its prepared changes to captured tables were written to the log, so the log holds changes that never committed. Re-snapshot the tables it touched (move log.dir away and run again), and avoid rolling back prepared XA transactions on captured tables.`,
        );
      }
      return;
    }
    const dml = /^(INSERT|REPLACE|UPDATE|DELETE|LOAD\s+DATA)\b/i.exec(q);
    if (dml && this.touchesCaptured(database, q)) {
      throw mysqlError(
        'MYSQL_STATEMENT_FORMAT',
        `a ${dml[1].toUpperCase()} on a captured table was written to the binlog as a statement (at ${this.file}:${h.nextPos - h.eventSize}), not as row changes: the session ran with binlog_format=STATEMENT or MIXED. Its changes cannot be captured. Make every client use ROW (SET GLOBAL binlog_format=ROW, and do not override it per session), then re-snapshot the affected tables (move log.dir away and run again). Statement: ${q.slice(0, 200)}`,
      );
    }
    if (/^ALTER\s+TABLE\b.*\b(TRUNCATE|DROP|EXCHANGE)\s+PARTITION\b/is.test(q) && this.touchesCaptured(database, q)) {
      this.o.log.warn('a partition of a captured table was truncated, dropped or exchanged: its rows left without row changes in the binlog, so targets still hold them; re-snapshot the table to bring them in line', { database, statement: q.slice(0, 300) });
      return;
    }
    if (/^(ALTER|CREATE|DROP|RENAME)\s/i.test(q) && this.touchesCaptured(database, q)) {
      this.o.log.info('schema change in the binlog', { database, statement: q.length > 300 ? q.slice(0, 300) + '…' : q });
      this.o.incremental?.invalidate(null, 'a captured table changed its schema');
    }
  }

  /**
   * Whether a statement may touch a captured table: the tables it names after INTO, UPDATE,
   * FROM, JOIN or TABLE (qualified, or in the statement's database) are checked with the same
   * filter as row events.
   */
  private touchesCaptured(database: string, q: string): boolean {
    for (const m of q.matchAll(TABLE_REFERENCE)) {
      const first = (m[1] ?? m[2]).replace(/``/g, '`');
      const second = (m[3] ?? m[4])?.replace(/``/g, '`');
      if (this.o.captured(second ? first : database, second ?? first)) return true;
    }
    return false;
  }

  private rows(ev: Extract<BinlogEvent, { type: 'rows' }>): void {
    const { map } = ev;
    if (this.o.isSignal?.(map.database, map.table)) {
      if (ev.kind === 'write') for (const r of ev.rows) this.onSignal(toRow(map.columns, r.after!));
      return;
    }
    if (!this.o.captured(map.database, map.table)) return;
    if (!this.tx) this.beginTx(ev.header, null, false);
    const tx = this.tx!;
    const name = tableKey(map.database, map.table);
    // A table the log knows from the stream: not one to back-fill at the next start (source.ts).
    if (!this.o.checkpoint.tables[name]) this.o.checkpoint.tables[name] = { status: 'done', rows: 0, ranges: [] };
    const at: BinlogPos = { file: this.file, pos: ev.header.nextPos > 0 ? ev.header.nextPos - ev.header.eventSize : this.pos };
    // Rows this table's snapshot may already hold (decided per row, by its key's range).
    let filter = this.snapshotFilters.get(name) ?? null;
    if (filter && comparePos(at, filter.until) >= 0) filter = null;
    // A session with binlog_row_image=MINIMAL/NOBLOB logs only some columns: such a row cannot be
    // told apart from NULLs, so it stops the pipeline instead of writing wrong values.
    const partial = ev.present && ((ev.present.before && ev.present.before.includes(false)) || (ev.present.after && ev.present.after.includes(false)));
    if (partial) {
      throw mysqlError(
        'MYSQL_ROW_IMAGE',
        `a change to ${name} was logged without its full row (at ${this.file}:${at.pos}): the session ran with binlog_row_image=MINIMAL or NOBLOB. Make every client use FULL (SET GLOBAL binlog_row_image=FULL, and do not override it per session), then re-snapshot the table (move log.dir away and run again).`,
      );
    }
    const schema = this.o.schemas.intern(map.database, map.table, map.columns, map.keyColumns);
    const to = this.target(map.database, map.table);
    const cols = map.columns;
    const op = ev.kind === 'write' ? 'c' : ev.kind === 'delete' ? 'd' : 'u';
    if (filter) this.currentKeyOrder = this.keyOrderOf(map);
    for (let r = 0; r < ev.rows.length; r++) {
      const { before, after } = ev.rows[r];
      // A primary-key change is a delete of the old key and a create of the new one (as Debezium does).
      for (const p of changeParts(schema, op, before ? toRow(cols, before) : null, after ? toRow(cols, after) : null)) {
        if (filter && filter.covers(at, p.key)) continue;
        this.emit(tx, ev.header, schema, to, p.op, p.before, p.after, r, at, p.key);
      }
    }
  }

  /** The key comparator of the rows' table (while deciding which rows a snapshot holds). */
  private currentKeyOrder: ((a: Row, b: Row) => number) | null = null;

  private keyOrderOf(map: { columns: BinlogColumn[]; keyColumns: string[] }): ((a: Row, b: Row) => number) | null {
    let c = this.keyOrders.get(map.columns);
    if (c === undefined) {
      const keys = mysqlKeyColumns(map.columns, map.keyColumns);
      c = keys ? keyComparator(keys) : null;
      this.keyOrders.set(map.columns, c);
    }
    return c;
  }

  /** Where a table's events go (names built once per table, not per row). */
  private target(db: string, table: string): Target {
    const key = tableKey(db, table);
    let t = this.targets.get(key);
    if (!t) this.targets.set(key, (t = { db, table, name: key, topic: tableTopic(this.prefix, db, table) }));
    return t;
  }

  private emit(tx: OpenTx, h: EventHeader, schema: TableSchema, to: Target, op: ChangeEvent['op'], before: Row | null, after: Row | null, row: number, at?: BinlogPos, key: Row | null = null): void {
    // Debezium's skipped.operations: neither written nor counted.
    if (this.skipped.has(op)) return;
    const index = tx.events++;
    // Transaction metadata counts every event of the transaction, the ones already durable too.
    const transaction: TransactionInfo | null = tx.meta ? tx.meta.next(to.name) : null;
    if (index < tx.skip) return;
    const { db, table } = to;
    if (tx.meta && !tx.began) this.o.sink.appendTransaction(tx.meta.begin(h.timestamp * 1000));
    tx.began = true;
    const source: SourceInfo = {
      version: SLUICE_VERSION,
      connector: this.connector,
      name: this.prefix,
      ts_ms: h.timestamp * 1000,
      snapshot: 'false',
      db,
      sequence: null,
      schema: db,
      table,
      server_id: h.serverId,
      gtid: tx.gtid,
      file: at?.file ?? this.file,
      pos: at?.pos ?? (h.nextPos > 0 ? h.nextPos - h.eventSize : this.pos),
      row,
      thread: tx.thread,
      query: null,
    };
    if (source.ts_ms !== this.lastEventTs) {
      this.lastEventTs = source.ts_ms;
      // Binlog times are whole seconds: the lag is exact to about a second.
      this.o.metrics.lagMs.set(Math.max(0, Date.now() - source.ts_ms));
    }
    this.o.sink.append({ topic: to.topic, key: op === 't' ? null : key, before, after, source, op, ts_ms: Date.now(), transaction, table: schema });
    this.o.incremental?.observe(to.name, key);
  }

  /** A row inserted into the signal table: Debezium's execute-snapshot / stop-snapshot. */
  private onSignal(row: Row): void {
    const inc = this.o.incremental;
    const s = parseSignal(row.type, row.data, this.o.cfg.connection.database ?? null, '`"');
    if ('error' in s || !inc) {
      this.o.log.warn(`signal ${String(row.id)} ignored: ${'error' in s ? s.error : 'incremental snapshots are off'}`, { signal: String(row.id) });
      return;
    }
    if (s.kind === 'execute') inc.request(s.tables, `signal ${String(row.id)}`);
    else inc.cancel(s.tables);
  }
}

/** A table name in a statement: `quoted` or bare, optionally `db`.`table` (groups 1|2 and 3|4). */
const NAME = '(?:`((?:[^`]|``)+)`|([\\w$\\u0080-\\uffff]+))(?:\\s*\\.\\s*(?:`((?:[^`]|``)+)`|([\\w$\\u0080-\\uffff]+)))?';
const TRUNCATE = new RegExp(`^TRUNCATE\\s+(?:TABLE\\s+)?${NAME}\\s*;?$`, 'iu');
const TABLE_REFERENCE = new RegExp(`\\b(?:INTO|UPDATE|FROM|JOIN|TABLE|IGNORE|LOW_PRIORITY)\\s+${NAME}`, 'giu');

/** An XA id as written in `XA COMMIT|ROLLBACK <gtrid>[,<bqual>[,<formatID>]]` (X'hex' or 'text'), spelt as decoder's xaKey. */
function parseXid(text: string): string | null {
  const part = /\s*(?:X'([0-9a-f]*)'|'((?:[^']|'')*)'|(\d+))\s*(?:,|$)/giy;
  const vals: string[] = [];
  let m: RegExpExecArray | null;
  while (vals.length < 3 && (m = part.exec(text))) vals.push(m[1] !== undefined ? m[1] : m[2] !== undefined ? Buffer.from(m[2].replace(/''/g, "'")).toString('hex') : `#${m[3]}`);
  if (!vals.length || vals[0].startsWith('#')) return null;
  const format = vals[2]?.startsWith('#') ? Number(vals[2].slice(1)) : 1;
  return xaKey(vals[0], vals[1] && !vals[1].startsWith('#') ? vals[1] : '', format);
}

/** The statement without leading comments (slash-star blocks, `-- ` and `#` lines) and white space. */
function stripLeadingComments(q: string): string {
  let s = q.trimStart();
  for (;;) {
    if (s.startsWith('/*')) {
      const end = s.indexOf('*/');
      if (end < 0) return s;
      s = s.slice(end + 2).trimStart();
    } else if (s.startsWith('#') || s.startsWith('-- ')) {
      const nl = s.indexOf('\n');
      if (nl < 0) return '';
      s = s.slice(nl + 1).trimStart();
    } else return s;
  }
}

function toRow(cols: { name: string }[], values: Value[]): Row {
  const r: Row = {};
  for (let i = 0; i < cols.length; i++) r[cols[i].name] = values[i];
  return r;
}
