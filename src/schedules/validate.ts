/**
 * A run of a `validate` schedule: the expectation suite over the sink's table
 * (src/quality/validate), its result recorded as the run's history entry (status `failed` with
 * VALIDATION_FAILED when rows fail, with each expectation's counts and example keys) and as
 * metrics. A failed suite is a warning in the log; the pipeline goes on.
 */
import { Counter, Gauge, type Registry } from '../core/metrics.ts';
import type { ValidationReport } from '../quality/validate/run.ts';
import { validationError } from '../quality/validate/errors.ts';
import type { RunContext, RunRequest } from './run.ts';
import type { RunEntry } from './types.ts';
import type { RunWriterAppend } from './writer.ts';

type Entry = (status: RunEntry['status'], records: number, error?: { code?: string; message: string }) => RunEntry;
type Commit = (e: RunEntry, fill?: (append: RunWriterAppend) => void) => Promise<void>;

/** The registered metric of `name` and `labels`, or a new one (`make` builds it). */
function metric<M extends Gauge | Counter>(registry: Registry, make: (name: string, help: string, labels: Record<string, string>) => M, name: string, help: string, labels: Record<string, string>): M {
  return registry.find<M>(name, labels) ?? registry.register(make(name, help, labels));
}
const counter = (n: string, h: string, l: Record<string, string>) => new Counter(n, h, l);
const gauge = (n: string, h: string, l: Record<string, string>) => new Gauge(n, h, l);

const RUNS_HELP = 'Scheduled validation runs by result: pass (every expectation held), fail (rows failed), error (the table could not be read)';

/** The run's outcome in the metrics: runs by result (`pass`, `fail`, `error`), failing rows per expectation, the time of the last run. */
function recordMetrics(registry: Registry, pipeline: string, schedule: string, result: 'pass' | 'fail' | 'error', report: ValidationReport | null): void {
  const labels = { pipeline, schedule };
  metric(registry, counter, 'sluice_validation_runs_total', RUNS_HELP, { ...labels, result }).inc();
  for (const x of report?.expectations ?? []) metric(registry, gauge, 'sluice_validation_failures', 'Rows (for volume, freshness and schema: 0 or 1) that failed the expectation in the last scheduled validation run that read the table', { ...labels, expectation: x.name }).set(x.failed);
  metric(registry, gauge, 'sluice_validation_last_run_timestamp_seconds', 'When the last scheduled validation run ended (any result), seconds since the epoch', labels).set(Date.now() / 1000);
}

/** Registers the schedule's run counters at 0 before its first run, so that alert rules see the series. */
export function registerValidationMetrics(registry: Registry, pipeline: string, s: { name: string; validate?: unknown }): void {
  if (!s.validate) return;
  const labels = { pipeline, schedule: s.name };
  for (const result of ['pass', 'fail', 'error']) metric(registry, counter, 'sluice_validation_runs_total', RUNS_HELP, { ...labels, result });
}

/** A line for each failing expectation: `id_not_null (notNull): 2 rows, e.g. id 7: id is null`. */
export function failureSummary(report: ValidationReport): string {
  return report.expectations
    .filter((x) => x.failed > 0)
    .map((x) => `${x.name} (${x.check}): ${x.failed} of ${x.checked} ${x.check === 'volume' || x.check === 'schema' || x.check === 'freshness' ? 'table check' : 'rows'}${x.examples.length ? `, e.g. ${x.examples[0].key === null ? '' : `${JSON.stringify(x.examples[0].key)}: `}${x.examples[0].reason}` : ''}`)
    .join('; ');
}

/** Runs the schedule's suite and commits its entry; resolves with it (null when the pipeline stopped meanwhile). */
export async function executeValidation(ctx: RunContext, r: RunRequest, entry: Entry, commit: Commit): Promise<RunEntry | null> {
  const s = ctx.schedule;
  const v = s.validate!;
  const started = Date.now();
  let report: ValidationReport | null = null;
  let result: RunEntry;
  let outcome: 'pass' | 'fail' | 'error';
  try {
    const sink = ctx.config?.sinks.find((x) => x.name === v.sink);
    if (!sink) throw new Error(`bug: schedule ${s.name} runs without its sink ${v.sink}`);
    const { validateTable } = await import('../quality/validate/run.ts');
    report = await validateTable(sink as never, v, { schedule: s.name, signal: r.signal });
    if (r.signal?.aborted) return null;
    if (report.ok) {
      result = entry('ok', report.rows);
      outcome = 'pass';
    } else {
      const failing = report.expectations.filter((x) => x.failed > 0);
      result = entry('failed', report.rows, { code: 'VALIDATION_FAILED', message: validationError('VALIDATION_FAILED', `${failing.length} of ${report.expectations.length} expectation(s) failed on ${report.table}: ${failureSummary(report)}`).message });
      outcome = 'fail';
    }
    result.pages = report.pages;
    result.validation = { sink: report.sink, table: report.table, rows: report.rows, expectations: report.expectations };
  } catch (e) {
    if (r.signal?.aborted) return null;
    const err = e as { code?: string; message?: string };
    result = entry('failed', 0, { code: err.code ?? 'VALIDATION_READ', message: err.message ?? String(e) });
    outcome = 'error';
  }
  result.durationMs = Date.now() - started;
  await commit(result);
  if (ctx.registry) recordMetrics(ctx.registry, ctx.pipeline, s.name, outcome, report);
  ctx.metrics?.eventsIn.inc(result.records);
  ctx.metrics?.batchLatency.observe((Date.now() - started) / 1000);
  const fields = { schedule: s.name, run: r.runId, sink: v.sink, table: report?.table ?? v.table, rows: result.records, durationMs: result.durationMs };
  if (outcome === 'pass') ctx.logger.info('validation passed', { ...fields, expectations: v.expectations.length });
  else if (outcome === 'fail') {
    ctx.metrics?.error('validation');
    ctx.logger.warn('validation failed: rows of the table fail expectations (the pipeline goes on)', { ...fields, code: 'VALIDATION_FAILED', failing: report!.expectations.filter((x) => x.failed > 0).map((x) => ({ expectation: x.name, check: x.check, failed: x.failed, checked: x.checked, example: x.examples[0] })) });
  } else {
    ctx.metrics?.error(result.error?.code ?? 'run');
    ctx.logger.warn('validation could not run', { ...fields, code: result.error?.code, error: result.error?.message });
  }
  return result;
}

/** A validation entry as lines for `sluice schedules run|history`: each expectation (only the failing ones with `failingOnly`) with its counts and examples. */
export function validationLines(e: RunEntry, failingOnly = false): string[] {
  const out: string[] = [];
  for (const x of e.validation?.expectations ?? []) {
    if (failingOnly && x.failed === 0) continue;
    out.push(`  ${x.failed ? 'FAIL' : 'ok  '} ${x.name} (${x.check}): ${x.failed} of ${x.checked} failed`);
    for (const ex of x.examples) out.push(`         ${ex.key === null ? '' : `${JSON.stringify(ex.key)}: `}${ex.reason}`);
    if (x.failed > x.examples.length && x.examples.length) out.push(`         … and ${x.failed - x.examples.length} more`);
  }
  return out;
}
