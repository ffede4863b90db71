/**
 * The config keys every processor has (`name`, `inputs`, `output`, `onError`), declared once so
 * each processor's spec adds only its own keys, and the docs describe them the same way.
 */
import { boolean, duration, integer, list, object, oneOf, string, type ResolveContext } from '../config/fields.ts';
import type { StatefulOptions } from '../registry/spec.ts';
import { topicPart } from '../sources/common/names.ts';

/** The processor's own name in the config being resolved (for defaults that derive from it). */
export const nameOf = (ctx: ResolveContext, fallback: string): string => String(ctx.root?.processors?.[Number(ctx.path[1])]?.name ?? fallback);

/**
 * The common keys. `output` is the default output template, e.g. `{name}.{schema}.{table}`, where
 * `{name}` is the processor's name.
 */
export function processorFields(o: { output: string; outputDoc?: string }) {
  return {
    name: string({ pattern: '^[A-Za-z0-9_.-]+$', description: 'Unique in the pipeline; names its producer and checkpoint, and other processors and sinks read its output by this name.', hint: 'letters, digits, _ . -' }),
    inputs: list(string({ minLength: 1 }), {
      description: "What it reads: processor names (their output), `source` (the source's change topics), topic names or `*` patterns, or `topic:<name>` for a topic named like neither. Empty: the source's change topics.",
      type: 'list of processor names or topic patterns',
    }).default([]),
    output: string({ minLength: 1, description: o.outputDoc ?? 'Output topic; `{topic}`, `{schema}`, `{table}` are replaced per input record.' }).default((ctx) => o.output.replace('{name}', nameOf(ctx, 'processor')), `\`${o.output.replace('{name}', '<name>')}\``),
    onError: oneOf(['dlq', 'stop'] as const, {
      description: "A record the processor cannot transform (a thrown error, bad JSON, an expression that fails on its values): `dlq` writes it to the log topic `<pipeline>.dlq` with the error and its input topic, partition and offset in headers, and goes on (`sluice dlq list` shows them, `sluice dlq replay` re-injects them after a fix); `stop` stops the processor at it.",
    }).default('dlq'),
    outputTopic: object(
      {
        partitions: integer({ min: 1, max: 10_000, description: 'Partitions.' }).optional("the log's default"),
        retention: duration({ description: 'Delete records older than this (e.g. `7d`).' }).optional("the log's default"),
        compaction: boolean({ description: 'Keep only the latest record per key (a state topic such as seed 004\'s `topic_user_state`): readers that start later still find every key\'s latest value.' }).default(false),
      },
      { description: 'Settings of the output topics the processor creates (a topic that exists keeps its own).' },
    ).optional("the log's defaults"),
    onSchemaChange: oneOf(['continue', 'stop'] as const, {
      description: "A change event whose table changed its columns (added, removed, retyped) since the schema before it: `continue` reports it (an event on `<pipeline>.schema-changes`, the metric `sluice_schema_changes_total`, a warning) and goes on; `stop` reports it and stops the processor at that record (PROCESSOR_SCHEMA_CHANGED).",
    }).default('continue'),
  };
}

/**
 * The output topic of one record: `{topic}` is the input topic, `{schema}` and `{table}` the
 * change's table (for records that are not change events: the input topic's last two parts),
 * escaped as in change topics so any table name gives a valid topic.
 */
export function outputTopic(template: string, topic: string, table?: { schema: string; table: string }): string {
  if (!template.includes('{')) return template;
  let t = table;
  if (!t) {
    const parts = topic.split('.');
    t = { schema: parts.length > 1 ? parts[parts.length - 2] : '', table: parts[parts.length - 1] };
    return template.replace(/\{topic\}/g, () => topic).replace(/\{schema\}/g, () => t!.schema).replace(/\{table\}/g, () => t!.table);
  }
  return template.replace(/\{topic\}/g, () => topic).replace(/\{schema\}/g, () => topicPart(t!.schema)).replace(/\{table\}/g, () => topicPart(t!.table));
}

/** The `state` keys of a stateful processor (window, join): its bound, how often it commits, where it lives. */
export function stateFields(o: { what: string }) {
  return object({
    maxKeys: integer({ min: 1, description: `The most ${o.what} held at once; reaching it stops the processor with STATE_LIMIT.` }).default(1_000_000),
    commitInterval: duration({
      description: 'How often the processor commits while busy: its output, the state entries changed since the last commit and its input offsets, in one log commit. Longer: an entry changed many times goes to the changelog once, and more throughput; shorter: results appear sooner. Idle, it commits at once.',
    }).default(1000),
    store: oneOf(['memory', 'disk'] as const, {
      description: '`memory`: every entry in memory (fastest; memory grows with the state). `disk`: entries in an on-disk store (LMDB, the npm package `lmdb`) under `state.dir`, with `memoryKeys` of them cached in memory, for state larger than memory. Either way the changelog topic is the durable copy, restored at each start.',
    }).default('memory'),
    memoryKeys: integer({ min: 1, description: 'With `store: disk`: the entries cached in memory (plus those changed since the last commit). Memory is about this many entries; the rest is on disk.' }).default(100_000),
    dir: string({ minLength: 1, type: 'path', description: 'With `store: disk`: the directory of the on-disk state (`<dir>/<pipeline>/<processor>`), a cache of the changelog rebuilt at each start; it needs room for the state, about the changelog\'s size.' }).optional("`processors` in the pipeline's `state.dir`"),
  }).default({});
}

/** A stateful processor's state options, from its `state` config. */
export function statefulOptions(s: { maxKeys: number; commitInterval: number; store: 'memory' | 'disk'; memoryKeys: number; dir?: string }, parallelism = 1): StatefulOptions {
  return { maxKeys: s.maxKeys, commitMs: s.commitInterval, store: s.store, memoryKeys: s.memoryKeys, dir: s.dir, parallelism };
}
