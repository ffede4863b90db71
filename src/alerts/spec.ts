/**
 * The `alerts:` key of a pipeline: receivers (webhooks: generic JSON or Slack) and rules over the
 * pipeline's own metrics (lag, errors, expectation failures, retained WAL, binlog files, reconcile
 * drift, restarts, stalled tables), evaluated inside `sluice run` (docs/alerts.md). The keys,
 * defaults and descriptions are here; so are the checks beyond the schema (receiver names, a
 * threshold the rule's kind can read), which the config loader runs to report problems at their line.
 */
import { duration, list, object, oneOf, raw, string, type Infer } from '../config/fields.ts';
import type { CheckContext } from '../registry/spec.ts';

const NAME = '^[A-Za-z0-9_.-]+$';

export const RULE_KINDS = ['lag', 'errors', 'expectationFailures', 'retainedWal', 'binlogFiles', 'reconcileDrift', 'restarts', 'stalled'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** How each kind reads its threshold: a duration (seconds), a size (bytes) or a plain number. */
export const THRESHOLD_UNIT: Record<RuleKind, 'duration' | 'size' | 'number' | 'ratio'> = {
  lag: 'duration',
  stalled: 'duration',
  retainedWal: 'size',
  errors: 'number',
  expectationFailures: 'ratio',
  binlogFiles: 'number',
  reconcileDrift: 'number',
  restarts: 'number',
};

/** The threshold each kind has when the rule gives none. */
export const DEFAULT_THRESHOLD: Record<RuleKind, number | null> = {
  lag: null,
  stalled: null,
  retainedWal: null,
  errors: 0,
  expectationFailures: 0,
  binlogFiles: null,
  reconcileDrift: 0,
  restarts: 3,
};

const receiver = object({
  name: string({ pattern: NAME, hint: 'letters, digits, _ . -', description: 'Names the receiver in `rules[].receivers`, in the `sluice_alert_notifications_total` metric and in `sluice alerts`.' }),
  type: oneOf(['webhook', 'slack'] as const, {
    description: '`webhook`: a POST of the notice as JSON (`status`, `rule`, `severity`, `pipeline`, `summary`, `value`, `threshold`, `labels`, `startsAt`, `endsAt`). `slack`: a POST of a Slack incoming-webhook message (`text` and `blocks`), also understood by Mattermost and Rocket.Chat.',
  }).default('webhook'),
  url: string({ pattern: '^https?://', hint: 'an http:// or https:// URL', type: 'URL', description: 'Where notices are POSTed. Write secrets as `${SLACK_WEBHOOK_URL}`; `sluice alerts`, logs and status show only the scheme and host.' }),
  headers: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of header → value', description: 'Extra request headers (`Authorization: Bearer ${TOKEN}`); never logged or printed.' }).default({}),
  timeoutMs: duration({ description: 'How long one delivery may take before it is retried.' }).default(5000, '`5s`'),
  retries: raw<number>({ jsonType: 'integer', type: 'integer ≥ 0', description: 'Retries of a failed delivery (network error, timeout, 408, 429, 5xx), 1 s doubling to 30 s apart; then the notice is dropped and counted as `failed`.' }).default(5),
});

const rule = object({
  name: string({ pattern: NAME, hint: 'letters, digits, _ . -', description: 'Names the rule in notices, status and `sluice alerts`.' }),
  kind: oneOf(RULE_KINDS, {
    description:
      'What is measured (over the series that match `labels`; the worst one counts): `lag`, a sink\'s end-to-end lag (`sluice_sink_lag_seconds`); `errors`, errors counted over `window` (`sluice_errors_total`); `expectationFailures`, the share of expectation checks that failed over `window` (`sluice_expectation_checks_total`); `retainedWal`, WAL the PostgreSQL slot holds back (`sluice_source_retained_wal_bytes`); `binlogFiles`, binlog files the MySQL/MariaDB source still needs (`sluice_source_binlog_files_needed`); `reconcileDrift`, rows a reconciliation found different (`sluice_reconcile_drift_rows`); `restarts`, task restarts over `window` (`sluice_task_restarts_total`); `stalled`, time since a table\'s last change event (`sluice_table_last_event_timestamp_seconds`).',
  }),
  threshold: raw<number | string>({
    type: 'number, duration or size',
    description: 'The rule is active while the value is above this: a duration for `lag` and `stalled` (`5m`), a size for `retainedWal` (`10GiB`), a ratio 0–1 for `expectationFailures` (`0.05`), a count otherwise.',
  }).optional('`0` for errors, expectationFailures and reconcileDrift; `3` for restarts; required for the others'),
  window: duration({ description: 'For `errors`, `expectationFailures` and `restarts`: the increase over this much time is compared.' }).default(300_000, '`5m`'),
  labels: raw<Record<string, string>>({ jsonType: 'object', type: 'mapping of label → value', description: 'Only series with these labels count (`sink: warehouse`, `table: public.orders`); `*` in a value matches any text.' }).default({}),
  for: duration({ description: 'How long the rule must stay active before it fires (pending meanwhile); `0` fires at the first evaluation that finds it active.' }).default(0, '`0`'),
  severity: oneOf(['critical', 'warning', 'info'] as const, { description: 'Carried in notices.' }).default('warning'),
  summary: string({ description: 'Text of the notice; `{value}`, `{threshold}` and `{labels}` are replaced.' }).optional('a sentence naming the kind, value and threshold'),
  receivers: list(string({ pattern: NAME }), { description: 'Names of the receivers notified.', type: 'list of receiver names', minItems: 1 }),
  repeatInterval: duration({ description: 'While the rule keeps firing, notify again this often; `0`: once per firing (and once when it resolves).' }).default(0, '`0`: once'),
});

export const ALERTS = object(
  {
    evaluateEvery: duration({ description: 'How often the rules are evaluated inside `sluice run`.' }).default(5000, '`5s`'),
    receivers: list(receiver, { description: 'Where notices go.' }).default([]),
    rules: list(rule, { description: 'Conditions over the pipeline\'s metrics; a notice when one fires and when it resolves.' }).default([]),
    maxQueue: raw<number>({ jsonType: 'integer', type: 'integer ≥ 1', description: 'Notices waiting for delivery per receiver; past it the oldest is dropped (counted as `dropped`).' }).default(1000),
  },
  { description: 'Alert rules over the pipeline\'s metrics, sent to webhooks with resolve notices ([alerts.md](alerts.md)).' },
);

export type AlertsConfig = Infer<typeof ALERTS>;
export type AlertRuleConfig = AlertsConfig['rules'][number];
export type ReceiverConfig = AlertsConfig['receivers'][number];

const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_B: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1 << 20, gb: 1e9, gib: 1 << 30, tb: 1e12, tib: 2 ** 40 };

/**
 * A rule's threshold in the unit its metric has (seconds for durations, bytes for sizes), or an
 * error message. A bare number is seconds for durations and bytes for sizes.
 */
export function thresholdOf(kind: RuleKind, t: number | string | undefined): number | string {
  if (t === undefined || t === null) return DEFAULT_THRESHOLD[kind] ?? `a ${kind} rule needs a threshold (${THRESHOLD_UNIT[kind] === 'duration' ? 'a duration such as 5m' : THRESHOLD_UNIT[kind] === 'size' ? 'a size such as 10GiB' : 'a number'})`;
  if (typeof t === 'number') return Number.isFinite(t) && t >= 0 ? t : 'the threshold must be a number ≥ 0';
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(String(t).trim());
  const unit = THRESHOLD_UNIT[kind];
  if (m && !m[2]) return Number(m[1]);
  if (m && unit === 'duration' && m[2] in DURATION_MS) return (Number(m[1]) * DURATION_MS[m[2]]) / 1000;
  if (m && unit === 'size' && m[2].toLowerCase() in SIZE_B) return Math.round(Number(m[1]) * SIZE_B[m[2].toLowerCase()]);
  return unit === 'duration' ? `${JSON.stringify(t)} is not a duration such as 90s or 5m` : unit === 'size' ? `${JSON.stringify(t)} is not a size such as 512MiB or 10GiB` : `${JSON.stringify(t)} is not a number`;
}

/** Checks beyond the schema, reported at their line: unique names, known receivers, readable thresholds. */
export function checkAlerts(raw: unknown, ctx: CheckContext): void {
  if (!raw || typeof raw !== 'object') return;
  const a = raw as { receivers?: any[]; rules?: any[] };
  const names = new Set<string>();
  (a.receivers ?? []).forEach((r, i) => {
    if (names.has(r?.name)) ctx.fail(['alerts', 'receivers', String(i), 'name'], `another receiver is already named ${JSON.stringify(r.name)}`);
    names.add(r?.name);
    for (const [k, v] of Object.entries(r?.headers ?? {})) if (typeof v !== 'string' && typeof v !== 'number') ctx.fail(['alerts', 'receivers', String(i), 'headers', k], 'a header value must be text');
  });
  const rules = new Set<string>();
  (a.rules ?? []).forEach((r, i) => {
    const at = (...p: string[]) => ['alerts', 'rules', String(i), ...p];
    if (rules.has(r?.name)) ctx.fail(at('name'), `another rule is already named ${JSON.stringify(r.name)}; each needs its own (it identifies the alert)`);
    rules.add(r?.name);
    (r?.receivers ?? []).forEach((n: string, j: number) => {
      if (!names.has(n)) ctx.fail(at('receivers', String(j)), `no receiver is named ${JSON.stringify(n)}${names.size ? `; receivers: ${[...names].join(', ')}` : '; declare it under alerts.receivers'}`);
    });
    if ((RULE_KINDS as readonly string[]).includes(r?.kind)) {
      const t = thresholdOf(r.kind, r.threshold);
      if (typeof t === 'string') ctx.fail(at(r.threshold === undefined ? 'kind' : 'threshold'), t);
      else if (r.kind === 'expectationFailures' && t > 1) ctx.fail(at('threshold'), 'expectationFailures compares the share of failed checks: a ratio between 0 and 1 (0.05 for 5 %)');
    }
    for (const [k, v] of Object.entries(r?.labels ?? {})) if (typeof v !== 'string') ctx.fail(at('labels', k), 'a label value must be text');
  });
}
