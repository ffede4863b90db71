/**
 * What a user's processor module sees and returns (`type: module`). Exported by the package:
 * `import type { ModuleTransform } from 'sluice'`.
 */

/** A JSON value as records carry it; integers beyond 2^53 arrive as bigint, exactly. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [k: string]: JsonValue };

/** An input record: its key and value parsed from JSON. */
export interface ModuleRecord {
  topic: string;
  partition: number;
  offset: number;
  /** The record's key, e.g. `{ id: 17 }` for a change of a table keyed by `id`. */
  key: JsonValue;
  /**
   * The record's value: a change event (`{ before, after, source, op, ts_ms }`) on the source's
   * change topics, a row or event on a processor's output; null for a tombstone.
   */
  value: JsonValue;
  /** Epoch milliseconds: the source's commit time for change events. */
  timestamp: number;
  headers: Readonly<Record<string, string>>;
}

/** A record to write. Omitted fields keep the input's: `topic` → the processor's `output`, `key` → the input key. */
export interface ModuleOutput {
  topic?: string;
  key?: JsonValue;
  value: JsonValue;
  headers?: Record<string, string>;
  timestamp?: number;
}

export interface ModuleContext {
  pipeline: string;
  /** The processor's name. */
  processor: string;
  /** The processor's `options` from the config, as written. */
  options: Readonly<Record<string, unknown>>;
  /** The pipeline's logger (JSON or text, as configured), tagged with the processor. */
  log: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void; error(msg: string, fields?: Record<string, unknown>): void };
}

/**
 * The module's transform: returns the records to write for one input record — one, a list, or
 * null/undefined to drop it — or a promise of them. A thrown error (or rejected promise) sends the
 * input record to the dead-letter topic with the error's message (`onError: dlq`).
 */
export type ModuleTransform = (record: ModuleRecord, ctx: ModuleContext) => ModuleOutput | ModuleOutput[] | null | undefined | Promise<ModuleOutput | ModuleOutput[] | null | undefined>;

/** A module may also export `init(ctx)`, awaited once before the first record (e.g. to load reference data). */
export type ModuleInit = (ctx: ModuleContext) => void | Promise<void>;
