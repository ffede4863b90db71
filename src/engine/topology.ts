/**
 * The pipeline as a graph of tasks over topics: the source writes its change topics, each
 * processor reads topics and writes its output topics, each sink reads topics. Which topics a
 * processor or sink reads is decided here, from its `inputs`/`topics` patterns (default: the
 * source's change topics), never by taking everything under the prefix, so a processor's outputs
 * are not swallowed by a sink that did not ask for them. `planTopology` also checks the graph: a
 * sink reading records it cannot apply, a processor reading its own output, two writers of a topic.
 */
import { schemaChangesTopicOf } from './schema-drift.ts';
import { coreError } from '../core/errors.ts';
import { schemaTopicOf } from '../core/schemas.ts';
import { historyTopicOf } from '../schedules/spec.ts';
import type { PipelineConfig } from '../config/types.ts';
import { processorSpec, sinkSpec, sourceSpec } from '../registry/index.ts';
import type { RecordFormat } from '../registry/spec.ts';

/** A topic name pattern: `*` matches any run of characters. */
export function topicPattern(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

/** One pattern matching any of `res`. */
function anyOf(res: RegExp[]): RegExp {
  return res.length === 1 ? res[0] : new RegExp(res.map((r) => `(?:${r.source})`).join('|'));
}

/** The topics an output template (`flat.{schema}.{table}`, any `{placeholder}`) can produce, as a pattern. */
export function outputPattern(template: string): RegExp {
  return new RegExp('^' + template.split(/\{[a-z_]+\}/).map((x) => x.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')).join('.+') + '$');
}

/** The dead-letter topic of a pipeline's sinks and processors (`onError: dlq`). */
export const dlqTopicOf = (pipeline: string): string => `${pipeline}.dlq`;

/** The topic `sluice dlq replay` writes a processor's dead letters back to; the processor reads it beside its inputs. */
export const retryTopicOf = (pipeline: string, processor: string): string => `${pipeline}.retry.${processor}`;

/** The schema topic of the change events a processor writes (one per processor: a partition takes one writer's uncommitted records at a time). */
export const processorSchemaTopicOf = (pipeline: string, processor: string): string => schemaTopicOf(`${pipeline}.${processor}`);

/** The compacted changelog topic a stateful processor commits its keyed state to, with its output. */
export const stateTopicOf = (pipeline: string, processor: string): string => `${pipeline}.state.${processor}`;

export interface Reader {
  /** `sink <name>` or `processor <name>`, for messages. */
  what: string;
  /** Whether the reader takes `topic`. */
  reads(topic: string): boolean;
}

/** A node of the graph as `sluice validate` prints it. */
export interface GraphNode {
  kind: 'source' | 'ingest' | 'processor' | 'sink';
  name: string;
  type: string;
  /** What it reads: `source`, processor names, and topic patterns that name neither. */
  from: string[];
  /** What it writes: topic template (processors), change topics (the source). */
  to?: string;
  /** The formats of the records it writes (processors and the source). */
  formats?: RecordFormat[];
}

export interface Topology {
  /** The source's topic prefix. */
  prefix: string;
  /** Topics the log holds for the pipeline's own bookkeeping (schemas, transaction metadata, dead letters). */
  internal: Set<string>;
  /** Whether a topic is one of the source's change topics. */
  isSourceTopic(topic: string): boolean;
  /** The reader of each processor and sink, by name. */
  processors: Map<string, Reader & { output: RegExp; formats: RecordFormat[]; side?: (topic: string) => boolean; sideEntry?: (topic: string) => string | undefined }>;
  sinks: Map<string, Reader>;
  /** Processor names, each after every processor it reads from. */
  order: string[];
  /** The graph, in order: the source, processors, sinks. */
  nodes: GraphNode[];
}

const FORMAT_NAMES: Record<RecordFormat, string> = { envelope: 'change events', flat: 'flat rows', event: 'events' };

/**
 * Plans the graph of a pipeline. An entry of a processor's `inputs` or a sink's `topics` is one of:
 * the name of a processor (its output topics), `source` (the source's change topics), a topic
 * name or `*` pattern, or `topic:<name>` (that exact topic, for names that look like neither).
 * Empty: the source's change topics.
 */
export function planTopology(cfg: PipelineConfig): Topology {
  // Without a source the pipeline's own topics (schemas, dead letters) take the pipeline's name.
  const prefix = cfg.source ? sourceSpec(cfg.source.type).topicPrefix(cfg.source) : cfg.name;
  const internal = new Set([schemaTopicOf(prefix), `${prefix}.transaction`, dlqTopicOf(cfg.name), ...cfg.processors.flatMap((p) => [retryTopicOf(cfg.name, p.name), stateTopicOf(cfg.name, p.name), processorSchemaTopicOf(cfg.name, p.name)]), schemaChangesTopicOf(cfg.name), historyTopicOf(cfg.name)]);
  const byName = new Map(cfg.processors.map((p) => [p.name, p]));
  const templates = new Map(cfg.processors.map((p) => [p.name, processorSpec(p.type).outputs?.(p) ?? [p.output]]));
  const outputRe = new Map(cfg.processors.map((p) => [p.name, anyOf(templates.get(p.name)!.map(outputPattern))]));
  const isOutput = (t: string) => [...outputRe.values()].some((re) => re.test(t));
  const ingestTopics = new Set(cfg.ingest?.routes.map((r) => r.topic) ?? []);
  // Topics of events the pipeline takes in itself: the gateway's routes and the scheduled pulls.
  const eventTopics = new Set([...ingestTopics, ...cfg.schedules.flatMap((s) => (s.topic === undefined ? [] : [s.topic]))]);
  const isSourceTopic = (t: string) => !!cfg.source && t.startsWith(prefix + '.') && !internal.has(t) && !isOutput(t) && !eventTopics.has(t);
  const sample = (template: string) => template.replace(/\{topic\}/g, `${prefix}.s.t`).replace(/\{schema\}/g, 's').replace(/\{table\}/g, 't').replace(/\{[a-z_]+\}/g, 'x');
  const problems: string[] = [];

  /** What a list of inputs reads, and which upstream nodes it names or matches. */
  const resolve = (what: string, entries: string[]): Reader & { upstream: Set<string>; from: string[] } => {
    const tests: ((t: string) => boolean)[] = [];
    const upstream = new Set<string>();
    const from: string[] = [];
    if (entries.length === 0 || entries.includes('source')) {
      if (!cfg.source && entries.length) problems.push(`${what} reads \`source\`, but the pipeline has no source: name topics or processors`);
      tests.push(isSourceTopic);
      upstream.add('source');
      from.push('source');
    }
    for (const e of entries) {
      if (e === 'source') continue;
      if (e === 'ingest') {
        if (!ingestTopics.size) problems.push(`${what} reads \`ingest\`, but the pipeline has no event gateway: name topics or processors`);
        tests.push((t) => ingestTopics.has(t));
        upstream.add('ingest');
        from.push('ingest');
        continue;
      }
      if (byName.has(e)) {
        tests.push((t) => outputRe.get(e)!.test(t));
        upstream.add(e);
        from.push(e);
        continue;
      }
      const re = e.startsWith('topic:') ? new RegExp('^' + e.slice(6).replace(/[.+?^${}()|[\]\\*]/g, '\\$&') + '$') : topicPattern(e);
      tests.push((t) => re.test(t));
      from.push(e);
      // A pattern that takes a processor's output (or source topics) makes that an upstream node too.
      for (const q of cfg.processors) if (templates.get(q.name)!.some((t) => re.test(sample(t)))) upstream.add(q.name);
      if (cfg.source && re.test(`${prefix}.s.t`)) upstream.add('source');
      if ([...eventTopics].some((t) => re.test(t))) upstream.add('ingest');
    }
    return { what, reads: (t) => !internal.has(t) && tests.some((f) => f(t)), upstream, from };
  };

  // A processor's side inputs (a join's table) are inputs too: they order the graph and feed its reader.
  const sideOf = (p: PipelineConfig['processors'][number]) => processorSpec(p.type).sideInputs?.(p) ?? [];
  const procReaders = new Map(cfg.processors.map((p) => [p.name, resolve(`processor ${p.name}`, [...(p.inputs.length || !sideOf(p).length ? p.inputs : ['source']), ...sideOf(p)])]));
  const sideReaders = new Map(cfg.processors.filter((p) => sideOf(p).length).map((p) => [p.name, resolve(`processor ${p.name}`, sideOf(p))]));
  // Which side entry reads a topic, for processors with several (an expect processor's referenced tables).
  const sideEntries = new Map(cfg.processors.filter((p) => sideOf(p).length > 1).map((p) => [p.name, sideOf(p).map((e) => [e, resolve(`processor ${p.name}`, [e]).reads] as const)]));
  const sinkReaders = new Map(cfg.sinks.map((s) => [s.name, resolve(`sink ${s.name}`, s.topics)]));

  // Cycles, and the order processors are started and drained in.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      problems.push(cycle.length === 2 ? `processor ${name} would read its own output (${byName.get(name)!.output}): give it inputs that exclude it, or another output` : `processors form a cycle: ${cycle.join(' → ')}; each reads the output of the one before it`);
      return;
    }
    state.set(name, 'visiting');
    for (const up of procReaders.get(name)!.upstream) if (up !== 'source' && up !== 'ingest') visit(up, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const p of cfg.processors) visit(p.name, []);

  // Formats: what each processor writes, from its spec or (for `same`) from what it reads.
  const formats = new Map<string, RecordFormat[]>();
  const formatsOf = (upstream: Iterable<string>): RecordFormat[] => {
    const out = new Set<RecordFormat>();
    for (const up of upstream) for (const f of up === 'source' ? (['envelope'] as const) : up === 'ingest' ? (['event'] as const) : (formats.get(up) ?? [])) out.add(f);
    // Topics of another pipeline or of Debezium: change events.
    if (out.size === 0) out.add('envelope');
    return [...out];
  };
  for (const name of order) {
    const p = byName.get(name)!;
    const spec = processorSpec(p.type);
    const ins = formatsOf(procReaders.get(name)!.upstream);
    if (spec.input !== 'any') {
      for (const f of ins) if (f !== spec.input) problems.push(`processor ${name} (${p.type}) takes ${FORMAT_NAMES[spec.input]}, but its inputs hold ${FORMAT_NAMES[f]}: point its inputs elsewhere`);
    }
    const output = typeof spec.output === 'function' ? spec.output(p) : spec.output;
    formats.set(name, output === 'same' ? ins : [output]);
  }

  for (const p of cfg.processors) {
    for (const out of templates.get(p.name)!.map(sample)) {
      for (const q of cfg.processors) if (q !== p && outputRe.get(q.name)!.test(out)) problems.push(`processors ${p.name} and ${q.name} both write ${out}-like topics: give each its own output`);
      if (internal.has(out)) problems.push(`processor ${p.name} writes the pipeline's own topic ${out}`);
    }
    for (const s of cfg.sinks) {
      if (!sinkReaders.get(s.name)!.upstream.has(p.name)) continue;
      const accepts = sinkSpec(s.type).input ?? 'envelope';
      for (const f of formats.get(p.name) ?? []) {
        if (f !== accepts) problems.push(`sink ${s.name} reads the output of processor ${p.name} (${p.output}), whose records are ${FORMAT_NAMES[f]}, but it applies ${FORMAT_NAMES[accepts]}; point its topics elsewhere`);
      }
    }
  }
  for (const s of cfg.sinks) {
    const accepts = sinkSpec(s.type).input ?? 'envelope';
    if (sinkReaders.get(s.name)!.upstream.has('ingest') && accepts !== 'event') problems.push(`sink ${s.name} reads topics of the gateway or of scheduled pulls, whose records are events, but it applies ${FORMAT_NAMES[accepts]}; turn them into rows with a processor first, or point its topics elsewhere`);
  }
  for (const t of eventTopics) {
    for (const p of cfg.processors) if (outputRe.get(p.name)!.test(t)) problems.push(`processor ${p.name} and ${ingestTopics.has(t) ? 'the gateway' : 'a scheduled pull'} both write ${t}: give each its own topic`);
    if (internal.has(t)) problems.push(`the gateway writes the pipeline's own topic ${t}: choose another topic`);
  }
  if (problems.length) throw coreError('ENGINE_GRAPH', `the pipeline graph is inconsistent:\n  ${[...new Set(problems)].join('\n  ')}`);

  const processors = new Map() as Topology['processors'];
  for (const p of cfg.processors) {
    const r = procReaders.get(p.name)!;
    const retry = retryTopicOf(cfg.name, p.name);
    const entries = sideEntries.get(p.name);
    const sideEntry = entries ? (t: string) => entries.find(([, reads]) => reads(t))?.[0] : sideOf(p).length ? (t: string) => (sideReaders.get(p.name)!.reads(t) ? sideOf(p)[0] : undefined) : undefined;
    processors.set(p.name, { what: r.what, reads: (t) => t === retry || r.reads(t), output: outputRe.get(p.name)!, formats: formats.get(p.name)!, side: sideReaders.get(p.name)?.reads, sideEntry });
  }
  const sinks = new Map<string, Reader>([...sinkReaders].map(([k, r]) => [k, { what: r.what, reads: r.reads }]));
  const nodes: GraphNode[] = [];
  if (cfg.source) nodes.push({ kind: 'source', name: 'source', type: cfg.source.type, from: [], to: `${prefix}.<schema>.<table>`, formats: ['envelope'] });
  if (cfg.ingest) nodes.push({ kind: 'ingest', name: 'ingest', type: 'http', from: [], to: [...ingestTopics].join(' | '), formats: ['event'] });
  if (cfg.schedules.some((x) => x.topic !== undefined)) nodes.push({ kind: 'ingest', name: 'schedules', type: 'http pull', from: [], to: [...new Set(cfg.schedules.flatMap((x) => (x.topic === undefined ? [] : [x.topic])))].join(' | '), formats: ['event'] });
  for (const name of order) {
    const p = byName.get(name)!;
    nodes.push({ kind: 'processor', name, type: p.type, from: procReaders.get(name)!.from, to: templates.get(name)!.join(' | '), formats: formats.get(name) });
  }
  for (const s of cfg.sinks) nodes.push({ kind: 'sink', name: s.name, type: s.type, from: sinkReaders.get(s.name)!.from });
  return { prefix, internal, isSourceTopic, processors, sinks, order, nodes };
}

/** The graph as text, one node per line, for `sluice validate`. */
export function describeGraph(t: Topology): string {
  const lines = t.nodes.map((n) => {
    const from = n.from.length ? ` ← ${n.from.join(', ')}` : '';
    const to = n.to ? ` → ${n.to}` : '';
    const fmt = n.formats ? ` (${n.formats.map((f) => FORMAT_NAMES[f]).join(', ')})` : '';
    return `  ${n.kind} ${n.name} [${n.type}]${from}${to}${fmt}`;
  });
  return lines.join('\n');
}
