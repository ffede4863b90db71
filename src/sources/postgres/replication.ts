/**
 * The replication connection: a `pg` Client opened with `replication=database`, over which we run
 * IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT and START_REPLICATION, then exchange CopyBoth data:
 *   server → XLogData ('w': walStart, walEnd, sendTime, payload) and Primary keepalive ('k')
 *   client → Standby status update ('r': write, flush, apply, clock, reply flag)
 * The socket is paused while the consumer is busy (backpressure: WAL stays on the server, memory
 * stays flat) and resumed when it asks for more.
 */
import pg from 'pg';
import type { PostgresConnectionConfig } from '../../config/fields.ts';
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
  } as pg.ClientConfig;
}

export async function connect(c: PostgresConnectionConfig, replication: boolean): Promise<pg.Client> {
  const client = new pg.Client(pgClientConfig(c, replication));
  // A connection lost while idle is reported by the next query that uses it; without a listener
  // the 'error' event would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    const err = e as Error & { code?: string };
    const hint = /replication/.test(err.message)
      ? ' The server refused a replication connection: add `host replication <user> <addr> <method>` to pg_hba.conf and grant the user REPLICATION (ALTER ROLE <user> REPLICATION).'
      : '';
    throw pgError('PG_CONNECT', `cannot connect to PostgreSQL at ${c.host}:${c.port} database ${c.database} as ${c.user}: ${err.message}.${hint}`, {
      retriable: err.code === 'ECONNREFUSED' || err.code === '57P03',
      cause: e,
    });
  }
  return client;
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

  constructor(client: pg.Client) {
    this.client = client;
  }

  private get conn(): any {
    return (this.client as any).connection;
  }

  /**
   * Starts logical replication from `startLsn` with the given plugin options. Resolves once the
   * server switched to CopyBoth mode; data then flows to `handlers`.
   */
  start(slot: string, startLsn: bigint, options: Record<string, string>, handlers: ReplicationHandlers): Promise<void> {
    const opts = Object.entries(options)
      .map(([k, v]) => `"${k}" '${v.replace(/'/g, "''")}'`)
      .join(', ');
    const sql = `START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(startLsn)}${opts ? ` (${opts})` : ''}`;
    const conn = this.conn;
    return new Promise((resolve, reject) => {
      let started = false;
      conn.once('replicationStart', () => {
        started = true;
        resolve();
      });
      conn.on('copyData', (msg: { chunk: Buffer }) => {
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
          handlers.onEnd();
        },
        (err: Error) => {
          this.ended = true;
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
      this.conn.stream.resume();
    }
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Ends CopyBoth politely, then closes the connection. */
  async stop(): Promise<void> {
    if (!this.ended) {
      try {
        this.conn.endCopyFrom();
      } catch {
        /* connection already gone */
      }
    }
    this.resume();
    await Promise.race([this.client.end().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
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
