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

export function isRetriable(err: unknown): boolean {
  if (err instanceof SluiceError) return err.retriable;
  const code = (err as { code?: string } | null)?.code;
  // Network-level failures are worth a retry; anything else is a bug or bad input.
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === '57P01';
}
