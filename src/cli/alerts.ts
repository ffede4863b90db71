import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compileRules, formatValue } from '../alerts/evaluate.ts';
import { maskedUrl } from '../alerts/notify.ts';
import { loadConfig } from '../config/index.ts';
import { statusFile } from '../engine/status.ts';
import { UsageError, type Command } from './command.ts';

export const alertsCommand: Command = {
  summary: "list the pipeline's alert rules, receivers and their current state",
  usage: `usage: sluice alerts --config <pipeline.yaml> [--state-dir <dir>] [--json]

Lists the alert rules of the pipeline's \`alerts:\` key (kind, threshold, for, severity, receivers),
the receivers (type, and the URL's scheme and host only: a webhook's path is its secret), and,
when the pipeline runs or ran, each rule's state from status.json in its state.dir: inactive,
pending (active, waiting for \`for\`) or firing, since when, its last value and last notice, and
each receiver's delivered, failed and dropped notices. A status.json not updated for 10 s is
from a pipeline that stopped: its states are as they were then.

options:
  --state-dir   where the pipeline keeps status.json (default: the config's state.dir)
  --json        one JSON document instead of text

example:
  sluice alerts --config pipeline.yaml
`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string' }, 'state-dir': { type: 'string' }, json: { type: 'boolean' } } });
    if (!values.config) throw new UsageError('give the pipeline with --config <pipeline.yaml>');
    const cfg = await loadConfig(values.config);
    const alerts = cfg.alerts ?? { evaluateEvery: 5000, receivers: [], rules: [] };
    const path = statusFile(values['state-dir'] ?? cfg.state.dir);
    let status: Record<string, any> | null = null;
    let statusError: string | undefined;
    if (existsSync(path)) {
      try {
        status = JSON.parse(readFileSync(path, 'utf8'));
      } catch (e) {
        statusError = `unreadable ${path}: ${(e as Error).message}`;
      }
    }
    const live = (status?.alerts ?? null) as { evaluatedAt: string | null; rules: Record<string, any>[]; receivers: Record<string, any>[] } | null;
    const rules = compileRules(alerts.rules);
    const report = {
      pipeline: cfg.name,
      evaluateEveryMs: alerts.evaluateEvery,
      pipelineState: status ? { state: status.state, updatedAt: status.updatedAt, pid: status.pid } : null,
      statusError,
      evaluatedAt: live?.evaluatedAt ?? null,
      receivers: alerts.receivers.map((r) => {
        const s = live?.receivers.find((x) => x.name === r.name);
        return { name: r.name, type: r.type, url: maskedUrl(r.url), headers: Object.keys(r.headers), sent: s?.sent ?? null, failed: s?.failed ?? null, dropped: s?.dropped ?? null, lastError: s?.lastError ?? null };
      }),
      rules: rules.map((r, i) => {
        const s = live?.rules.find((x) => x.name === r.name);
        return {
          name: r.name,
          kind: r.kind,
          threshold: r.threshold,
          window: alerts.rules[i].window,
          labels: r.labels,
          for: r.forMs,
          severity: r.severity,
          receivers: r.receivers,
          repeatInterval: r.repeatIntervalMs,
          state: s?.state ?? null,
          since: s?.since ?? null,
          value: s?.value ?? null,
          valueLabels: s?.labels ?? null,
          lastNotified: s?.lastNotified ?? null,
          notices: s?.notices ?? null,
        };
      }),
    };
    if (values.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return 0;
    }
    const secs = (ms: number) => (ms % 60_000 === 0 && ms ? `${ms / 60_000}m` : `${ms / 1000}s`);
    const lines: string[] = [];
    if (!rules.length) lines.push(`pipeline ${cfg.name}: no alert rules (add them under \`alerts:\`, docs/alerts.md)`);
    else {
      const p = report.pipelineState;
      const age = p ? Date.now() - Date.parse(p.updatedAt) : 0;
      const when = !p ? 'has not run here (no status.json): states unknown' : (p.state === 'running' || p.state === 'starting') && age <= 10_000 ? `running, evaluated every ${secs(alerts.evaluateEvery)}, last at ${report.evaluatedAt ?? '(not yet)'}` : `${p.state} (status of ${p.updatedAt}: the states as they were then)`;
      lines.push(`pipeline ${cfg.name}: ${rules.length} rule${rules.length > 1 ? 's' : ''}, ${when}`);
      if (statusError) lines.push(`  ${statusError}`);
      lines.push('rules:');
      for (const r of report.rules) {
        const cond = `${r.kind} > ${formatValue(r.kind, r.threshold)}${['errors', 'expectationFailures', 'restarts'].includes(r.kind) ? ` over ${secs(r.window)}` : ''}${Object.keys(r.labels).length ? ` where ${Object.entries(r.labels).map(([k, v]) => `${k}=${v}`).join(',')}` : ''}${r.for ? ` for ${secs(r.for)}` : ''}`;
        const state = r.state === null ? '' : `  ${r.state.toUpperCase()}${r.since ? ` since ${r.since}` : ''}, value ${formatValue(r.kind, r.value)}${r.lastNotified ? `, last notice ${r.lastNotified}` : ''}`;
        lines.push(`  ${r.name} [${r.severity}] ${cond} → ${r.receivers.join(', ')}${r.repeatInterval ? ` (repeat every ${secs(r.repeatInterval)})` : ''}${state}`);
      }
      lines.push('receivers:');
      for (const x of report.receivers) {
        const counts = x.sent === null ? '' : `  ${x.sent} sent, ${x.failed} failed, ${x.dropped} dropped${x.lastError ? `; last error ${x.lastError.at}: ${x.lastError.message}` : ''}`;
        lines.push(`  ${x.name} (${x.type}) ${x.url}${counts}`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
