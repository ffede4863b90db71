/**
 * The Log: Kafka's model (topics, partitions chosen by key hash, offsets, consumer groups,
 * retention). Backends implement this interface and register a spec (src/components.ts); the
 * engine, the CLI and the sinks use nothing else, and one conformance suite (test/log/) runs
 * against every backend.
 *
 * Writes are transactional: a producer appends records to any topics/partitions, then `commit`s
 * them together with an opaque checkpoint string (the source position, or a processor's input
 * offsets, they reflect). After a crash, either the whole commit is durable and visible, or none of
 * it is, and `openProducer` returns the checkpoint of the last durable commit. This is what lets a
 * writer resume without losing or duplicating records: its position is stored atomically with the
 * data. A backend declares how far it can go (`capabilities`): the largest commit it holds, whether
 * a commit may span partitions, and whether offsets are dense.
 *
 * Readers never assume dense offsets: a read returns the offset to read next (`next`), which may
 * lie beyond the last record (a Kafka transaction marker, a compacted or aborted record), and a
 * partition is read up to its end when the reader's position reaches `end`.
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

/** Committed records as their batch stores them (Log.readPayloads). */
export interface PayloadChunk {
  /** The batch's records, framed one after the other (see `frameAt`). */
  payload: Buffer;
  /** Offset of the payload's first record. */
  base: number;
  /** The first offset the read asked for: records before it are walked over. */
  from: number;
  /** One past the last offset to hand out (the batch's end, or the committed end within it). */
  end: number;
}

export interface PayloadRead {
  chunks: PayloadChunk[];
  /** Where the next read continues (past a gap, as ReadResult.next). */
  next: number;
}

export interface TopicConfig {
  partitions: number;
  /** Delete whole segments older than this (ms). Undefined: keep forever. */
  retentionMs?: number;
  /** Delete oldest segments while a partition is larger than this (bytes). */
  retentionBytes?: number;
  /** Keep only the latest record per key (state topics). */
  compaction?: boolean;
  /**
   * With compaction: how long a tombstone (a null value), once it is the latest record of its key
   * in a closed segment, stays readable before compaction removes it (Kafka's delete.retention.ms).
   * Default 24 h.
   */
  tombstoneRetentionMs?: number;
}

export interface TopicInfo extends TopicConfig {
  name: string;
}

export interface PartitionOffsets {
  partition: number;
  /** First offset still retained. */
  start: number;
  /** The committed end: a reader whose position reaches it has read everything committed. */
  end: number;
}

/** One fetch from one partition. */
export interface ReadResult {
  /** Committed records at or after the requested offset, in offset order. */
  records: StoredRecord[];
  /** Where the next read continues: past the last record, and past any gap after it. */
  next: number;
}

/** What a backend can do; the engine checks these instead of knowing backends. */
export interface LogCapabilities {
  /** One commit may span several topics and partitions atomically. */
  atomicMultiPartition: boolean;
  /** The largest commit the backend holds atomically, in bytes and records (null: no limit). */
  maxCommitBytes: number | null;
  maxCommitRecords: number | null;
  /** Topics may be compacted (latest record per key). */
  compaction: boolean;
  /**
   * Offsets are consecutive; false when transaction markers or removed records leave gaps. Either
   * way, compaction leaves gaps in a compacted topic: readers follow `next`.
   */
  denseOffsets: boolean;
  /** Other processes may read (sluice tail/status) while one writes. */
  concurrentReaders: boolean;
  /** Consumer groups with membership (`joinGroup`): processes share a topic's partitions. */
  groupMembership?: boolean;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** One generation of a group: this member's partitions until `revoked` aborts. */
export interface GroupGeneration {
  generation: number;
  memberId: string;
  /** Members in this generation, when the backend tells (the leader knows). */
  members?: number;
  assignment: TopicPartition[];
  /**
   * Aborts when the group rebalances (a member came, left, died or changed topics) or this member
   * lost its session: stop reading the partitions (finish the commit in flight), then `join` again.
   */
  revoked: AbortSignal;
}

/**
 * Membership of a consumer group whose members share the partitions of their topics. Only who reads
 * what: readers keep their offsets where they commit their output (a sink: its target).
 */
export interface GroupMember {
  readonly name: string;
  /** Joins (or rejoins, also with other topics) and resolves with this member's partitions once the group settled. */
  join(topics: string[], signal?: AbortSignal): Promise<GroupGeneration>;
  /** Heartbeats are answered: this member's generation is current as far as it knows. */
  readonly live: boolean;
  leave(): Promise<void>;
}

/**
 * A transactional producer. Commits apply in the order they were called, even while an earlier one
 * is in flight; a commit is visible to every reader (other handles and processes too) when it
 * resolves; one beyond the backend's limits fails whole with LOG_COMMIT_TOO_LARGE; `abort` drops
 * only what was appended since the last `commit` call, not a commit in flight.
 */
export interface Producer {
  /** Buffers records for the next commit. Partition defaults to hash(key) mod partitions. Returns the partition. */
  append(topic: string, record: AppendRecord, partition?: number): number;
  /** Bytes appended since the last commit (for batching decisions). */
  readonly pendingBytes: number;
  readonly pendingRecords: number;
  /** Makes everything appended since the last commit durable and visible, atomically with `checkpoint`. */
  commit(checkpoint: string): Promise<void>;
  /** Drops everything appended since the last commit. */
  abort(): Promise<void>;
  close(): Promise<void>;
}

/** A reading session over assigned partitions (a consumer). */
export interface Consumer {
  /** Starts reading `topic`/`partition` at `offset` (or moves there). */
  assign(topic: string, partition: number, offset: number): void;
  /** The next offset to read of an assigned partition. */
  position(topic: string, partition: number): number;
  readonly assignment: { topic: string; partition: number }[];
  /**
   * Committed records of the assigned partitions, at most about `maxBytes` in all; waits up to
   * `maxWaitMs` when there are none (also when nothing is assigned: a caller looping on poll never
   * spins). Positions move past what is returned (and past gaps). An abort of `signal` resolves
   * with what was read so far, never rejects.
   */
  poll(opts: { maxBytes?: number; maxWaitMs: number; signal?: AbortSignal }): Promise<StoredRecord[]>;
  close(): Promise<void>;
}

export interface Log {
  /** The backend's type name (`embedded`, …). */
  readonly backend: string;
  readonly capabilities: LogCapabilities;
  /** Topic names are Kafka's: letters, digits, `.`, `_`, `-`, at most 249, not `.` or `..` (LOG_TOPIC_NAME otherwise). */
  createTopic(name: string, config: TopicConfig): Promise<void>;
  /** Creates the topic when missing; returns its config. */
  ensureTopic(name: string, config: TopicConfig): Promise<TopicInfo>;
  listTopics(): Promise<TopicInfo[]>;
  /**
   * Calls `listener` with each topic created through this handle from now on (a source creating
   * a table's topic, for the sinks of the same process to read it at once); returns the
   * unsubscribe. Backends without it are looked at by polling `listTopics`.
   */
  onTopicCreated?(listener: (topic: string) => void): () => void;
  topicInfo(name: string): Promise<TopicInfo | null>;
  offsets(topic: string): Promise<PartitionOffsets[]>;
  /**
   * Opens the transactional producer named `id`: one live producer per id, so a second one is
   * either refused (LOG_PRODUCER_BUSY, the embedded log) or fences the first (Kafka). Returns it with
   * the checkpoint of that producer's last durable commit, or null.
   */
  openProducer(id: string): Promise<{ producer: Producer; checkpoint: string | null }>;
  /** Reads committed records from `offset` (which may fall in a gap), at most about `maxBytes` (at least one record if any). */
  read(topic: string, partition: number, offset: number, maxBytes?: number): Promise<ReadResult>;
  /**
   * The fast path of readers that walk records themselves (the sink reader): the committed batches
   * from the one holding `offset`, as verified, decompressed payloads framed as `frameAt` reads
   * them (log/embedded/format.ts), whole batches up to about `maxBytes`; no object per record.
   * Backends whose records do not come as such batches leave it out; readers then use `read`.
   * With `alloc`, each payload is (the first bytes of) a buffer `alloc(length)` returned, which the
   * log does not keep: a reader that recycles its buffers once it is done with them gets no new
   * memory per batch. Without it, payloads are new buffers.
   */
  readPayloads?(topic: string, partition: number, offset: number, maxBytes?: number, alloc?: (length: number) => Buffer): Promise<PayloadRead>;
  /** Resolves when the partition's committed end moves past `offset`, or after `timeoutMs`. */
  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<void>;
  /** A reading session; see Consumer. */
  openConsumer(): Consumer;
  /** Stores a consumer group's offsets (also through a read-only handle: they are not log data). */
  commitOffsets(group: string, offsets: { topic: string; partition: number; offset: number }[]): Promise<void>;
  committedOffsets(group: string, topic: string): Promise<Map<number, number>>;
  listGroups(): Promise<string[]>;
  /** A member of consumer group `group` (backends with `capabilities.groupMembership`). */
  joinGroup?(group: string): GroupMember;
  /** Applies retention (and compaction, where declared) now; also runs periodically while open. */
  enforceRetention(): Promise<void>;
  close(): Promise<void>;
}
