/**
 * Runs a pipeline as a topology of supervised tasks over one log: the source task writes the
 * change topics, each processor task reads topics and writes topics, each sink task applies
 * topics to its target. Each task commits its output together with the input position it reflects
 * (the source's checkpoint in the log, a processor's input offsets in the log, a sink's offsets in
 * its target), so the pipeline is exactly once end to end. Tasks restart by themselves after
 * transient failures (supervisor.ts). Also writes status.json to the state directory and serves
 * /health, /metrics, /status and the operations console when `server` is configured.
 */
import { Alerter } from '../alerts/alerter.ts';
import type { PipelineConfig } from '../config/types.ts';
import { coreError, isRetriable } from '../core/errors.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { ComponentMetrics, Registry } from '../core/metrics.ts';
import { schemaTopicOf } from '../core/schemas.ts';
import { DebeziumJsonSerializer } from '../core/serde/debezium.ts';
import type { Log } from '../log/types.ts';
import { logSpec, processorSpec, sinkSpec, sourceSpec, tableNamer } from '../registry/index.ts';
import { createConsole } from '../server/console.ts';
import { startServer } from '../server/http.ts';
import { reconcileActions } from '../quality/reconcile/actions.ts';
import type { Gateway } from '../sources/http/gateway.ts';
import type { SinkBatch } from '../sinks/types.ts';
import { replayDeadLetters } from './dlq.ts';
import { ProcessorTask } from './processor-task.ts';
import { SinkTask } from './sink-task.ts';
import { SourceTask, type CommitInfo } from './source-task.ts';
import { StatusWriter } from './status.ts';
import type { TaskError, TaskState } from './supervisor.ts';
import type { Role } from './roles.ts';
import { planTopology } from './topology.ts';

export interface RunOptions {
  logger?: Logger;
  signal?: AbortSignal;
  /** Called after a sink applied a batch (tests use it). */
  onSinkApplied?: (sink: string, batch: SinkBatch) => void;
  /** Called after every durable commit of the source (tests and benchmarks use it). */
  onCommit?: (info: CommitInfo) => void;
  /**
   * Runs only these parts of the pipeline (`sluice run --only`): e.g. the sinks on more machines
   * than the source, as members of one consumer group per sink where the log has groups.
   */
  only?: ReadonlySet<Role>;
  /**
   * Without a source (none configured, or `only` without it): take what the log holds when the
   * processors start through the processors and sinks, then stop (`sluice run --drain`).
   */
  drain?: boolean;
  /** The metrics registry to fill (an embedding program's own; default a new one). */
  registry?: Registry;
  /**
   * Named operations the pipeline's server offers as `POST /api/actions/<name>` (JSON in, JSON
   * out) when `server` is configured: e.g. reconcile's `repair`.
   */
  actions?: Record<string, (body: unknown) => Promise<unknown>>;
}


/**
 * Bounds of a snapshot's chunk commits: large enough that commits cost little next to the rows
 * (tens of thousands of rows), small enough to resume from often; cut to the log's limit below.
 */
const BULK = { maxRecords: 50_000, maxBytes: 32 << 20, maxDelayMs: 1000 };

/** Commit bounds within what the log can hold in one commit. */
function commitBounds(batch: PipelineConfig['batch'], log: Log): PipelineConfig['batch'] {
  const c = log.capabilities;
  return {
    maxRecords: Math.min(batch.maxRecords, c.maxCommitRecords ?? Infinity),
    // Leave room for one event beyond the bound (a commit is due once it is passed).
    maxBytes: Math.min(batch.maxBytes, c.maxCommitBytes ? Math.floor(c.maxCommitBytes / 2) : Infinity),
    maxDelayMs: batch.maxDelayMs,
  };
}

/** A sink task for one sink of a pipeline, as `runPipeline` builds it (benchmarks run one alone). */
export function sinkTaskFor(cfg: PipelineConfig, sinkName: string, log: Log, o: { logger: Logger; registry?: Registry; onApplied?: RunOptions['onSinkApplied'] }): SinkTask {
  const topology = planTopology(cfg);
  const s = cfg.sinks.find((x) => x.name === sinkName);
  if (!s) throw new Error(`bug: no sink ${sinkName}`);
  return new SinkTask({ spec: sinkSpec(s.type), cfg: s, pipeline: cfg.name, log, reader: topology.sinks.get(s.name)!, prefix: topology.prefix, schemaTopic: schemaTopicOf(topology.prefix), logger: o.logger, registry: o.registry ?? new Registry(), onApplied: o.onApplied });
}

/**
 * Opens the pipeline's log, retrying while the failure is retriable (brokers or servers not up
 * yet, a network blip) with a growing pause (1 s doubling to 30 s), each attempt logged with its
 * code; a stop signal ends the wait with the last error. Anything else (a bad setting, refused
 * credentials, a log another process holds) fails at once.
 */
async function openLogRetrying(open: () => Promise<Log>, logger: Logger, signal?: AbortSignal): Promise<Log> {
  for (let attempt = 1, pause = 1000; ; attempt++, pause = Math.min(pause * 2, 30_000)) {
    try {
      return await open();
    } catch (e) {
      if (!isRetriable(e) || signal?.aborted) throw e;
      const err = e as { code?: string; message?: string };
      logger.warn('cannot open the log; retrying', { code: err.code, error: err.message, attempt, retryInMs: pause });
      const stopped = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), pause);
        signal?.addEventListener('abort', () => (clearTimeout(t), resolve(true)), { once: true });
      });
      if (stopped) throw e;
    }
  }
}

export async function runPipeline(cfg: PipelineConfig, opts: RunOptions = {}): Promise<void> {
  const logger = (opts.logger ?? createLogger({ level: cfg.logging.level, format: cfg.logging.format })).child({ pipeline: cfg.name });
  const topology = planTopology(cfg);
  const runs_ = (r: Role) => !opts.only || opts.only.has(r);
  const src = cfg.source && runs_('source') ? sourceSpec(cfg.source.type) : null;
  const logBackend = logSpec(cfg.log.backend);
  const log = await openLogRetrying(() => logBackend.open(cfg.log, {}), logger, opts.signal);
  const registry = opts.registry ?? new Registry();
  const sourceMetrics = new ComponentMetrics(registry, { pipeline: cfg.name, component: 'source' });
  const topicDefaults = logBackend.topicDefaults(cfg.log);
  const schemaTopic = schemaTopicOf(topology.prefix);
  const batch = commitBounds(cfg.batch, log);
  const sinks = (runs_('sinks') ? cfg.sinks : []).map(
    (s) =>
      new SinkTask({
        spec: sinkSpec(s.type),
        cfg: s,
        pipeline: cfg.name,
        log,
        reader: topology.sinks.get(s.name)!,
        prefix: topology.prefix,
        schemaTopic,
        logger: logger.child({ component: 'sink' }),
        registry,
        topicDefaults,
        onApplied: opts.onSinkApplied,
      }),
  );
  const processors = (runs_('processors') ? cfg.processors : []).map(
    (p) =>
      new ProcessorTask({
        spec: processorSpec(p.type),
        cfg: p,
        pipeline: cfg.name,
        log,
        reader: topology.processors.get(p.name)!,
        context: { pipeline: cfg.name, logger: logger.child({ component: 'processor', processor: p.name }), tableOf: tableNamer(cfg.source?.type), isSide: topology.processors.get(p.name)!.side, sideInput: topology.processors.get(p.name)!.sideEntry },
        topicDefaults,
        schemaTopic: schemaTopicOf(topology.prefix),
        batch,
        logger: logger.child({ component: 'processor' }),
        registry,
        stateDir: cfg.state.dir,
        sourceType: cfg.source?.type,
      }),
  );
  let sourceState: { state: TaskState; error: TaskError | null } = { state: 'starting', error: null };
  let sourceTask: SourceTask | null = null;
  // Alert rules over this process's metrics (src/alerts), evaluated while it runs.
  const alerter = cfg.alerts?.rules.length ? new Alerter({ cfg: cfg.alerts, pipeline: cfg.name, registry, logger: logger.child({ component: 'alerts' }) }) : null;
  const pipelineStatus = () => ({
    pipeline: cfg.name,
    pid: process.pid,
    source: sourceTask?.source && cfg.source ? { type: cfg.source.type, ...sourceTask.source.status(), eventsWritten: sourceTask.eventsWritten, task: sourceState.state, error: sourceState.error, secondsSinceLastEvent: sourceTask.tableActivity() } : null,
    only: opts.only ? [...opts.only] : undefined,
    processors: processors.map((p) => p.status()),
    sinks: sinks.map((w) => w.status()),
    ingest: gateway?.status(),
    alerts: alerter?.status(),
  });
  const status = new StatusWriter(cfg.state.dir, (state) => ({ ...pipelineStatus(), state }));
  const tasksAbort = new AbortController();
  let runs: Promise<void>[] = [];
  let server: { close(): Promise<void> } | null = null;
  let consoleApi: { close(): void } | null = null;
  let gateway: Gateway | null = null;
  let lagTimer: NodeJS.Timeout | null = null;
  const signal = opts.signal ?? new AbortController().signal;
  try {
    await log.ensureTopic(schemaTopic, { partitions: 1 });
    if (cfg.server) {
      // The operations console reads this process's own log, and replays dead letters through it.
      const liveStatus = () => ({ ...pipelineStatus(), state: status.current });
      const c = createConsole({ cfg, log, status: liveStatus, replay: (o) => replayDeadLetters(log, cfg.name, o) });
      consoleApi = c;
      server = await startServer(cfg.server, {
        console: c,
        actions: { ...(cfg.source ? reconcileActions(cfg, log, () => (sourceTask ? (events) => sourceTask!.inject(events) : null)) : {}), ...opts.actions },
        metrics: registry,
        status: liveStatus,
        problems: () => [...sinks, ...processors].filter((w) => w.state === 'failed').map((w) => `${w instanceof SinkTask ? 'sink' : 'processor'} ${w.status().name} failed: ${w.lastError?.message ?? ''}`),
        held: () => sinks.flatMap((w) => w.heldTableList.map((h) => `sink ${w.cfg.name} holds ${h.table}: [${h.error.code}] ${h.error.message}`)),
        logger,
      });
    }
    if (signal.aborted) return;
    await status.write('starting');
    status.every(1000, 'running');
    alerter?.start();
    runs = [...processors.map((p) => p.run(tasksAbort.signal)), ...sinks.map((w) => w.run(tasksAbort.signal))].map((p) => p.catch((e) => logger.error('task crashed', { error: (e as Error).message })));
    if (cfg.schedules.length && runs_('source') && !opts.drain) {
      // Scheduled pulls (src/schedules) run beside the source, until the tasks stop.
      const { Scheduler } = await import('../schedules/scheduler.ts');
      const scheduler = new Scheduler({ pipeline: cfg.name, schedules: cfg.schedules, log, logger: logger.child({ component: 'schedules' }), topicDefaults, registry, config: cfg });
      runs.push(scheduler.run(tasksAbort.signal).catch((e) => logger.error('schedules stopped', { code: (e as { code?: string }).code, error: (e as Error).message })));
    }
    if (cfg.ingest && runs_('source') && !opts.drain) {
      const { Gateway } = await import('../sources/http/gateway.ts');
      const ingestTopics = new Set(cfg.ingest.routes.map((r) => r.topic));
      const lag = new Map<string, number>();
      if (cfg.ingest.maxSinkLag !== undefined) {
        // Per gateway topic, the furthest any sink or processor reading it is behind, looked up each second.
        const look = async () => {
          const readers: { reads: (t: string) => boolean; pos: (t: string, p: number) => number | undefined }[] = [
            ...sinks.map((w) => {
              const offsets = w.status().offsets as Record<string, number>;
              return { reads: topology.sinks.get(w.cfg.name)!.reads, pos: (t: string, p: number) => offsets[`${t}/${p}`] };
            }),
            ...processors.map((w) => {
              const positions = w.status().positions as Record<string, Record<number, number>>;
              return { reads: topology.processors.get(w.name)!.reads, pos: (t: string, p: number) => positions[t]?.[p] };
            }),
          ];
          for (const t of ingestTopics) {
            const ends = await log.offsets(t).catch(() => []);
            let most = 0;
            for (const r of readers) if (r.reads(t)) most = Math.max(most, ends.reduce((n, o) => n + Math.max(0, o.end - (r.pos(t, o.partition) ?? 0)), 0));
            lag.set(t, most);
          }
        };
        lagTimer = setInterval(() => void look().catch(() => {}), 1000);
        await look();
      }
      gateway = new Gateway({ cfg: cfg.ingest, pipeline: cfg.name, log, topicDefaults, logger: logger.child({ component: 'ingest' }), registry, lag: (topic) => lag.get(topic) ?? null });
      await gateway.start();
    }
    let ended: 'done' | 'stopped' = 'stopped';
    const source = cfg.source;
    if (src && source) {
      const serializer = new DebeziumJsonSerializer({ schemas: cfg.serialization.schemas, source: src.debezium, serverName: topology.prefix });
      if ('transactionMetadata' in source && source.transactionMetadata) await log.ensureTopic(serializer.transactionTopic, { ...topicDefaults, partitions: 1 });
      sourceTask = new SourceTask({
        spec: src,
        cfg: source,
        log,
        serializer,
        context: {
          pipeline: cfg.name,
          logger: logger.child({ component: 'source' }),
          metrics: sourceMetrics,
          stateDir: cfg.state.dir,
          batch,
          maxQueueBytes: cfg.maxQueueBytes,
          resetHint: logBackend.resetHint(cfg.log),
        },
        sink: {
          connector: src.debezium.connector,
          schemaTopic,
          topicDefaults,
          batch,
          bulk: commitBounds(BULK, log),
          onCommit: opts.onCommit,
        onFewPartitions: (topic, partitions, wanted) =>
          logger.warn(`topic ${topic} exists with ${partitions} partition${partitions > 1 ? 's' : ''}, fewer than log.partitions (${wanted}): it is used as it is, so at most ${partitions} sink worker${partitions > 1 ? 's' : ''} share it. Partitions can only be added before the topic holds data (a key's changes must stay in one partition); otherwise recreate it`, { topic, partitions, wanted }),
          maxCommit: log.capabilities.maxCommitBytes !== null || log.capabilities.maxCommitRecords !== null ? { bytes: log.capabilities.maxCommitBytes, records: log.capabilities.maxCommitRecords } : undefined,
        },
        logger,
        signal,
        onState: (state, error) => (sourceState = { state, error }),
      });
      ended = await sourceTask.run();
    } else if (opts.drain) {
      logger.info('running without the source until the processors and sinks have taken the log', { processors: processors.length, sinks: sinks.length });
      ended = 'done';
    } else {
      // No source here (none configured, or --only without it): the other parts run until stopped.
      logger.info('running without the source', { processors: processors.length, sinks: sinks.length });
      await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
    }
    if (ended === 'done' && (processors.length || sinks.length)) {
      // The source finished by itself (initial_only): let processors, then sinks, take the rest of the log.
      if (sourceTask) logger.info('source finished; waiting for processors and sinks to take the rest of the log');
      const stop = new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      // In graph order: a processor is drained after every processor it reads from.
      const drain = async () => {
        for (const name of topology.order) await processors.find((p) => p.name === name)?.caughtUp(signal);
      };
      await Promise.race([drain(), stop]);
      await Promise.race([Promise.all(sinks.map((w) => w.caughtUp(signal))), stop]);
    }
    if (lagTimer) clearInterval(lagTimer);
    await gateway?.stop();
    tasksAbort.abort();
    await Promise.all(runs);
    await status.write('stopped');
    logger.info('pipeline stopped', { committed: sourceTask?.committed ?? 0 });
    const failed = [...processors, ...sinks].find((t) => t.state === 'failed');
    if (ended === 'done' && failed) {
      const e = failed.lastError!;
      throw coreError('ENGINE_TASK_FAILED', `${failed instanceof SinkTask ? 'sink' : 'processor'} ${failed.status().name} stopped before it took everything the source wrote: [${e.code}] ${e.message}`);
    }
    const holding = sinks.find((w) => w.heldTableList.length > 0);
    if (ended === 'done' && holding) {
      const h = holding.heldTableList.map((x) => `${x.table} at ${x.topic}/${x.partition}@${x.offset}: [${x.error.code}] ${x.error.message}`).join('; ');
      throw coreError('ENGINE_TASK_FAILED', `sink ${holding.cfg.name} holds tables its target refused changes of, so it did not take everything the source wrote: ${h}. Fix the cause and run the pipeline again; the sink retries them first`);
    }
  } catch (e) {
    if (lagTimer) clearInterval(lagTimer);
    await gateway?.stop().catch(() => {});
    tasksAbort.abort();
    await Promise.all(runs);
    await status.write('failed').catch(() => {});
    throw e;
  } finally {
    await alerter?.stop().catch(() => {});
    status.stop();
    consoleApi?.close();
    await server?.close().catch(() => {});
    await log.close();
  }
}
