/**
 * A `reconcile` schedule: `sluice reconcile` (src/quality/reconcile) at cron times inside
 * `sluice run` — every source table against the sinks that hold it, or those named. The run is
 * recorded in the schedules' history (status `failed` with SCHEDULE_DRIFT when keys differ, a
 * summary per sink × table) and in `<state.dir>/reconcile/history.jsonl`, and sets the reconcile
 * metrics. Drift is a warning in the log; the pipeline goes on. It reports; it does not repair.
 */
import { list, object, string } from '../config/fields.ts';
import type { CheckContext } from '../registry/spec.ts';
import { scheduleError } from './errors.ts';
import type { RunContext, RunRequest } from './run.ts';
import type { RunEntry } from './types.ts';
import { failedEntry, finishStep, type Commit, type Entry } from './step.ts';

export const RECONCILE = object(
  {
    sinks: list(string({ minLength: 1 }), { description: 'The sinks to compare (names); none: every sink.', type: 'list of sink names' }).default([]),
    tables: list(string({ minLength: 1 }), { description: 'The source tables to compare (`schema.table` or `table`); none: every table the source captures.', type: 'list of tables' }).default([]),
  },
  { description: 'Compares the source with its sinks as `sluice reconcile` does, instead of pulling from an API ([reconcile.md](reconcile.md)).' },
);

/** One sink × table of a reconcile run, as its history entry keeps it. */
export interface ReconcileSummary {
  sink: string;
  table: string;
  status: string;
  missing: number;
  extra: number;
  differing: number;
  reason?: string;
}


/** Checks a raw `reconcile` mapping at `at`: the pipeline has a source, and the sinks named exist. */
export function checkReconcile(raw: unknown, at: string[], ctx: CheckContext, pipeline: { source?: unknown; sinks?: unknown }): void {
  if (!raw || typeof raw !== 'object') return;
  if (!pipeline.source) ctx.fail(at, 'reconcile compares the source with its sinks, but the pipeline has no `source`');
  const names = (Array.isArray(pipeline.sinks) ? pipeline.sinks : []).map((s: any) => s?.name);
  const want = (raw as { sinks?: unknown }).sinks;
  if (Array.isArray(want)) want.forEach((s, i) => {
    if (!names.includes(s)) ctx.fail([...at, 'sinks', String(i)], `the pipeline has no sink ${JSON.stringify(s)}${names.length ? ` (its sinks: ${names.join(', ')})` : ''}`);
  });
}

/** Runs the comparison and commits its entry; resolves with it (null when the pipeline stopped meanwhile). */
export async function executeReconcile(ctx: RunContext, r: RunRequest, entry: Entry, commit: Commit): Promise<RunEntry | null> {
  const s = ctx.schedule;
  const rc = s.reconcile!;
  const started = Date.now();
  let result: RunEntry;
  try {
    if (!ctx.config) throw new Error(`bug: schedule ${s.name} runs without the pipeline's config`);
    const { reconcile } = await import('../quality/reconcile/run.ts');
    const { appendHistory, recordMetrics } = await import('../quality/reconcile/report.ts');
    const report = await reconcile(ctx.config, { sinks: rc.sinks, tables: rc.tables, log: ctx.log });
    if (r.signal?.aborted) return null;
    await appendHistory(ctx.config.state.dir, report);
    if (ctx.registry) recordMetrics(ctx.registry, ctx.pipeline, report);
    const rows = report.results.reduce((n, x) => n + x.sourceRows, 0);
    const drift = report.results.filter((x) => x.status === 'drift' || x.status === 'error');
    result = report.ok
      ? entry('ok', rows)
      : entry('failed', rows, { code: 'SCHEDULE_DRIFT', message: scheduleError('SCHEDULE_DRIFT', `reconcile found differences in ${drift.length} sink × table(s): ${drift.map((x) => `${x.sink} ${x.table}: ${x.status === 'error' ? `error (${x.reason})` : `${x.missing} missing, ${x.extra} extra, ${x.differing} differing`}`).join('; ')}`).message });
    result.reconcile = report.results.map((x) => ({ sink: x.sink, table: x.table, status: x.status, missing: x.missing, extra: x.extra, differing: x.differing, ...(x.reason ? { reason: x.reason } : {}) }));
  } catch (e) {
    if (r.signal?.aborted) return null;
    result = failedEntry(entry, e, 'SCHEDULE_DRIFT');
  }
  return finishStep(ctx, r, result, started, commit, { ok: 'reconcile: source and targets agree', failed: 'reconcile found differences or could not compare (the pipeline goes on)' });
}
