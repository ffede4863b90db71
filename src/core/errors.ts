/**
 * Coded errors. Every error a user can see carries a stable code (documented in docs/errors.md),
 * a message that says what to do, and whether retrying can help.
 */
export class SluiceError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  constructor(code: string, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

const RETRIABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03', '53300', '40001', '40P01',
  'PROTOCOL_CONNECTION_LOST', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN',
]);

export function isRetriable(err: unknown): boolean {
  if (err instanceof SluiceError) return err.retriable;
  const e = err as { code?: string; message?: string } | null;
  const code = e?.code ?? '';
  // Network-level failures and PostgreSQL's connection-exception (08xxx), operator-intervention
  // (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now) and too-many-connections
  // states are worth a retry; anything else is a bug or bad input.
  // 40001/40P01: serialization failure and deadlock, which a retry of the transaction resolves.
  // MySQL/MariaDB (mysql2 codes): lost connections, deadlocks, lock waits, too many connections.
  if (RETRIABLE_CODES.has(code) || code.startsWith('08')) return true;
  return /Connection terminated|connection is closed|Client was closed|not queryable|connection is in closed state|Could not set lock on file/i.test(e?.message ?? '');
}
