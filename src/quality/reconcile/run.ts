/**
 * One reconcile run: every source table against every sink that holds it (or those `tables` and
 * `sinks` name), scanned, re-checked and summed up as a report.
 */
import type { SluiceError } from '../../core/errors.ts';
import { reconcileError } from './errors.ts';
import type { PipelineConfig } from '../../config/types.ts';
import type { Log } from '../../log/types.ts';
import { openLog } from '../../log/open.ts';
import { scanTable } from './compare.ts';
import { recheck, runningStatus, type CatchUp, type KeyDrift } from './recheck.ts';
import { openSource, type SourceTable } from './source.ts';
import { NotComparable, targetOf, topicOf, type TargetReader } from './targets.ts';

export interface ReconcileOptions {
  /** `schema.table` (or bare table names) to compare; empty: all the source captures. */
  tables?: string[];
  /** Sink names; empty: every sink. */
  sinks?: string[];
  /** Rows per source chunk (default 10,000). */
  chunk?: number;
  /** How long a re-check waits for the pipeline to catch up (ms; default 60 s). */
  waitMs?: number;
  /** The running pipeline's own log (inside `sluice run`); else the CLI opens it read-only. */
  log?: Log;
  /** Progress lines (stderr for the CLI). */
  progress?: (line: string) => void;
}

export interface TableResult {
  sink: string;
  table: string;
  /** The target table as the sink names it. */
  target?: string;
  status: 'ok' | 'drift' | 'skipped' | 'error';
  reason?: string;
  /** For `error`: the code (docs/errors.md, Reconcile). */
  code?: string;
  sourceRows: number;
  targetRows: number;
  ranges: number;
  differingRanges: number;
  /** Keys the scan found different, before the re-check. */
  candidates: number;
  missing: number;
  extra: number;
  differing: number;
  keys: KeyDrift[];
  /** Whether the re-check saw the pipeline catch up (null: nothing to re-check). */
  caughtUp: boolean | null;
  notCompared: string[];
  rowsPerSec: number;
  elapsedMs: number;
}

export interface ReconcileReport {
  startedAt: string;
  finishedAt: string;
  pipeline: string;
  /** Whether the pipeline was running (its status.json fresh) when the run started. */
  pipelineRunning: boolean;
  ok: boolean;
  results: TableResult[];
}

const empty = (sink: string, table: string, status: TableResult['status'], reason: string): TableResult => ({ sink, table, status, reason, sourceRows: 0, targetRows: 0, ranges: 0, differingRanges: 0, candidates: 0, missing: 0, extra: 0, differing: 0, keys: [], caughtUp: null, notCompared: [], rowsPerSec: 0, elapsedMs: 0 });

/** A table that could not be compared: its result says why, with the error's code. */
const failed = (sink: string, table: string, e: SluiceError): TableResult => ({ ...empty(sink, table, 'error', e.message), code: e.code });

export async function reconcile(cfg: PipelineConfig, o: ReconcileOptions = {}): Promise<ReconcileReport> {
  const startedAt = new Date().toISOString();
  if (!cfg.source) throw reconcileError('RECONCILE_SOURCE', `pipeline ${cfg.name} has no source: reconcile compares a source with its sinks`);
  const sinkNames = cfg.sinks.map((s) => s.name);
  for (const s of o.sinks ?? []) if (!sinkNames.includes(s)) throw reconcileError('RECONCILE_SINK_UNKNOWN', `the pipeline has no sink ${s} (sinks: ${sinkNames.join(', ') || 'none'})`);
  const sinks = cfg.sinks.filter((s) => !o.sinks?.length || o.sinks.includes(s.name));
  const chunk = o.chunk ?? 10_000;
  const running = runningStatus(cfg.state.dir) !== null;
  const catchUp: CatchUp | null = running
    ? { stateDir: cfg.state.dir, timeoutMs: o.waitMs ?? 60_000, log: async () => (o.log ? { log: o.log, close: false } : { log: await openLog(cfg.log, { readOnly: true }), close: true }) }
    : null;
  const src = await openSource(cfg.source);
  const results: TableResult[] = [];
  try {
    let tables = await src.tables();
    if (o.tables?.length) {
      const want = o.tables;
      const found = tables.filter((t) => want.includes(`${t.schema}.${t.table}`) || want.includes(t.table));
      for (const w of want) if (!found.some((t) => w === `${t.schema}.${t.table}` || w === t.table)) results.push(failed('-', w, reconcileError('RECONCILE_TABLE_UNKNOWN', `the source does not capture ${w} (check the publication or the source's tables)`)));
      tables = found;
    }
    for (const { schema, table } of tables) {
      const name = `${schema}.${table}`;
      const st = await src.describe(schema, table);
      // The sinks of a table are compared at once, each with a source connection of its own:
      // their scans and their waits for the pipeline overlap.
      const out = await Promise.all(
        sinks.map(async (sink): Promise<TableResult> => {
          if (typeof st === 'string') return empty(sink.name, name, 'skipped', `not comparable: ${st}`);
          const target = targetOf(cfg, sink, schema, table);
          if ('skip' in target) return empty(sink.name, name, 'skipped', target.skip);
          const own = await openSource(cfg.source!);
          try {
            return await compareOne(own, st, target, { chunk, catchUp, topic: topicOf(cfg, schema, table), progress: o.progress });
          } finally {
            await own.engine.close();
          }
        }),
      );
      results.push(...out);
    }
  } finally {
    await src.engine.close();
  }
  return { startedAt, finishedAt: new Date().toISOString(), pipeline: cfg.name, pipelineRunning: running, ok: results.every((r) => r.status === 'ok' || r.status === 'skipped'), results };
}

async function compareOne(
  src: Awaited<ReturnType<typeof openSource>>,
  st: SourceTable,
  target: Exclude<ReturnType<typeof targetOf>, { skip: string }>,
  o: { chunk: number; catchUp: CatchUp | null; topic: string; progress?: (line: string) => void },
): Promise<TableResult> {
  const name = `${st.schema}.${st.table}`;
  const started = performance.now();
  let t: TargetReader;
  try {
    t = await target.open(st);
  } catch (e) {
    if (e instanceof NotComparable) return { ...empty(target.sink, name, 'skipped', `not comparable: ${e.message}`), target: target.table };
    const msg = (e as Error).message.split('\n')[0];
    const err = /lock/i.test(msg)
      ? reconcileError('RECONCILE_TARGET_LOCKED', `the ${target.type} file is open in another process (${msg}); DuckDB lets one process open it: run reconcile inside the pipeline (a reconcile schedule, or POST /api/actions/reconcile) or while it is stopped`)
      : reconcileError('RECONCILE_TARGET_UNREADABLE', `cannot open the target: ${msg}`);
    return { ...failed(target.sink, name, err), target: target.table };
  }
  try {
    if (!t.columns.size) return { ...empty(target.sink, name, 'drift', `the target ${target.table} does not exist`), target: target.table };
    let seen = 0;
    let lastNote = performance.now();
    const scan = await scanTable(src.engine, st, t, {
      chunk: o.chunk,
      onChunk: (n) => {
        seen += n;
        if (o.progress && performance.now() - lastNote > 2000) {
          lastNote = performance.now();
          o.progress(`${target.sink} ${name}: ${seen} rows compared, ${Math.round(seen / ((lastNote - started) / 1000))} rows/s`);
        }
      },
    });
    const scanMs = performance.now() - started;
    let keys: KeyDrift[] = [];
    let caughtUp: boolean | null = null;
    if (scan.candidates.size) {
      o.progress?.(`${target.sink} ${name}: ${scan.candidates.size} keys differ in ${scan.differingRanges} of ${scan.ranges} ranges; re-checking${o.catchUp ? ' once the pipeline has caught up' : ''}`);
      const r = await recheck({ src, st, t, sink: target.sink, keys: [...scan.candidates.values()], topic: o.topic, catchUp: o.catchUp });
      keys = r.drift;
      caughtUp = r.caughtUp;
    }
    const count = (k: string) => keys.filter((x) => x.kind === k).length;
    return {
      sink: target.sink,
      table: name,
      target: target.table,
      status: keys.length ? 'drift' : 'ok',
      ...(caughtUp === false && keys.length && o.catchUp ? { reason: 'the pipeline did not catch up within --wait: some keys may still be in flight' } : {}),
      sourceRows: scan.sourceRows,
      targetRows: scan.targetRows,
      ranges: scan.ranges,
      differingRanges: scan.differingRanges,
      candidates: scan.candidates.size,
      missing: count('missing'),
      extra: count('extra'),
      differing: count('differs'),
      keys,
      caughtUp,
      notCompared: st.notCompared,
      rowsPerSec: Math.round(scan.sourceRows / Math.max(scanMs / 1000, 1e-3)),
      elapsedMs: Math.round(performance.now() - started),
    };
  } catch (e) {
    return { ...failed(target.sink, name, reconcileError('RECONCILE_READ', (e as Error).message.split('\n')[0])), target: target.table };
  } finally {
    await t.close();
  }
}

/**
 * Re-checks the differing keys of a report (after a repair): each result's keys again, once the
 * pipeline has caught up. Returns the report with what still differs.
 */
export async function verify(cfg: PipelineConfig, report: ReconcileReport, o: Pick<ReconcileOptions, 'waitMs' | 'log'> = {}): Promise<ReconcileReport> {
  const running = runningStatus(cfg.state.dir) !== null;
  const catchUp: CatchUp | null = running
    ? { stateDir: cfg.state.dir, timeoutMs: o.waitMs ?? 60_000, log: async () => (o.log ? { log: o.log, close: false } : { log: await openLog(cfg.log, { readOnly: true }), close: true }) }
    : null;
  const results = await Promise.all(
    report.results.map(async (r): Promise<TableResult> => {
      if (!r.keys.length) return r;
      const dot = r.table.indexOf('.');
      const [schema, table] = [r.table.slice(0, dot), r.table.slice(dot + 1)];
      const src = await openSource(cfg.source!);
      try {
        const st = (await src.describe(schema, table)) as SourceTable;
        const target = targetOf(cfg, cfg.sinks.find((s) => s.name === r.sink)!, schema, table) as Exclude<ReturnType<typeof targetOf>, { skip: string }>;
        const t = await target.open(st);
        try {
          const keys = r.keys.map((k) => st.keys.map((c) => k.key[c.col]));
          const rc = await recheck({ src, st, t, sink: target.sink, keys, topic: topicOf(cfg, schema, table), catchUp });
          const count = (k: string) => rc.drift.filter((x) => x.kind === k).length;
          return { ...r, status: rc.drift.length ? 'drift' : 'ok', keys: rc.drift, missing: count('missing'), extra: count('extra'), differing: count('differs'), caughtUp: rc.caughtUp };
        } finally {
          await t.close();
        }
      } finally {
        await src.engine.close();
      }
    }),
  );
  return { ...report, finishedAt: new Date().toISOString(), pipelineRunning: running, ok: results.every((r) => r.status === 'ok' || r.status === 'skipped'), results };
}
