/**
 * The observability files against a running pipeline: every metric the Grafana dashboard
 * (observability/grafana/) and the Prometheus alert rules (observability/prometheus/) query is one
 * a real pipeline exports on /metrics, and so is every metric of the generated reference in
 * docs/operations.md, except the few listed in CONDITIONAL with why they are absent here. A
 * metric on /metrics that the reference lacks is a registration the docs scan missed.
 *
 * The pipeline: PostgreSQL source, a map processor that dead-letters a division by zero, an expect
 * processor, a PostgreSQL sink, the HTTP gateway with one route, and `server:`.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../../scripts/docs.ts';
import { scanMetrics } from '../../scripts/metrics.ts';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { freePort, pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

/**
 * Metrics of the reference that this pipeline does not export, each with why. A name here must be
 * in the generated reference; one that shows up on /metrics after all must leave the list.
 */
export const CONDITIONAL: Record<string, string> = {
  sluice_source_binlog_files_needed: 'only a MySQL source reports the binlog files it needs',
  sluice_source_binlog_bytes_needed: 'only a MySQL source reports the binlog it needs',
  sluice_source_couchdb_conflicts_total: 'only a CouchDB source counts conflicted documents',
  sluice_reconcile_drift_rows: 'registered by a reconcile run (docs/quality.md), which this pipeline does not start',
  sluice_reconcile_runs_total: 'registered by a reconcile run',
  sluice_reconcile_last_run_timestamp_seconds: 'registered by a reconcile run',
  sluice_validation_failures: 'registered by a `validate:` schedule (docs/quality.md), which this pipeline has not',
  sluice_validation_runs_total: 'registered by a `validate:` schedule',
  sluice_validation_last_run_timestamp_seconds: 'registered by a `validate:` schedule',
  sluice_alert_notifications_total: 'registered at the first alert notice a receiver of `alerts:` gets',
};

const HISTOGRAM_PARTS = /_(bucket|sum|count)$/;
/** Metric names in a PromQL expression (loosely: every `sluice_…` identifier). */
const namesIn = (expr: string): string[] => [...expr.matchAll(/\bsluice_[a-z0-9_]+/g)].map((m) => m[0]);

/** Every PromQL expression of a dashboard: panels' targets (rows' nested panels too) and query variables. */
export function dashboardExprs(d: any): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const panels = (ps: any[]): void => {
    for (const p of ps ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === 'string' && (t.datasource?.type ?? p.datasource?.type) !== 'loki') out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
      panels(p.panels);
    }
  };
  panels(d.panels);
  for (const v of d.templating?.list ?? []) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (v.type === 'query' && typeof q === 'string') out.push({ where: `variable ${v.name}`, expr: q });
  }
  return out;
}

/** The expressions of Prometheus rule files: groups[].rules[].expr. */
function ruleExprs(dir: string): { where: string; expr: string }[] {
  if (!existsSync(dir)) return [];
  const out: { where: string; expr: string }[] = [];
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n))) {
    const doc = parseYaml(readFileSync(join(dir, f), 'utf8'));
    for (const g of doc?.groups ?? []) for (const r of g.rules ?? []) if (typeof r.expr === 'string') out.push({ where: `${f} ${r.alert ?? r.record}`, expr: r.expr });
  }
  return out;
}

/** Metric names on a /metrics page: those of `# TYPE` lines, by type. */
function exported(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1], m[2]);
  return out;
}

describe('observability files against a running pipeline', () => {
  const f = useDatabase(`
    CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, note text);
    INSERT INTO orders SELECT g, g % 7, 'n' || g FROM generate_series(1, 50) g;
  `);

  it('every metric the dashboard, the alert rules and the reference name is on /metrics', async () => {
    const reference = scanMetrics(ROOT);
    assert.deepEqual(reference.problems, []);
    const documented = new Map(reference.metrics.map((m) => [m.name, m]));

    const target = await freshDatabase();
    const [server, gateway] = [await freePort(), await freePort()];
    const token = 'obs-test-token-0123456789';
    const yaml = pipelineYaml(
      'obs',
      f.db.name,
      f.tmp.dir,
      '',
      `server:
  host: 127.0.0.1
  port: ${server}
batch:
  maxDelayMs: 5
processors:
  - name: ratio
    type: map
    key: after.id
    fields:
      id: after.id
      per: 10 / after.qty
  - name: checked
    type: expect
    expectations:
      - name: note_present
        notNull: [after.note]
        action: warn
sinks:
  - name: replica
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }
    batch: { maxRecords: 100, maxDelayMs: 5 }
ingest:
  host: 127.0.0.1
  port: ${gateway}
  credentials:
    - {name: app, token: '${token}'}
  routes:
    - path: /events
      topic: obs_events
      key: user
      allow: [app]
`,
    );
    const cfg = parseConfig(yaml, 'obs.yaml', process.env);
    const ac = new AbortController();
    // The JSON log lines, to check the fields docs/operations.md documents for Loki.
    const lines: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, done) => (lines.push(...String(chunk).split('\n').filter(Boolean)), done()) });
    const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'info', format: 'json', stream }) });
    let text = '';
    try {
      const metrics = async () => (await fetch(`http://127.0.0.1:${server}/metrics`)).text();
      await waitUntil('the sink applied the snapshot', async () => (await target.client.query('SELECT count(*)::int AS n FROM public.orders').then((r) => r.rows[0].n, () => 0)) === 50, 20_000);
      await f.db.client.query(`INSERT INTO orders VALUES (51, 0, 'zero'), (52, 3, 'x'); UPDATE orders SET note = 'u' WHERE id = 1`);
      const ok = await fetch(`http://127.0.0.1:${gateway}/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ user: 'u1', n: 1 }) });
      assert.equal(ok.status, 200, await ok.text());
      await waitUntil('the changes applied, a dead letter counted and a partition lag reported', async () => {
        text = await metrics();
        return /^sluice_processor_dead_letters_total\{[^}]*\} [1-9]/m.test(text) && /^sluice_sink_partition_lag\{/m.test(text) && (await target.client.query('SELECT count(*)::int AS n FROM public.orders')).rows[0].n === 52;
      }, 20_000).catch((e) => {
        throw new Error(`${e.message}; /metrics:\n${text.split('\n').filter((l) => !/^#|_bucket/.test(l)).join('\n')}`);
      });
      text = await metrics();
    } finally {
      ac.abort();
      await run;
      await target.drop();
    }

    // Loki's labels come from these: every line has ts, level and msg; a task's lines pipeline and component.
    const logged = lines.map((l) => JSON.parse(l));
    assert.ok(logged.length > 3);
    for (const l of logged) assert.ok(typeof l.ts === 'string' && ['debug', 'info', 'warn', 'error'].includes(l.level) && typeof l.msg === 'string', JSON.stringify(l));
    assert.ok(logged.some((l) => l.pipeline === 'obs' && l.component === 'source'), 'source lines carry pipeline and component');
    const dead = logged.find((l) => /dead-lettered/.test(l.msg));
    assert.ok(dead && dead.level === 'warn' && dead.pipeline === 'obs' && dead.component === 'processor' && dead.processor === 'ratio' && dead.code === 'PROCESSOR_EXPR' && dead.dlq === 'obs.dlq', JSON.stringify(dead));

    const onPage = exported(text);
    assert.match(text, /^sluice_events_out_total\{pipeline="obs",component="sink",sink="replica"\} [1-9]\d*$/m, 'counters moved');
    assert.match(text, /^sluice_errors_total\{pipeline="obs",component="processor",processor="ratio",stage="processor"\} [1-9]/m, 'the dead letters counted as errors');

    // Every finding at once, so one run shows all there is to fix.
    const problems: string[] = [];
    for (const name of Object.keys(CONDITIONAL)) if (!documented.has(name)) problems.push(`CONDITIONAL lists ${name}, which no code registers (not in the generated reference)`);
    // /metrics ⊆ reference: a name exported but undocumented is a registration the scan missed.
    for (const [name, type] of onPage) {
      if (!documented.has(name)) problems.push(`${name} is on /metrics but not in the generated reference (scripts/metrics.ts does not see its registration)`);
      else if (documented.get(name)!.type !== type) problems.push(`${name} is a ${type} on /metrics and a ${documented.get(name)!.type} in the reference`);
    }
    // reference ⊆ /metrics ∪ CONDITIONAL, and CONDITIONAL ∩ /metrics = ∅.
    for (const name of documented.keys()) if (!onPage.has(name) && !(name in CONDITIONAL)) problems.push(`${name} is documented but this pipeline does not export it: make the test pipeline export it, or list it in CONDITIONAL with why`);
    for (const name of Object.keys(CONDITIONAL)) if (onPage.has(name)) problems.push(`CONDITIONAL lists ${name}, which the pipeline exports after all: take it off the list`);

    // The dashboard's and the alert rules' names, histogram parts as their histogram.
    const base = (n: string): string => (HISTOGRAM_PARTS.test(n) && documented.get(n.replace(HISTOGRAM_PARTS, ''))?.type === 'histogram' ? n.replace(HISTOGRAM_PARTS, '') : n);
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'observability/grafana/sluice-dashboard.json'), 'utf8'));
    const queries = [...dashboardExprs(dashboard), ...ruleExprs(join(ROOT, 'observability/prometheus'))];
    assert.ok(queries.length > 20, 'the dashboard has its queries');
    for (const q of queries) {
      for (const n of namesIn(q.expr)) {
        if (!documented.has(base(n))) problems.push(`${q.where} queries ${n}, which the generated reference does not list`);
        else if (!onPage.has(base(n)) && !(base(n) in CONDITIONAL)) problems.push(`${q.where} queries ${n}, which /metrics does not have`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
