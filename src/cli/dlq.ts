/**
 * `sluice dlq list|replay`: the pipeline's dead-letter topic `<pipeline>.dlq`. `list` prints what
 * sinks and processors set aside, with why and where from; `replay` writes a processor's dead
 * letters back to its retry topic (`<pipeline>.retry.<processor>`), which the processor reads
 * beside its inputs, once the cause is fixed. A replay commits the records with the position it
 * reached in the dead-letter topic, so running it again replays only what came after.
 */
import { parseArgs } from 'node:util';
import { openLog } from '../log/open.ts';
import { deadLetterJson, deadLetters, replayDeadLetters, type DeadLetter } from '../engine/dlq.ts';
import { dlqTopicOf } from '../engine/topology.ts';
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
      const r = await replayDeadLetters(log, cfg.name, { processors: [...only], from, dryRun: values['dry-run'], onRecord: values['dry-run'] ? (d) => process.stdout.write(asLine(d) + '\n') : undefined });
      if (!r.topicExists) {
        process.stdout.write(`nothing to replay: the topic ${topic} does not exist\n`);
        return 0;
      }
      const counts = new Map(Object.entries(r.replayed));
      if (r.dryRun) process.stdout.write(`would replay ${r.total} dead letter(s)${describe(counts)}; nothing written\n`);
      else process.stdout.write(`replayed ${r.total} dead letter(s)${describe(counts)}; each processor takes them from its retry topic when the pipeline runs\n`);
      if (r.sinkDeadLetters) process.stdout.write(`${r.sinkDeadLetters} sink dead letter(s) left in ${topic}: changes a target refused are not replayed (see sluice dlq --help)\n`);
    } finally {
      await log.close();
    }
    return 0;
  },
};

function describe(counts: Map<string, number>): string {
  return counts.size ? ` (${[...counts].map(([p, n]) => `${p}: ${n}`).join(', ')})` : '';
}

function asLine(d: DeadLetter): string {
  return `${d.offset}\t${new Date(d.rec.timestamp).toISOString()}\t${d.component}\t${d.input}\t${d.code}: ${d.message.replace(/\s+/g, ' ').slice(0, 300)}`;
}

function asJson(d: DeadLetter): string {
  return JSON.stringify(deadLetterJson(d));
}
