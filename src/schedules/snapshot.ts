/**
 * A `snapshot` schedule: an incremental snapshot of source tables (`sluice snapshot`) at cron
 * times, or as the first step of a chain (seed 002's nightly `snapshot → reconcile → validate →
 * publish`). The run writes an `execute-snapshot` signal into the source's signal table, then waits
 * until the source reports every table of it finished (status.json in `state.dir`: the incremental
 * snapshot's `done` list, each table with the time it ended and how). It is `ok` when every table
 * was read to its end, `failed` (SCHEDULE_SNAPSHOT) when one was refused or stopped, or did not end
 * within `waitMs`; its `records` are the rows read.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { duration, list, object, string } from '../config/fields.ts';
import { statusFile } from '../engine/status.ts';
import { sourceSpec } from '../registry/index.ts';
import type { CheckContext } from '../registry/spec.ts';
import { scheduleError } from './errors.ts';
import type { RunContext, RunRequest } from './run.ts';
import type { RunEntry } from './types.ts';
import { failedEntry, finishStep, type Commit, type Entry } from './step.ts';

export const SNAPSHOT = object(
  {
    tables: list(string({ minLength: 1, pattern: '^[^.]+\\.[^.]+$', hint: 'schema.table (MySQL: database.table)' }), { minItems: 1, description: 'The source tables to read again, `schema.table` (MySQL: `database.table`).', type: 'list of tables' }),
    waitMs: duration({ description: 'How long the run waits for the tables to be read to their end; past it the run fails (SCHEDULE_SNAPSHOT) and the snapshot goes on in the source.' }).default(3_600_000, '`1h`'),
  },
  { description: 'Reads source tables again with an incremental snapshot (as `sluice snapshot`), and waits until they are read, instead of pulling from an API ([schedules.md](schedules.md#snapshot-steps)).' },
);

/** Checks a raw `snapshot` mapping: the pipeline's source takes signals, and has a signal table. */
export function checkSnapshot(raw: unknown, at: string[], ctx: CheckContext, pipeline: { source?: any }): void {
  if (!raw || typeof raw !== 'object') return;
  const src = pipeline.source;
  if (!src) return ctx.fail(at, 'an incremental snapshot is the source\'s, but the pipeline has no `source`');
  if (src.type !== 'postgres' && src.type !== 'mysql') return ctx.fail(at, `a ${String(src.type)} source takes no incremental snapshots (PostgreSQL and MySQL/MariaDB sources do)`);
  if (!src.signalTable) ctx.fail(at, 'an incremental snapshot is asked for through the source\'s signal table, and `source.signalTable` is not set: set it (e.g. public.sluice_signal), the source creates the table');
}


const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** The source's incremental snapshot status (status.json), or null. */
function incrementalStatus(stateDir: string): { done?: { table: string; rows: number; at: string }[]; lastError?: string } | null {
  try {
    return JSON.parse(readFileSync(statusFile(stateDir), 'utf8')).source?.incrementalSnapshot ?? null;
  } catch {
    return null;
  }
}

/** Writes the signal, waits for the tables, commits the entry; null when the pipeline stopped meanwhile. */
export async function executeSnapshot(ctx: RunContext, r: RunRequest, entry: Entry, commit: Commit): Promise<RunEntry | null> {
  const s = ctx.schedule;
  const sn = s.snapshot!;
  const started = Date.now();
  let result: RunEntry;
  try {
    const cfg = ctx.config;
    if (!cfg?.source) throw new Error(`bug: schedule ${s.name} runs without the pipeline's source`);
    const spec = sourceSpec(cfg.source.type);
    if (!spec.signal) throw scheduleError('SCHEDULE_SNAPSHOT', `a ${cfg.source.type} source takes no incremental snapshots`);
    const row = { id: randomUUID(), type: 'execute-snapshot', data: JSON.stringify({ 'data-collections': sn.tables, type: 'incremental' }) };
    // Entries of `done` end with the time; only those after the request count (a second earlier:
    // the status clock and this one are the same machine's, the margin is for the ISO rounding).
    const since = new Date(started - 1000).toISOString();
    await spec.signal(cfg.source, row);
    ctx.logger.info('incremental snapshot requested', { schedule: s.name, run: r.runId, tables: sn.tables, signal: row.id });
    const deadline = started + sn.waitMs;
    const ended = new Map<string, { rows: number; how: string }>();
    while (ended.size < sn.tables.length) {
      if (r.signal?.aborted) return null;
      if (Date.now() > deadline) throw scheduleError('SCHEDULE_SNAPSHOT', `the incremental snapshot of ${sn.tables.filter((t) => !ended.has(t)).join(', ')} did not end within ${Math.round(sn.waitMs / 1000)} s (waitMs); it goes on in the source: follow it with sluice status`);
      const st = incrementalStatus(cfg.state.dir);
      for (const d of st?.done ?? []) {
        const [at, how] = String(d.at).split(' ');
        const t = sn.tables.find((x) => x === d.table);
        if (t && at >= since && !ended.has(t)) ended.set(t, { rows: Number(d.rows) || 0, how: how ?? 'done' });
      }
      if (ended.size < sn.tables.length) await sleep(250, r.signal);
    }
    const rows = [...ended.values()].reduce((n, x) => n + x.rows, 0);
    const bad = [...ended].filter(([, x]) => x.how !== 'done');
    if (bad.length) {
      const why = incrementalStatus(cfg.state.dir)?.lastError;
      throw scheduleError('SCHEDULE_SNAPSHOT', `the incremental snapshot of ${bad.map(([t, x]) => `${t} ${x.how === 'failed' ? 'was refused' : 'was stopped'}`).join(', ')}${why ? ` (${why})` : ''}`);
    }
    result = entry('ok', rows);
  } catch (e) {
    if (r.signal?.aborted) return null;
    result = failedEntry(entry, e, 'SCHEDULE_SNAPSHOT');
  }
  return finishStep(ctx, r, result, started, commit, { ok: 'incremental snapshot done', failed: 'incremental snapshot failed', fields: { tables: sn.tables } });
}
