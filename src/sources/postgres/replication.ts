/**
 * The replication connection: a `pg` Client opened with `replication=database`, over which we run
 * IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT and START_REPLICATION, then exchange CopyBoth data:
 *   server → XLogData ('w': walStart, walEnd, sendTime, payload) and Primary keepalive ('k')
 *   client → Standby status update ('r': write, flush, apply, clock, reply flag)
 * The socket is paused while the consumer is busy (backpressure: WAL stays on the server, memory
 * stays flat) and resumed when it asks for more.
 */
import pg from 'pg';
import { timeoutsOf, type PostgresConnectionConfig } from '../../config/fields.ts';
import { SluiceError } from '../../core/errors.ts';
import { formatLsn } from '../../core/lsn.ts';
import { pgError } from './errors.ts';

/** Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

export interface XLogData {
  walStart: bigint;
  walEnd: bigint;
  payload: Buffer;
}

export interface ReplicationHandlers {
  /** Called synchronously for every XLogData message, in order. */
  onData(msg: XLogData): void;
  /** Server keepalive: `walEnd` is the server's WAL end; `replyRequested` means answer now. */
  onKeepalive(walEnd: bigint, replyRequested: boolean): void;
  onError(err: Error): void;
  onEnd(): void;
}

export function pgClientConfig(c: PostgresConnectionConfig, replication: boolean): pg.ClientConfig {
  const t = timeoutsOf(c);
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    password: c.password,
    database: c.database,
    application_name: 'sluice',
    // Fixed output formats for the text converters (pgoutput/convert.ts).
    options: '-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=3',
    ...(replication ? { replication: 'database' } : {}),
    // Raw text values: our own type converters turn them into exact values.
    types: { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig,
    // A server that accepts TCP but never answers must fail the connect, not hang it; a dead peer
    // is noticed by TCP keepalives. Every statement of a normal connection has a deadline (the
    // server cancels it too); the replication connection's START_REPLICATION runs for as long as
    // the stream does, so its statements are timed one by one (`withDeadline`) and the stream by
    // its liveness check.
    connectionTimeoutMillis: t.connectMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    ...(replication ? {} : { query_timeout: t.statementMs, statement_timeout: t.statementMs }),
  } as pg.ClientConfig;
}

export async function connect(c: PostgresConnectionConfig, replication: boolean): Promise<pg.Client> {
  const client = new pg.Client(pgClientConfig(c, replication));
  // A connection lost while idle is reported by the next query that uses it; without a listener
  // the 'error' event would crash the process.
  client.on('error', () => {});
  const started = Date.now();
  const { connectMs } = timeoutsOf(c);
  try {
    await client.connect();
  } catch (e) {
    const err = e as Error & { code?: string };
    if (/timeout expired|connection timeout/i.test(err.message) || Date.now() - started >= connectMs) {
      throw pgError('PG_TIMEOUT', `PostgreSQL at ${c.host}:${c.port} did not complete a connection within ${connectMs / 1000} s (it accepts TCP but does not answer: a hung server, or not a PostgreSQL port). Check source.connection; retrying meanwhile (connectTimeout sets the limit).`, { cause: e });
    }
    const hint = /replication/.test(err.message)
      ? ' The server refused a replication connection: add `host replication <user> <addr> <method>` to pg_hba.conf and grant the user REPLICATION (ALTER ROLE <user> REPLICATION).'
      : '';
    throw pgError('PG_CONNECT', `cannot connect to PostgreSQL at ${c.host}:${c.port} database ${c.database} as ${c.user}: ${err.message}.${hint}`, {
      retriable: ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P03'].includes(err.code ?? ''),
      cause: e,
    });
  }
  return client;
}

/**
 * Ends a client without waiting on a server that does not answer: after a second the socket is
 * destroyed (pg's end() waits for the server to close its side).
 */
export async function closeClient(client: pg.Client | null | undefined): Promise<void> {
  if (!client) return;
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([client.end().then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 1000)))]);
  clearTimeout(timer);
  if (!ended) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * Runs one statement of the replication connection (which has no client-side statement timeout)
 * with a deadline: past it, the connection is destroyed and PG_TIMEOUT (retriable) says what was
 * waited for.
 */
export async function withDeadline<T>(client: pg.Client, c: PostgresConnectionConfig, what: string, run: Promise<T>): Promise<T> {
  const { statementMs } = timeoutsOf(c);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      reject(pgError('PG_TIMEOUT', `PostgreSQL at ${c.host}:${c.port} did not finish ${what} within ${statementMs / 1000} s; retrying (statementTimeout of source.connection sets the limit)`));
    }, statementMs);
  });
  try {
    return await Promise.race([run, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A statement that ran out of time (pg's client-side deadline, or the server's statement_timeout)
 * as PG_TIMEOUT, which is retriable: the server is hung or overloaded, or a lock is held for long.
 */
export function translateTimeout(e: unknown, c: PostgresConnectionConfig): unknown {
  if (e instanceof SluiceError) return e;
  const err = e as { message?: string; code?: string };
  if (err?.message === 'Query read timeout' || err?.code === '57014') {
    const { statementMs } = timeoutsOf(c);
    return pgError('PG_TIMEOUT', `a statement to PostgreSQL at ${c.host}:${c.port} got no answer within ${statementMs / 1000} s (${err.message}): the server is hung or overloaded, or a lock is held that long; retrying (statementTimeout of source.connection sets the limit)`, { cause: e });
  }
  return e;
}

/** Encodes a Standby Status Update ('r'). */
export function statusUpdate(write: bigint, flush: bigint, apply: bigint, replyRequested: boolean): Buffer {
  const b = Buffer.allocUnsafe(34);
  b[0] = 0x72; // 'r'
  b.writeBigUInt64BE(write, 1);
  b.writeBigUInt64BE(flush, 9);
  b.writeBigUInt64BE(apply, 17);
  b.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_OFFSET_US, 25);
  b[33] = replyRequested ? 1 : 0;
  return b;
}

export class ReplicationStream {
  private readonly client: pg.Client;
  private paused = false;
  private ended = false;
  /** When the server last sent anything (data or keepalive), while the socket was being read. */
  private heardAt = Date.now();
  private lastStatus: [bigint, bigint, bigint] = [0n, 0n, 0n];
  private liveness: NodeJS.Timeout | null = null;

  constructor(client: pg.Client) {
    this.client = client;
  }

  /**
   * Fails the stream (PG_TIMEOUT, retriable) when the server sends nothing for `ms` while we read:
   * after half of it, a status update asks the server to answer at once, which a live server
   * does with a keepalive.
   */
  private watch(ms: number, where: string, onError: (e: Error) => void): void {
    this.heardAt = Date.now();
    let pinged = false;
    this.liveness = setInterval(() => {
      if (this.ended) return this.unwatch();
      if (this.paused) {
        this.heardAt = Date.now();
        return;
      }
      const quiet = Date.now() - this.heardAt;
      if (quiet >= ms) {
        this.unwatch();
        this.ended = true;
        this.conn.stream.destroy();
        onError(pgError('PG_TIMEOUT', `the replication stream from ${where} was silent for ${Math.round(quiet / 1000)} s, also after asking the server to answer: the server or the network is hung; reconnecting (statementTimeout of source.connection sets the limit)`));
      } else if (quiet >= ms / 2 && !pinged) {
        pinged = true;
        this.sendStatus(...this.lastStatus, true);
      } else if (quiet < ms / 2) pinged = false;
    }, Math.max(50, Math.min(5000, ms / 8)));
    this.liveness.unref();
  }

  private unwatch(): void {
    if (this.liveness) clearInterval(this.liveness);
    this.liveness = null;
  }

  private get conn(): any {
    return (this.client as any).connection;
  }

  /**
   * Starts logical replication from `startLsn` with the given plugin options. Resolves once the
   * server switched to CopyBoth mode; data then flows to `handlers`.
   */
  start(slot: string, startLsn: bigint, options: Record<string, string>, handlers: ReplicationHandlers, liveness?: { ms: number; where: string }): Promise<void> {
    const opts = Object.entries(options)
      .map(([k, v]) => `"${k}" '${v.replace(/'/g, "''")}'`)
      .join(', ');
    const sql = `START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(startLsn)}${opts ? ` (${opts})` : ''}`;
    const conn = this.conn;
    return new Promise((resolve, reject) => {
      let started = false;
      conn.once('replicationStart', () => {
        started = true;
        if (liveness) this.watch(liveness.ms, liveness.where, (e) => handlers.onError(e));
        resolve();
      });
      conn.on('copyData', (msg: { chunk: Buffer }) => {
        this.heardAt = Date.now();
        const b = msg.chunk;
        const kind = b[0];
        if (kind === 0x77) {
          // 'w' XLogData: walStart(8) walEnd(8) sendTime(8) payload
          // Copied: pg's parser reuses its read buffer, and we process messages later.
          handlers.onData({ walStart: b.readBigUInt64BE(1), walEnd: b.readBigUInt64BE(9), payload: Buffer.from(b.subarray(25)) });
        } else if (kind === 0x6b) {
          // 'k' keepalive: walEnd(8) sendTime(8) reply(1)
          handlers.onKeepalive(b.readBigUInt64BE(1), b[17] === 1);
        }
      });
      this.client.query(sql).then(
        () => {
          this.ended = true;
          this.unwatch();
          handlers.onEnd();
        },
        (err: Error) => {
          this.ended = true;
          this.unwatch();
          if (!started) reject(translateStartError(err, slot));
          else handlers.onError(err);
        },
      );
      this.client.on('error', (err) => {
        if (!started) reject(err);
        else handlers.onError(err);
      });
    });
  }

  sendStatus(write: bigint, flush: bigint, apply: bigint, reply = false): void {
    if (this.ended) return;
    this.lastStatus = [write, flush, apply];
    this.conn.sendCopyFromChunk(statusUpdate(write, flush, apply, reply));
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.conn.stream.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.heardAt = Date.now();
      this.conn.stream.resume();
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Ends CopyBoth politely, then closes the connection. */
  async stop(): Promise<void> {
    this.unwatch();
    if (!this.ended) {
      try {
        this.conn.endCopyFrom();
      } catch {
        /* connection already gone */
      }
    }
    this.resume();
    await closeClient(this.client);
  }
}

function translateStartError(err: Error, slot: string): Error {
  const code = (err as { code?: string }).code;
  if (code === '55006') {
    return pgError('PG_SLOT_IN_USE', `replication slot "${slot}" is in use by another process (another sluice run of this pipeline, or pg_recvlogical). Stop it, or give this pipeline its own source.slot.`, { cause: err });
  }
  if (code === '42704') {
    return pgError('PG_SLOT_MISSING', `replication slot "${slot}" does not exist.`, { cause: err });
  }
  return err;
}
