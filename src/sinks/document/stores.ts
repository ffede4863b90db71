/** What a document sink writes to: its operational store, the derived one, and their transaction. */
import type { DocumentStore } from './types.ts';

export interface DocumentStores {
  /** The operational layer: one collection per source table, plus the offsets collection. */
  data: DocumentStore;
  /** Where derived collections go (null when the sink has no `derive`). May be `data` itself. */
  derived: DocumentStore | null;
  /** Whether `atomically` makes one transaction of data, derived and offsets writes. */
  readonly transactional: boolean;
  /** How many derived keys to compute at once (1 where the stores share one connection). */
  readonly parallelism: number;
  /**
   * Runs `fn` so that its writes through `data` and `derived` commit together, where the stores
   * can (PostgreSQL, both in one database); elsewhere it just runs `fn`, and the writes stand as
   * they are made.
   */
  atomically<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
