/**
 * The one restart policy of the engine's tasks (source, processors, sinks): a task runs attempts;
 * an attempt that fails with a retriable error (a lost connection, a server restarting) is retried
 * after a backoff of 0.5 s doubling to 30 s, reset once an attempt made progress; a permanent error
 * ends the task as failed, with its coded error kept for /status and `sluice status`.
 */
import { isRetriable } from '../core/errors.ts';
import { redact, type Logger } from '../core/logger.ts';

export type TaskState = 'starting' | 'running' | 'retrying' | 'failed' | 'stopped' | 'done';

export interface TaskError {
  code: string;
  message: string;
  at: string;
}

export interface Attempt {
  /** Call when the attempt made progress (a commit, an applied batch): the next failure backs off from the start. */
  progressed(): void;
  /** Call once the attempt is up (connected, resumed). */
  running(): void;
}

export interface SuperviseOptions {
  /** `source`, `sink warehouse`, … for log lines. */
  name: string;
  logger: Logger;
  signal: AbortSignal;
  /** Called on every state change. */
  onState?(state: TaskState, error: TaskError | null): void;
  /** Called after a failed attempt (metrics). */
  onFailure?(error: unknown, willRetry: boolean): void;
  /** A retriable error that has lasted this many attempts in a row is given up on (default: never). */
  giveUpAfter?(error: unknown, failuresInARow: number): boolean;
  /** What a retry resumes from, for the log line. */
  resumeHint?: string;
}

/** The delay before retry number `n` (1-based): 0.5 s, 1 s, 2 s, … 30 s. */
export const backoffMs = (n: number): number => Math.min(30_000, 250 * 2 ** n);

/**
 * Runs `attempt` until it returns (the task is done), the signal aborts (stopped), or it fails
 * permanently (the error is thrown). Resolves with the final state.
 */
export async function supervise(opts: SuperviseOptions, attempt: (a: Attempt) => Promise<void>): Promise<'done' | 'stopped'> {
  let failures = 0;
  const set = (s: TaskState, e: TaskError | null = null) => opts.onState?.(s, e);
  set('starting');
  for (;;) {
    let progressed = false;
    try {
      await attempt({ progressed: () => (progressed = true), running: () => set('running') });
      if (opts.signal.aborted) {
        set('stopped');
        return 'stopped';
      }
      set('done');
      return 'done';
    } catch (e) {
      if (opts.signal.aborted) {
        set('stopped');
        return 'stopped';
      }
      const err = e as { code?: string; message?: string };
      // Status and /status show this message: no password in it, whatever a driver put there.
      const te: TaskError = { code: err.code ?? 'FAILED', message: redact(err.message ?? String(e)), at: new Date().toISOString() };
      failures = progressed ? 1 : failures + 1;
      const limit = (e as { maxRetries?: number }).maxRetries;
      const retry = isRetriable(e) && !(limit !== undefined && failures > limit) && !opts.giveUpAfter?.(e, failures);
      opts.onFailure?.(e, retry);
      if (!retry) {
        set('failed', te);
        throw e;
      }
      set('retrying', te);
      const delay = backoffMs(failures);
      opts.logger.warn(`${opts.name} failed, retrying${opts.resumeHint ? ` from ${opts.resumeHint}` : ''}`, { code: te.code, error: te.message, retryInMs: delay });
      await sleep(delay, opts.signal);
      if (opts.signal.aborted) {
        set('stopped');
        return 'stopped';
      }
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
