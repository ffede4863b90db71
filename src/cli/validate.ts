import { parseArgs } from 'node:util';
import { exportJsonSchema, loadConfig } from '../config/index.ts';
import { redact } from '../core/logger.ts';
import { describeGraph, planTopology } from '../engine/topology.ts';
import { logSpec, processorSpec, sinkSpec, sourceSpec } from '../registry/index.ts';
import { describeIngest } from '../sources/http/spec.ts';
import { displayUrl } from '../schedules/pull.ts';
import { maskedUrl } from '../alerts/notify.ts';
import { UsageError, type Command } from './command.ts';

export const validateCommand: Command = {
  summary: 'check a pipeline config and print what it will do',
  usage: `usage: sluice validate <pipeline.yaml>

Checks the YAML against the config schema (unknown keys, types, values) and the pipeline graph
(what each processor and sink reads: unknown inputs, cycles, records a reader cannot take, errors
in expressions), resolves \${ENV} references and prints a summary: the source, the log, the sinks,
each processor with its inputs and output, and with processors the graph, one node per line
(\`processor flat [unwrap] ← source → flat.{schema}.{table} (flat rows)\`). Problems are listed
as file:line:column. Exit code 1 when the config is invalid.

example:
  sluice validate examples/postgres-to-log.yaml
`,
  async run(args) {
    const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
    if (positionals.length !== 1) throw new UsageError('expected exactly one config file');
    const cfg = await loadConfig(positionals[0]);
    const topology = planTopology(cfg);
    const parts = [`pipeline ${cfg.name}`, cfg.source ? sourceSpec(cfg.source.type).describe(cfg.source) : 'no source', logSpec(cfg.log.backend).describe(cfg.log)];
    if (cfg.sinks.length) parts.push(`sinks ${cfg.sinks.map((k) => `${k.name} → ${sinkSpec(k.type).describe(k)}`).join(', ')}`);
    let out = `OK: ${positionals[0]} (${parts.join(', ')})\n`;
    if (cfg.ingest) out += `  ${describeIngest(cfg.ingest)}\n`;
    for (const p of cfg.processors) out += `  ${processorSpec(p.type).describe(p)}\n`;
    for (const s of cfg.schedules) out += `  schedule ${s.name}: ${s.cron === undefined ? `after ${s.after!.join(', ')}` : s.cron}${s.timezone === 'UTC' || s.cron === undefined ? '' : ` (${s.timezone})`} ${s.request ? `${s.request.method} ${displayUrl(s.request.url)} → ${s.topic}` : s.validate ? `validate ${s.validate.sink} ${s.validate.table}: ${s.validate.expectations.map((e) => e.name).join(', ')}` : s.snapshot ? `incremental snapshot of ${s.snapshot.tables.join(', ')}` : `reconcile ${s.reconcile?.sinks.join(', ') || 'every sink'}`}\n`;
    if (cfg.alerts?.rules.length) out += `  alerts: ${cfg.alerts.rules.map((r) => r.name).join(', ')} → ${cfg.alerts.receivers.map((r) => `${r.name} (${r.type} ${maskedUrl(r.url)})`).join(', ')} (sluice alerts lists them)\n`;
    if (cfg.processors.length || cfg.ingest) out += `graph:\n${describeGraph(topology)}\n`;
    // The components' descriptions leave passwords out; masked here too, for one that would not.
    process.stdout.write(redact(out));
    return 0;
  },
};

export const schemaCommand: Command = {
  summary: 'print the JSON Schema of the pipeline config',
  usage: `usage: sluice schema

Prints the JSON Schema (draft-07) that pipeline YAML files are validated against, for editor
completion and checks, e.g. with the YAML language server (\`# yaml-language-server: $schema=…\`).

example:
  sluice schema > sluice.schema.json
`,
  async run() {
    process.stdout.write(JSON.stringify(exportJsonSchema(), null, 2) + '\n');
    return 0;
  },
};
