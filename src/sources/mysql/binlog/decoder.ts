/**
 * Turns raw binlog events (header + body + CRC32, as the server sends them after the OK byte)
 * into BinlogEvents. It keeps the stream's state: the current file, whether events carry a
 * checksum (the FORMAT_DESCRIPTION event says; every checksum is verified), the post-header
 * lengths, and the last TABLE_MAP per table id for the rows events that follow.
 */
import { SluiceError } from '../../../core/errors.ts';
import { crc32 as crc32Native, crc32js } from '../../../core/crc32.ts';
import { CharsetCatalog } from './charsets.ts';
import { decodeMariaGtid, decodeMysqlGtid, decodeQuery, decodeRotate, EV, HEADER_LEN, readHeader } from './events.ts';
import { decodeRows } from './rows.ts';
import { decodeTableMap, type DecodedTableMap } from './tablemap.ts';
import type { BinlogEvent, EventHeader } from './types.ts';
import { mysqlError } from '../errors.ts';

export interface DecoderOptions {
  /** Whether events before the first FORMAT_DESCRIPTION (the server's made-up ROTATE) carry a checksum: the server's binlog_checksum is CRC32. */
  checksum?: boolean;
  /** MariaDB or MySQL; by default taken from the FORMAT_DESCRIPTION's server version. */
  mariadb?: boolean;
  /** Collation ids → character sets; the built-in list when absent. */
  charsets?: CharsetCatalog;
  /** The file being read, for messages until a ROTATE names it. */
  file?: string;
  /**
   * Which tables to decode (default: all). The table maps and rows of the others are skipped
   * unread, so their columns cost nothing and cannot fail the stream.
   */
  tables?: (database: string, table: string) => boolean;
}

/** The table map of a table the `tables` filter leaves out. */
const EXCLUDED: unique symbol = Symbol('excluded');

const DEFAULT_POST_HEADER: Record<number, number> = { [EV.QUERY]: 13, [EV.TABLE_MAP]: 8, [EV.WRITE_ROWS_V1]: 8, [EV.UPDATE_ROWS_V1]: 8, [EV.DELETE_ROWS_V1]: 8, [EV.WRITE_ROWS_V2]: 10, [EV.UPDATE_ROWS_V2]: 10, [EV.DELETE_ROWS_V2]: 10 };

/** The native CRC32 costs a fixed ~250 ns per call; small events (GTID, XID, table maps) are quicker in JS. */
const crc32 = (b: Buffer, start: number, end: number): number => (end - start < 256 ? crc32js(b, start, end) : crc32Native(b, start, end));

function versionNumber(v: string): number {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(v);
  return m ? Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]) : 0;
}

export class BinlogDecoder {
  /** The binlog file the stream is in. */
  file: string;
  private checksum: boolean;
  private mariadb: boolean | undefined;
  private readonly charsets: CharsetCatalog;
  private postHeader: Uint8Array | null = null;
  private readonly maps = new Map<number, DecodedTableMap | typeof EXCLUDED>();
  private readonly tables: ((database: string, table: string) => boolean) | undefined;

  constructor(opts: DecoderOptions = {}) {
    this.checksum = opts.checksum ?? true;
    this.mariadb = opts.mariadb;
    this.charsets = opts.charsets ?? new CharsetCatalog();
    this.file = opts.file ?? '';
    this.tables = opts.tables;
  }

  private postHeaderLen(type: number): number {
    const p = this.postHeader;
    return p && type - 1 < p.length ? p[type - 1] : (DEFAULT_POST_HEADER[type] ?? 0);
  }

  private where(h: EventHeader): string {
    const pos = h.nextPos >= h.eventSize ? h.nextPos - h.eventSize : null;
    return `${this.file || '(unknown file)'}:${pos ?? '?'}`;
  }

  /**
   * One event (its whole bytes). Null for events Sluice has no use for; unknown types are skipped.
   * A malformed event is a coded error (MYSQL_BINLOG_CORRUPT), never a RangeError: a field that
   * runs past the end of the event is reported as such.
   */
  decode(b: Buffer): BinlogEvent | null {
    if (b.length < HEADER_LEN) throw mysqlError('MYSQL_BINLOG_CORRUPT', `a binlog event in ${this.file} is ${b.length} bytes, shorter than an event header`);
    const header = readHeader(b);
    const type = b[4];
    if (header.eventSize !== b.length) {
      throw mysqlError('MYSQL_CONNECTION_LOST', `the binlog event at ${this.where(header)} says it is ${header.eventSize} bytes but ${b.length} arrived: it was cut short in transit; reconnecting reads it again`);
    }
    try {
      return this.decodeEvent(b, header, type);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (e instanceof RangeError && (code === 'ERR_OUT_OF_RANGE' || code === 'ERR_BUFFER_OUT_OF_BOUNDS' || code === undefined)) {
        throw mysqlError('MYSQL_BINLOG_CORRUPT', `the binlog event at ${this.where(header)} (type ${type}, ${b.length} bytes) is shorter than its fields say (${e.message}): it is malformed. Check the file with mysqlbinlog/mariadb-binlog on the server; nothing after this event was accepted.`, { cause: e });
      }
      throw e;
    }
  }

  private decodeEvent(b: Buffer, header: EventHeader, type: number): BinlogEvent | null {
    if (type === EV.FORMAT_DESCRIPTION) return this.formatDescription(b, header);
    let end = b.length;
    if (this.checksum) {
      end -= 4;
      const want = b.readUInt32LE(end);
      const got = crc32(b, 0, end) >>> 0;
      if (want !== got) throw this.crcError(header, type, want, got);
    }
    switch (type) {
      case EV.ROTATE: {
        const r = decodeRotate(b, end);
        this.file = r.file;
        return { type: 'rotate', header, file: r.file, pos: r.pos };
      }
      case EV.QUERY: {
        const q = decodeQuery(b, end, this.postHeaderLen(EV.QUERY));
        return { type: 'query', header, ...q };
      }
      case EV.XID:
        return { type: 'xid', header, xid: b.readBigUInt64LE(HEADER_LEN) };
      case EV.MARIA_GTID: {
        const g = decodeMariaGtid(b, header.serverId);
        return { type: 'gtid', header, gtid: g.gtid, standalone: g.standalone };
      }
      case EV.GTID:
        return { type: 'gtid', header, gtid: decodeMysqlGtid(b), standalone: false };
      case EV.TABLE_MAP: {
        const tm = this.tableMap(b, end, header);
        return tm === EXCLUDED ? null : { type: 'tablemap', header, map: tm.map };
      }
      case EV.WRITE_ROWS_V1: case EV.WRITE_ROWS_V2:
        return this.rows(b, end, header, type, 'write');
      case EV.UPDATE_ROWS_V1: case EV.UPDATE_ROWS_V2:
        return this.rows(b, end, header, type, 'update');
      case EV.DELETE_ROWS_V1: case EV.DELETE_ROWS_V2:
        return this.rows(b, end, header, type, 'delete');
      case EV.HEARTBEAT:
        return { type: 'heartbeat', header, file: b.toString('utf8', HEADER_LEN, end) };
      case EV.ANNOTATE_ROWS:
        return { type: 'annotate', header, query: b.toString('utf8', HEADER_LEN, end) };
      case EV.ROWS_QUERY:
        // One length byte (truncated for long statements, so ignored), then the statement.
        return { type: 'annotate', header, query: b.toString('utf8', HEADER_LEN + 1, end) };
      case EV.QUERY_COMPRESSED: case EV.WRITE_ROWS_COMPRESSED_V1: case EV.UPDATE_ROWS_COMPRESSED_V1: case EV.DELETE_ROWS_COMPRESSED_V1:
      case EV.WRITE_ROWS_COMPRESSED: case EV.UPDATE_ROWS_COMPRESSED: case EV.DELETE_ROWS_COMPRESSED:
        throw this.unsupported(header, 'a compressed event (log_bin_compress=ON)', 'SET GLOBAL log_bin_compress=OFF (and in the server configuration)');
      case EV.TRANSACTION_PAYLOAD:
        throw this.unsupported(header, 'a compressed transaction (binlog_transaction_compression=ON)', 'SET GLOBAL binlog_transaction_compression=OFF (and in the server configuration)');
      case EV.PARTIAL_UPDATE_ROWS:
        throw this.unsupported(header, 'a partial JSON update (binlog_row_value_options=PARTIAL_JSON)', "SET GLOBAL binlog_row_value_options=''");
      case EV.INCIDENT:
        // The source server lost events here (e.g. a failed non-transactional write): a replica stops.
        throw mysqlError('MYSQL_BINLOG_INCIDENT', `the binlog at ${this.where(header)} holds an INCIDENT event: the server records that changes around this point may be missing from the binlog. Check the server's error log, then take a new snapshot (move the log directory away and run again).`);
      case EV.XA_PREPARE: {
        // one_phase (1), formatID (4), gtrid length (4), bqual length (4), then the two parts.
        const p = HEADER_LEN;
        const onePhase = b[p] !== 0;
        const format = b.readInt32LE(p + 1);
        const g = b.readUInt32LE(p + 5);
        const q = b.readUInt32LE(p + 9);
        const gtrid = b.subarray(p + 13, p + 13 + g).toString('hex');
        const bqual = b.subarray(p + 13 + g, p + 13 + g + q).toString('hex');
        return { type: 'xa_prepare', header, onePhase, xid: xaKey(gtrid, bqual, format) };
      }
      case EV.START_ENCRYPTION:
        throw this.unsupported(header, 'an encrypted binlog (encrypt_binlog=ON)', 'turn encrypt_binlog off');
      default:
        // GTID_LIST, BINLOG_CHECKPOINT, PREVIOUS_GTIDS, INTVAR, USER_VAR, STOP, and anything newer.
        return null;
    }
  }

  private formatDescription(b: Buffer, header: EventHeader): BinlogEvent {
    const p = HEADER_LEN;
    const serverVersion = b.toString('latin1', p + 2, p + 52).replace(/\0.*$/s, '');
    const mariadb = /mariadb/i.test(serverVersion);
    this.mariadb ??= mariadb;
    const v = versionNumber(serverVersion);
    // Servers since MySQL 5.6.1 / MariaDB 5.3 end the event with the checksum algorithm (1 byte)
    // and a CRC32 of the event (4 bytes, present whatever the algorithm).
    const hasAlg = v >= 50601 || (mariadb && v >= 50300);
    // Every server Sluice reads (MySQL 8.0.1+, MariaDB 10.5+: full row metadata) writes checksum-
    // aware FORMAT_DESCRIPTION events; one that is not is damaged (or from a binlog Sluice cannot read).
    if (!hasAlg) throw mysqlError('MYSQL_BINLOG_CORRUPT', `the FORMAT_DESCRIPTION event at ${this.where(header)} names server version ${JSON.stringify(serverVersion)}: Sluice reads binlogs of MySQL 8.0.1+ and MariaDB 10.5+, so the event is damaged or the binlog too old`);
    let end = b.length;
    let checksum = false;
    if (hasAlg) {
      const alg = b[b.length - 5];
      if (alg !== 0 && alg !== 1) throw mysqlError('MYSQL_BINLOG_CORRUPT', `the FORMAT_DESCRIPTION event at ${this.where(header)} names checksum algorithm ${alg} (0 none or 1 CRC32 expected): it is damaged`);
      checksum = alg === 1;
      end = b.length - 5;
      // A checksum-aware server always checksums this event, also when the binlog's other
      // events carry none: a damaged algorithm byte cannot switch the checks off unnoticed.
      const want = b.readUInt32LE(b.length - 4);
      const got = crc32(b, 0, b.length - 4) >>> 0;
      if (want !== got) throw this.crcError(header, EV.FORMAT_DESCRIPTION, want, got);
    }
    const headerLen = b[p + 56];
    this.postHeader = Uint8Array.from(b.subarray(p + 57, end));
    if (headerLen !== HEADER_LEN) {
      throw mysqlError('MYSQL_BINLOG_CORRUPT', `the binlog at ${this.where(header)} uses ${headerLen}-byte event headers; Sluice reads the v4 format (19 bytes) of MySQL 5.0+ and MariaDB`);
    }
    this.checksum = checksum;
    return { type: 'format', header, serverVersion, checksum };
  }

  private tableMap(b: Buffer, end: number, header: EventHeader): DecodedTableMap | typeof EXCLUDED {
    const idBytes = this.postHeaderLen(EV.TABLE_MAP) === 6 ? 4 : 6;
    const id = b.readUIntLE(HEADER_LEN, idBytes);
    const prev = this.maps.get(id);
    // Maps are re-sent with every transaction; an identical one keeps the same objects (and the
    // consumer's caches keyed on them).
    if (prev && prev !== EXCLUDED && prev.raw.length === end - HEADER_LEN && prev.raw.equals(b.subarray(HEADER_LEN, end))) return prev;
    if (this.tables) {
      const p = HEADER_LEN + idBytes + 2;
      const dbLen = b[p];
      const database = b.toString('utf8', p + 1, p + 1 + dbLen);
      const table = b.toString('utf8', p + 3 + dbLen, p + 3 + dbLen + b[p + 2 + dbLen]);
      if (!this.tables(database, table)) {
        this.maps.set(id, EXCLUDED);
        return EXCLUDED;
      }
    }
    const tm = decodeTableMap(b, HEADER_LEN, end, idBytes, this.mariadb ?? false, this.charsets, () => this.where(header));
    this.maps.set(id, tm);
    return tm;
  }

  private rows(b: Buffer, end: number, header: EventHeader, type: number, kind: 'write' | 'update' | 'delete'): BinlogEvent | null {
    const post = this.postHeaderLen(type);
    const idBytes = post === 6 ? 4 : 6;
    const id = b.readUIntLE(HEADER_LEN, idBytes);
    let pos = HEADER_LEN + post;
    if (type >= EV.WRITE_ROWS_V2 && type <= EV.DELETE_ROWS_V2) {
      // v2: extra row info whose length counts its own two bytes.
      const extra = b.readUInt16LE(HEADER_LEN + idBytes + 2);
      pos = HEADER_LEN + idBytes + 4 + (extra - 2);
      if (post > idBytes + 4) pos += post - (idBytes + 4);
    }
    const tm = this.maps.get(id);
    if (tm === EXCLUDED) return null;
    if (!tm) {
      throw mysqlError(
        'MYSQL_TABLE_MAP_MISSING',
        `the rows event at ${this.where(header)} refers to table id ${id}, whose TABLE_MAP event was not read: the stream started inside a transaction. Start from a transaction boundary (a GTID, or the position of a GTID/BEGIN event).`,
      );
    }
    const r = decodeRows(b, pos, end, kind, tm, () => this.where(header));
    const ev: BinlogEvent = { type: 'rows', header, kind, map: tm.map, rows: r.rows, bytes: r.bytes };
    if (r.present) ev.present = r.present;
    return ev;
  }

  private crcError(header: EventHeader, type: number, want: number, got: number): SluiceError {
    return mysqlError(
      'MYSQL_BINLOG_CORRUPT',
      `the binlog event at ${this.where(header)} (type ${type}) fails its CRC32 check (stored ${want.toString(16)}, computed ${got.toString(16)}): its bytes were damaged on disk or on the way. Check the file with mysqlbinlog/mariadb-binlog on the server; nothing after this event was accepted.`,
    );
  }

  private unsupported(header: EventHeader, what: string, fix: string): SluiceError {
    return mysqlError('MYSQL_BINLOG_UNSUPPORTED', `the binlog at ${this.where(header)} holds ${what}, which Sluice cannot read: ${fix}, then take a new snapshot (move the log directory away and run again) since these changes cannot be decoded.`);
  }
}

/** One spelling of an XA transaction id, from the XA_PREPARE event or an `XA COMMIT|ROLLBACK` statement. */
export function xaKey(gtridHex: string, bqualHex: string, format: number): string {
  return `${gtridHex.toLowerCase()}/${bqualHex.toLowerCase()}/${format}`;
}
