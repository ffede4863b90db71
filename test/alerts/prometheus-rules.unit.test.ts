/**
 * observability/prometheus/sluice-alerts.yaml: valid YAML in Prometheus's rule-file shape, one
 * alert per built-in rule kind (the same metric), and every metric it names is one Sluice exports
 * (read from the registrations under src/, as the metrics reference is). `promtool check rules`
 * checks the PromQL itself where Prometheus is installed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROOT } from '../../scripts/docs.ts';
import { scanMetrics } from '../../scripts/metrics.ts';
import { METRIC_OF } from '../../src/alerts/evaluate.ts';

/** Metrics other work of the same issue adds; named here until it lands (then this entry can go). */
const ANNOUNCED: Record<string, string> = {
  sluice_reconcile_drift_rows: 'the scheduled source↔target reconciliation (issue 16)',
};

const FILE = join(ROOT, 'observability/prometheus/sluice-alerts.yaml');

describe('Prometheus alerting rules', () => {
  const doc = parse(readFileSync(FILE, 'utf8')) as { groups: { name: string; rules: Record<string, unknown>[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('is a rule file: groups of named alerts with an expression, durations and labels', () => {
    assert.ok(doc.groups.length > 0);
    for (const g of doc.groups) assert.equal(typeof g.name, 'string');
    const names = new Set<string>();
    for (const r of rules) {
      assert.match(String(r.alert), /^[A-Za-z_][A-Za-z0-9_]*$/, 'an alert name is a metric-like name');
      assert.ok(!names.has(String(r.alert)), `one alert named ${String(r.alert)}`);
      names.add(String(r.alert));
      assert.equal(typeof r.expr, 'string');
      if (r.for !== undefined) assert.match(String(r.for), /^\d+[smhdwy]$/);
      assert.deepEqual(Object.keys(r).filter((k) => !['alert', 'expr', 'for', 'labels', 'annotations', 'keep_firing_for'].includes(k)), [], `${String(r.alert)}: only keys Prometheus knows`);
      assert.ok(['critical', 'warning', 'info'].includes(String((r.labels as Record<string, string>)?.severity)), `${String(r.alert)} has a severity`);
    }
  });

  it('names only metrics Sluice exports', () => {
    const exported = new Set(scanMetrics(ROOT).metrics.map((m) => m.name));
    for (const r of rules) {
      for (const name of String(r.expr).match(/\bsluice_[a-z0-9_]+/g) ?? []) {
        assert.ok(exported.has(name) || name in ANNOUNCED, `${String(r.alert)} reads ${name}, which src/ does not export`);
      }
    }
  });

  it('has an alert for every built-in rule kind, over the same metric', () => {
    for (const [kind, metric] of Object.entries(METRIC_OF)) {
      assert.ok(rules.some((r) => String(r.expr).includes(metric)), `kind ${kind}: no alert reads ${metric}`);
    }
  });
});
