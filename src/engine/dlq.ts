/**
 * The dead-letter topic `<pipeline>.dlq`, read and replayed: what `sluice dlq list|replay` and the
 * operations console share. A replay writes processors' dead letters back to each processor's
 * retry topic (`<pipeline>.retry.<processor>`) and commits them with the position it reached in
 * the dead-letter topic, so running it again replays only what came after.
 */
import type { Log, StoredRecord } from '../log/types.ts';
import { DLQ_HEADERS } from './sink-policy.ts';
import { dlqTopicOf, retryTopicOf } from './topology.ts';

/** A dead letter as `list`, `replay` and the console read it. */
export interface DeadLetter {
  offset: number;
  timestamp: number;
  /** `processor <name>` or `sink <name>`. */
  component: string;
  /** `topic/partition/offset` of the record that failed. */
  input: string;
  code: string;
  message: string;
  rec: StoredRecord;
}

/** The dead letters of `topic` (one partition) from `from`. */
export async function* deadLetters(log: Log, topic: string, from = 0): AsyncGenerator<DeadLetter> {
  const [part] = await log.offsets(topic);
  if (!part) return;
  let at = Math.max(from, part.start);
  while (at < part.end) {
    const { records, next } = await log.read(topic, 0, at, 1 << 20);
    for (const r of records) {
      const h = r.headers ?? {};
      const comp = h[DLQ_HEADERS.processor] !== undefined ? `processor ${h[DLQ_HEADERS.processor]}` : `sink ${h[DLQ_HEADERS.sink] ?? '?'}`;
      const ts = Number(h[DLQ_HEADERS.timestamp]);
      yield {
        offset: r.offset,
        timestamp: Number.isFinite(ts) ? ts : r.timestamp,
        component: comp,
        input: `${h[DLQ_HEADERS.topic] ?? '?'}/${h[DLQ_HEADERS.partition] ?? '?'}/${h[DLQ_HEADERS.offset] ?? '?'}`,
        code: h[DLQ_HEADERS.code] ?? 'FAILED',
        message: h[DLQ_HEADERS.message] ?? '',
        rec: r,
      };
    }
    if (next <= at) break;
    at = next;
  }
}

/** A dead letter as JSON: `sluice dlq list --json` and the console's `/api/dlq`. */
export function deadLetterJson(d: DeadLetter): Record<string, unknown> {
  const text = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));
  return { offset: d.offset, deadLetteredAt: d.rec.timestamp, component: d.component, input: d.input, code: d.code, message: d.message, key: d.rec.headers?.[DLQ_HEADERS.key] ?? null, value: text(d.rec.value), headers: d.rec.headers ?? {} };
}

export interface ReplayOptions {
  /** Only these processors' dead letters (default: every processor named in a dead letter). */
  processors?: string[];
  /** Replay from this offset of the dead-letter topic, even if replayed before (default: where the last replay stopped). */
  from?: number;
  /** Read and count, write nothing. */
  dryRun?: boolean;
  /** Each dead letter replayed (or that would be, with dryRun). */
  onRecord?(d: DeadLetter): void;
}

export interface ReplayResult {
  /** False when the dead-letter topic does not exist. */
  topicExists: boolean;
  /** Replayed (or, dry, replayable) dead letters per processor. */
  replayed: Record<string, number>;
  total: number;
  /** Sink dead letters passed over: changes a target refused are not replayed. */
  sinkDeadLetters: number;
  /** The dead-letter offset the next replay starts at. */
  next: number;
  dryRun: boolean;
}

/**
 * Writes processors' dead letters of `pipeline` to their retry topics, committed with the position
 * reached, through `log` (open for writing: in the pipeline's own process, or with it stopped).
 */
export async function replayDeadLetters(log: Log, pipeline: string, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const topic = dlqTopicOf(pipeline);
  const dryRun = !!opts.dryRun;
  if (!(await log.topicInfo(topic))) return { topicExists: false, replayed: {}, total: 0, sinkDeadLetters: 0, next: 0, dryRun };
  const only = opts.processors ? new Set(opts.processors) : null;
  const { producer, checkpoint } = await log.openProducer(`dlq-replay:${pipeline}`);
  try {
    const done = checkpoint ? (JSON.parse(checkpoint) as { next: number }).next : 0;
    const counts = new Map<string, number>();
    let sinks = 0;
    let next = opts.from ?? done;
    for await (const d of deadLetters(log, topic, opts.from ?? done)) {
      next = d.offset + 1;
      const proc = d.rec.headers?.[DLQ_HEADERS.processor];
      if (proc === undefined) {
        sinks++;
        continue;
      }
      if (only && !only.has(proc)) continue;
      counts.set(proc, (counts.get(proc) ?? 0) + 1);
      opts.onRecord?.(d);
      if (dryRun) continue;
      const retry = retryTopicOf(pipeline, proc);
      if (counts.get(proc) === 1) await log.ensureTopic(retry, { partitions: 1 });
      const key = d.rec.headers?.[DLQ_HEADERS.key] ?? null;
      producer.append(retry, { key, value: d.rec.value, timestamp: d.timestamp, headers: d.rec.headers }, 0);
    }
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    next = Math.max(next, done);
    if (dryRun) await producer.abort();
    else await producer.commit(JSON.stringify({ next }));
    return { topicExists: true, replayed: Object.fromEntries(counts), total, sinkDeadLetters: sinks, next, dryRun };
  } finally {
    await producer.close();
  }
}
