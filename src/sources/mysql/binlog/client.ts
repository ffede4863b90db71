/**
 * A replica connection that streams the binlog. mysql2 does the handshake and authentication and
 * runs the session setup; the dump itself is our own command on that connection, because
 * mysql2's binlogDump discards the bodies of the events it does not know. Raw events are copied
 * off the socket into a queue bounded in bytes (the socket is paused above the bound, resumed
 * below half of it) and decoded when the consumer asks for them, so a slow consumer slows the
 * server's sending and never grows memory.
 */
import mysql from 'mysql2';
import { isRetriable, SluiceError } from '../../../core/errors.ts';
import { CharsetCatalog } from './charsets.ts';
import { BinlogDecoder } from './decoder.ts';
import type { BinlogConnectionOptions, BinlogEvent } from './types.ts';
import { mysqlError } from '../errors.ts';

const DEFAULT_MAX_QUEUE = 16 * 1024 * 1024;
const COM_BINLOG_DUMP = 0x12;
const COM_BINLOG_DUMP_GTID = 0x1e;
const BINLOG_THROUGH_GTID = 0x04;
const BINLOG_SEND_ANNOTATE_ROWS_EVENT = 0x02;
/** MariaDB replica capability: understands GTID events (else the server rewrites them into BEGIN queries). */
const MARIA_SLAVE_CAPABILITY_GTID = 4;
const ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236;
/** The server sends a (made-up) ROTATE as soon as the dump starts; silence this long is a hung connection. */
const FIRST_EVENT_TIMEOUT_MS = 30_000;

/** The parts of mysql2's connection and packet the dump command uses (not in its typings). */
interface RawConnection {
  stream: { pause(): void; resume(): void; destroy(): void };
  addCommand(cmd: unknown): unknown;
  writePacket(p: { buffer: Buffer; length(): number; writeHeader(seq: number): void }): void;
  _resetSequenceId(): void;
  clientEncoding: string;
  destroy(): void;
  threadId: number;
}
interface RawPacket {
  buffer: Buffer;
  offset: number;
  end: number;
  isError(): boolean;
  isEOF(): boolean;
  asError(encoding?: string): Error;
}

/**
 * mysql2 drives a command by calling execute(packet) for each packet until it returns true;
 * onResult receives errors (an ERR packet, or the connection's loss).
 */
class DumpCommand {
  private started = false;
  constructor(
    private readonly packet: Buffer,
    private readonly onEvent: (b: Buffer, start: number, end: number) => void,
    readonly onResult: (err: Error) => void,
  ) {}

  execute(packet: RawPacket | undefined, conn: RawConnection): boolean {
    if (!this.started) {
      this.started = true;
      conn._resetSequenceId();
      const buf = this.packet;
      conn.writePacket({ buffer: buf, length: () => buf.length, writeHeader: (seq) => { buf.writeUIntLE(buf.length - 4, 0, 3); buf[3] = seq; } });
      return false;
    }
    if (!packet) return false;
    if (packet.isError()) {
      this.onResult(packet.asError(conn.clientEncoding));
      return true;
    }
    if (packet.isEOF()) {
      this.onResult(Object.assign(new Error('the server ended the binlog stream'), { code: 'PROTOCOL_CONNECTION_LOST' }));
      return true;
    }
    // After the OK byte: one whole event (mysql2 joins packets of events above 16 MiB).
    this.onEvent(packet.buffer, packet.offset + 1, packet.end);
    return false;
  }
}

function dumpPacket(opts: BinlogConnectionOptions, mariadb: boolean): Buffer {
  const start = opts.start;
  if ('gtidSet' in start && !mariadb) {
    const data = encodeMysqlGtidSet(start.gtidSet);
    const b = Buffer.alloc(4 + 1 + 2 + 4 + 4 + 0 + 8 + 4 + data.length);
    let p = 4;
    b[p++] = COM_BINLOG_DUMP_GTID;
    b.writeUInt16LE(BINLOG_THROUGH_GTID, p); p += 2;
    b.writeUInt32LE(opts.serverId, p); p += 4;
    b.writeUInt32LE(0, p); p += 4; // no file name
    b.writeBigUInt64LE(4n, p); p += 8;
    b.writeUInt32LE(data.length, p); p += 4;
    data.copy(b, p);
    return b;
  }
  // MariaDB GTID starts send an empty file name and position 4; the GTID is a session variable.
  const file = 'gtidSet' in start ? '' : start.file;
  const pos = 'gtidSet' in start ? 4 : start.pos;
  const name = Buffer.from(file, 'utf8');
  const b = Buffer.alloc(4 + 1 + 4 + 2 + 4 + name.length);
  b[4] = COM_BINLOG_DUMP;
  b.writeUInt32LE(pos, 5);
  // MariaDB sends ANNOTATE_ROWS events (the statement text) only when asked.
  b.writeUInt16LE(mariadb && opts.annotateRows ? BINLOG_SEND_ANNOTATE_ROWS_EVENT : 0, 9);
  b.writeUInt32LE(opts.serverId, 11);
  name.copy(b, 15);
  return b;
}

/** A MySQL GTID set (`uuid:1-5:7,uuid2:1-3`) in COM_BINLOG_DUMP_GTID's binary form. */
export function encodeMysqlGtidSet(set: string): Buffer {
  const sids = set.replace(/\s+/g, '').split(',').filter(Boolean).map((part) => {
    const [uuid, ...ranges] = part.split(':');
    const hex = uuid.replace(/-/g, '');
    if (!/^[0-9a-f]{32}$/i.test(hex) || ranges.some((r) => !/^\d+(-\d+)?$/.test(r))) {
      throw mysqlError('MYSQL_GTID_SET', `cannot read the GTID set ${JSON.stringify(set)} at ${JSON.stringify(part)} (tagged GTIDs are not supported); start from a file position instead`);
    }
    return { hex, intervals: ranges.map((r) => { const [a, b] = r.split('-'); return [BigInt(a), BigInt(b ?? a) + 1n]; }) };
  });
  const size = 8 + sids.reduce((n, s) => n + 16 + 8 + 16 * s.intervals.length, 0);
  const out = Buffer.alloc(size);
  let p = 0;
  out.writeBigUInt64LE(BigInt(sids.length), p); p += 8;
  for (const s of sids) {
    out.write(s.hex, p, 'hex'); p += 16;
    out.writeBigUInt64LE(BigInt(s.intervals.length), p); p += 8;
    for (const [a, b] of s.intervals) {
      out.writeBigUInt64LE(a, p); p += 8;
      out.writeBigUInt64LE(b, p); p += 8;
    }
  }
  return out;
}

/** The connection's deadlines: connecting, and each set-up statement (defaults as for every connection). */
export interface BinlogTimeouts {
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
}

function queryWithin(conn: mysql.Connection, sql: string, values: unknown[], timeout: number): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => conn.query({ sql, values, timeout }, (err: Error | null, rows: unknown) => (err ? reject(err) : resolve(rows as Record<string, unknown>[]))));
}

export class BinlogClient {
  /** MariaDB (true) or MySQL. */
  readonly mariadb: boolean;
  readonly serverVersion: string;
  /** The server's id for this connection (what KILL takes). */
  readonly threadId: number;
  private readonly conn: mysql.Connection;
  private readonly raw: RawConnection;
  private readonly decoder: BinlogDecoder;
  private readonly maxQueue: number;
  private queue: (Buffer | undefined)[] = [];
  private head = 0;
  private queued = 0;
  private paused = false;
  private pauseCount = 0;
  private error: SluiceError | null = null;
  private closed = false;
  private waiters: (() => void)[] = [];
  private firstPacket: (() => void) | null = null;
  /** When the server last sent an event (heartbeats included) while the socket was read. */
  private heardAt = Date.now();
  private liveness: NodeJS.Timeout | null = null;

  private constructor(conn: mysql.Connection, mariadb: boolean, serverVersion: string, decoder: BinlogDecoder, maxQueue: number) {
    this.conn = conn;
    this.raw = conn as unknown as RawConnection;
    this.mariadb = mariadb;
    this.serverVersion = serverVersion;
    this.threadId = this.raw.threadId;
    this.decoder = decoder;
    this.maxQueue = maxQueue;
  }

  /** Received event bytes not yet returned by next(). */
  get bufferedBytes(): number {
    return this.queued;
  }

  /** How many times the socket was paused because the queue was full (for tests and metrics). */
  get pauses(): number {
    return this.pauseCount;
  }

  /**
   * Connects, sets the session up as a replica and starts the dump at `opts.start`. Resolves once
   * the server has answered (its first event); a start position the server no longer has rejects
   * with MYSQL_BINLOG_GONE.
   */
  static async connect(opts: BinlogConnectionOptions & BinlogTimeouts): Promise<BinlogClient> {
    const connectMs = opts.connectTimeoutMs ?? 10_000;
    const statementMs = opts.statementTimeoutMs ?? 300_000;
    const query = (conn: mysql.Connection, sql: string, values: unknown[] = []) => queryWithin(conn, sql, values, statementMs);
    const conn = mysql.createConnection({ host: opts.host, port: opts.port, user: opts.user, password: opts.password, connectTimeout: connectMs, enableKeepAlive: true, multipleStatements: false });
    // Until the dump runs, errors reach the queries below; a connection-level 'error' must not crash.
    conn.on('error', () => {});
    let client: BinlogClient;
    try {
      const [info] = await query(conn, 'SELECT VERSION() AS v, @@global.binlog_checksum AS c');
      const serverVersion = String(info.v);
      const mariadb = /mariadb/i.test(serverVersion);
      const checksum = String(info.c ?? 'NONE').toUpperCase() === 'CRC32';
      const charsets = new CharsetCatalog();
      for (const r of await query(conn, 'SELECT ID AS id, CHARACTER_SET_NAME AS cs FROM information_schema.COLLATIONS')) charsets.addCollation(Number(r.id), String(r.cs));
      if (mariadb) {
        // MariaDB 10.10+ lists the collations shared by several character sets (uca1400) only here.
        const extra = await query(conn, 'SELECT ID AS id, CHARACTER_SET_NAME AS cs FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE ID IS NOT NULL').catch(() => []);
        for (const r of extra) charsets.addCollation(Number(r.id), String(r.cs));
      }
      for (const r of await query(conn, 'SELECT CHARACTER_SET_NAME AS cs, MAXLEN AS n FROM information_schema.CHARACTER_SETS')) charsets.addMaxLen(String(r.cs), Number(r.n));
      // Tell the server we verify checksums (it refuses checksummed binlogs to replicas that do not).
      await query(conn, 'SET @master_binlog_checksum = @@global.binlog_checksum');
      if (!mariadb) await query(conn, 'SET @source_binlog_checksum = @@global.binlog_checksum');
      if (mariadb) await query(conn, `SET @mariadb_slave_capability = ${MARIA_SLAVE_CAPABILITY_GTID}`);
      if (opts.heartbeatMs && opts.heartbeatMs > 0) {
        const ns = String(BigInt(Math.round(opts.heartbeatMs)) * 1_000_000n);
        await query(conn, `SET @master_heartbeat_period = ${ns}`);
        if (!mariadb) await query(conn, `SET @source_heartbeat_period = ${ns}`);
      }
      if ('gtidSet' in opts.start && mariadb) {
        await query(conn, 'SET @slave_connect_state = ?', [opts.start.gtidSet]);
        await query(conn, 'SET @slave_gtid_strict_mode = 0');
        await query(conn, 'SET @slave_gtid_ignore_duplicates = 0');
      }
      const decoder = new BinlogDecoder({ checksum, mariadb, charsets, file: 'file' in opts.start ? opts.start.file : '', tables: opts.tables });
      client = new BinlogClient(conn, mariadb, serverVersion, decoder, opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE);
    } catch (e) {
      conn.destroy();
      if (e instanceof SluiceError) throw e;
      const err = e as { message?: string; code?: string };
      if (err.code === 'ETIMEDOUT' || err.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
        throw mysqlError('MYSQL_TIMEOUT', `MySQL/MariaDB at ${opts.host}:${opts.port} did not ${err.code === 'ETIMEDOUT' ? `complete a connection within ${connectMs / 1000} s (it accepts TCP but does not answer: a hung server, or not a MySQL port)` : `answer a statement within ${statementMs / 1000} s`}; retrying (connectTimeout/statementTimeout of source.connection set the limits)`, { cause: e });
      }
      throw mysqlError('MYSQL_CONNECT', `cannot start reading the binlog of ${opts.host}:${opts.port} as ${opts.user}: ${err.message}${isRetriable(e) ? '' : '. Check the connection settings and that the user has the REPLICATION SLAVE and REPLICATION CLIENT privileges.'}`, { retriable: isRetriable(e), cause: e });
    }
    await client.startDump(opts);
    return client;
  }

  private async startDump(opts: BinlogConnectionOptions): Promise<void> {
    const answered = new Promise<void>((resolve) => (this.firstPacket = resolve));
    this.raw.addCommand(new DumpCommand(dumpPacket(opts, this.mariadb), (b, s, e) => this.onEvent(b, s, e), (err) => this.onError(err, opts)));
    let timer: NodeJS.Timeout | undefined;
    const silent = await Promise.race([answered.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), FIRST_EVENT_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (silent) {
      this.fail(mysqlError('MYSQL_CONNECT', `${opts.host}:${opts.port} accepted the binlog dump request but sent nothing for ${FIRST_EVENT_TIMEOUT_MS / 1000} s`, { retriable: true }));
    }
    if (this.error && this.head === this.queue.length) {
      const err = this.error;
      this.conn.destroy();
      throw err;
    }
    if (opts.heartbeatMs && opts.heartbeatMs > 0) this.watch(opts.heartbeatMs * 3 + 5000, opts);
  }

  /**
   * The server sends a heartbeat every heartbeatMs while it has nothing else: silence for `ms`
   * while we read means the connection or the server is hung (TCP may not notice for hours).
   */
  private watch(ms: number, opts: BinlogConnectionOptions): void {
    this.heardAt = Date.now();
    this.liveness = setInterval(() => {
      if (this.closed || this.error) return this.unwatch();
      if (this.paused) {
        this.heardAt = Date.now();
        return;
      }
      const quiet = Date.now() - this.heardAt;
      if (quiet < ms) return;
      this.unwatch();
      this.fail(mysqlError('MYSQL_TIMEOUT', `the binlog stream from ${opts.host}:${opts.port} was silent for ${Math.round(quiet / 1000)} s although the server was asked for a heartbeat every ${opts.heartbeatMs! / 1000} s: the server or the network is hung; reconnecting from the last committed position`));
      this.signal();
    }, Math.max(100, Math.min(5000, ms / 8)));
    this.liveness.unref();
  }

  private unwatch(): void {
    if (this.liveness) clearInterval(this.liveness);
    this.liveness = null;
  }

  private onEvent(b: Buffer, start: number, end: number): void {
    if (this.closed) return;
    this.heardAt = Date.now();
    // mysql2 reuses its packet and read buffers: keep a copy.
    const ev = Buffer.allocUnsafe(end - start);
    b.copy(ev, 0, start, end);
    this.queue.push(ev);
    this.queued += ev.length;
    if (!this.paused && this.queued > this.maxQueue) {
      this.paused = true;
      this.pauseCount++;
      this.raw.stream.pause();
    }
    this.signal();
  }

  private onError(err: Error, opts: BinlogConnectionOptions): void {
    if (this.closed || this.error) return;
    const e = err as Error & { errno?: number; code?: string };
    const from = 'gtidSet' in opts.start ? `GTID set ${opts.start.gtidSet}` : `${opts.start.file}:${opts.start.pos}`;
    if (e.errno === ER_MASTER_FATAL_ERROR_READING_BINLOG && /max_allowed_packet/i.test(e.message)) {
      this.error = mysqlError('MYSQL_BINLOG_CONFIG', `the server cannot send an event from ${from}: ${e.message}. Raise max_allowed_packet on the server (an event is larger than it), then run again.`, { cause: err });
    } else if (e.errno === ER_MASTER_FATAL_ERROR_READING_BINLOG) {
      this.error = mysqlError(
        'MYSQL_BINLOG_GONE',
        `the server cannot send the binlog from ${from}: ${e.message}. The binlog file holding that position was purged (or the position/GTID never existed there), so the changes since are lost to this pipeline: raise the server's binlog retention, then take a new snapshot by moving the log directory away and running again.`,
        { cause: err },
      );
    } else {
      this.error = mysqlError('MYSQL_CONNECTION_LOST', `the binlog connection to ${opts.host}:${opts.port} was lost: ${e.message}${e.code ? ` (${e.code})` : ''}; reconnecting resumes from the last committed position`, { cause: err });
    }
    this.signal();
  }

  private signal(): void {
    if (this.firstPacket) {
      const f = this.firstPacket;
      this.firstPacket = null;
      f();
    }
    if (this.waiters.length) {
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    }
  }

  /** Takes the oldest queued event off the queue (resuming the socket below half the bound). */
  private take(): Buffer | undefined {
    if (this.head >= this.queue.length) return undefined;
    const raw = this.queue[this.head]!;
    this.queue[this.head++] = undefined;
    if (this.head >= 4096 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queued -= raw.length;
    if (this.paused && this.queued < this.maxQueue / 2) {
      this.paused = false;
      this.heardAt = Date.now();
      this.raw.stream.resume();
    }
    return raw;
  }

  /**
   * The next decoded event. Events received before a connection loss are delivered first; then it
   * rejects with MYSQL_CONNECTION_LOST (retriable) or MYSQL_BINLOG_GONE. Null after close().
   */
  async next(): Promise<BinlogEvent | null> {
    for (;;) {
      if (this.closed) return null;
      const raw = this.take();
      if (raw) {
        let ev: BinlogEvent | null;
        try {
          ev = this.decoder.decode(raw);
        } catch (e) {
          // The decoder's state is unreliable after a bad event: nothing after it is returned.
          this.fail(e instanceof SluiceError ? e : mysqlError('MYSQL_BINLOG_CORRUPT', `cannot decode a binlog event in ${this.decoder.file}: ${(e as Error).message}`, { cause: e }));
          throw this.error;
        }
        if (ev) return ev;
        continue;
      }
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /**
   * The next event's bytes, undecoded (header, body and checksum): for capture and replay tools.
   * A client is read either with next() or with nextRaw(), not both.
   */
  async nextRaw(): Promise<Buffer | null> {
    for (;;) {
      if (this.closed) return null;
      const raw = this.take();
      if (raw) return raw;
      if (this.error) throw this.error;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private fail(err: SluiceError): void {
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.error = err;
    this.raw.destroy();
    this.raw.stream.destroy();
  }

  /** Ends the connection; a pending next() resolves to null. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    this.raw.destroy();
    this.raw.stream.destroy();
    this.signal();
  }
}
