/**
 * The kafka log's use of kafkajs: building the client from the config, the low-level requests the
 * backend sends itself (Fetch and ListOffsets with an isolation level, OffsetCommit without group
 * membership), decoding fetched batches into committed records, and turning kafkajs errors into
 * coded ones.
 *
 * Why low-level requests: kafkajs's Consumer only reads as a member of a consumer group (it has no
 * `assign()`), which the log's `read(topic, partition, offset)` and `Consumer.assign` cannot use —
 * joining a group per read would rebalance other members and take seconds. kafkajs's Cluster and
 * Broker objects send single Fetch/ListOffsets/OffsetCommit requests to the partition leader or group
 * coordinator, with kafkajs doing version negotiation, connections, SASL and TLS. They are not
 * exported by kafkajs, so `lowLevelCluster` reaches them through the client's private cluster
 * factory; this file is the only place that does, and is written against kafkajs 2.2.4.
 */
import { readFileSync } from 'node:fs';
import type { Admin, Kafka, KafkaConfig, SASLOptions } from 'kafkajs';
import { SluiceError } from '../../core/errors.ts';
import { logError } from '../errors.ts';
import type { StoredRecord } from '../types.ts';

/** Kafka's ListOffsets timestamps for the log start and the end. */
export const EARLIEST = -2;
export const LATEST = -1;
/** Fetch/ListOffsets isolation: read_committed stops at the last stable offset (LSO). */
export const READ_UNCOMMITTED = 0;
export const READ_COMMITTED = 1;

/** A record header holding a timestamp Kafka cannot: one with a fraction of a millisecond, or before 1970. */
export const TS_HEADER = 'sluice.ts';

/** What the backend needs of its config to build clients. */
export interface ClientOptions {
  brokers: string[];
  clientId: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  ssl?: { enabled: boolean; ca?: string; rejectUnauthorized: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

// ---------- the parts of kafkajs's internals used here ----------

export interface RawMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers: Record<string, Buffer | Buffer[] | undefined>;
  isControlRecord: boolean;
  batchContext: { firstOffset: string; lastOffsetDelta: number; producerId: string; inTransaction: boolean; isControlBatch: boolean };
}

export interface FetchedPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  lastStableOffset: string;
  lastStartOffset?: string;
  abortedTransactions: { producerId: string; firstOffset: string }[];
  messages: RawMessage[];
}

export interface KBroker {
  nodeId: number;
  fetch(req: {
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: FetchedPartition[] }[] }>;
  listOffsets(req: { isolationLevel: number; topics: { topic: string; partitions: { partition: number; timestamp: number }[] }[] }): Promise<{ responses: { topic: string; partitions: { partition: number; offset: string }[] }[] }>;
  offsetCommit(req: { groupId: string; groupGenerationId: number; memberId: string; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<unknown>;
  offsetFetch(req: { groupId: string; topics: { topic: string; partitions: { partition: number }[] }[] }): Promise<{ responses: { topic: string; partitions: { partition: number; offset: string }[] }[] }>;
  deleteRecords(req: { topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<unknown>;
}

export interface TopicMetadata {
  topic: string;
  isInternal?: boolean;
  partitionMetadata: { partitionId: number; leader: number }[];
}

export interface KCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Metadata of every topic (the cluster is given no target topics) and of the brokers. */
  refreshMetadata(): Promise<void>;
  brokerPool: { metadata: { topicMetadata: TopicMetadata[] } | null };
  findBroker(q: { nodeId: number | string }): Promise<KBroker>;
  findGroupCoordinator(q: { groupId: string }): Promise<KBroker>;
}

type KafkaModule = typeof import('kafkajs');

/** kafkajs, loaded on first use (a spec must not load drivers). */
export async function loadKafkajs(): Promise<KafkaModule> {
  const mod = (await import('kafkajs')) as KafkaModule & { default?: KafkaModule };
  return mod.default ?? mod;
}

/** The kafkajs client for `o`: bounded connect and request timeouts, bounded retries, no logging of its own (errors are reported coded). */
export function kafkaClient(k: KafkaModule, o: ClientOptions): Kafka {
  const config: KafkaConfig = {
    brokers: o.brokers,
    clientId: o.clientId,
    connectionTimeout: o.connectTimeoutMs,
    authenticationTimeout: o.connectTimeoutMs,
    requestTimeout: o.requestTimeoutMs,
    enforceRequestTimeout: true,
    // A few quick retries of what kafkajs considers retriable (a leader moving, a coordinator
    // loading, a crashed producer's transaction being aborted); past them the error is reported,
    // coded, and the engine's supervisor restarts the task.
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: logLevelOf(k, process.env.SLUICE_KAFKAJS_LOG),
  };
  if (o.ssl?.enabled) config.ssl = { rejectUnauthorized: o.ssl.rejectUnauthorized, ...(o.ssl.ca ? { ca: [readCa(o.ssl.ca)] } : {}) };
  if (o.sasl) config.sasl = { mechanism: o.sasl.mechanism, username: o.sasl.username, password: o.sasl.password } as SASLOptions;
  return new k.Kafka(config);
}

function readCa(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw logError('LOG_KAFKA_ERROR', `cannot read log.ssl.ca ${path}: ${(e as Error).message}`, { retriable: false, cause: e });
  }
}

/** kafkajs's own log lines, for troubleshooting: SLUICE_KAFKAJS_LOG=error|warn|info|debug. */
function logLevelOf(k: KafkaModule, v: string | undefined): number {
  const levels: Record<string, number> = { error: k.logLevel.ERROR, warn: k.logLevel.WARN, info: k.logLevel.INFO, debug: k.logLevel.DEBUG };
  return levels[(v ?? '').toLowerCase()] ?? k.logLevel.NOTHING;
}

/**
 * A kafkajs Cluster of its own (own connections) for the requests kafkajs's public API does not
 * offer: see the file comment. Auto topic creation is off, so a read of a missing topic never
 * creates it on a broker configured with auto.create.topics.enable.
 */
export function lowLevelCluster(kafka: Kafka): KCluster {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!sym) throw new Error('bug: kafkajs has no private cluster factory; the kafka log is written against kafkajs 2.2.4');
  return (kafka as any)[sym]({ allowAutoTopicCreation: false, maxInFlightRequests: null, isolationLevel: READ_COMMITTED });
}

export type { Admin, Kafka };

// ---------- decoding ----------

/** Whether a control record is a transaction's commit (true) or abort (false) marker. */
export function isCommitMarker(m: RawMessage): boolean {
  // Control record key: version int16, type int16 (0 abort, 1 commit).
  return m.key !== null && m.key.length >= 4 && m.key.readInt16BE(2) === 1;
}

/** The offset after the record batch `m` belongs to (past records compaction removed from it). */
export function batchEnd(m: RawMessage): number {
  return Number(m.batchContext.firstOffset) + m.batchContext.lastOffsetDelta + 1;
}

/**
 * The committed records of one read_committed fetch at `offset`, at most about `maxBytes` (at least
 * one), and where to read next. Kafka returns whole batches, so the first may start before
 * `offset`; records of aborted transactions come along with the list of those transactions (their
 * producer and first offset) and are dropped here, as are control records (commit and abort
 * markers). `next` is past the last batch the fetch returned — past markers and aborted records —
 * or, when the records were cut at `maxBytes`, just past the last one returned.
 */
export function committedRecords(topic: string, partition: number, offset: number, p: FetchedPartition, maxBytes: number): { records: StoredRecord[]; next: number } {
  const aborted = [...(p.abortedTransactions ?? [])].map((a) => ({ producerId: a.producerId, first: Number(a.firstOffset) })).sort((a, b) => a.first - b.first);
  const abortedNow = new Set<string>();
  const records: StoredRecord[] = [];
  let bytes = 0;
  let next = offset;
  for (const m of p.messages) {
    const off = Number(m.offset);
    const pid = m.batchContext.producerId;
    // An aborted transaction starts at its first offset and ends at its producer's abort marker.
    while (aborted.length && aborted[0].first <= off) abortedNow.add(aborted.shift()!.producerId);
    if (m.isControlRecord) {
      if (!isCommitMarker(m)) abortedNow.delete(pid);
    } else if (off >= offset && !(m.batchContext.inTransaction && abortedNow.has(pid))) {
      if (records.length > 0 && bytes >= maxBytes) {
        return { records, next: records[records.length - 1].offset + 1 };
      }
      const r = toStored(topic, partition, m);
      records.push(r);
      bytes += recordBytes(r);
    }
    next = Math.max(next, batchEnd(m));
  }
  return { records, next };
}

function toStored(topic: string, partition: number, m: RawMessage): StoredRecord {
  let timestamp = Number(m.timestamp);
  let headers: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v === undefined) continue;
    const last = Array.isArray(v) ? v[v.length - 1] : v;
    if (k === TS_HEADER) {
      timestamp = Number(last.toString());
      continue;
    }
    (headers ??= {})[k] = last.toString();
  }
  const r: StoredRecord = { topic, partition, offset: Number(m.offset), key: m.key, value: m.value, timestamp };
  if (headers) r.headers = headers;
  return r;
}

/** The bytes a record counts for (reads, retention.bytes): key, value and headers. */
export function recordBytes(r: { key: Buffer | null; value: Buffer | null; headers?: Record<string, string> }): number {
  let n = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (r.headers) for (const [k, v] of Object.entries(r.headers)) n += k.length + v.length;
  return n;
}

// ---------- errors ----------

interface KafkaErrorLike {
  name?: string;
  type?: string;
  code?: string | number;
  message?: string;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
  errors?: unknown[];
}

/** The innermost error kafkajs wrapped (retries exhausted, non-retriable wrappers). */
export function rootCause(e: unknown): KafkaErrorLike {
  let cur = e as KafkaErrorLike;
  for (let i = 0; i < 10 && cur; i++) {
    const inner = (cur.cause ?? cur.originalError) as KafkaErrorLike | undefined;
    if (!inner || inner === cur || typeof inner !== 'object') break;
    cur = inner;
  }
  return cur ?? {};
}

/** The Kafka error type of `e` (e.g. `UNKNOWN_TOPIC_OR_PARTITION`), through kafkajs's wrappers. */
export function kafkaType(e: unknown): string | undefined {
  let cur = e as KafkaErrorLike | undefined;
  for (let i = 0; i < 10 && cur && typeof cur === 'object'; i++) {
    if (cur.type) return cur.type;
    if (cur.errors?.length) return kafkaType(cur.errors[0]);
    const inner = (cur.cause ?? cur.originalError) as KafkaErrorLike | undefined;
    if (!inner || inner === cur) break;
    cur = inner;
  }
  return undefined;
}

const CONNECTION = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNRESET|ETIMEDOUT|EPIPE|Connection timeout|Connection error|Closed connection|Request .* timed out|KafkaJSConnection|KafkaJSRequestTimeout|No brokers|not found in the cached metadata|Failed to connect/;
const AUTH_TYPES = new Set(['SASL_AUTHENTICATION_FAILED', 'UNSUPPORTED_SASL_MECHANISM', 'ILLEGAL_SASL_STATE', 'TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);
const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'TRANSACTION_COORDINATOR_FENCED', 'PRODUCER_FENCED']);

function describe(e: unknown): string {
  const root = rootCause(e);
  const type = kafkaType(e);
  const msg = root.message ?? String(e);
  return type && !msg.includes(type) ? `${type}: ${msg}` : msg;
}

/** Whether `e` says the brokers cannot be reached (refused, unknown host, no answer in time). */
export function isConnectionError(e: unknown): boolean {
  const root = rootCause(e);
  return CONNECTION.test(`${root.name ?? ''} ${root.code ?? ''} ${root.message ?? ''}`) || CONNECTION.test(String((e as Error)?.message ?? ''));
}

/**
 * A coded error for a kafkajs failure while doing `what` (e.g. `commit of producer x`). Brokers
 * that cannot be reached, authentication, fencing and oversized records get their own codes;
 * anything else is LOG_KAFKA_ERROR, retriable when Kafka says so.
 */
export function kafkaError(e: unknown, what: string, brokers: string[]): SluiceError {
  if (e instanceof SluiceError) return e;
  const type = kafkaType(e);
  const root = rootCause(e);
  const text = describe(e);
  const list = brokers.join(', ');
  if (type === 'PRODUCER_FENCED' || (type && FENCED_TYPES.has(type)) || /Unknown error code 90\b/.test(text)) {
    return logError('LOG_PRODUCER_FENCED', `${what}: another producer opened with the same id took over (Kafka fenced this one: ${text}); this one is closed. Run one writer per producer id`, { cause: e });
  }
  if ((type && AUTH_TYPES.has(type)) || root.name === 'KafkaJSSASLAuthenticationError' || /SASL|[Aa]uthenticat/.test(text)) {
    return logError('LOG_KAFKA_AUTH', `${what}: the Kafka brokers ${list} refused this client's credentials or permissions (${text}). Check log.sasl (mechanism, username, password), log.ssl and the ACLs for this client`, { cause: e });
  }
  if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') {
    return logError('LOG_RECORD_TOO_LARGE', `${what}: a record is larger than the topic accepts (${text}). Raise the topic's max.message.bytes (log.maxMessageBytes for topics Sluice creates) or make the record smaller`, { cause: e });
  }
  if (isConnectionError(e)) {
    return logError('LOG_KAFKA_UNREACHABLE', `${what}: cannot reach the Kafka brokers ${list} (${text}). Check log.brokers, or start Kafka (for tests: bash scripts/kafka-server.sh start)`, { cause: e });
  }
  const retriable = root.retriable === true || (e as KafkaErrorLike)?.retriable === true || /NumberOfRetriesExceeded/.test((e as Error)?.name ?? '');
  return logError('LOG_KAFKA_ERROR', `${what}: Kafka (${list}) answered ${text}`, { retriable, cause: e });
}
