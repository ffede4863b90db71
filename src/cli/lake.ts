/**
 * `sluice lake files <table>`: the data files of a Delta table's version (the latest, or
 * `--version N`), for engines without a Delta reader, such as DuckDB here (its delta extension is
 * not installed): `--sql` prints a DuckDB view over them.
 */
import { resolve, join } from 'node:path';
import { parseArgs } from 'node:util';
import { readTableLog } from '../sinks/delta/log.ts';
import { UsageError, type Command } from './command.ts';

const USAGE = `usage: sluice lake files <table-directory> [options]

Lists the Parquet data files of a Delta table written by the delta sink, as of its latest
version or an earlier one (time travel). Read-only; works while the pipeline writes.

  --version <n>   the table as of version n (default: the latest)
  --json          one JSON document: {"version", "files": [absolute paths]}
  --sql <name>    a DuckDB statement creating view <name> over the files, instead of the list

examples:
  sluice lake files /data/lake/bronze/public_orders
  sluice lake files /data/lake/bronze/public_orders --version 12 --sql orders_v12 | duckdb wh.db
`;

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

export const lakeCommand: Command = {
  summary: "list a Delta table's data files at a version (for DuckDB and other Parquet readers)",
  usage: USAGE,
  async run(args) {
    const [action, ...rest] = args;
    if (action !== 'files') throw new UsageError(action ? `unknown action ${action}: use files` : 'give an action: files');
    const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { version: { type: 'string' }, json: { type: 'boolean', default: false }, sql: { type: 'string' } } });
    if (positionals.length !== 1) throw new UsageError('give one table directory (the directory holding _delta_log)');
    const version = values.version === undefined ? Infinity : Number(values.version);
    if (!(Number.isInteger(version) && version >= 0) && version !== Infinity) throw new UsageError(`--version takes a version number (0, 1, …), not ${JSON.stringify(values.version)}`);
    if (values.sql !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(values.sql)) throw new UsageError(`--sql takes a view name of letters, digits and _ (got ${JSON.stringify(values.sql)})`);
    const dir = resolve(positionals[0]);
    const log = await readTableLog(dir, version);
    if (log.version < 0) {
      process.stderr.write(`sluice lake: ${dir} holds no Delta table (no _delta_log commits): give the directory of a table under the delta sink's path\n`);
      return 1;
    }
    if (version !== Infinity && log.version !== version) {
      process.stderr.write(`sluice lake: the Delta table at ${dir} has versions 0 to ${log.version}, not ${version}\n`);
      return 1;
    }
    const files = [...log.files.keys()].map((p) => join(dir, decodeURIComponent(p)));
    if (values.json) process.stdout.write(JSON.stringify({ version: log.version, files }) + '\n');
    else if (values.sql !== undefined) {
      // A version without files (only a truncate row's commit … or none yet) reads as no rows.
      const from = files.length ? `read_parquet([${files.map(quote).join(', ')}], union_by_name = true)` : null;
      process.stdout.write(from ? `CREATE OR REPLACE VIEW ${values.sql} AS SELECT * FROM ${from};\n` : `-- version ${log.version} of ${dir} has no data files\n`);
    } else {
      process.stderr.write(`version ${log.version}: ${files.length} data file${files.length === 1 ? '' : 's'}\n`);
      for (const f of files) process.stdout.write(f + '\n');
    }
    return 0;
  },
};
