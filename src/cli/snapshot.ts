import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { coreError } from '../core/errors.ts';
import { sourceSpec } from '../registry/index.ts';
import { UsageError, type Command } from './command.ts';

export const snapshotCommand: Command = {
  summary: 'ask a running pipeline to (re)read tables while it streams (incremental snapshot)',
  usage: `usage: sluice snapshot --config <pipeline.yaml> <table>… [--stop] [--json]
       sluice snapshot <pipeline.yaml> <table>…

Writes an execute-snapshot signal (Debezium's row format) into the source's signal table
(source.signalTable; PostgreSQL and MySQL/MariaDB sources). The pipeline reads it from its own
stream, in order with the changes, and reads the tables again in key-ordered chunks of
source.incrementalChunkSize while changes keep streaming: each chunk is appended as op "r" events
(source.snapshot "incremental") without moving any key back in time. The request is durable: a
pipeline that is stopped takes it when it starts, and a snapshot interrupted by a crash continues
after the last chunk in the log. Follow it with \`sluice status --config <pipeline.yaml>\`.

A table added to source.tables needs no signal: the pipeline back-fills it when it starts.

options:
  --stop        stop the incremental snapshots of these tables (of all, with no table)
  --json        print the signal written as JSON

tables are schema.table (PostgreSQL; public when no schema) or database.table (MySQL; the
connection's database when none).

example:
  sluice snapshot --config pipeline.yaml public.orders public.customers
`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' }, stop: { type: 'boolean' }, json: { type: 'boolean' } } });
    let config = values.config;
    const tables = [...positionals];
    if (!config && tables.length && /\.ya?ml$/i.test(tables[0])) config = tables.shift();
    if (!config) throw new UsageError('give the pipeline with --config <pipeline.yaml>');
    if (!tables.length && !values.stop) throw new UsageError('name the tables to snapshot (schema.table)');
    const cfg = await loadConfig(config);
    if (!cfg.source) throw coreError('CONFIG_INVALID', `pipeline ${cfg.name} has no source: incremental snapshots are a source's`);
    const spec = sourceSpec(cfg.source.type);
    if (!spec?.signal) throw coreError('CONFIG_INVALID', `a ${cfg.source.type} source takes no incremental snapshots (PostgreSQL and MySQL/MariaDB sources do)`);
    const row = { id: randomUUID(), type: values.stop ? 'stop-snapshot' : 'execute-snapshot', data: JSON.stringify({ 'data-collections': tables, type: 'incremental' }) };
    const table = await spec.signal(cfg.source, row);
    if (values.json) process.stdout.write(JSON.stringify({ signalTable: table, ...row }) + '\n');
    else if (values.stop) process.stdout.write(`asked pipeline ${cfg.name} to stop the incremental snapshot of ${tables.length ? tables.join(', ') : 'every table'} (signal ${row.id} in ${table})\n`);
    else process.stdout.write(`asked pipeline ${cfg.name} for an incremental snapshot of ${tables.join(', ')} (signal ${row.id} in ${table}); it starts when the pipeline's stream reaches the signal. Follow it with: sluice status --config ${config}\n`);
    return 0;
  },
};
