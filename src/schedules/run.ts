/**
 * One run of a schedule: pull, transform, then the records and the run's history entry in ONE log
 * commit, whose checkpoint says which fire time the run was for (writer.ts). So a crash leaves either both or
 * neither, and a restarted pipeline knows from the producer's checkpoint whether the run of a fire
 * time committed (then it is not run again) or not (then it counts as missed, see scheduler.ts).
 * A failed run writes nothing to the topic, only its history entry (with the same checkpoint). A
 * run stopped by the pipeline stopping writes nothing at all.
 */
import { redact, type Logger } from '../core/logger.ts';
import type { ComponentMetrics, Registry } from '../core/metrics.ts';
import type { PipelineConfig } from '../config/types.ts';
import type { Log } from '../log/types.ts';
import { pull, type PullStats } from './pull.ts';
import { historyTopicOf, isPull, type ScheduleConfig } from './spec.ts';
import type { Transformer } from './transform.ts';
import { executeValidation } from './validate.ts';
import { executeReconcile } from './reconcile.ts';
import { executeSnapshot } from './snapshot.ts';
import type { RunEntry } from './types.ts';
import type { RunWriter, RunWriterAppend } from './writer.ts';

/** The headers of every record a run writes. */
export const RUN_HEADERS = { schedule: 'sluice.schedule', run: 'sluice.run' } as const;

export interface RunContext {
  pipeline: string;
  schedule: ScheduleConfig;
  log: Log;
  writer: RunWriter;
  transformer: Transformer;
  logger: Logger;
  topicDefaults: { partitions: number; retentionMs?: number; retentionBytes?: number };
  /** The schedule's metrics (records pulled in, written out, run latency, failed runs). */
  metrics?: ComponentMetrics;
  /** The pipeline's metrics registry (a validation's own metrics; none in `sluice schedules run`). */
  registry?: Registry;
  /** The pipeline's config: a validation reads its sink's. */
  config?: PipelineConfig;
}

export interface RunRequest {
  runId: string;
  trigger: RunEntry['trigger'];
  /** The fire time the run is for (null: manual). */
  fireTime: number | null;
  /** Whether the run's commit records its fire time as handled (cron and catch-up runs; not manual ones). */
  recordFire: boolean;
  missed?: number;
  /** History entries to commit with this run's (fires skipped while it ran). */
  extra?: () => RunEntry[];
  signal?: AbortSignal;
}

/** The id of a schedule's run for a fire time. */
export const runIdOf = (schedule: string, fireTime: number): string => `${schedule}@${new Date(fireTime).toISOString()}`;

/** Runs once; resolves with the history entry committed, or null when `signal` stopped it (nothing written). */
export async function executeRun(ctx: RunContext, r: RunRequest): Promise<RunEntry | null> {
  const s = ctx.schedule;
  const history = historyTopicOf(ctx.pipeline);
  const started = Date.now();
  const stats: PullStats = { pages: 0, attempts: 0 };
  const entry = (status: RunEntry['status'], records: number, error?: { code?: string; message: string }): RunEntry => {
    const ended = Date.now();
    const e: RunEntry = {
      runId: r.runId,
      schedule: s.name,
      trigger: r.trigger,
      fireTime: r.fireTime === null ? null : new Date(r.fireTime).toISOString(),
      status,
      startedAt: new Date(started).toISOString(),
      endedAt: new Date(ended).toISOString(),
      durationMs: ended - started,
      records,
      pages: stats.pages,
      attempts: stats.attempts,
    };
    // The entry is kept in the log and printed by `sluice schedules history`: no password or key in it.
    if (error) e.error = { code: error.code ?? 'ERROR', message: redact(error.message) };
    if (r.missed) e.missed = r.missed;
    return e;
  };
  // Taken once: a failed commit's retry below writes the same ones.
  let extra: RunEntry[] | null = null;
  const commit = (e: RunEntry, fill?: (append: RunWriterAppend) => void) => {
    extra ??= r.extra?.() ?? [];
    const fires = r.recordFire && r.fireTime !== null ? [r.fireTime, ...extra.map((x) => Date.parse(x.fireTime!))] : [];
    return ctx.writer.write((append) => {
      fill?.(append);
      for (const x of [e, ...extra!]) append(history, { key: x.schedule, value: JSON.stringify(x), timestamp: Date.parse(x.endedAt) }, 0);
    }, fires.length ? { schedule: s.name, fire: Math.max(...fires) } : undefined);
  };
  let result: RunEntry;
  try {
    await ctx.log.ensureTopic(history, { partitions: 1 });
    // A validation (validate.ts) or reconcile (reconcile.ts) records its own result; the rest of this is a pull.
    if (s.validate) return await executeValidation(ctx, r, entry, commit);
    if (s.reconcile) return await executeReconcile(ctx, r, entry, commit);
    if (s.snapshot) return await executeSnapshot(ctx, r, entry, commit);
    if (!isPull(s)) throw new Error(`bug: schedule ${s.name} has nothing to run`);
    await ctx.log.ensureTopic(s.topic, ctx.topicDefaults);
    const records = await pull(s, { retries: s.retries, maxRecords: s.maxRecords, signal: r.signal, stats });
    ctx.metrics?.eventsIn.inc(records.length);
    const out = await ctx.transformer(records, { runId: r.runId, fireTime: r.fireTime ?? started });
    const headers = { [RUN_HEADERS.schedule]: s.name, [RUN_HEADERS.run]: r.runId };
    result = entry('ok', out.length);
    if (r.signal?.aborted) throw r.signal.reason;
    await commit(result, (append) => {
      for (const o of out) append(s.topic, { key: o.key, value: o.value, timestamp: started, headers });
    });
    ctx.metrics?.eventsOut.inc(out.length);
    ctx.metrics?.batchLatency.observe((Date.now() - started) / 1000);
  } catch (e) {
    if (r.signal?.aborted) return null;
    const err = e as { code?: string; message?: string };
    result = entry('failed', 0, { code: err.code, message: err.message ?? String(e) });
    ctx.metrics?.error(err.code ?? 'run');
    await commit(result);
  }
  const fields = { schedule: s.name, run: r.runId, status: result.status, records: result.records, pages: result.pages, attempts: result.attempts, durationMs: result.durationMs };
  if (result.status === 'ok') ctx.logger.info('schedule run done', fields);
  else ctx.logger.warn('schedule run failed', { ...fields, code: result.error?.code, error: result.error?.message });
  return result;
}
