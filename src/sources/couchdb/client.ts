/**
 * The CouchDB HTTP API, as far as the source uses it: a database's info and its `_changes` feed.
 * Credentials travel in an Authorization header, never in a URL, and every message names the
 * server as `http://user@host:port` (no password: a message may reach a log, status or the API).
 */
import { timeoutsOf, type ConnectionConfig } from '../../config/fields.ts';
import { couchdbError } from './errors.ts';
import { parseJson } from '../../core/serde/parse.ts';
import type { SluiceError } from '../../core/errors.ts';

export interface CouchConnection extends Omit<ConnectionConfig, 'database'> {
  database?: string;
  tls: boolean;
}

/** One row of a `_changes` response (`style=all_docs`, `include_docs=true`, `conflicts=true`). */
export interface ChangeRow {
  id: string;
  seq: unknown;
  changes: { rev: string }[];
  deleted?: boolean;
  doc?: Record<string, unknown> & { _id: string; _rev: string; _conflicts?: string[]; _deleted?: boolean };
}

export interface ChangesPage {
  results: ChangeRow[];
  last_seq: unknown;
}

/** Codes of network failures that a retry may cure. */
const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

export class CouchClient {
  readonly base: string;
  /** The server as messages name it: no password. */
  readonly display: string;
  private readonly auth: string | null;
  private readonly timeouts: { connectMs: number; statementMs: number };

  constructor(c: CouchConnection) {
    const host = c.host.includes(':') ? `[${c.host}]` : c.host;
    this.base = `${c.tls ? 'https' : 'http'}://${host}:${c.port}`;
    this.display = `${c.tls ? 'https' : 'http'}://${c.user ? `${encodeURIComponent(c.user)}@` : ''}${host}:${c.port}`;
    this.auth = c.user ? 'Basic ' + Buffer.from(`${c.user}:${c.password ?? ''}`).toString('base64') : null;
    this.timeouts = timeoutsOf(c);
  }

  private url(path: string, query?: Record<string, string>): string {
    return `${this.base}${path}${query ? '?' + new URLSearchParams(query).toString() : ''}`;
  }

  /** `GET /<db>`: the database's info (its `update_seq`); COUCHDB_DATABASE_MISSING when it is not there. */
  async databaseInfo(db: string, signal?: AbortSignal): Promise<{ update_seq: unknown; doc_count?: number }> {
    const res = await this.request(`/${encodeURIComponent(db)}`, undefined, signal, this.timeouts.statementMs, db);
    const text = await res.text();
    if (!res.ok) throw this.statusError(res.status, text, db);
    return JSON.parse(text);
  }

  /**
   * One longpoll request of `_changes` from `since`: returns as soon as the server has changes (at
   * most `limit`), else holds the request open (with heartbeat newlines). `idleMs`: the longest
   * the server may send nothing (0: no limit). `maxBytes`: the largest response taken.
   */
  async changes(db: string, since: string, o: { limit: number; heartbeatMs: number; idleMs: number; maxBytes: number; signal: AbortSignal }): Promise<ChangesPage> {
    const query: Record<string, string> = { feed: 'longpoll', style: 'all_docs', include_docs: 'true', conflicts: 'true', since, limit: String(o.limit) };
    if (o.heartbeatMs > 0) query.heartbeat = String(o.heartbeatMs);
    else query.timeout = '60000';
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    o.signal.addEventListener('abort', onAbort, { once: true });
    let idle: NodeJS.Timeout | undefined;
    let timedOut = false;
    const arm = () => {
      if (o.idleMs <= 0) return;
      clearTimeout(idle);
      idle = setTimeout(() => {
        timedOut = true;
        ac.abort();
      }, o.idleMs);
    };
    try {
      arm();
      const res = await this.request(`/${encodeURIComponent(db)}/_changes`, query, ac.signal, o.idleMs > 0 ? Math.max(this.timeouts.connectMs, o.idleMs) : this.timeouts.statementMs, db);
      if (!res.ok) throw this.statusError(res.status, await res.text(), db);
      const chunks: Buffer[] = [];
      let bytes = 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          arm();
          bytes += chunk.length;
          if (bytes > o.maxBytes) {
            ac.abort();
            throw couchdbError('COUCHDB_FEED', `one _changes response of database ${db} on ${this.display} is larger than ${o.maxBytes} bytes (the source's queue bound): lower source.limit so that fewer documents come at a time`, { retriable: false });
          }
          chunks.push(Buffer.from(chunk));
        }
      } catch (e) {
        if ((e as SluiceError).code === 'COUCHDB_FEED') throw e;
        throw this.networkError(e, db, timedOut, o.idleMs);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let page: ChangesPage;
      try {
        page = parseJson(text) as unknown as ChangesPage;
      } catch {
        throw couchdbError('COUCHDB_FEED', `the _changes feed of database ${db} on ${this.display} answered with a body that is not JSON (${JSON.stringify(text.slice(0, 200))}): is this a CouchDB server?`, { retriable: true });
      }
      if (!page || !Array.isArray(page.results)) throw couchdbError('COUCHDB_FEED', `the _changes feed of database ${db} on ${this.display} answered without \`results\`: is this a CouchDB server?`, { retriable: false });
      return page;
    } catch (e) {
      if ((e as SluiceError).code?.startsWith?.('COUCHDB_')) throw e;
      throw this.networkError(e, db, timedOut, o.idleMs);
    } finally {
      clearTimeout(idle);
      o.signal.removeEventListener('abort', onAbort);
    }
  }

  /** A GET; `headersMs` bounds the wait for the answer's headers. The body stays tied to `signal`. */
  private async request(path: string, query: Record<string, string> | undefined, signal: AbortSignal | undefined, headersMs: number, db: string): Promise<Response> {
    const timer = new AbortController();
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      timer.abort();
    }, headersMs);
    try {
      return await fetch(this.url(path, query), { headers: { accept: 'application/json', ...(this.auth ? { authorization: this.auth } : {}) }, signal: signal ? AbortSignal.any([signal, timer.signal]) : timer.signal });
    } catch (e) {
      if (timedOut) throw couchdbError('COUCHDB_TIMEOUT', `CouchDB at ${this.display} did not answer a request for database ${db} within ${headersMs / 1000} s (hung or unreachable). Check source.connection; retrying meanwhile (connectTimeout / statementTimeout of the connection set the limit)`);
      throw this.networkError(e, db, false, 0);
    } finally {
      clearTimeout(t);
    }
  }

  private statusError(status: number, body: string, db: string): SluiceError {
    let reason: string;
    try {
      const j = JSON.parse(body);
      reason = [j.error, j.reason].filter(Boolean).join(': ');
    } catch {
      reason = body.slice(0, 200);
    }
    if (status === 401) return couchdbError('COUCHDB_AUTH', `CouchDB at ${this.display} refused the credentials of source.connection (HTTP 401${reason ? `, ${reason}` : ''}): check the user and password`);
    if (status === 403) return couchdbError('COUCHDB_AUTH', `CouchDB at ${this.display}: the user may not read database ${db} (HTTP 403${reason ? `, ${reason}` : ''}): make the user a member of the database (its _security) or use another user`);
    if (status === 404) return couchdbError('COUCHDB_DATABASE_MISSING', `database ${db} does not exist on CouchDB at ${this.display} (HTTP 404${reason ? `, ${reason}` : ''}): create it, or remove it from source.databases`);
    return couchdbError('COUCHDB_FEED', `CouchDB at ${this.display} answered HTTP ${status} for database ${db}${reason ? ` (${reason})` : ''}`, { retriable: status >= 500 || status === 429 });
  }

  private networkError(e: unknown, db: string, timedOut: boolean, idleMs: number): SluiceError {
    if (timedOut) return couchdbError('COUCHDB_TIMEOUT', `the _changes feed of database ${db} on ${this.display} sent nothing, not even a heartbeat, for ${idleMs / 1000} s: the connection is taken for dead and opened again from the last durable checkpoint`);
    const err = e as { message?: string; code?: string; cause?: { code?: string; message?: string } };
    const code = err.cause?.code ?? err.code ?? '';
    const why = err.cause?.message ?? err.message ?? String(e);
    const transient = TRANSIENT.has(code) || /terminated|other side closed|socket/i.test(why);
    // A URL with the password never reaches the message: the request URL has none, and the cause is named by its code.
    return couchdbError('COUCHDB_CONNECT', `cannot reach CouchDB at ${this.display} (database ${db}): ${code || why}${transient ? '; retrying' : '. Check source.connection'}`, { retriable: transient, cause: e });
  }
}
