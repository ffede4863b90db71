/**
 * The Log: Kafka's model (topics, partitions chosen by key hash, offsets, consumer groups,
 * retention). Backends: embedded (files on local disk), later kafka and nats. All backends pass
 * the same conformance tests (test/log/).
 *
 * Writes are transactional: a producer appends records to any topics/partitions, then `commit`s
 * them together with an opaque checkpoint string (the source position they reach). After a crash,
 * either the whole commit is durable and visible, or none of it is, and `openProducer` returns the
 * checkpoint of the last durable commit. This is what lets a source resume without losing or
 * duplicating events: the position is stored atomically with the data.
 */
export interface LogRecord {
  key: Buffer | null;
  value: Buffer | null;
  /** Event time in ms since epoch. */
  timestamp: number;
  headers?: Record<string, string>;
}

/** A record to append: key and value may also be strings, written as UTF-8 without an extra copy. */
export interface AppendRecord {
  key: Buffer | string | null;
  value: Buffer | string | null;
  timestamp: number;
  headers?: Record<string, string>;
}

export interface StoredRecord extends LogRecord {
  topic: string;
  partition: number;
  offset: number;
}

export interface TopicConfig {
  partitions: number;
  /** Delete whole segments older than this (ms). Undefined: keep forever. */
  retentionMs?: number;
  /** Delete oldest segments while a partition is larger than this (bytes). */
  retentionBytes?: number;
  /** Keep only the latest record per key (state topics). */
  compaction?: boolean;
}

export interface TopicInfo extends TopicConfig {
  name: string;
}

export interface PartitionOffsets {
  partition: number;
  /** First offset still retained. */
  start: number;
  /** Offset the next committed record will get (= committed high watermark). */
  end: number;
}

export interface Producer {
  /** Buffers records for the next commit. Partition defaults to hash(key) mod partitions. Returns the partition. */
  append(topic: string, record: AppendRecord, partition?: number): number;
  /** Bytes appended since the last commit (for batching decisions). */
  readonly pendingBytes: number;
  readonly pendingRecords: number;
  /** Makes everything appended since the last commit durable (fsync) and visible, atomically with `checkpoint`. */
  commit(checkpoint: string): Promise<void>;
  /** Drops everything appended since the last commit. */
  abort(): Promise<void>;
  close(): Promise<void>;
}

export interface Log {
  createTopic(name: string, config: TopicConfig): Promise<void>;
  /** Creates the topic when missing; returns its config. */
  ensureTopic(name: string, config: TopicConfig): Promise<TopicInfo>;
  listTopics(): Promise<TopicInfo[]>;
  topicInfo(name: string): Promise<TopicInfo | null>;
  offsets(topic: string): Promise<PartitionOffsets[]>;
  /**
   * Opens the transactional producer named `id` (one live producer per id). Returns it with the
   * checkpoint of that producer's last durable commit, or null if it never committed.
   */
  openProducer(id: string): Promise<{ producer: Producer; checkpoint: string | null }>;
  /** Reads committed records from `offset`, at most about `maxBytes` (at least one record if any). */
  read(topic: string, partition: number, offset: number, maxBytes?: number): Promise<StoredRecord[]>;
  /** Resolves when the partition's end moves past `offset`, or after `timeoutMs`. */
  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<void>;
  commitOffsets(group: string, offsets: { topic: string; partition: number; offset: number }[]): Promise<void>;
  committedOffsets(group: string, topic: string): Promise<Map<number, number>>;
  /** Applies retention now (also runs periodically while open). */
  enforceRetention(): Promise<void>;
  close(): Promise<void>;
}
