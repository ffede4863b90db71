/**
 * Fires a pipeline's schedules at their cron times, never two runs of one schedule at once: a fire
 * time that comes while the schedule's previous run is still going is recorded as `skipped` (in
 * the same commit as that run's own entry).
 *
 * The schedules share one log producer (writer.ts), whose checkpoint holds each schedule's last
 * handled fire time (ran, failed or skipped), committed with each run. At start the scheduler reads it: fire
 * times after it that have passed were missed while the pipeline was stopped (or were running when
 * it crashed: their records were never committed), and `onMissed` says what happens: `runOnce`
 * runs once now (a `catch-up` run for the latest of them, counting the others as `missed`),
 * `skip` records one `skipped` entry for them. A schedule's first start commits the time it started
 * as its baseline, so fire times missed after it count even before its first run.
 */
import { addSecret, type Logger } from '../core/logger.ts';
import { ComponentMetrics, Registry } from '../core/metrics.ts';
import type { Log } from '../log/types.ts';
import { missedFires, nextFire, parseCron, type Cron } from './cron.ts';
import { executeRun, runIdOf, type RunContext } from './run.ts';
import { historyTopicOf, type ScheduleConfig } from './spec.ts';
import { loadTransformer } from './transform.ts';
import type { RunEntry } from './types.ts';
import { registerValidationMetrics } from './validate.ts';
import { RunWriter } from './writer.ts';

export interface SchedulerOptions {
  pipeline: string;
  schedules: ScheduleConfig[];
  log: Log;
  logger: Logger;
  topicDefaults: RunContext['topicDefaults'];
  /** The metrics registry (the pipeline's); default a new one. */
  registry?: Registry;
  /** Called with each history entry once committed (tests use it). */
  onEntry?: (e: RunEntry) => void;
  /** The pipeline's config (a `validate` schedule reads its sink's connection). */
  config?: RunContext['config'];
}

/** Header and query values that carry credentials, so that no log line shows them. */
export function registerSecrets(s: ScheduleConfig): void {
  if (!s.request) return; // a validation uses its sink's connection (secrets as the sink registers them)
  const secretName = /auth|key|token|secret|cookie|session|signature|sig$|password|appid|credential/i;
  for (const [k, v] of Object.entries(s.request.headers)) {
    if (!secretName.test(k)) continue;
    const text = String(v);
    addSecret(text);
    const parts = text.split(/\s+/);
    if (parts.length > 1) addSecret(parts.slice(1).join(' '));
  }
  try {
    for (const [k, v] of new URL(s.request.url).searchParams) if (secretName.test(k) && v.length >= 4) addSecret(v);
  } catch {
    // the URL is checked by the config schema
  }
}

const MAX_SLEEP_MS = 60 * 60 * 1000;

/** Resolves at `at` (or when `signal` aborts); long waits are split so a changed wall clock is seen. */
function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const wait = () => {
      const left = at - Date.now();
      if (left <= 0 || signal.aborted) return done();
      t = setTimeout(wait, Math.min(left, MAX_SLEEP_MS));
    };
    const done = () => (clearTimeout(t), signal.removeEventListener('abort', done), resolve());
    let t: NodeJS.Timeout | undefined;
    signal.addEventListener('abort', done, { once: true });
    wait();
  });
}

export class Scheduler {
  constructor(private readonly o: SchedulerOptions) {}

  /** Runs every schedule until `signal` aborts; a run in progress is stopped and leaves nothing. */
  async run(signal: AbortSignal): Promise<void> {
    // Load every transform first: a module that cannot load fails the start, not a run.
    const prepared = [];
    for (const s of this.o.schedules) {
      registerSecrets(s);
      const logger = this.o.logger.child({ schedule: s.name });
      prepared.push({ s, logger, cron: parseCron(s.cron), transformer: await loadTransformer(s, { pipeline: this.o.pipeline, logger }) });
    }
    const writer = await RunWriter.open(this.o.log, this.o.pipeline);
    try {
      const registry = this.o.registry ?? new Registry();
      for (const p of prepared) registerValidationMetrics(registry, this.o.pipeline, p.s);
      await Promise.all(
        prepared.map((p) => {
          const metrics = new ComponentMetrics(registry, { pipeline: this.o.pipeline, component: 'schedule', schedule: p.s.name });
          return this.runSchedule(p.s, p.cron, { pipeline: this.o.pipeline, schedule: p.s, log: this.o.log, writer, transformer: p.transformer, logger: p.logger, topicDefaults: this.o.topicDefaults, metrics, registry, config: this.o.config }, signal);
        }),
      );
    } finally {
      await writer.close().catch(() => {});
    }
  }

  private async runSchedule(s: ScheduleConfig, cron: Cron, ctx: RunContext, signal: AbortSignal): Promise<void> {
    const logger = ctx.logger;
    let lastFire: number | null = ctx.writer.lastFire[s.name] ?? null;
    let running: Promise<void> | null = null;
    const skipped: RunEntry[] = [];
    const start = (fire: number, trigger: RunEntry['trigger'], missed?: number) => {
      running = executeRun(ctx, { runId: runIdOf(s.name, fire), trigger, fireTime: fire, missed, signal, recordFire: true, extra: () => skipped.splice(0) })
        .then((e) => {
          if (!e) return;
          lastFire = Math.max(lastFire ?? 0, fire);
          this.o.onEntry?.(e);
        })
        .catch((e) => logger.error('schedule run could not be recorded; the next fire time runs as usual', { code: (e as { code?: string }).code, error: (e as Error).message }))
        .finally(() => (running = null));
    };
    try {
      logger.info('schedule started', { cron: s.cron, timezone: s.timezone, topic: s.topic, lastFire: lastFire === null ? null : new Date(lastFire).toISOString() });
      if (lastFire !== null) await this.catchUp(s, cron, ctx, lastFire, start);
      else {
        // First start: from now on fire times count as missed if the pipeline is not running at them.
        lastFire = Date.now();
        await ctx.writer.write(() => {}, { schedule: s.name, fire: lastFire });
      }
      let cursor = Math.max(Date.now(), lastFire ?? 0);
      while (!signal.aborted) {
        const next = nextFire(cron, cursor, s.timezone);
        if (next === null) break;
        await sleepUntil(next, signal);
        if (signal.aborted) break;
        // Woken past later fire times too (a suspended machine, a stalled event loop): those
        // count as one, the latest, not as a burst of runs.
        const late = missedFires(cron, cursor, Date.now(), s.timezone);
        cursor = late && late.last > next ? late.last : next;
        if (running) {
          const now = new Date().toISOString();
          logger.warn('skipping a fire time: the previous run is still going', { fireTime: new Date(cursor).toISOString() });
          ctx.metrics?.error('skipped');
          // Bounded: past 100 pending skips (a run stuck for long), the last entry stands for the rest.
          const last = skipped.length >= 100 ? skipped[skipped.length - 1] : undefined;
          if (last) {
            last.missed = (last.missed ?? 1) + 1;
            last.fireTime = new Date(cursor).toISOString();
            last.runId = runIdOf(s.name, cursor);
            last.endedAt = now;
            continue;
          }
          skipped.push({ runId: runIdOf(s.name, cursor), schedule: s.name, trigger: 'cron', fireTime: new Date(cursor).toISOString(), status: 'skipped', startedAt: now, endedAt: now, durationMs: 0, records: 0, pages: 0, attempts: 0, reason: 'the previous run was still going (runs of a schedule never overlap)' });
        } else start(cursor, 'cron');
      }
    } finally {
      await (running as Promise<void> | null);
    }
  }

  /** Applies `onMissed` to the fire times between the last handled one and now. */
  private async catchUp(s: ScheduleConfig, cron: Cron, ctx: RunContext, lastFire: number, start: (fire: number, trigger: RunEntry['trigger'], missed?: number) => void): Promise<void> {
    const m = missedFires(cron, lastFire, Date.now(), s.timezone);
    if (!m) return;
    const count = m.more ? `more than ${m.count}` : String(m.count);
    if (s.onMissed === 'runOnce') {
      ctx.logger.info(`${count} fire time(s) passed while the pipeline was stopped: running once now (onMissed: runOnce)`, { lastFire: new Date(m.last).toISOString() });
      start(m.last, 'catch-up', m.count);
      return;
    }
    const now = new Date().toISOString();
    const e: RunEntry = { runId: runIdOf(s.name, m.last), schedule: s.name, trigger: 'catch-up', fireTime: new Date(m.last).toISOString(), status: 'skipped', startedAt: now, endedAt: now, durationMs: 0, records: 0, pages: 0, attempts: 0, reason: `${count} fire time(s) passed while the pipeline was stopped (onMissed: skip)`, missed: m.count };
    const history = historyTopicOf(ctx.pipeline);
    await ctx.log.ensureTopic(history, { partitions: 1 });
    await ctx.writer.write((append) => append(history, { key: s.name, value: JSON.stringify(e), timestamp: Date.now() }, 0), { schedule: s.name, fire: m.last });
    ctx.logger.info(e.reason!);
    this.o.onEntry?.(e);
  }
}

