/**
 * The alert rules' state machine, as a pure function of the rules, the previous state, the metric
 * samples read now and the time: `evaluate(rules, state, samples, now)` returns the next state and
 * the notices to send. Nothing here reads a clock or does I/O, so tests drive it with any times.
 *
 * Per rule: the value is computed over the series matching its labels (the worst one, or the sum of
 * the increases over `window` for counters); the rule is *active* while the value is above its
 * threshold. Inactive → pending when it becomes active; pending → firing once it has been active
 * for `for` (a `firing` notice); firing → inactive when it is no longer active (a `resolved`
 * notice); pending → inactive silently. While firing, no further notice is sent (one per firing)
 * unless `repeatInterval` is set, then one each interval.
 */
import type { Sample } from '../core/metrics.ts';
import { thresholdOf, type AlertRuleConfig, type RuleKind } from './spec.ts';

export interface Rule {
  name: string;
  kind: RuleKind;
  /** In the metric's unit: seconds, bytes, a count, a ratio. */
  threshold: number;
  windowMs: number;
  labels: Record<string, string>;
  forMs: number;
  severity: string;
  summary?: string;
  receivers: string[];
  repeatIntervalMs: number;
}

export type AlertPhase = 'inactive' | 'pending' | 'firing';

export interface RuleState {
  state: AlertPhase;
  /** When the rule last became active (ms; null while inactive). */
  activeSince: number | null;
  /** When it last started firing (ms). */
  firingSince: number | null;
  /** The value at the last evaluation (null: no series). */
  value: number | null;
  /** Labels of the series that gave the value (the worst one). */
  labels: Record<string, string>;
  /** When a notice of this firing was last sent (ms). */
  lastNotified: number | null;
  /** When it last resolved (ms). */
  resolvedAt: number | null;
  /** Notices sent for this rule since the pipeline started. */
  notices: number;
}

export interface EvalState {
  rules: Record<string, RuleState>;
  /** Counter values at past evaluations (for increases over a window), oldest first. */
  history: { t: number; values: Record<string, number> }[];
}

export interface Notice {
  status: 'firing' | 'resolved';
  rule: string;
  kind: RuleKind;
  severity: string;
  pipeline: string;
  summary: string;
  value: number | null;
  threshold: number;
  labels: Record<string, string>;
  /** When the condition began (ISO). */
  startsAt: string;
  /** When it cleared (resolved notices). */
  endsAt?: string;
  /** A repeat of a firing already notified (repeatInterval). */
  repeat?: boolean;
  receivers: string[];
}

/** The metric each kind reads. */
export const METRIC_OF: Record<RuleKind, string> = {
  lag: 'sluice_sink_lag_seconds',
  errors: 'sluice_errors_total',
  expectationFailures: 'sluice_expectation_checks_total',
  retainedWal: 'sluice_source_retained_wal_bytes',
  binlogFiles: 'sluice_source_binlog_files_needed',
  reconcileDrift: 'sluice_reconcile_drift_rows',
  restarts: 'sluice_task_restarts_total',
  stalled: 'sluice_table_last_event_timestamp_seconds',
};

/** Kinds that compare a counter's increase over `window`. */
const WINDOWED: ReadonlySet<RuleKind> = new Set(['errors', 'expectationFailures', 'restarts']);

export function compileRules(cfg: AlertRuleConfig[]): Rule[] {
  return cfg.map((r) => {
    const t = thresholdOf(r.kind, r.threshold);
    if (typeof t === 'string') throw new Error(`bug: alert rule ${r.name}: ${t} (checked when the config loads)`);
    return { name: r.name, kind: r.kind, threshold: t, windowMs: r.window, labels: r.labels, forMs: r.for, severity: r.severity, summary: r.summary, receivers: r.receivers, repeatIntervalMs: r.repeatInterval };
  });
}

export const emptyState = (): EvalState => ({ rules: {}, history: [] });

const inactive = (): RuleState => ({ state: 'inactive', activeSince: null, firingSince: null, value: null, labels: {}, lastNotified: null, resolvedAt: null, notices: 0 });

const seriesKey = (s: Sample): string => s.name + JSON.stringify(Object.entries(s.labels).sort());

function globMatch(pattern: string, v: string): boolean {
  if (!pattern.includes('*')) return pattern === v;
  return new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$').test(v);
}

const matches = (s: Sample, filter: Record<string, string>): boolean => Object.entries(filter).every(([k, v]) => s.labels[k] !== undefined && globMatch(v, s.labels[k]));

/** The metric names the rules read (what to take from the registry). */
export function metricsRead(rules: Rule[]): Set<string> {
  return new Set(rules.map((r) => METRIC_OF[r.kind]));
}

/** The value of a rule now, and the labels of the series that gave it (null: no series, or nothing to compare). */
function valueOf(rule: Rule, samples: Sample[], base: (s: Sample) => number, nowMs: number): { value: number | null; labels: Record<string, string> } {
  const metric = METRIC_OF[rule.kind];
  const series = samples.filter((s) => s.name === metric && matches(s, rule.labels));
  if (!series.length) return { value: null, labels: {} };
  if (WINDOWED.has(rule.kind)) {
    const inc = (s: Sample) => {
      const b = base(s);
      return s.value >= b ? s.value - b : s.value; // a counter that went down was reset
    };
    if (rule.kind === 'expectationFailures') {
      let failed = 0;
      let all = 0;
      let worst: Sample | null = null;
      let worstInc = 0;
      for (const s of series) {
        const n = inc(s);
        all += n;
        if (s.labels.result === 'fail' || s.labels.result === 'failed') {
          failed += n;
          if (n > worstInc) {
            worst = s;
            worstInc = n;
          }
        }
      }
      return { value: all > 0 ? failed / all : null, labels: worst ? { ...worst.labels } : {} };
    }
    let sum = 0;
    let worst = series[0];
    let worstInc = -1;
    for (const s of series) {
      const n = inc(s);
      sum += n;
      if (n > worstInc) {
        worst = s;
        worstInc = n;
      }
    }
    return { value: sum, labels: { ...worst.labels } };
  }
  let best: { value: number; labels: Record<string, string> } | null = null;
  for (const s of series) {
    // A table's last event time: how long ago it was (0: no event yet).
    const v = rule.kind === 'stalled' ? (s.value > 0 ? nowMs / 1000 - s.value : null) : s.value;
    if (v === null || Number.isNaN(v)) continue;
    if (!best || v > best.value) best = { value: v, labels: { ...s.labels } };
  }
  return best ?? { value: null, labels: {} };
}

const fmtLabels = (l: Record<string, string>): string =>
  Object.entries(l)
    .filter(([k]) => k !== 'pipeline')
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** A value as a person reads it, in the kind's unit. */
export function formatValue(kind: RuleKind, v: number | null): string {
  if (v === null) return 'no data';
  if (kind === 'lag' || kind === 'stalled') return v >= 120 ? `${(v / 60).toFixed(1)} min` : `${v.toFixed(1)} s`;
  if (kind === 'retainedWal') return v >= 1 << 30 ? `${(v / 2 ** 30).toFixed(2)} GiB` : `${(v / 2 ** 20).toFixed(1)} MiB`;
  if (kind === 'expectationFailures') return `${(v * 100).toFixed(1)} %`;
  return String(Math.round(v * 1000) / 1000);
}

const WHAT: Record<RuleKind, string> = {
  lag: 'sink lag',
  errors: 'errors',
  expectationFailures: 'expectation failure rate',
  retainedWal: 'WAL retained by the replication slot',
  binlogFiles: 'binlog files needed',
  reconcileDrift: 'rows drifted between source and target',
  restarts: 'task restarts',
  stalled: 'time since the last change event of a table',
};

function summaryOf(rule: Rule, value: number | null, labels: Record<string, string>): string {
  const l = fmtLabels(labels);
  if (rule.summary) return rule.summary.replace(/\{value\}/g, formatValue(rule.kind, value)).replace(/\{threshold\}/g, formatValue(rule.kind, rule.threshold)).replace(/\{labels\}/g, l);
  const over = rule.kind === 'errors' || rule.kind === 'restarts' || rule.kind === 'expectationFailures' ? ` over the last ${Math.round(rule.windowMs / 1000)} s` : '';
  return `${WHAT[rule.kind]} is ${formatValue(rule.kind, value)}${over}, above ${formatValue(rule.kind, rule.threshold)}${l ? ` (${l})` : ''}`;
}

/**
 * One evaluation: the next state and the notices to send. `samples` are the registry's values
 * now (only the metrics the rules read are needed); `nowMs` the time.
 */
export function evaluate(rules: Rule[], prev: EvalState, samples: Sample[], nowMs: number, pipeline: string): { state: EvalState; notices: Notice[] } {
  const windowed = rules.filter((r) => WINDOWED.has(r.kind));
  // Counter values at the start of each rule's window: the newest snapshot at or before it. With
  // none that old, the window reaches back before the pipeline started: its counters were 0.
  const history = prev.history;
  const baseFor = (windowMs: number) => {
    let snap: Record<string, number> | null = null;
    for (const h of history) if (h.t <= nowMs - windowMs) snap = h.values;
    return (s: Sample) => (snap ? (snap[seriesKey(s)] ?? 0) : 0);
  };
  const notices: Notice[] = [];
  const next: Record<string, RuleState> = {};
  for (const rule of rules) {
    const old = prev.rules[rule.name] ?? inactive();
    const { value, labels } = valueOf(rule, samples, baseFor(rule.windowMs), nowMs);
    const active = value !== null && value > rule.threshold;
    const st: RuleState = { ...old, value, labels: active || old.state === 'inactive' ? labels : old.labels };
    const notice = (status: 'firing' | 'resolved', repeat = false): Notice => ({
      status,
      rule: rule.name,
      kind: rule.kind,
      severity: rule.severity,
      pipeline,
      summary: status === 'resolved' ? `resolved: ${summaryOf(rule, value, st.labels).replace(/, above /, ', no longer above ')}` : summaryOf(rule, value, st.labels),
      value,
      threshold: rule.threshold,
      labels: { ...st.labels },
      startsAt: new Date(st.activeSince ?? nowMs).toISOString(),
      ...(status === 'resolved' ? { endsAt: new Date(nowMs).toISOString() } : {}),
      ...(repeat ? { repeat: true } : {}),
      receivers: rule.receivers,
    });
    if (active) {
      if (st.state === 'inactive') {
        st.state = 'pending';
        st.activeSince = nowMs;
      }
      if (st.state === 'pending' && nowMs - st.activeSince! >= rule.forMs) {
        st.state = 'firing';
        st.firingSince = nowMs;
        st.lastNotified = nowMs;
        st.notices++;
        notices.push(notice('firing'));
      } else if (st.state === 'firing' && rule.repeatIntervalMs > 0 && nowMs - (st.lastNotified ?? 0) >= rule.repeatIntervalMs) {
        st.lastNotified = nowMs;
        st.notices++;
        notices.push(notice('firing', true));
      }
    } else if (st.state === 'firing') {
      st.notices++;
      notices.push(notice('resolved'));
      st.state = 'inactive';
      st.activeSince = null;
      st.firingSince = null;
      st.resolvedAt = nowMs;
    } else if (st.state === 'pending') {
      st.state = 'inactive';
      st.activeSince = null;
    }
    next[rule.name] = st;
  }
  // Keep the counters of the windowed rules' metrics: every snapshot within the longest window,
  // and the newest one before it (the base of that window).
  let nextHistory = history;
  if (windowed.length) {
    const names = new Set(windowed.map((r) => METRIC_OF[r.kind]));
    const values: Record<string, number> = {};
    for (const s of samples) if (names.has(s.name)) values[seriesKey(s)] = s.value;
    const longest = Math.max(...windowed.map((r) => r.windowMs));
    const all = [...history, { t: nowMs, values }];
    let from = 0;
    for (let i = 0; i < all.length; i++) if (all[i].t <= nowMs - longest) from = i;
    nextHistory = all.slice(from);
  }
  return { state: { rules: next, history: nextHistory }, notices };
}
