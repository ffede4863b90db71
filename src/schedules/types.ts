/**
 * What a schedule's transform module sees and returns (`transform.module`). Exported by the
 * package: `import type { ScheduleTransform } from 'sluice'`.
 */
import type { JsonValue } from '../processors/module/types.ts';
import type { ExpectationResult } from '../quality/validate/run.ts';
import type { ReconcileSummary } from './reconcile.ts';

export interface ScheduleModuleContext {
  pipeline: string;
  schedule: string;
  /** The run, as the history names it (`weather@2026-12-03T07:00:00.000Z`). */
  runId: string;
  /** The fire time the run is for (ms since the epoch). */
  fireTime: number;
  /** `transform.options` from the config. */
  options: Readonly<Record<string, unknown>>;
  log: { info(msg: string, fields?: Record<string, unknown>): void; warn(msg: string, fields?: Record<string, unknown>): void; error(msg: string, fields?: Record<string, unknown>): void };
}

/**
 * Maps one record of the API's answer (after `filter`) to the record to write, a list of them, or
 * null to drop it; may be async. A thrown error fails the run (nothing of it is written).
 */
export type ScheduleTransform = (record: JsonValue, ctx: ScheduleModuleContext) => JsonValue | JsonValue[] | null | undefined | Promise<JsonValue | JsonValue[] | null | undefined>;

/** One run in the history topic `<pipeline>.schedules` (as `sluice schedules history --json` prints it). */
export interface RunEntry {
  /** `<schedule>@<fire time ISO>` for a cron run; a manual run's ends in `manual-<start ISO>`. */
  runId: string;
  schedule: string;
  /** `cron`: at its fire time; `after`: when the schedules it runs after ran ok for a fire time; `catch-up`: once for fire times missed while stopped; `manual`: `sluice schedules run`. */
  trigger: 'cron' | 'after' | 'catch-up' | 'manual';
  /** The fire time (ISO) the run is for; null for a manual run. */
  fireTime: string | null;
  status: 'ok' | 'failed' | 'skipped';
  startedAt: string;
  endedAt: string;
  durationMs: number;
  /** Records written (0 unless ok). */
  records: number;
  pages: number;
  /** HTTP requests sent, retries included. */
  attempts: number;
  error?: { code: string; message: string };
  /** Why a fire was skipped. */
  reason?: string;
  /** Fire times this entry covers beyond its own (a catch-up run, a skip after downtime). */
  missed?: number;
  /** A `validate` schedule's result (its `records` are the rows read, `pages` the pages): each expectation's rows checked and failed, with example keys and reasons. */
  validation?: { sink: string; table: string; rows: number; expectations: ExpectationResult[] };
  /** A `reconcile` schedule's result per sink × table (its `records` are the source rows compared; the full report is in `<state.dir>/reconcile/history.jsonl`). */
  reconcile?: ReconcileSummary[];
}
