/**
 * The contract between a source and the engine. A source turns database changes into
 * ChangeEvents and hands them to the EventSink of its task (engine/source-task.ts), which
 * serializes them and commits them to the log in batches, each atomically with the checkpoint the
 * source gives at that moment; once a commit is durable the source hears of it (`durable`) and may
 * acknowledge that position upstream. So `checkpoint()` must describe exactly what was appended
 * before it is called, at any point where `canCommit()` is true.
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
   * Starts a commit of what was appended if one is due (records, bytes or age, within what the log
   * holds in one commit) and the source is at a committable point, without waiting for it: the
   * source keeps appending to the next batch meanwhile. Returns a promise only when as many
   * commits as the engine allows are already in flight (two: the log syncs one's data while the
   * other's journal record syncs), which the caller awaits. `bulk` (a snapshot): larger commits,
   * where throughput matters more than latency. `idle`: the source has nothing more to read right
   * now; what is pending is then committed at once when there is room for a commit, or as soon as
   * one ends (batches grow only while commits take time).
   */
  maybeCommit(bulk?: boolean, idle?: boolean): Promise<void> | undefined;
  /** True when events were appended since the last commit. */
  readonly hasPending: boolean;
  /** Commits whatever is pending now and waits until it is durable (end of a snapshot table, shutdown). */
  commit(): Promise<void>;
}

export interface Source {
  /** Runs until `stop()` or a fatal error. `checkpoint` is the last durable one, or null on first run. */
  run(sink: EventSink, checkpoint: string | null): Promise<void>;
  /** The checkpoint describing everything appended so far. */
  checkpoint(): string;
  /** False while a commit now would split a unit the source cannot resume inside (a table without a usable key, read whole). */
  canCommit(): boolean;
  /** Called after a commit with the checkpoint that is now durable. */
  durable(checkpoint: string): void;
  /** Live status for `sluice status` and /status. */
  status(): Record<string, unknown>;
  stop(): Promise<void>;
}
