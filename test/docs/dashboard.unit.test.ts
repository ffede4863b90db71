/**
 * observability/grafana/sluice-dashboard.json as Grafana's import takes it: datasources as
 * `__inputs` (`${DS_PROMETHEUS}`, `${DS_LOKI}`), each panel type in `__requires`, unique ids, panels
 * on the 24-column grid without overlaps, every query filtered by the `pipeline` variable and naming
 * only metrics the code registers (the generated reference). That /metrics of a running pipeline
 * has them is test/docs/observability.test.ts's part.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../../scripts/docs.ts';
import { scanMetrics } from '../../scripts/metrics.ts';

const dashboard = JSON.parse(readFileSync(join(ROOT, 'observability/grafana/sluice-dashboard.json'), 'utf8'));

function allPanels(ps: any[] = dashboard.panels): any[] {
  return ps.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Each selector of a metric in an expression: `sluice_x{…}` with its braces' text ('' without). */
function selectors(expr: string): { name: string; matchers: string }[] {
  return [...expr.matchAll(/\b(sluice_[a-z0-9_]+)(\{([^}]*)\})?/g)].map((m) => ({ name: m[1], matchers: m[3] ?? '' }));
}

describe('Grafana dashboard (observability/grafana/sluice-dashboard.json)', () => {
  const panels = allPanels();
  const queries = panels.filter((p) => p.type !== 'row');

  it('imports with a datasource chosen for each input', () => {
    const inputs = new Map<string, any>(dashboard.__inputs.map((i: any) => [i.name, i]));
    assert.equal(inputs.get('DS_PROMETHEUS')?.pluginId, 'prometheus');
    assert.equal(inputs.get('DS_LOKI')?.pluginId, 'loki');
    assert.ok(inputs.size === 2 && [...inputs.values()].every((i) => i.type === 'datasource'));
    const used = new Set([...JSON.stringify(dashboard).matchAll(/\$\{(DS_[A-Z_]+)\}/g)].map((m) => m[1]));
    assert.deepEqual([...used].sort(), [...inputs.keys()].sort(), 'every ${DS_…} is an input, every input used');
    const required = new Set(dashboard.__requires.map((r: any) => `${r.type}:${r.id}`));
    for (const t of new Set(queries.map((p) => p.type))) assert.ok(required.has(`panel:${t}`), `__requires lists panel ${t}`);
    assert.ok(required.has('grafana:grafana') && required.has('datasource:prometheus') && required.has('datasource:loki'));
    assert.equal(dashboard.id, null, 'no id: Grafana assigns one on import');
    assert.match(dashboard.uid, /^[a-z0-9-]{1,40}$/);
  });

  it('has a pipeline variable from the metrics, and every query filters by it', () => {
    const v = dashboard.templating.list.find((x: any) => x.name === 'pipeline');
    assert.equal(v.type, 'query');
    assert.equal(v.datasource.uid, '${DS_PROMETHEUS}');
    assert.match(v.query.query, /^label_values\(sluice_[a-z_]+, pipeline\)$/);
    assert.equal(v.includeAll, true);
    for (const p of queries) {
      for (const t of p.targets) {
        assert.ok(t.expr, `panel "${p.title}" ${t.refId} has an expression`);
        if (t.datasource.type === 'loki') {
          assert.match(t.expr, /^\{app="sluice", pipeline=~"\$pipeline"\}/, 'logs by the labels docs/operations.md documents');
          continue;
        }
        assert.ok(selectors(t.expr).length > 0, `panel "${p.title}" ${t.refId} queries a Sluice metric`);
        for (const s of selectors(t.expr)) assert.match(s.matchers, /(^|, *)pipeline=~"\$pipeline"/, `panel "${p.title}" ${t.refId}: ${s.name} filtered by $pipeline`);
        let depth = 0;
        for (const ch of t.expr) if ((depth += ch === '(' ? 1 : ch === ')' ? -1 : 0) < 0) break;
        assert.equal(depth, 0, `panel "${p.title}" ${t.refId}: balanced parentheses`);
      }
    }
  });

  it('names only metrics the code registers', () => {
    const documented = new Map(scanMetrics(ROOT).metrics.map((m) => [m.name, m]));
    const unknown: string[] = [];
    for (const p of queries) {
      for (const t of p.targets) {
        for (const s of selectors(t.expr)) {
          const hist = s.name.match(/^(.*)_(bucket|sum|count)$/);
          const ok = documented.has(s.name) || (hist && documented.get(hist[1])?.type === 'histogram');
          if (!ok) unknown.push(`panel "${p.title}": ${s.name}`);
          if (hist && documented.get(hist[1])?.type === 'histogram') assert.match(t.expr, /histogram_quantile|_sum|_count/, `panel "${p.title}" reads its histogram's buckets through histogram_quantile`);
        }
      }
    }
    assert.deepEqual(unknown, [], 'metrics not in the generated reference (docs/operations.md)');
  });

  it('lays its panels out on the grid without overlaps, with unique ids', () => {
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
    const cells = new Map<string, string>();
    for (const p of panels) {
      const g = p.gridPos;
      assert.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0 && g.y >= 0, `panel "${p.title}" on the grid`);
      for (let y = g.y; y < g.y + g.h; y++) {
        for (let x = g.x; x < g.x + g.w; x++) {
          const k = `${x},${y}`;
          assert.ok(!cells.has(k), `panel "${p.title}" overlaps "${cells.get(k)}"`);
          cells.set(k, p.title);
        }
      }
      if (p.type !== 'row') {
        assert.ok(p.datasource?.uid, `panel "${p.title}" has a datasource`);
        assert.ok(p.description, `panel "${p.title}" says what it shows`);
        const refs = p.targets.map((t: any) => t.refId);
        assert.equal(new Set(refs).size, refs.length, `panel "${p.title}": unique refIds`);
      }
    }
  });
});
