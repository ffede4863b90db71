/**
 * The pipeline as a graph of tasks over topics: the source writes its change topics, each
 * processor reads topics and writes its output topics, each sink reads topics. Which topics a
 * processor or sink reads is decided here, from its `inputs`/`topics` patterns (default: the
 * source's change topics), never by taking everything under the prefix, so a processor's outputs
 * are not swallowed by a sink that did not ask for them. `planTopology` also checks the graph: a
 * sink reading records it cannot apply, a processor reading its own output, two writers of a topic.
 */
import { coreError } from '../core/errors.ts';
import { schemaTopicOf } from '../core/schemas.ts';
import type { PipelineConfig } from '../config/types.ts';
import { processorSpec, sinkSpec, sourceSpec } from '../registry/index.ts';
import type { RecordFormat } from '../registry/spec.ts';

/** A topic name pattern: `*` matches any run of characters. */
export function topicPattern(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

/** The topics an output template (`flat.{schema}.{table}`) can produce, as a pattern. */
export function outputPattern(template: string): RegExp {
  return new RegExp('^' + template.split(/\{(?:topic|schema|table)\}/).map((x) => x.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')).join('.+') + '$');
}

/** The dead-letter topic of a pipeline's sinks (`onError: dlq`). */
export const dlqTopicOf = (pipeline: string): string => `${pipeline}.dlq`;

export interface Reader {
  /** `sink <name>` or `processor <name>`, for messages. */
  what: string;
  /** Whether the reader takes `topic`. */
  reads(topic: string): boolean;
}

export interface Topology {
  /** The source's topic prefix. */
  prefix: string;
  /** Topics the log holds for the pipeline's own bookkeeping (schemas, transaction metadata, dead letters). */
  internal: Set<string>;
  /** Whether a topic is one of the source's change topics. */
  isSourceTopic(topic: string): boolean;
  /** The reader of each processor and sink, by name. */
  processors: Map<string, Reader & { output: RegExp; format: RecordFormat }>;
  sinks: Map<string, Reader>;
}

export function planTopology(cfg: PipelineConfig): Topology {
  // Without a source the pipeline's own topics (schemas, dead letters) take the pipeline's name.
  const prefix = cfg.source ? sourceSpec(cfg.source.type).topicPrefix(cfg.source) : cfg.name;
  const internal = new Set([schemaTopicOf(prefix), `${prefix}.transaction`, dlqTopicOf(cfg.name)]);
  const outputs = cfg.processors.map((p) => ({ name: p.name, re: outputPattern(p.output), format: processorSpec(p.type).output }));
  const isOutput = (t: string) => outputs.some((o) => o.re.test(t));
  const isSourceTopic = (t: string) => !!cfg.source && t.startsWith(prefix + '.') && !internal.has(t) && !isOutput(t);
  const reader = (what: string, patterns: string[]): Reader => {
    const res = patterns.map(topicPattern);
    return { what, reads: (t) => !internal.has(t) && (res.length ? res.some((r) => r.test(t)) : isSourceTopic(t)) };
  };
  const processors = new Map<string, Reader & { output: RegExp; format: RecordFormat }>();
  for (const p of cfg.processors) {
    const r = reader(`processor ${p.name}`, p.inputs);
    const out = outputPattern(p.output);
    processors.set(p.name, { ...r, output: out, format: processorSpec(p.type).output });
  }
  const sinks = new Map<string, Reader>();
  for (const s of cfg.sinks) sinks.set(s.name, reader(`sink ${s.name}`, s.topics));

  // The graph must make sense: a sample topic of each processor output, and checks against it.
  const problems: string[] = [];
  for (const p of cfg.processors) {
    const sample = p.output.replace(/\{topic\}/g, `${prefix}.s.t`).replace(/\{schema\}/g, 's').replace(/\{table\}/g, 't');
    if (processors.get(p.name)!.reads(sample)) problems.push(`processor ${p.name} would read its own output (${p.output}): give it inputs that exclude it, or another output`);
    for (const q of cfg.processors) if (q !== p && outputPattern(q.output).test(sample)) problems.push(`processors ${p.name} and ${q.name} both write ${sample}-like topics: give each its own output`);
    if (sample.startsWith(prefix + '.') && internal.has(sample)) problems.push(`processor ${p.name} writes the pipeline's own topic ${sample}`);
    const format = processorSpec(p.type).output;
    for (const s of cfg.sinks) {
      if (!sinks.get(s.name)!.reads(sample)) continue;
      const accepts = sinkSpec(s.type).input ?? 'envelope';
      if (format !== accepts) problems.push(`sink ${s.name} reads the output of processor ${p.name} (${p.output}), whose records are ${format} rows, but it applies change events (envelopes); point its topics elsewhere`);
    }
  }
  if (problems.length) throw coreError('ENGINE_GRAPH', `the pipeline graph is inconsistent:\n  ${problems.join('\n  ')}`);
  return { prefix, internal, isSourceTopic, processors, sinks };
}
