import { parseArgs } from 'node:util';
import { exportJsonSchema, loadConfig } from '../config/index.ts';
import type { Command } from './main.ts';
import { UsageError } from './main.ts';

export const validateCommand: Command = {
  summary: 'check a pipeline config and print what it will do',
  usage: `usage: sluice validate <pipeline.yaml>

Checks the YAML against the config schema (unknown keys, types, values), resolves
\${ENV} references and prints a summary. Problems are listed as file:line:column.
Exit code 1 when the config is invalid.

example:
  sluice validate examples/postgres-to-log.yaml
`,
  async run(args) {
    const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
    if (positionals.length !== 1) throw new UsageError('expected exactly one config file');
    const cfg = await loadConfig(positionals[0]);
    const s = cfg.source;
    process.stdout.write(
      `OK: ${positionals[0]} (pipeline ${cfg.name}, source ${s.type} ${s.connection.user}@${s.connection.host}:${s.connection.port}/${s.connection.database ?? ''}, ` +
        `${s.tables.length ? `${s.tables.length} table${s.tables.length > 1 ? 's' : ''}` : 'all tables'}, ${s.type === 'postgres' ? `slot ${s.slot}` : `server id ${s.serverId}`}, snapshot ${s.snapshot}, log ${cfg.log.dir}` +
        (cfg.sinks.length ? `, sinks ${cfg.sinks.map((k) => `${k.name} → ${k.type === 'duckdb' ? `duckdb ${k.path}` : k.type === 'mongodb' ? `mongodb ${k.connection.replace(/\/\/[^@/]*@/, '//')} database ${k.database}` : `${k.type} ${k.connection.user}@${k.connection.host}:${k.connection.port}/${k.connection.database}`}`).join(', ')}` : '') +
        ')\n',
    );
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
