import { mysqlError } from './errors.ts';
import { decodeTableSnapshot, encodeTableSnapshot, type TableSnapshot } from '../common/ranges.ts';
import { decodeIncremental, encodeIncremental, type IncrementalState } from '../common/incremental.ts';
/**
 * The MySQL source's checkpoint, committed to the log atomically with the events it covers.
 *
 * Streaming positions are transaction-granular with an event counter: `{file, pos, gtid, skip}`
 * means every transaction that starts before `file:pos` is in the log, and of the transaction that
 * starts there, the first `skip` row changes are. `gtid` is the GTID set executed before that
 * transaction, so the stream can resume by GTID (on any server with the same history) or by file
 * and position. Large transactions are thus written in pieces with bounded memory, and a restart
 * skips the prefix that is already durable instead of writing it twice.
 */

export interface BinlogPos {
  file: string;
  pos: number;
}

/** A table's snapshot: the key ranges in the log and the binlog position each was read at (row events before it are in the snapshot). */
export type TableSnapshotState = TableSnapshot<BinlogPos>;

export interface MysqlCheckpoint {
  phase: 'snapshot' | 'stream';
  /** Start of the transaction being written (or of the next one when skip = 0). */
  file: string;
  pos: number;
  /** GTID set executed before that transaction; '' when the server has no GTIDs. */
  gtid: string;
  skip: number;
  /** Per-table snapshot state (kept after the snapshot: the stream filters by it). */
  tables: Record<string, TableSnapshotState>;
  /** XA transactions prepared with captured changes (in the log) and not yet committed or rolled back. */
  xa?: string[];
  /** Incremental snapshots waiting or under way (sources/common/incremental.ts). */
  incremental?: IncrementalState;
}

export function encodeCheckpoint(c: MysqlCheckpoint): string {
  return JSON.stringify({ v: 1, source: 'mysql', phase: c.phase, file: c.file, pos: c.pos, gtid: c.gtid, skip: c.skip, tables: Object.fromEntries(Object.entries(c.tables).map(([k, t]) => [k, encodeTableSnapshot(t, (p) => p)])), ...(c.xa?.length ? { xa: c.xa } : {}), incremental: encodeIncremental(c.incremental) });
}

export function decodeCheckpoint(text: string): MysqlCheckpoint {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    throw mysqlError('MYSQL_CHECKPOINT', `the log's source checkpoint is not JSON (${text.slice(0, 80)}): the log is damaged; start over with a new snapshot in a fresh log`);
  }
  if (o.source !== 'mysql') {
    throw mysqlError('MYSQL_CHECKPOINT', `the log at this log.dir was written by a ${o.source ?? 'postgres'} source, not by a MySQL source: give this pipeline its own log.dir`);
  }
  const c: MysqlCheckpoint = { phase: o.phase as MysqlCheckpoint['phase'], file: String(o.file), pos: Number(o.pos), gtid: String(o.gtid ?? ''), skip: Number(o.skip ?? 0), tables: Object.fromEntries(Object.entries((o.tables ?? {}) as Record<string, unknown>).map(([k, t]) => [k, decodeTableSnapshot(t, (p: BinlogPos) => ({ file: String(p.file), pos: Number(p.pos) }))])) };
  if (Array.isArray(o.xa) && o.xa.length) c.xa = o.xa.map(String);
  if (o.incremental) c.incremental = decodeIncremental(o.incremental);
  return c;
}

/** Orders binlog positions: by the file's numeric suffix (`mariadb-bin.000012`), then the offset. */
export function comparePos(a: BinlogPos, b: BinlogPos): number {
  if (a.file !== b.file) {
    const na = Number(/\.(\d+)$/.exec(a.file)?.[1] ?? NaN);
    const nb = Number(/\.(\d+)$/.exec(b.file)?.[1] ?? NaN);
    if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
    return a.file < b.file ? -1 : 1;
  }
  return a.pos - b.pos;
}

export const formatPos = (p: BinlogPos): string => `${p.file}:${p.pos}`;

/**
 * The executed GTID set, updated transaction by transaction. MariaDB GTIDs are
 * `domain-server-seq` and a set keeps the last one per domain (`0-1-42,1-2-7`); MySQL GTIDs are
 * `uuid:n` and a set keeps intervals per server uuid (`uuid:1-42:50`).
 */
export class GtidSet {
  private readonly mariadb = new Map<string, string>();
  private readonly mysql = new Map<string, [bigint, bigint][]>();

  constructor(text = '') {
    for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
      const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
      if (m) {
        this.mariadb.set(m[1], part);
        continue;
      }
      const [uuid, ...ranges] = part.split(':');
      const list: [bigint, bigint][] = [];
      for (const r of ranges) {
        const [a, b] = r.split('-');
        list.push([BigInt(a), BigInt(b ?? a)]);
      }
      this.mysql.set(uuid.toLowerCase(), list);
    }
  }

  /** Adds one executed GTID. */
  add(gtid: string): void {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(gtid);
    if (m) {
      this.mariadb.set(m[1], gtid);
      return;
    }
    const i = gtid.lastIndexOf(':');
    const uuid = gtid.slice(0, i).toLowerCase();
    const n = BigInt(gtid.slice(i + 1));
    const list = this.mysql.get(uuid) ?? [];
    const last = list[list.length - 1];
    if (last && n === last[1] + 1n) last[1] = n; // the usual case: the next transaction
    else if (!list.some(([a, b]) => n >= a && n <= b)) {
      // Out of order: insert, then merge touching intervals.
      list.push([n, n]);
      list.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
      const merged: [bigint, bigint][] = [];
      for (const iv of list) {
        const m = merged[merged.length - 1];
        if (m && iv[0] <= m[1] + 1n) m[1] = iv[1] > m[1] ? iv[1] : m[1];
        else merged.push([iv[0], iv[1]]);
      }
      list.splice(0, list.length, ...merged);
    }
    this.mysql.set(uuid, list);
  }

  get empty(): boolean {
    return this.mariadb.size === 0 && this.mysql.size === 0;
  }

  toString(): string {
    const parts = [...this.mariadb.keys()].sort((a, b) => Number(a) - Number(b)).map((d) => this.mariadb.get(d)!);
    for (const [uuid, list] of [...this.mysql.entries()].sort()) {
      parts.push(uuid + list.map(([a, b]) => (a === b ? `:${a}` : `:${a}-${b}`)).join(''));
    }
    return parts.join(',');
  }
}
