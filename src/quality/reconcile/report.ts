/**
 * How a reconcile run reads: a table for people, JSON for machines, and one line per run in
 * `<state.dir>/reconcile/history.jsonl` (the console and the scheduler read it; keep its shape).
 */
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirs } from '../../core/dirs.ts';
import { Counter, Gauge, type Registry } from '../../core/metrics.ts';
import type { ReconcileReport } from './run.ts';

export const historyFile = (stateDir: string): string => join(stateDir, 'reconcile', 'history.jsonl');

/** Appends the run to the history (one JSON line). */
export async function appendHistory(stateDir: string, r: ReconcileReport): Promise<void> {
  await makeDirs(join(stateDir, 'reconcile'));
  await appendFile(historyFile(stateDir), JSON.stringify(r) + '\n');
}

const keyText = (k: Record<string, string>) => Object.entries(k).map(([c, v]) => `${c}=${v}`).join(',');
const cut = (s: string, n = 40) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

/** The report as text: one line per sink × table, then the differing keys, then the verdict. */
export function renderText(r: ReconcileReport, maxKeys = 50): string {
  const head = ['sink', 'table', 'target', 'source rows', 'target rows', 'ranges', 'missing', 'extra', 'differ', 'rows/s', 'elapsed', 'result'];
  const rows = r.results.map((x) => [x.sink, x.table, x.target ?? '-', String(x.sourceRows), String(x.targetRows), x.ranges ? `${x.differingRanges}/${x.ranges}` : '-', String(x.missing), String(x.extra), String(x.differing), String(x.rowsPerSec), `${(x.elapsedMs / 1000).toFixed(1)}s`, x.status === 'ok' ? 'ok' : x.status === 'drift' ? 'DRIFT' : x.status === 'error' ? 'ERROR' : 'skipped']);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 && i <= 10 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  const out = [`reconcile ${r.pipeline}: ${r.pipelineRunning ? 'pipeline running; differing keys re-checked after it caught up' : 'pipeline not running; compared as the targets stand'}`, '', line(head), ...rows.map(line)];
  const notes = r.results.filter((x) => x.reason || x.notCompared.length);
  if (notes.length) {
    out.push('');
    for (const x of notes) {
      if (x.reason) out.push(`${x.sink} ${x.table}: ${x.code ? `${x.code}: ` : ''}${x.reason}`);
      if (x.notCompared.length) out.push(`${x.sink} ${x.table}: columns not compared (type): ${x.notCompared.join(', ')}`);
    }
  }
  const drifted = r.results.filter((x) => x.keys.length);
  if (drifted.length) {
    out.push('', 'differing keys:');
    for (const x of drifted) {
      for (const k of x.keys.slice(0, maxKeys)) {
        const what = k.kind === 'missing' ? 'missing in target' : k.kind === 'extra' ? (k.notASourceKey ? 'extra in target (no source row can have this key: delete it by hand)' : 'extra in target (not in source)') : `differs: ${k.columns!.map((c) => `${c.column} source=${cut(c.source)} target=${cut(c.target)}`).join('; ')}`;
        out.push(`  ${x.sink} ${x.table} ${keyText(k.key)}  ${what}`);
      }
      if (x.keys.length > maxKeys) out.push(`  ${x.sink} ${x.table}: ${x.keys.length - maxKeys} more (--json lists all)`);
    }
  }
  const total = r.results.reduce((s, x) => s + x.keys.length, 0);
  const errors = r.results.filter((x) => x.status === 'error').length;
  out.push('', r.ok ? 'source and targets agree' : `${total} differing key${total === 1 ? '' : 's'}${errors ? `, ${errors} comparison${errors === 1 ? '' : 's'} failed` : ''}; sluice reconcile --repair re-emits the differing keys from the source`);
  return out.join('\n') + '\n';
}

/** The registered metric of `name` and `labels`, or a new one. */
function metric<M extends Gauge | Counter>(registry: Registry, make: (name: string, help: string, labels: Record<string, string>) => M, name: string, help: string, labels: Record<string, string>): M {
  return registry.find<M>(name, labels) ?? registry.register(make(name, help, labels));
}

/**
 * Sets the reconcile metrics from a run: `sluice_reconcile_drift_rows{sink,table}`,
 * `sluice_reconcile_runs_total{result}`, `sluice_reconcile_last_run_timestamp_seconds`.
 */
export function recordMetrics(registry: Registry, pipeline: string, r: ReconcileReport): void {
  const gauge = (n: string, h: string, l: Record<string, string>) => new Gauge(n, h, l);
  for (const x of r.results) {
    if (x.status === 'skipped') continue;
    metric(registry, gauge, 'sluice_reconcile_drift_rows', 'Keys that differed between source and target at the last reconcile.', { pipeline, sink: x.sink, table: x.table }).set(x.keys.length);
  }
  const result = r.ok ? 'ok' : r.results.some((x) => x.status === 'error') ? 'error' : 'drift';
  metric(registry, (n, h, l) => new Counter(n, h, l), 'sluice_reconcile_runs_total', 'Reconcile runs, by result (ok, drift, error).', { pipeline, result }).inc();
  metric(registry, gauge, 'sluice_reconcile_last_run_timestamp_seconds', 'When the last reconcile finished (Unix seconds).', { pipeline }).set(Date.parse(r.finishedAt) / 1000);
}
