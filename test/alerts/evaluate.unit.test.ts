/**
 * The alert rules' state machine (src/alerts/evaluate.ts) driven with a fake clock and hand-made
 * samples: pending → firing after `for`, one notice per firing (de-duplication), `repeatInterval`,
 * a resolve notice when the condition clears, increases of counters over a window, label filters;
 * the config's checks of the `alerts:` key; the Slack and generic payloads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRules, emptyState, evaluate, type EvalState, type Notice, type Rule } from '../../src/alerts/evaluate.ts';
import { maskedUrl, slackBody, webhookBody } from '../../src/alerts/notify.ts';
import { parseConfig } from '../../src/config/index.ts';
import type { Sample } from '../../src/core/metrics.ts';

const rule = (over: Partial<Rule> & Pick<Rule, 'kind'>): Rule => ({ name: 'r', threshold: 0, windowMs: 60_000, labels: {}, forMs: 0, severity: 'warning', receivers: ['hook'], repeatIntervalMs: 0, ...over });
const lag = (sink: string, seconds: number): Sample => ({ name: 'sluice_sink_lag_seconds', labels: { pipeline: 'p', component: 'sink', sink }, value: seconds });

/** Steps the evaluator through `(t, samples)` points; returns every notice with its time. */
function run(rules: Rule[], steps: [number, Sample[]][], state: EvalState = emptyState()): { notices: (Notice & { t: number })[]; state: EvalState } {
  const notices: (Notice & { t: number })[] = [];
  for (const [t, samples] of steps) {
    const r = evaluate(rules, state, samples, t, 'p');
    state = r.state;
    notices.push(...r.notices.map((n) => ({ ...n, t })));
  }
  return { notices, state };
}

describe('alert evaluation', () => {
  it('goes pending, fires once after `for`, stays quiet while firing and resolves once', () => {
    const rules = [rule({ name: 'lag', kind: 'lag', threshold: 300, forMs: 60_000 })];
    const steps: [number, Sample[]][] = [];
    for (let t = 0; t <= 600_000; t += 5000) steps.push([t, [lag('w', t >= 100_000 && t < 400_000 ? 301 + t / 1000 : 10)]]);
    const { notices, state } = run(rules, steps);
    assert.deepEqual(
      notices.map((n) => [n.status, n.t]),
      [
        ['firing', 160_000], // active from 100 s, for 60 s
        ['resolved', 400_000],
      ],
    );
    assert.equal(notices[0].startsAt, new Date(100_000).toISOString());
    assert.equal(notices[1].endsAt, new Date(400_000).toISOString());
    assert.deepEqual(notices[0].labels, { pipeline: 'p', component: 'sink', sink: 'w' });
    assert.equal(notices[0].threshold, 300);
    assert.match(notices[0].summary, /sink lag is 7\.7 min, above 5\.0 min \(component=sink, sink=w\)/);
    assert.equal(state.rules.lag.state, 'inactive');
    assert.equal(state.rules.lag.notices, 2);
  });

  it('a condition that clears before `for` never fires nor resolves', () => {
    const rules = [rule({ name: 'lag', kind: 'lag', threshold: 5, forMs: 30_000 })];
    const { notices, state } = run(rules, [
      [0, [lag('w', 9)]],
      [10_000, [lag('w', 9)]],
      [20_000, [lag('w', 1)]],
      [40_000, [lag('w', 9)]],
    ]);
    assert.deepEqual(notices, []);
    assert.equal(state.rules.lag.state, 'pending');
    assert.equal(state.rules.lag.activeSince, 40_000, 'pending starts again when it comes back');
  });

  it('repeatInterval notifies again while firing; without it, never', () => {
    const steps: [number, Sample[]][] = [];
    for (let t = 0; t <= 100_000; t += 10_000) steps.push([t, [lag('w', 50)]]);
    const once = run([rule({ kind: 'lag', threshold: 5 })], steps).notices;
    assert.deepEqual(once.map((n) => n.t), [0]);
    const repeated = run([rule({ kind: 'lag', threshold: 5, repeatIntervalMs: 30_000 })], steps).notices;
    assert.deepEqual(repeated.map((n) => [n.t, n.repeat ?? false]), [[0, false], [30_000, true], [60_000, true], [90_000, true]]);
  });

  it('fires again after resolving (a new firing), with a new startsAt', () => {
    const { notices } = run([rule({ kind: 'lag', threshold: 5 })], [
      [0, [lag('w', 9)]],
      [5000, [lag('w', 1)]],
      [10_000, [lag('w', 9)]],
    ]);
    assert.deepEqual(notices.map((n) => [n.status, n.startsAt]), [['firing', new Date(0).toISOString()], ['resolved', new Date(0).toISOString()], ['firing', new Date(10_000).toISOString()]]);
  });

  it('takes the worst series that matches the labels, and nothing without series', () => {
    const r = [rule({ name: 'only-a', kind: 'lag', threshold: 5, labels: { sink: 'a*' } })];
    const { state, notices } = run(r, [[0, [lag('apple', 7), lag('avocado', 9), lag('banana', 100)]]]);
    assert.equal(state.rules['only-a'].value, 9);
    assert.equal(notices[0].labels.sink, 'avocado');
    const none = run(r, [[0, [lag('banana', 100)]]]);
    assert.equal(none.state.rules['only-a'].value, null);
    assert.equal(none.state.rules['only-a'].state, 'inactive');
  });

  it('counts the increase of a counter over its window, new series from 0, resets as restarts', () => {
    const err = (n: number, stage = 'sink'): Sample => ({ name: 'sluice_errors_total', labels: { pipeline: 'p', component: 'sink', sink: 'w', stage }, value: n });
    const r = [rule({ name: 'errors', kind: 'errors', threshold: 2, windowMs: 60_000 })];
    const { notices, state } = run(r, [
      [0, []],
      [10_000, [err(1)]], // a counter registered at its first error
      [20_000, [err(3)]], // 3 in the window: fires
      [90_000, [err(3)]], // base at 30 s … value 3 at 20 s: increase 0
    ]);
    assert.deepEqual(notices.map((n) => [n.status, n.t, n.value]), [['firing', 20_000, 3], ['resolved', 90_000, 0]]);
    assert.ok(state.history.length <= 3, `history is bounded by the window: ${state.history.length}`);
    const reset = run(r, [[0, [err(10)]], [70_000, [err(10)]], [80_000, [err(4)]]]);
    assert.equal(reset.state.rules.errors.value, 4, 'a counter that went down counts from 0');
  });

  it('expectation failures are a share of the checks over the window', () => {
    const check = (result: string, n: number): Sample => ({ name: 'sluice_expectation_checks_total', labels: { pipeline: 'p', processor: 'q', expectation: 'e', result }, value: n });
    const r = [rule({ name: 'ge', kind: 'expectationFailures', threshold: 0.1, windowMs: 60_000 })];
    const { state, notices } = run(r, [
      [0, [check('pass', 0), check('fail', 0)]],
      [70_000, [check('pass', 95), check('fail', 5)]],
      [80_000, [check('pass', 100), check('fail', 20)]],
    ]);
    assert.equal(state.rules.ge.value, 20 / 120);
    assert.deepEqual(notices.map((n) => [n.status, n.t]), [['firing', 80_000]]);
    assert.equal(notices[0].labels.result, 'fail');
  });

  it('stalled measures now minus the last event time of a table', () => {
    const last = (table: string, s: number): Sample => ({ name: 'sluice_table_last_event_timestamp_seconds', labels: { pipeline: 'p', table }, value: s });
    const r = [rule({ name: 'quiet', kind: 'stalled', threshold: 60, labels: { table: 'public.orders' } })];
    const { state, notices } = run(r, [[1_000_000, [last('public.orders', 900), last('public.other', 1)]]]);
    assert.equal(state.rules.quiet.value, 100);
    assert.equal(notices.length, 1);
  });

  it('reads thresholds in the units of the kind', () => {
    const [l, w, e] = compileRules([
      { name: 'l', kind: 'lag', threshold: '5m', window: 1, labels: {}, for: 0, severity: 'warning', receivers: ['x'], repeatInterval: 0 },
      { name: 'w', kind: 'retainedWal', threshold: '1GiB', window: 1, labels: {}, for: 0, severity: 'warning', receivers: ['x'], repeatInterval: 0 },
      { name: 'e', kind: 'errors', window: 1, labels: {}, for: 0, severity: 'warning', receivers: ['x'], repeatInterval: 0 },
    ]);
    assert.deepEqual([l.threshold, w.threshold, e.threshold], [300, 2 ** 30, 0]);
  });
});

describe('alerts config', () => {
  const base = 'name: p\nsource:\n  type: postgres\n  connection:\n    database: d\nsinks:\n  - {name: w, type: postgres, connection: {database: t}}\n';
  const bad = (yaml: string) => {
    try {
      parseConfig(base + yaml, 'p.yaml', { SLACK: 'https://hooks.slack.com/services/T0/B0/secret' });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected the config to be rejected');
  };

  it('loads receivers and rules with their defaults and interpolated URLs', () => {
    const c = parseConfig(base + 'alerts:\n  receivers:\n    - {name: ops, type: slack, url: "${SLACK}"}\n  rules:\n    - {name: lag, kind: lag, threshold: 5m, for: 2m, receivers: [ops]}\n', 'p.yaml', { SLACK: 'https://hooks.slack.com/services/T0/B0/secret' });
    assert.equal(c.alerts!.receivers[0].url, 'https://hooks.slack.com/services/T0/B0/secret');
    assert.equal(c.alerts!.evaluateEvery, 5000);
    assert.deepEqual({ for: c.alerts!.rules[0].for, window: c.alerts!.rules[0].window, severity: c.alerts!.rules[0].severity, repeat: c.alerts!.rules[0].repeatInterval }, { for: 120_000, window: 300_000, severity: 'warning', repeat: 0 });
  });

  it('refuses an unknown receiver, a missing threshold, a bad one, duplicate names', () => {
    assert.match(bad('alerts:\n  receivers: [{name: ops, url: "http://x"}]\n  rules:\n    - {name: a, kind: lag, threshold: 5m, receivers: [pager]}\n'), /no receiver is named "pager"; receivers: ops/);
    assert.match(bad('alerts:\n  receivers: [{name: ops, url: "http://x"}]\n  rules:\n    - {name: a, kind: lag, receivers: [ops]}\n'), /a lag rule needs a threshold/);
    assert.match(bad('alerts:\n  receivers: [{name: ops, url: "http://x"}]\n  rules:\n    - {name: a, kind: retainedWal, threshold: 5 parsecs, receivers: [ops]}\n'), /not a size/);
    assert.match(bad('alerts:\n  receivers: [{name: ops, url: "http://x"}]\n  rules:\n    - {name: a, kind: expectationFailures, threshold: 5, receivers: [ops]}\n'), /ratio between 0 and 1/);
    assert.match(bad('alerts:\n  receivers: [{name: ops, url: "http://x"}]\n  rules:\n    - {name: a, kind: errors, receivers: [ops]}\n    - {name: a, kind: errors, receivers: [ops]}\n'), /another rule is already named "a"/);
    assert.match(bad('alerts:\n  rules:\n    - {name: a, kind: nope, receivers: [ops]}\n'), /kind/);
  });
});

describe('alert payloads', () => {
  const n: Notice = { status: 'firing', rule: 'sink-lag', kind: 'lag', severity: 'critical', pipeline: 'shop', summary: 'sink lag is 6.0 min, above 5.0 min (sink=w)', value: 360, threshold: 300, labels: { pipeline: 'shop', sink: 'w' }, startsAt: '2026-01-01T00:00:00.000Z', receivers: ['ops'] };

  it('the generic webhook gets the notice without its routing', () => {
    assert.deepEqual(webhookBody(n), { status: 'firing', rule: 'sink-lag', kind: 'lag', severity: 'critical', pipeline: 'shop', summary: n.summary, value: 360, threshold: 300, labels: n.labels, startsAt: n.startsAt });
  });

  it('Slack gets a one-line text and blocks', () => {
    const b = slackBody(n) as { text: string; blocks: unknown[] };
    assert.equal(b.text, ':rotating_light: FIRING [critical] sink-lag (pipeline shop): sink lag is 6.0 min, above 5.0 min (sink=w)');
    assert.equal(b.blocks.length, 2);
    const r = slackBody({ ...n, status: 'resolved', endsAt: '2026-01-01T00:10:00.000Z' }) as { text: string };
    assert.match(r.text, /^:white_check_mark: RESOLVED \[critical\] sink-lag/);
  });

  it('URLs are shown by scheme and host only', () => {
    assert.equal(maskedUrl('https://hooks.slack.com/services/T0/B0/secret?x=1'), 'https://hooks.slack.com/…');
  });
});
