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
import { readHistory } from './history.ts';
import { followersOf, historyTopicOf, type ScheduleConfig } from './spec.ts';
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
  /** Per schedule run `after` others: what to do when one of those records a run. */
  private readonly triggers = new Map<string, (e: RunEntry) => void>();
  private readonly followers: Map<string, ScheduleConfig[]>;

  constructor(private readonly o: SchedulerOptions) {
    this.followers = followersOf(o.schedules);
  }

  /** A history entry committed: to the caller's hook, and to the steps that run after its schedule. */
  private emit(e: RunEntry): void {
    this.o.onEntry?.(e);
    if (e.fireTime === null || e.trigger === 'manual') return;
    for (const f of this.followers.get(e.schedule) ?? []) this.triggers.get(f.name)?.(e);
  }

  /** Runs every schedule until `signal` aborts; a run in progress is stopped and leaves nothing. */
  async run(signal: AbortSignal): Promise<void> {
    // Load every transform first: a module that cannot load fails the start, not a run.
    const prepared: { s: ScheduleConfig; logger: Logger; cron: Cron | null; transformer: RunContext['transformer'] }[] = [];
    for (const s of this.o.schedules) {
      registerSecrets(s);
      const logger = this.o.logger.child({ schedule: s.name });
      prepared.push({ s, logger, cron: s.cron === undefined ? null : parseCron(s.cron), transformer: await loadTransformer(s, { pipeline: this.o.pipeline, logger }) });
    }
    const writer = await RunWriter.open(this.o.log, this.o.pipeline);
    try {
      const registry = this.o.registry ?? new Registry();
      for (const p of prepared) registerValidationMetrics(registry, this.o.pipeline, p.s);
      const ctxOf = (p: (typeof prepared)[number]): RunContext => {
        const metrics = new ComponentMetrics(registry, { pipeline: this.o.pipeline, component: 'schedule', schedule: p.s.name });
        return { pipeline: this.o.pipeline, schedule: p.s, log: this.o.log, writer, transformer: p.transformer, logger: p.logger, topicDefaults: this.o.topicDefaults, metrics, registry, config: this.o.config };
      };
      // Steps that run after others first: listening, and caught up on what their upstreams
      // committed while the pipeline was stopped, before any cron schedule runs.
      const steps = prepared.filter((x) => x.cron === null).map((p) => this.followSchedule(p.s, ctxOf(p), signal));
      for (const step of steps) await step.recover();
      await Promise.all([...prepared.filter((x) => x.cron !== null).map((p) => this.runSchedule(p.s, p.cron!, ctxOf(p), signal)), ...steps.map((step) => step.done())]);
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
          this.emit(e);
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
    this.emit(e);
  }

  /**
   * A schedule that runs `after` others: it runs for a fire time once every upstream recorded an
   * `ok` run for it, and records `skipped` for it when one recorded anything else. Its runs commit
   * that fire time as handled, as a cron run does, so a restart neither repeats nor loses a step:
   * upstream runs committed while this step had not (a crash between them) are found in the history
   * and the step runs once for the latest (or is skipped, as above). Listens at once; `recover`
   * does that catching up, `done` waits for the end.
   */
  private followSchedule(s: ScheduleConfig, ctx: RunContext, signal: AbortSignal): { recover(): Promise<void>; done(): Promise<void> } {
    const ups = s.after!;
    const logger = ctx.logger;
    let lastFire: number | null = ctx.writer.lastFire[s.name] ?? null;
    let running: Promise<void> | null = null;
    const pending = new Map<number, Map<string, RunEntry>>();
    const work = new Set<Promise<void>>();
    const track = (p: Promise<void>) => {
      work.add(p);
      void p.finally(() => work.delete(p));
    };
    const handled = (fire: number) => {
      lastFire = Math.max(lastFire ?? 0, fire);
      for (const f of pending.keys()) if (f <= lastFire) pending.delete(f);
    };
    const skip = (fire: number, trigger: RunEntry['trigger'], reason: string) => {
      handled(fire);
      const now = new Date().toISOString();
      const e: RunEntry = { runId: runIdOf(s.name, fire), schedule: s.name, trigger, fireTime: new Date(fire).toISOString(), status: 'skipped', startedAt: now, endedAt: now, durationMs: 0, records: 0, pages: 0, attempts: 0, reason };
      const history = historyTopicOf(ctx.pipeline);
      track(
        (async () => {
          await ctx.log.ensureTopic(history, { partitions: 1 });
          await ctx.writer.write((append) => append(history, { key: s.name, value: JSON.stringify(e), timestamp: Date.now() }, 0), { schedule: s.name, fire });
          logger.info(`schedule run skipped: ${reason}`, { run: e.runId });
          this.emit(e);
        })().catch((err) => logger.error('a skipped step could not be recorded', { error: (err as Error).message })),
      );
    };
    const run = (fire: number, trigger: RunEntry['trigger']) => {
      handled(fire);
      running = executeRun(ctx, { runId: runIdOf(s.name, fire), trigger, fireTime: fire, signal, recordFire: true })
        .then((e) => {
          if (e) this.emit(e);
        })
        .catch((err) => logger.error('schedule run could not be recorded', { code: (err as { code?: string }).code, error: (err as Error).message }))
        .finally(() => (running = null));
      track(running);
    };
    const whyNot = (bad: RunEntry) => `${bad.schedule} ${bad.status === 'failed' ? 'failed' : 'was skipped'} for this fire time${bad.error ? ` (${bad.error.code}: ${bad.error.message})` : bad.reason ? ` (${bad.reason})` : ''}`;
    const decide = (fire: number, got: Map<string, RunEntry>, trigger: RunEntry['trigger']) => {
      const bad = [...got.values()].find((x) => x.status !== 'ok');
      if (bad) return skip(fire, trigger, whyNot(bad));
      if (got.size < ups.length) return;
      if (running) return skip(fire, trigger, 'the previous run was still going (runs of a schedule never overlap)');
      run(fire, trigger);
    };
    this.triggers.set(s.name, (e) => {
      const fire = Date.parse(e.fireTime!);
      if (signal.aborted || (lastFire !== null && fire <= lastFire)) return;
      if (!pending.has(fire)) pending.set(fire, new Map());
      const got = pending.get(fire)!;
      got.set(e.schedule, e);
      const trigger = e.trigger === 'catch-up' ? 'catch-up' : 'after';
      // An upstream that handled this fire time before this process saw it (before a restart):
      // its entry is in the history.
      const earlier = ups.filter((u) => !got.has(u) && (ctx.writer.lastFire[u] ?? 0) >= fire);
      if (!earlier.length) return decide(fire, got, trigger);
      track(
        (async () => {
          for (const x of await readHistory(ctx.log, ctx.pipeline)) {
            if (earlier.includes(x.schedule) && x.trigger !== 'manual' && x.fireTime !== null && Date.parse(x.fireTime) === fire && !got.has(x.schedule)) got.set(x.schedule, x);
          }
          if (!signal.aborted && (lastFire === null || fire > lastFire)) decide(fire, got, trigger);
        })().catch((err) => logger.error('the run history could not be read', { error: (err as Error).message })),
      );
    });
    return {
      recover: async () => {
        if (lastFire === null) {
          // First start: from now on an upstream's runs count for this step.
          lastFire = Date.now();
          await ctx.writer.write(() => {}, { schedule: s.name, fire: lastFire });
        } else if (ups.every((u) => (ctx.writer.lastFire[u] ?? 0) > lastFire!)) {
          // Upstreams handled fire times this step did not: their latest common one is run (or skipped) now.
          const since = lastFire;
          const byFire = new Map<number, Map<string, RunEntry>>();
          for (const e of await readHistory(ctx.log, ctx.pipeline)) {
            if (!ups.includes(e.schedule) || e.fireTime === null || e.trigger === 'manual') continue;
            const f = Date.parse(e.fireTime);
            if (f <= since) continue;
            if (!byFire.has(f)) byFire.set(f, new Map());
            byFire.get(f)!.set(e.schedule, e);
          }
          const latest = [...byFire].filter(([, m]) => m.size === ups.length || [...m.values()].some((x) => x.status !== 'ok')).sort((a, b) => b[0] - a[0])[0];
          if (latest && lastFire === since) {
            logger.info(`${ups.join(', ')} ran while this step had not: catching up on the fire time ${new Date(latest[0]).toISOString()}`);
            decide(latest[0], latest[1], 'catch-up');
          }
        }
        logger.info('schedule started', { after: ups, topic: s.topic, lastFire: new Date(lastFire).toISOString() });
      },
      done: async () => {
        await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
        this.triggers.delete(s.name);
        while (work.size) await Promise.all([...work]);
      },
    };
  }
}

