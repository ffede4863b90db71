/**
 * What the processor task (shards.ts) and its shard workers (shard-worker.ts) send each other,
 * and the shard a key belongs to.
 */
import type { TransformInput, TransformOutput } from '../registry/spec.ts';

/** A worker's `workerData`. */
export interface ShardInit {
  type: string;
  cfg: unknown;
  pipeline: string;
  processor: string;
  shard: number;
  shards: number;
  /** This shard's part of `state.maxKeys`. */
  maxKeys: number;
  /** The pipeline's source connector type, which names change events' tables. */
  sourceType?: string;
}

/**
 * A batch of records in a few transferable arrays (not an object per record): the keys and
 * values back to back in `bytes`, and per record five numbers in `nums` (partition, offset,
 * timestamp, key length, value length; a length of -1 for null).
 */
export interface WireBatch {
  n: number;
  topics: string[];
  /** Per record: its topic's index in `topics`. */
  topic: Uint16Array;
  nums: Float64Array;
  bytes: Uint8Array;
  headers: (Record<string, string> | undefined)[] | null;
  /** Per record: the transform's clock after the task read it (`RecordTransform.clock`); `end`: after the whole batch. */
  clocks: Float64Array;
  end: number;
}

export interface WireError {
  message: string;
  code?: string;
  name?: string;
}

export type ShardRequest = { id: number } & (
  | { op: 'load'; entries: (string | null)[] }
  | { op: 'open' }
  | { op: 'apply'; batch: WireBatch }
  | { op: 'tick'; now: number }
  | { op: 'flush' }
);

/** A worker's answer: per op, the fields it fills. */
export interface ShardReply {
  /** open, flush: the entries the shard holds. */
  size?: number;
  /** apply: the records (their index in the batch) that gave output or failed. */
  idx?: number[];
  outs?: (TransformOutput[] | null)[];
  errors?: (WireError | null)[];
  /** tick */
  out?: TransformOutput[];
  behind?: boolean;
  /** flush: changed entries as key, JSON text (null: deleted), key, … */
  entries?: (string | null)[];
}

/** The shard of a shard key: FNV-1a of its UTF-16 code units, so the same key goes to the same shard in every run. */
export function shardOf(key: string | null, shards: number): number {
  if (key === null || shards === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

export function encodeBatch(recs: TransformInput[], clocks: Float64Array, end: number): WireBatch {
  const n = recs.length;
  let size = 0;
  let withHeaders = false;
  for (const r of recs) {
    size += (r.key?.length ?? 0) + (r.value?.length ?? 0);
    if (r.headers) withHeaders = true;
  }
  const bytes = new Uint8Array(size);
  const nums = new Float64Array(n * 5);
  const topic = new Uint16Array(n);
  const topics: string[] = [];
  const headers = withHeaders ? new Array<Record<string, string> | undefined>(n) : null;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const r = recs[i];
    let t = topics.indexOf(r.topic);
    if (t < 0) t = topics.push(r.topic) - 1;
    topic[i] = t;
    const m = i * 5;
    nums[m] = r.partition ?? 0;
    nums[m + 1] = r.offset ?? 0;
    nums[m + 2] = r.timestamp;
    nums[m + 3] = r.key ? r.key.length : -1;
    nums[m + 4] = r.value ? r.value.length : -1;
    if (r.key) {
      bytes.set(r.key, at);
      at += r.key.length;
    }
    if (r.value) {
      bytes.set(r.value, at);
      at += r.value.length;
    }
    if (headers) headers[i] = r.headers;
  }
  return { n, topics, topic, nums, bytes, headers, clocks, end };
}
