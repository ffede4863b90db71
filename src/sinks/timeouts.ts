/**
 * Deadlines of the sinks' database connections: connecting has the connection's connectTimeout,
 * each statement its statementTimeout (config/fields.ts). A statement past its deadline gives
 * up its connection (the server is hung, or a lock is held that long) and fails the batch with
 * SINK_CONNECTION_LOST, which the sink task retries from the offsets stored in the target.
 */
import { timeoutsOf, type ConnectionConfig } from '../config/fields.ts';
import { sinkError } from './errors.ts';

/** pg.Client options: the connect deadline, TCP keepalives and the server's own statement_timeout. */
export function pgDeadlineOptions(c: ConnectionConfig): { connectionTimeoutMillis: number; keepAlive: boolean; keepAliveInitialDelayMillis: number; statement_timeout: number } {
  const t = timeoutsOf(c);
  return { connectionTimeoutMillis: t.connectMs, keepAlive: true, keepAliveInitialDelayMillis: 10_000, statement_timeout: t.statementMs };
}

/**
 * Gives every statement made through `client.query` (a pg.Client, or a mysql2 promise
 * connection) the connection's statementTimeout: past it, `destroy` closes the connection and
 * the statement fails with SINK_CONNECTION_LOST.
 */
export function withStatementDeadline<C extends { query: (...args: any[]) => any }>(client: C, c: ConnectionConfig, what: string, destroy: (reason: Error) => void): C {
  const query = client.query.bind(client);
  client.query = ((...args: unknown[]) => {
    const r = query(...args);
    return r instanceof Promise ? underDeadline(r, c, what, destroy) : r;
  }) as C['query'];
  return client;
}

/** A statement's promise under the connection's statementTimeout (see withStatementDeadline). */
export function underDeadline<T>(r: Promise<T>, c: ConnectionConfig, what: string, destroy: (reason: Error) => void): Promise<T> {
  const { statementMs } = timeoutsOf(c);
  let late: Error | null = null;
  const timer = setTimeout(() => {
    late = sinkError('SINK_CONNECTION_LOST', `${what} at ${c.host}:${c.port}/${c.database} did not answer a statement within ${statementMs / 1000} s (the server is hung or overloaded, or a lock is held that long): the connection was given up; reconnecting (statementTimeout of the sink's connection sets the limit)`);
    destroy(late);
  }, statementMs);
  return r.then(
    (v) => (clearTimeout(timer), v),
    (e) => {
      clearTimeout(timer);
      throw late ?? e;
    },
  );
}

/** Ends a connection without waiting more than a second on a server that does not answer. */
export async function closeWithin(end: () => Promise<unknown>, destroy: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([end().then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 1000)))]);
  clearTimeout(timer);
  if (!ended) destroy();
}

/**
 * A failed connect as SINK_CONNECTION_LOST (retried) when it ran out of time or the server could
 * not be reached; null for other failures (a wrong password is the caller's to report).
 */
export function connectFailure(e: unknown, c: ConnectionConfig, what: string): Error | null {
  const err = e as { code?: string; message?: string };
  const { connectMs } = timeoutsOf(c);
  if (err?.code === 'ETIMEDOUT' || /timeout expired|connection timeout/i.test(err?.message ?? '')) {
    return sinkError('SINK_CONNECTION_LOST', `${what} at ${c.host}:${c.port} did not complete a connection within ${connectMs / 1000} s (it accepts TCP but does not answer: a hung server, or not its port); retrying (connectTimeout of the sink's connection sets the limit)`, { cause: e });
  }
  if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'PROTOCOL_CONNECTION_LOST'].includes(err?.code ?? '')) {
    return sinkError('SINK_CONNECTION_LOST', `cannot reach ${what} at ${c.host}:${c.port} (${err.code}); retrying`, { cause: e });
  }
  return null;
}
