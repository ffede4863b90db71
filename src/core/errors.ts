/**
 * Coded errors. Every error a user can see carries a stable code, a message that says what to do,
 * and whether retrying can help. Codes are declared in catalogs (one per area: the config loader,
 * the log, each connector), which say once whether a code is retriable and what it means; the
 * catalogs are what docs/errors.md is generated from (`npm run docs`), and a test fails when the two
 * drift. Code outside this file raises errors only through a catalog's `error()` (also checked).
 */

/** Whether a restart can help: always, never, or it depends on the case (the call site says). */
export type Retriable = boolean | 'depends';

export interface ErrorDef {
  retriable: Retriable;
  /** A retriable error that persists this many attempts in a row is given up on (e.g. a slot another live process holds). */
  maxRetries?: number;
  /** What the error means, for docs/errors.md (the message itself says what to do). */
  meaning: string;
}

export type ErrorCatalog = Record<string, ErrorDef>;

export class SluiceError extends Error {
  readonly code: string;
  readonly retriable: boolean;
  /** See ErrorDef.maxRetries. */
  readonly maxRetries?: number;
  constructor(code: string, message: string, opts: { retriable?: boolean; cause?: unknown; maxRetries?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
    if (opts.maxRetries !== undefined) this.maxRetries = opts.maxRetries;
  }
  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

type OptsFor<D extends ErrorDef> = D['retriable'] extends 'depends' ? { retriable: boolean; cause?: unknown } : { cause?: unknown };

/** A catalog's error constructor: the code must be one the catalog declares. */
export type ErrorFactory<C extends ErrorCatalog> = <K extends keyof C & string>(
  code: K,
  message: string,
  ...opts: C[K]['retriable'] extends 'depends' ? [OptsFor<C[K]>] : [OptsFor<C[K]>?]
) => SluiceError;

export interface ErrorArea<C extends ErrorCatalog> {
  /** Name of the area in docs/errors.md, e.g. `PostgreSQL source`. */
  area: string;
  catalog: C;
  error: ErrorFactory<C>;
}

/** Declares an area's error codes; returns the catalog and the only way to raise them. */
export function defineErrors<const C extends ErrorCatalog>(area: string, catalog: C): ErrorArea<C> {
  const error = ((code: string, message: string, opts?: { retriable?: boolean; cause?: unknown }) => {
    const def = catalog[code];
    if (!def) throw new Error(`bug: error code ${code} is not declared in the ${area} catalog`);
    const retriable = def.retriable === 'depends' ? (opts?.retriable ?? false) : def.retriable;
    return new SluiceError(code, message, { retriable, cause: opts?.cause, maxRetries: def.maxRetries });
  }) as ErrorFactory<C>;
  return { area, catalog, error };
}

/** Errors of the core: configuration, serialization, the engine. */
export const CORE_ERRORS = defineErrors('Configuration and engine', {
  CONFIG_INVALID: { retriable: false, meaning: 'the pipeline YAML is invalid; each problem is listed as file:line:column with what to write instead' },
  SERDE_BAD_JSON: { retriable: false, meaning: 'a log record is not valid JSON: it was not written by a Debezium-compatible serializer' },
  ENGINE_GRAPH: { retriable: false, meaning: 'the pipeline graph is inconsistent (a sink or processor reads records of a kind it cannot take, processors form a cycle, two components write one topic)' },
  PROCESSOR_RECORD: { retriable: false, meaning: 'a processor with `onError: stop` could not transform a record; the message names the record (topic/partition/offset) and the cause' },
  PROCESSOR_MODULE: { retriable: false, meaning: 'a `module` processor cannot load its module, or the module exports no such function; the message says which' },
  PROCESSOR_EXPR: { retriable: false, meaning: 'an expression of a processor failed on a record\'s values (e.g. a text that is no number in arithmetic); the record is dead-lettered with this code unless `onError: stop`' },
  PROCESSOR_SCHEMA_CHANGED: { retriable: false, meaning: 'a processor with `onSchemaChange: stop` met a change of a source table\'s columns; the message names the table, the change and the record' },
  STATE_LIMIT: { retriable: false, meaning: 'a stateful processor (window, join) reached its state bound (`state.maxKeys`); raise it if memory allows (or put the state on disk, `state.store: disk`), or use shorter windows or fewer keys' },
  STATE_STORE: { retriable: false, meaning: 'the on-disk state of a processor (`state.store: disk`) cannot be made under `state.dir`; the message names the directory and the cause (permissions, a full disk)' },
  STATE_SHARDS: { retriable: false, meaning: 'a parallel processor\'s state changelog was written with another `parallelism` than its config now has (the state is split by key over that many parts); set it back, or rebuild the state from the input as the message says' },
  PROCESSOR_WORKER: { retriable: true, meaning: 'a worker thread of a parallel processor (`parallelism` > 1) stopped (out of memory, a crash); the processor starts again from its last commit' },
  DRIVER_MISSING: { retriable: false, meaning: 'a connector\'s driver package (an optional dependency) is not installed; the message names the package to install' },
  ENGINE_TASK_FAILED: { retriable: false, meaning: 'a sink or processor stopped with an error (or a sink holds a table, `onError: skip_table`) before it took everything a finished source wrote; the message carries its own code' },
  ENGINE_LOG_CAPABILITY: { retriable: false, meaning: 'the configured log backend lacks a capability the pipeline needs (e.g. atomic commits for a processor); the message names it' },
});
export const coreError = CORE_ERRORS.error;

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
