/**
 * The contract between a source and the engine. A source turns database changes into
 * ChangeEvents and hands them to the engine's EventSink; the engine batches them into the log and
 * commits each batch atomically with the source's checkpoint.
 */
import type { ChangeEvent } from './event.ts';
import type { TransactionMetadataEvent } from './serde/debezium.ts';

export interface EventSink {
  /** Serializes and buffers the event for the next log commit. Synchronous and cheap. */
  append(ev: ChangeEvent): void;
  /** Appends a BEGIN/END record to the transaction metadata topic (`<prefix>.transaction`). */
  appendTransaction(tx: TransactionMetadataEvent): void;
  /** Makes sure topics exist before events for them are appended. */
  declareTopic(topic: string): Promise<void>;
  /**
   * Commits the batch if it is due (size or age) and the source says it is at a committable
   * point. Returns a promise only when it commits.
   */
  maybeCommit(): Promise<void> | undefined;
  /** True when events were appended since the last commit. */
  readonly hasPending: boolean;
  /** Commits whatever is pending now (end of a snapshot table, shutdown). */
  commit(): Promise<void>;
}

export interface Source {
  /** Runs until `stop()` or a fatal error. `checkpoint` is the last durable one, or null on first run. */
  run(sink: EventSink, checkpoint: string | null): Promise<void>;
  /** The checkpoint describing everything appended so far. */
  checkpoint(): string;
  /** False while a commit now would break an atomic unit (e.g. mid-table during a snapshot). */
  canCommit(): boolean;
  /** Called after a commit with the checkpoint that is now durable. */
  durable(checkpoint: string): void;
  /** Live status for `sluice status` and /status. */
  status(): Record<string, unknown>;
  stop(): Promise<void>;
}
