/**
 * Runs the pipeline's alert rules inside `sluice run`: every `evaluateEvery` it reads the metrics
 * the rules need from the registry, steps the state machine (evaluate.ts) and hands the notices to
 * the receivers' queues (notify.ts). Its state (each rule's phase, since when, value, last notice)
 * goes into status.json and /status under `alerts`, which `sluice alerts` reads.
 */
import type { Logger } from '../core/logger.ts';
import type { Registry } from '../core/metrics.ts';
import { compileRules, emptyState, evaluate, metricsRead, type EvalState, type Notice, type Rule } from './evaluate.ts';
import { Notifier } from './notify.ts';
import type { AlertsConfig } from './spec.ts';

export interface AlerterOptions {
  cfg: AlertsConfig;
  pipeline: string;
  registry: Registry;
  logger: Logger;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** How long a stopping pipeline waits for notices still being delivered. */
const STOP_GRACE_MS = 5000;

export class Alerter {
  private readonly rules: Rule[];
  private readonly names: Set<string>;
  private state: EvalState = emptyState();
  private readonly notifier: Notifier;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private evaluatedAt: number | null = null;

  constructor(private readonly o: AlerterOptions) {
    this.rules = compileRules(o.cfg.rules);
    this.names = metricsRead(this.rules);
    this.notifier = new Notifier(o.cfg.receivers, { pipeline: o.pipeline, registry: o.registry, logger: o.logger, maxQueue: o.cfg.maxQueue, signal: this.abort.signal, sleep });
  }

  start(): void {
    if (!this.rules.length || this.timer) return;
    this.o.logger.info('alert rules evaluated', { rules: this.rules.length, receivers: this.o.cfg.receivers.length, everyMs: this.o.cfg.evaluateEvery });
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.cfg.evaluateEvery);
    this.timer.unref();
  }

  /** One evaluation now (also what the timer runs). */
  tick(now = Date.now()): Notice[] {
    try {
      const { state, notices } = evaluate(this.rules, this.state, this.o.registry.samples(this.names), now, this.o.pipeline);
      this.state = state;
      this.evaluatedAt = now;
      for (const n of notices) {
        (n.status === 'firing' ? this.o.logger.warn : this.o.logger.info).call(this.o.logger, `alert ${n.status}${n.repeat ? ' (repeat)' : ''}: ${n.rule}`, { rule: n.rule, severity: n.severity, summary: n.summary, value: n.value, threshold: n.threshold });
        this.notifier.send(n);
      }
      return notices;
    } catch (e) {
      this.o.logger.error('alert evaluation failed', { error: (e as Error).message });
      return [];
    }
  }

  /** Stops evaluating; waits a little for notices being delivered, then gives them up. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const grace = new Promise<void>((r) => setTimeout(r, STOP_GRACE_MS).unref());
    await Promise.race([this.notifier.idle(), grace]);
    this.abort.abort();
  }

  status(): Record<string, unknown> {
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      evaluatedAt: iso(this.evaluatedAt),
      rules: this.rules.map((r) => {
        const s = this.state.rules[r.name];
        return {
          name: r.name,
          kind: r.kind,
          severity: r.severity,
          threshold: r.threshold,
          forMs: r.forMs,
          state: s?.state ?? 'inactive',
          since: iso(s?.state === 'firing' ? s.firingSince : (s?.activeSince ?? null)),
          activeSince: iso(s?.activeSince ?? null),
          value: s?.value ?? null,
          labels: s?.labels ?? {},
          lastNotified: iso(s?.lastNotified ?? null),
          resolvedAt: iso(s?.resolvedAt ?? null),
          notices: s?.notices ?? 0,
          receivers: r.receivers,
        };
      }),
      receivers: this.notifier.status(),
    };
  }
}
