/**
 * The connection to NATS and the one place its errors become coded LOG_NATS_… errors. Every
 * request has a deadline (log.requestTimeout, enforced here as well as by the client), connecting
 * has log.connectTimeout, so no call waits forever on a server that is gone or hung.
 */
import { readFileSync } from 'node:fs';
import type { JetStreamManager, KV, NatsConnection, NatsError, StoredMsg, StreamConfig, StreamInfo } from 'nats';
import { maskUrl } from '../../config/fields.ts';
import type { SluiceError } from '../../core/errors.ts';
import { logError } from '../errors.ts';

export type NatsModule = typeof import('nats');

export interface NatsClientOptions {
  servers: string[];
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  user?: string;
  password?: string;
  token?: string;
  /** A .creds file (JWT and NKey seed), for servers with decentralized auth. */
  credentials?: string;
}

/** Server error codes (JetStream's `err_code`) the client acts on. */
export const JS_ERR = {
  STREAM_NOT_FOUND: 10059,
  NO_MESSAGE: 10037,
  WRONG_LAST_SEQUENCE: 10071,
  STREAM_NAME_IN_USE: 10058,
} as const;

/** A JetStream API error's `err_code`, or undefined for other errors. */
export function jsErrCode(e: unknown): number | undefined {
  return (e as NatsError | null)?.api_error?.err_code;
}

const AUTH_CODES = new Set(['BAD_AUTHENTICATION', 'BAD_CREDS', 'AUTHORIZATION_VIOLATION', 'PERMISSIONS_VIOLATION', 'AUTHENTICATION_EXPIRED', 'AUTHENTICATION_TIMEOUT', 'ACCOUNT_EXPIRED']);
const CONNECTION_CODES = new Set(['CONNECTION_REFUSED', 'CONNECTION_CLOSED', 'CONNECTION_DRAINING', 'CONNECTION_TIMEOUT', 'DISCONNECT']);

export class NatsClient {
  readonly jsm: JetStreamManager;
  /** The largest message the server takes (its max_payload). */
  readonly maxPayload: number;

  private constructor(
    readonly nats: NatsModule,
    readonly nc: NatsConnection,
    jsm: JetStreamManager,
    readonly o: NatsClientOptions,
  ) {
    this.jsm = jsm;
    this.maxPayload = nc.info?.max_payload ?? 1 << 20;
  }

  /** The servers as messages name them (passwords in URLs masked). */
  static serversText(servers: string[]): string {
    return servers.map((s) => maskUrl(s)).join(', ');
  }

  get servers(): string {
    return NatsClient.serversText(this.o.servers);
  }

  static async connect(nats: NatsModule, o: NatsClientOptions): Promise<NatsClient> {
    const servers = NatsClient.serversText(o.servers);
    let authenticator;
    if (o.credentials) {
      let creds: Uint8Array;
      try {
        creds = readFileSync(o.credentials);
      } catch (e) {
        throw logError('LOG_NATS_AUTH', `cannot read the NATS credentials file ${o.credentials} (log.credentials): ${(e as Error).message}`, { cause: e });
      }
      authenticator = nats.credsAuthenticator(creds);
    }
    // Each server gets connectTimeout; all of them together a little more, and then we give up.
    const deadline = o.connectTimeoutMs * Math.max(1, o.servers.length) + 1000;
    let nc: NatsConnection;
    let connecting: Promise<NatsConnection> | undefined;
    try {
      nc = await withDeadline(
        (connecting = nats.connect({
          servers: o.servers,
          name: 'sluice',
          timeout: o.connectTimeoutMs,
          user: o.user,
          pass: o.password,
          token: o.token,
          authenticator,
          // Reconnect for a while after a lost connection (a server restart); requests meanwhile
          // fail with their timeout, which the engine retries.
          maxReconnectAttempts: 60,
          reconnectTimeWait: 1000,
          pingInterval: 10_000,
          maxPingOut: 3,
        })),
        deadline,
        () => logError('LOG_NATS_UNREACHABLE', `no NATS server at ${servers} answered within ${deadline} ms (log.connectTimeout ${o.connectTimeoutMs} ms per server). Check that nats-server runs there and log.servers names it`),
      );
    } catch (e) {
      // A connection that completes after the deadline is closed, not left running.
      connecting?.then((late) => late.close()).catch(() => {});
      throw NatsClient.connectError(e, servers);
    }
    const version = nc.info?.version ?? '0.0.0';
    const [maj, min] = version.split('.').map(Number);
    if (maj < 2 || (maj === 2 && min < 9)) {
      await nc.close().catch(() => {});
      throw logError('LOG_NATS_NO_JETSTREAM', `the NATS server at ${servers} is version ${version}; the nats log needs 2.9 or later (with JetStream)`);
    }
    let jsm: JetStreamManager;
    try {
      jsm = await withDeadline(nc.jetstreamManager({ timeout: o.requestTimeoutMs }), o.requestTimeoutMs + 1000, () => logError('LOG_NATS_TIMEOUT', `the NATS server at ${servers} did not answer a JetStream request within ${o.requestTimeoutMs} ms (log.requestTimeout)`));
    } catch (e) {
      await nc.close().catch(() => {});
      const code = (e as NatsError).code;
      if (code === '503' || /jetstream not enabled/i.test((e as Error).message)) {
        throw logError('LOG_NATS_NO_JETSTREAM', `the NATS server at ${servers} has no JetStream for this account: start nats-server with -js (and a store directory, -sd), or enable JetStream for the account`, { cause: e });
      }
      throw mapError(e, 'opening JetStream', servers, o.requestTimeoutMs);
    }
    return new NatsClient(nats, nc, jsm, o);
  }

  private static connectError(e: unknown, servers: string): SluiceError {
    if ((e as SluiceError).code?.startsWith?.('LOG_')) return e as SluiceError;
    const code = (e as NatsError).code;
    if (AUTH_CODES.has(code)) return logError('LOG_NATS_AUTH', `the NATS server at ${servers} refused the connection: ${(e as Error).message}. Check log.user/password, log.token or log.credentials`, { cause: e });
    return logError('LOG_NATS_UNREACHABLE', `cannot connect to the NATS servers ${servers}: ${(e as Error).message}. Check that nats-server runs there (with JetStream, -js) and that log.servers names it`, { cause: e });
  }

  /** Runs one request to the server with the request deadline, turning its failure into a coded error. */
  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(fn(), this.o.requestTimeoutMs + 1000, () => logError('LOG_NATS_TIMEOUT', `${what}: the NATS server at ${this.servers} did not answer within ${this.o.requestTimeoutMs} ms (log.requestTimeout)`));
    } catch (e) {
      throw this.error(e, what);
    }
  }

  error(e: unknown, what: string): SluiceError {
    return mapError(e, what, this.servers, this.o.requestTimeoutMs);
  }

  // ---------- JetStream requests ----------

  streamInfo(name: string): Promise<StreamInfo> {
    return this.call(`stream ${name}`, () => this.jsm.streams.info(name));
  }

  /** A stream's info, or null when it does not exist. */
  async streamInfoOrNull(name: string): Promise<StreamInfo | null> {
    try {
      return await this.call(`stream ${name}`, () => this.jsm.streams.info(name));
    } catch (e) {
      if (jsErrCode((e as SluiceError).cause) === JS_ERR.STREAM_NOT_FOUND) return null;
      throw e;
    }
  }

  addStream(cfg: Partial<StreamConfig> & { name: string }): Promise<StreamInfo> {
    return this.call(`creating stream ${cfg.name}`, () => this.jsm.streams.add(cfg));
  }

  updateStream(cfg: Partial<StreamConfig> & { name: string }): Promise<StreamInfo> {
    return this.call(`updating stream ${cfg.name}`, () => this.jsm.streams.update(cfg.name, cfg));
  }

  /** The message at `seq`, or null when there is none (deleted, purged, not stored yet). */
  async getMessage(stream: string, seq: number): Promise<StoredMsg | null> {
    try {
      // STREAM.MSG.GET asks the stream's leader, so a message acknowledged to its publisher is
      // always found (a direct get may be answered by a replica that has not stored it yet).
      return await this.call(`reading ${stream} at ${seq}`, () => this.jsm.streams.getMessage(stream, { seq }));
    } catch (e) {
      if (jsErrCode((e as SluiceError).cause) === JS_ERR.NO_MESSAGE) return null;
      throw e;
    }
  }

  deleteMessage(stream: string, seq: number): Promise<boolean> {
    return this.call(`deleting ${stream} message ${seq}`, () => this.jsm.streams.deleteMessage(stream, seq, false)).catch((e: SluiceError) => {
      if (jsErrCode(e.cause) === JS_ERR.NO_MESSAGE) return false;
      throw e;
    });
  }

  /** Removes the messages below `seq`. */
  purgeBelow(stream: string, seq: number): Promise<unknown> {
    return this.call(`purging ${stream} below ${seq}`, () => this.jsm.streams.purge(stream, { seq }));
  }

  async kv(bucket: string, o: { replicas: number; bindOnly: boolean }): Promise<KV> {
    const js = this.nc.jetstream({ timeout: this.o.requestTimeoutMs });
    // allow_direct off: gets go to the stream leader, so a reader sees every acknowledged update.
    return this.call(`opening KV bucket ${bucket}`, () => js.views.kv(bucket, { history: 1, replicas: o.replicas, allow_direct: false, bindOnly: o.bindOnly, timeout: this.o.requestTimeoutMs }));
  }

  async close(): Promise<void> {
    await withDeadline(this.nc.close(), 5000, () => new Error('close timed out')).catch(() => {});
  }
}

/** A NATS failure as a coded error naming what was being done and the servers. */
export function mapError(e: unknown, what: string, servers: string, timeoutMs: number): SluiceError {
  const err = e as NatsError & SluiceError;
  if (typeof err?.code === 'string' && err.code.startsWith('LOG_')) return err;
  const code = err?.code;
  const msg = err?.message ?? String(e);
  if (code === 'TIMEOUT' || code === '408') return logError('LOG_NATS_TIMEOUT', `${what}: the NATS server at ${servers} did not answer within ${timeoutMs} ms (log.requestTimeout)`, { cause: e });
  if (CONNECTION_CODES.has(code)) return logError('LOG_NATS_UNREACHABLE', `${what}: the connection to the NATS servers ${servers} is lost (${msg}); retrying reconnects`, { cause: e });
  if (AUTH_CODES.has(code)) return logError('LOG_NATS_AUTH', `${what}: the NATS server at ${servers} refused it (${msg}); the log's user needs publish and subscribe rights on its namespace's subjects, $JS.API.> and $KV.>`, { cause: e });
  const api = err?.api_error;
  if (api) {
    // 503/500 and "insufficient resources" are states of the server that can pass; the rest
    // (a stream configured differently, a bad request) repeat until someone changes something.
    const retriable = api.code >= 500 || api.err_code === 10023;
    return logError('LOG_NATS_ERROR', `${what}: JetStream at ${servers} refused it: ${api.description} (code ${api.code}, err_code ${api.err_code})`, { retriable, cause: e });
  }
  if (code === '503') return logError('LOG_NATS_NO_JETSTREAM', `${what}: no JetStream responder at ${servers} (is JetStream enabled for this account, and does the stream have a leader?)`, { cause: e });
  return logError('LOG_NATS_ERROR', `${what}: ${msg} (NATS servers ${servers})`, { retriable: false, cause: e });
}

/** `p`, or `onTimeout()` thrown after `ms`. */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
