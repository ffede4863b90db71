/** The end of a schedule step's run (a reconcile, a snapshot): its entry committed, its latency and failures in the metrics, one log line. */
import type { RunContext, RunRequest } from './run.ts';
import type { RunEntry } from './types.ts';
import type { RunWriterAppend } from './writer.ts';

export type Entry = (status: RunEntry['status'], records: number, error?: { code?: string; message: string }) => RunEntry;
export type Commit = (e: RunEntry, fill?: (append: RunWriterAppend) => void) => Promise<void>;

/** A failed run's entry from what a step threw. */
export function failedEntry(entry: Entry, e: unknown, code: string): RunEntry {
  const err = e as { code?: string; message?: string };
  return entry('failed', 0, { code: err.code ?? code, message: err.message ?? String(e) });
}

export async function finishStep(ctx: RunContext, r: RunRequest, result: RunEntry, started: number, commit: Commit, say: { ok: string; failed: string; fields?: Record<string, unknown> }): Promise<RunEntry> {
  result.durationMs = Date.now() - started;
  await commit(result);
  ctx.metrics?.batchLatency.observe((Date.now() - started) / 1000);
  const fields = { schedule: ctx.schedule.name, run: r.runId, status: result.status, records: result.records, durationMs: result.durationMs, ...say.fields };
  if (result.status === 'ok') ctx.logger.info(say.ok, fields);
  else {
    ctx.metrics?.error(result.error?.code ?? 'run');
    ctx.logger.warn(say.failed, { ...fields, code: result.error?.code, error: result.error?.message });
  }
  return result;
}
