/**
 * The operations console's data, behind `/api/*` (src/server/http.ts): topics with their rates
 * (from samples of the log's end offsets over the last minute), the config graph, a ring buffer of
 * per-sink lag samples for the live chart, dead-letter search and replay, and the reconcile
 * history. `sluice run` builds it over the pipeline's own open log; `sluice ui` over a read-only
 * handle of the pipeline's log, with status.json as the status.
 *
 * Nothing here carries a connection config: the graph has names, types and topics only, and the
 * HTTP layer masks every known password in every answer besides.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PipelineConfig } from '../config/types.ts';
import { deadLetterJson, deadLetters, type ReplayOptions, type ReplayResult } from '../engine/dlq.ts';
import { dlqTopicOf, planTopology } from '../engine/topology.ts';
import type { Log } from '../log/types.ts';
import { HttpError, type ConsoleApi } from './http.ts';

export interface ConsoleOptions {
  cfg: PipelineConfig;
  /** The log to read (the pipeline's own, or a read-only handle). */
  log: Log;
  /** The pipeline's status, as /status answers it (null: none yet). */
  status(): any;
  /** Replays dead letters through a log open for writing; throws an HttpError when it cannot. */
  replay(opts: ReplayOptions): Promise<ReplayResult>;
  /** `run`: served by the running pipeline; `ui`: by `sluice ui` over its log and status.json. */
  mode?: 'run' | 'ui';
  /** Sampling interval of topic ends and sink lag (default 1500 ms). */
  sampleMs?: number;
  /** Lag samples kept (default 400: ten minutes at 1.5 s). */
  keep?: number;
}

interface TopicSample {
  t: number;
  ends: Map<string, number>;
}

export interface LagSample {
  /** Milliseconds since the epoch. */
  t: number;
  /** Per sink: log offsets not yet applied (summed over partitions), and the age of the last applied change. */
  sinks: Record<string, { offsets: number; ms: number | null }>;
}

const RATE_WINDOW_MS = 60_000;
/** Dead letters one search reads at most. */
const MAX_SCAN = 100_000;

export function createConsole(o: ConsoleOptions): ConsoleApi & { close(): void } {
  const sampleMs = o.sampleMs ?? 1500;
  const keep = o.keep ?? 400;
  const topology = planTopology(o.cfg);
  const topicSamples: TopicSample[] = [];
  const lagSamples: LagSample[] = [];
  let closed = false;

  const readTopics = async () => {
    const out: { name: string; partitions: { partition: number; start: number; end: number }[] }[] = [];
    for (const t of await o.log.listTopics()) out.push({ name: t.name, partitions: await o.log.offsets(t.name) });
    return out;
  };
  const sumEnds = (parts: { end: number }[]) => parts.reduce((n, p) => n + p.end, 0);

  const sampleLag = () => {
    const st = o.status();
    const sinks: LagSample['sinks'] = {};
    for (const s of (st?.sinks ?? []) as any[]) {
      const lag = Object.values((s.partitionLag ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
      sinks[s.name] = { offsets: lag, ms: typeof s.lagMs === 'number' ? s.lagMs : null };
    }
    lagSamples.push({ t: Date.now(), sinks });
    if (lagSamples.length > keep) lagSamples.splice(0, lagSamples.length - keep);
  };
  const sampleTopics = async () => {
    const topics = await readTopics();
    topicSamples.push({ t: Date.now(), ends: new Map(topics.map((t) => [t.name, sumEnds(t.partitions)])) });
    while (topicSamples.length > 2 && topicSamples[1].t < Date.now() - RATE_WINDOW_MS) topicSamples.shift();
  };
  let busy = false;
  const tick = async () => {
    if (busy || closed) return;
    busy = true;
    try {
      sampleLag();
      await sampleTopics();
    } catch {
      // the log unreachable for a moment: the next sample tries again
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), sampleMs);
  timer.unref();

  /** What the topic is to the pipeline, for the Topics page. */
  const roleOf = (name: string): string => {
    if (name === dlqTopicOf(o.cfg.name)) return 'dead letters';
    if (topology.internal.has(name)) return 'internal';
    if (topology.isSourceTopic(name)) return 'source';
    for (const [p, r] of topology.processors) if (r.output.test(name)) return `processor ${p}`;
    return 'other';
  };

  let replaying: Promise<unknown> = Promise.resolve();

  return {
    info() {
      return {
        pipeline: o.cfg.name,
        mode: o.mode ?? 'run',
        replay: (o.mode ?? 'run') === 'run' ? 'in the running pipeline' : 'opens the log for writing: only while the pipeline is stopped (embedded log)',
        source: o.cfg.source?.type ?? null,
        processors: o.cfg.processors.map((p) => ({ name: p.name, type: p.type })),
        sinks: o.cfg.sinks.map((x) => ({ name: x.name, type: x.type })),
        sampleMs,
      };
    },

    async topics() {
      const now = Date.now();
      const topics = await readTopics();
      const base = topicSamples.find((s) => s.t >= now - RATE_WINDOW_MS - sampleMs);
      return {
        windowMs: base ? now - base.t : 0,
        topics: topics.map((t) => {
          const end = sumEnds(t.partitions);
          const then = base?.ends.get(t.name);
          const dt = base ? (now - base.t) / 1000 : 0;
          return {
            name: t.name,
            role: roleOf(t.name),
            partitions: t.partitions,
            records: t.partitions.reduce((n, p) => n + p.end - p.start, 0),
            end,
            // Records per second over the last minute (null until two samples exist).
            rate: base && dt >= 0.5 ? Math.max(0, end - (then ?? 0)) / dt : null,
          };
        }),
      };
    },

    async graph() {
      const nodes: { id: string; kind: string; name: string; type?: string; writes?: string }[] = [];
      const edges: { from: string; to: string }[] = [];
      const idOf = (kind: string, name: string) => `${kind}:${name}`;
      for (const n of topology.nodes) nodes.push({ id: idOf(n.kind, n.name), kind: n.kind, name: n.name, type: n.type, ...(n.to ? { writes: n.to } : {}) });
      const topicNames = (await o.log.listTopics().catch(() => [])).map((t) => t.name).filter((t) => !topology.internal.has(t) || t === dlqTopicOf(o.cfg.name));
      const fed = new Set<string>();
      const writerOf = (t: string): string | null => {
        if (t === dlqTopicOf(o.cfg.name)) return null;
        if (topology.isSourceTopic(t)) return topology.nodes.find((n) => n.kind === 'source') ? 'source:source' : null;
        for (const [p, r] of topology.processors) if (r.output.test(t)) return idOf('processor', p);
        const ingest = topology.nodes.find((n) => n.kind === 'ingest' && n.to?.split(' | ').includes(t));
        return ingest ? idOf('ingest', ingest.name) : null;
      };
      for (const t of topicNames) {
        const readers = [...[...topology.processors].filter(([, r]) => r.reads(t)).map(([p]) => idOf('processor', p)), ...[...topology.sinks].filter(([, r]) => r.reads(t)).map(([s]) => idOf('sink', s))];
        const writer = writerOf(t);
        if (!readers.length && !writer && t !== dlqTopicOf(o.cfg.name)) continue;
        const id = idOf('topic', t);
        nodes.push({ id, kind: 'topic', name: t });
        if (writer) edges.push({ from: writer, to: id });
        for (const r of readers) {
          edges.push({ from: id, to: r });
          fed.add(r);
        }
      }
      // Dead letters: every processor may set records aside, and sinks with onError: dlq.
      const dlq = idOf('topic', dlqTopicOf(o.cfg.name));
      if (nodes.some((n) => n.id === dlq)) {
        for (const p of o.cfg.processors) edges.push({ from: idOf('processor', p.name), to: dlq });
        for (const x of o.cfg.sinks) if ((x as { onError?: unknown }).onError === 'dlq') edges.push({ from: idOf('sink', x.name), to: dlq });
      }
      // Readers of topics that do not exist yet: an edge from what their config names.
      for (const n of topology.nodes) {
        const id = idOf(n.kind, n.name);
        if (fed.has(id)) continue;
        for (const f of n.from) {
          const up = topology.nodes.find((m) => m.name === f && m.kind !== 'sink');
          if (up) edges.push({ from: idOf(up.kind, up.name), to: id });
          else {
            const pid = idOf('pattern', f);
            if (!nodes.some((x) => x.id === pid)) nodes.push({ id: pid, kind: 'topic', name: f });
            edges.push({ from: pid, to: id });
          }
        }
      }
      return { pipeline: o.cfg.name, nodes, edges };
    },

    lag() {
      return { intervalMs: sampleMs, sinks: o.cfg.sinks.map((s) => s.name), samples: lagSamples };
    },

    async dlq({ q, from, max }) {
      const topic = dlqTopicOf(o.cfg.name);
      const limit = Math.min(max ?? 100, 1000);
      if (!(await o.log.topicInfo(topic))) return { topic, exists: false, total: 0, matched: 0, items: [] };
      const [part] = await o.log.offsets(topic);
      const needle = q?.trim().toLowerCase() ?? '';
      const items: Record<string, unknown>[] = [];
      let matched = 0;
      let scanned = 0;
      let next: number | null = null;
      for await (const d of deadLetters(o.log, topic, from ?? 0)) {
        // A search reads at most MAX_SCAN dead letters; `next` says where to go on (`from`).
        if (scanned++ >= MAX_SCAN) {
          next = d.offset;
          break;
        }
        const j = deadLetterJson(d);
        if (needle) {
          const hay = [j.component, j.code, j.message, j.input, j.key, j.value].map((x) => String(x ?? '')).join('\n').toLowerCase();
          if (!hay.includes(needle)) continue;
        }
        matched++;
        if (items.length < limit) items.push(j);
      }
      return { topic, exists: true, total: part ? part.end - part.start : 0, start: part?.start ?? 0, end: part?.end ?? 0, matched, items, ...(next !== null ? { next, truncated: `searched ${MAX_SCAN} dead letters; go on with from=${next}` } : {}) };
    },

    async replay(body) {
      const names = o.cfg.processors.map((p) => p.name);
      const wanted = body.processor === undefined ? names : Array.isArray(body.processor) ? body.processor : [body.processor];
      for (const p of wanted) if (!names.includes(p)) throw new HttpError(400, `the pipeline has no processor ${JSON.stringify(p)}${names.length ? ` (processors: ${names.join(', ')})` : ''}`);
      // One replay at a time: each goes on from where the last one stopped.
      const run = replaying.then(() => o.replay({ processors: wanted, from: body.from }));
      replaying = run.catch(() => {});
      return run;
    },

    async reconcile() {
      const file = join(o.cfg.state.dir, 'reconcile', 'history.jsonl');
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { runs: [], message: 'no runs yet: sluice reconcile --config <pipeline.yaml> compares the source with each sink' };
        throw e;
      }
      const runs: unknown[] = [];
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        try {
          runs.push(JSON.parse(line));
        } catch {
          // a line being written, or damaged: skipped
        }
      }
      return { runs: runs.reverse().slice(0, 50) };
    },

    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}
