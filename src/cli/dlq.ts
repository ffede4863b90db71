/**
 * `sluice dlq list|replay`: the pipeline's dead-letter topic `<pipeline>.dlq`. `list` prints what
 * sinks and processors set aside, with why and where from; `replay` writes a processor's dead
 * letters back to its retry topic (`<pipeline>.retry.<processor>`), which the processor reads
 * beside its inputs, once the cause is fixed. A replay commits the records with the position it
 * reached in the dead-letter topic, so running it again replays only what came after.
 */
import { parseArgs } from 'node:util';
import { openLog } from '../log/open.ts';
import type { Log, StoredRecord } from '../log/types.ts';
import { DLQ_HEADERS } from '../engine/sink-policy.ts';
import { dlqTopicOf, retryTopicOf } from '../engine/topology.ts';
import { openReadOnly, resolveLog } from './common.ts';
import { UsageError, type Command } from './command.ts';

const USAGE = `usage: sluice dlq list --config <pipeline.yaml> [options]
       sluice dlq replay --config <pipeline.yaml> [options]

The dead-letter topic <pipeline>.dlq holds the records a processor could not transform and the
changes a sink's target refused (onError: dlq), each with the error and its input topic,
partition and offset.

list      prints them, oldest first (read-only; works while the pipeline runs)
  --json              one JSON object per line, with the record's key and value
  --from <offset>     start at this offset of the dead-letter topic (default: its start)
  --max <n>           stop after n records

replay    writes processors' dead letters back to each processor's retry topic
          (<pipeline>.retry.<processor>), which the processor reads beside its inputs: fix the
          cause (the processor's config or module, or the data), then replay. Each run goes on
          from where the last one stopped, so nothing is replayed twice unless --from says so.
          The embedded log takes one writer: stop the pipeline first. Sink dead letters are
          listed, not replayed: they are changes the target refused, and applying an old change
          after newer ones of its row would undo them.
  --processor <name>  only this processor's dead letters (repeatable; default: all)
  --from <offset>     replay from this offset of the dead-letter topic, even if replayed before
  --dry-run           print what would be replayed, write nothing

examples:
  sluice dlq list --config pipeline.yaml --max 20
  sluice dlq replay --config pipeline.yaml --processor fraud
`;

/** A dead letter as `list` and `replay` read it. */
interface Dead {
  offset: number;
  timestamp: number;
  component: string;
  input: string;
  code: string;
  message: string;
  rec: StoredRecord;
}

export const dlqCommand: Command = {
  summary: 'list dead letters, or replay a processor\'s dead letters after a fix',
  usage: USAGE,
  async run(args) {
    const [action, ...rest] = args;
    if (action !== 'list' && action !== 'replay') throw new UsageError(action ? `unknown action ${action}: use list or replay` : 'give an action: list or replay');
    const { values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        json: { type: 'boolean' },
        from: { type: 'string' },
        max: { type: 'string' },
        processor: { type: 'string', multiple: true },
        'dry-run': { type: 'boolean' },
      },
    });
    if (!values.config) throw new UsageError('give the pipeline with --config <pipeline.yaml>');
    const from = values.from !== undefined ? Number(values.from) : undefined;
    if (from !== undefined && !(Number.isInteger(from) && from >= 0)) throw new UsageError(`--from must be an offset (a whole number), not ${values.from}`);
    const max = values.max !== undefined ? Number(values.max) : Infinity;
    if (!(max >= 0)) throw new UsageError(`--max must be a number, not ${values.max}`);
    const at = await resolveLog(values);
    const cfg = at.cfg!;
    const topic = dlqTopicOf(cfg.name);
    if (action === 'list') {
      const log = await openReadOnly(at);
      try {
        if (!(await log.topicInfo(topic))) {
          process.stdout.write(`no dead letters: the topic ${topic} does not exist\n`);
          return 0;
        }
        let n = 0;
        for await (const d of deadLetters(log, topic, from)) {
          if (n++ >= max) break;
          process.stdout.write((values.json ? asJson(d) : asLine(d)) + '\n');
        }
        if (!values.json) process.stdout.write(`${Math.min(n, max)} dead letter(s) in ${topic}\n`);
      } finally {
        await log.close();
      }
      return 0;
    }
    const names = cfg.processors.map((p) => p.name);
    for (const p of values.processor ?? []) if (!names.includes(p)) throw new UsageError(`the pipeline has no processor ${p}${names.length ? ` (processors: ${names.join(', ')})` : ''}`);
    const only = new Set(values.processor?.length ? values.processor : names);
    const log = await openLog(cfg.log);
    try {
      if (!(await log.topicInfo(topic))) {
        process.stdout.write(`nothing to replay: the topic ${topic} does not exist\n`);
        return 0;
      }
      const { producer, checkpoint } = await log.openProducer(`dlq-replay:${cfg.name}`);
      const done = checkpoint ? (JSON.parse(checkpoint) as { next: number }).next : 0;
      const counts = new Map<string, number>();
      let sinks = 0;
      let next = from ?? done;
      for await (const d of deadLetters(log, topic, from ?? done)) {
        next = d.offset + 1;
        const proc = d.rec.headers?.[DLQ_HEADERS.processor];
        if (proc === undefined) {
          sinks++;
          continue;
        }
        if (!only.has(proc)) continue;
        counts.set(proc, (counts.get(proc) ?? 0) + 1);
        if (values['dry-run']) {
          process.stdout.write(asLine(d) + '\n');
          continue;
        }
        const retry = retryTopicOf(cfg.name, proc);
        if ((counts.get(proc) ?? 0) === 1) await log.ensureTopic(retry, { partitions: 1 });
        const key = d.rec.headers?.[DLQ_HEADERS.key] ?? null;
        producer.append(retry, { key, value: d.rec.value, timestamp: d.timestamp, headers: d.rec.headers }, 0);
      }
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      if (values['dry-run']) {
        await producer.abort();
        process.stdout.write(`would replay ${total} dead letter(s)${describe(counts)}; nothing written\n`);
      } else {
        await producer.commit(JSON.stringify({ next: Math.max(next, done) }));
        process.stdout.write(`replayed ${total} dead letter(s)${describe(counts)}; each processor takes them from its retry topic when the pipeline runs\n`);
      }
      if (sinks) process.stdout.write(`${sinks} sink dead letter(s) left in ${topic}: changes a target refused are not replayed (see sluice dlq --help)\n`);
      await producer.close();
    } finally {
      await log.close();
    }
    return 0;
  },
};

function describe(counts: Map<string, number>): string {
  return counts.size ? ` (${[...counts].map(([p, n]) => `${p}: ${n}`).join(', ')})` : '';
}

/** The dead letters of `topic` (one partition) from `from`. */
async function* deadLetters(log: Log, topic: string, from = 0): AsyncGenerator<Dead> {
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

function asLine(d: Dead): string {
  return `${d.offset}\t${new Date(d.rec.timestamp).toISOString()}\t${d.component}\t${d.input}\t${d.code}: ${d.message.replace(/\s+/g, ' ').slice(0, 300)}`;
}

function asJson(d: Dead): string {
  const text = (b: Buffer | null) => (b === null ? null : b.toString('utf8'));
  return JSON.stringify({ offset: d.offset, deadLetteredAt: d.rec.timestamp, component: d.component, input: d.input, code: d.code, message: d.message, key: d.rec.headers?.[DLQ_HEADERS.key] ?? null, value: text(d.rec.value), headers: d.rec.headers ?? {} });
}
