/**
 * `sluice lake`: the Delta tables the delta sink writes, for engines without a Delta reader (DuckDB
 * here: its delta extension is not installed) and for their upkeep:
 *   files     the data files of a version (or a DuckDB view over them)
 *   changes   the Change Data Feed between two versions (a DuckDB view, or JSON rows)
 *   optimize  compacts small files (one commit, no rows changed)
 *   vacuum    deletes files older than the retention that the latest version does not use
 *   expire    (Iceberg) drops old snapshots and the files only they reached
 */
import { resolve, join } from 'node:path';
import { parseArgs } from 'node:util';
import { changeFeed, feedSql, filesSql } from '../sinks/delta/feed.ts';
import { readTableLog } from '../sinks/delta/log.ts';
import { UsageError, type Command } from './command.ts';

const USAGE = `usage: sluice lake <action> <table-directory> [options]

Works on a Delta table written by the delta sink (the directory holding _delta_log), safely while
the pipeline writes it; files also on an Iceberg table of the iceberg sink (its directory, or for
a JDBC-catalog table its current metadata.json file).

  files     the Parquet data files of the latest version, or of an earlier one (time travel)
              --version <n>   the Delta table as of version n (default: the latest)
              --snapshot <id> the Iceberg table as of snapshot id (default: the current one)
              --json          {"version", "partitionColumns", "files": [{"path", "partitionValues"}]}
              --sql <name>    a DuckDB statement creating view <name> over the files (Delta:
                              partition columns restored; Iceberg: equality deletes applied),
                              instead of the list
  changes   the Change Data Feed of versions --from <n> to --to <m> (default: the latest): every
            row inserted, deleted or updated (update_preimage, update_postimage), with
            _change_type, _commit_version and _commit_timestamp
              --sql <name>    a DuckDB view over the changes (default: rows as JSON lines)
  optimize  compacts each partition's files smaller than --target-size (default 128MiB) into
            files of about that size, in one commit that changes no rows
              --target-size <bytes|KiB|MiB|GiB>   --min-files <n> (default 2)
  vacuum    deletes files the latest version does not use, removed (or never committed) more
            than the retention ago; live files are never deleted
              --retain <hours>        default: the table's delta.deletedFileRetentionDuration (a week)
              --dry-run               list what would be deleted, delete nothing
              --no-retention-check    allow a retention shorter than the table's
  expire    (Iceberg) drops snapshots older than --older-than <hours> (default 120) from the
            table's metadata, keeping the current one and the newest --retain-last <n> (default 1),
            then deletes the files only they reached
              --dry-run               list what would be deleted, change nothing

examples:
  sluice lake files /data/lake/bronze/public_orders --version 12 --sql orders_v12 | duckdb wh.db
  sluice lake files /data/warehouse/silver/public/orders --sql orders | duckdb wh.db
  sluice lake changes /data/lake/silver/public_orders --from 5 --sql orders_changes | duckdb wh.db
  sluice lake optimize /data/lake/silver/public_orders --target-size 256MiB
  sluice lake vacuum /data/lake/silver/public_orders --retain 168 --dry-run
  sluice lake expire /data/warehouse/bronze/public/orders --older-than 24 --retain-last 10
`;

const VIEW = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/;
const UNIT: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1 << 20, GiB: 1 << 30 };

function versionArg(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 0)) throw new UsageError(`${flag} takes a version number (0, 1, …), not ${JSON.stringify(v)}`);
  return n;
}

function viewArg(v: string | undefined): string | undefined {
  if (v !== undefined && !VIEW.test(v)) throw new UsageError(`--sql takes a view name of letters, digits and _ (got ${JSON.stringify(v)})`);
  return v;
}

async function duck() {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const conn = await (await DuckDBInstance.create(':memory:')).connect();
  await conn.run(`SET TimeZone = 'UTC'`);
  return conn;
}

async function files(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { version: { type: 'string' }, snapshot: { type: 'string' }, json: { type: 'boolean', default: false }, sql: { type: 'string' } } });
  const dir = tableArg(positionals);
  const { isIceberg } = await import('../sinks/iceberg/view.ts');
  if (await isIceberg(dir)) return icebergFiles(dir, values);
  if (values.snapshot !== undefined) throw new UsageError('--snapshot is for Iceberg tables; a Delta table takes --version');
  const version = versionArg(values.version, '--version', Infinity);
  const view = viewArg(values.sql);
  const log = await readTableLog(dir, version);
  if (log.version < 0) return noTable(dir);
  if (version !== Infinity && log.version !== version) {
    process.stderr.write(`sluice lake: the Delta table at ${dir} has versions 0 to ${log.version}, not ${version}\n`);
    return 1;
  }
  const live = [...log.files.values()].map((f) => ({ path: join(dir, decodeURIComponent(f.path)), partitionValues: f.partitionValues }));
  if (values.json) process.stdout.write(JSON.stringify({ version: log.version, partitionColumns: log.metaData?.partitionColumns ?? [], files: live }) + '\n');
  else if (view !== undefined) {
    // A version without files (a truncate's commit … or none yet) reads as no rows.
    const sql = filesSql(dir, log);
    process.stdout.write(sql ? `CREATE OR REPLACE VIEW ${view} AS ${sql};\n` : `-- version ${log.version} of ${dir} has no data files\n`);
  } else {
    process.stderr.write(`version ${log.version}: ${live.length} data file${live.length === 1 ? '' : 's'}\n`);
    for (const f of live) process.stdout.write(f.path + '\n');
  }
  return 0;
}

/** `files` of an Iceberg table (a directory of the filesystem catalog, or a metadata file): its snapshot's rows, equality deletes applied. */
async function icebergFiles(target: string, values: { version?: string; snapshot?: string; json?: boolean; sql?: string }): Promise<number> {
  if (values.version !== undefined) throw new UsageError('--version is for Delta tables; an Iceberg table takes --snapshot <snapshot id>');
  const view = viewArg(values.sql);
  const snapshot = values.snapshot === undefined ? undefined : Number(values.snapshot);
  if (snapshot !== undefined && !Number.isSafeInteger(snapshot)) throw new UsageError(`--snapshot takes a snapshot id (a number), not ${JSON.stringify(values.snapshot)}`);
  const { loadMetadata, snapshotSql } = await import('../sinks/iceberg/view.ts');
  const { metadata } = await loadMetadata(target);
  if (metadata['current-snapshot-id'] < 0 && snapshot === undefined) {
    process.stderr.write(`sluice lake: the Iceberg table at ${target} has no snapshot yet\n`);
    return 1;
  }
  const r = await snapshotSql(metadata, snapshot);
  if (values.json) process.stdout.write(JSON.stringify({ snapshotId: r.snapshotId, files: r.files }) + '\n');
  else if (view !== undefined) process.stdout.write(r.sql ? `CREATE OR REPLACE VIEW ${view} AS ${r.sql};\n` : `-- snapshot ${r.snapshotId} of ${target} has no data files\n`);
  else {
    process.stderr.write(`snapshot ${r.snapshotId}: ${r.files.length} data file${r.files.length === 1 ? '' : 's'}\n`);
    for (const f of r.files) process.stdout.write(f + '\n');
  }
  return 0;
}

async function changes(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { from: { type: 'string' }, to: { type: 'string' }, sql: { type: 'string' } } });
  const dir = await deltaTableArg('changes', positionals);
  if (values.from === undefined) throw new UsageError('changes needs --from <version>: the first version whose changes to list');
  const from = versionArg(values.from, '--from', 0);
  const to = versionArg(values.to, '--to', Infinity);
  if (to < from) throw new UsageError(`--to ${to} is before --from ${from}`);
  const view = viewArg(values.sql);
  const feed = await changeFeed(dir, from, to);
  const sql = feedSql(feed);
  if (view !== undefined) {
    process.stdout.write(sql ? `CREATE OR REPLACE VIEW ${view} AS ${sql};\n` : `-- versions ${from} to ${feed.last} of ${dir} changed no rows\n`);
    return 0;
  }
  if (!sql) return 0;
  const conn = await duck();
  try {
    const reader = await conn.runAndReadAll(`SELECT * FROM (${sql}) ORDER BY _commit_version`);
    for (const row of reader.getRowObjectsJson()) process.stdout.write(JSON.stringify(row) + '\n');
  } finally {
    conn.closeSync();
  }
  return 0;
}

async function optimizeCmd(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { 'target-size': { type: 'string' }, 'min-files': { type: 'string' } } });
  const dir = await deltaTableArg('optimize', positionals);
  let targetBytes = 128 << 20;
  if (values['target-size'] !== undefined) {
    const m = SIZE.exec(values['target-size'].trim());
    if (!m) throw new UsageError(`--target-size takes a size such as 134217728, 64MiB or 1GiB (got ${JSON.stringify(values['target-size'])})`);
    targetBytes = Math.round(Number(m[1]) * UNIT[m[2] ?? 'B']);
  }
  const minFiles = values['min-files'] === undefined ? 2 : Number(values['min-files']);
  if (!(Number.isInteger(minFiles) && minFiles >= 2)) throw new UsageError(`--min-files takes a whole number of 2 or more (got ${JSON.stringify(values['min-files'])})`);
  const { optimize } = await import('../sinks/delta/maintenance.ts');
  const conn = await duck();
  try {
    const r = await optimize(conn, dir, { targetBytes, minFiles });
    process.stdout.write(r.version === null ? `nothing to compact in ${dir}\n` : `version ${r.version}: ${r.removed} files compacted into ${r.added} (${r.rows} rows)\n`);
  } finally {
    conn.closeSync();
  }
  return 0;
}

async function vacuumCmd(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { retain: { type: 'string' }, 'dry-run': { type: 'boolean', default: false }, 'no-retention-check': { type: 'boolean', default: false } } });
  const dir = await deltaTableArg('vacuum', positionals);
  let retainMs: number | undefined;
  if (values.retain !== undefined) {
    const h = Number(values.retain);
    if (!(values.retain.trim() !== '' && Number.isFinite(h) && h >= 0)) throw new UsageError(`--retain takes a number of hours, such as 168 (got ${JSON.stringify(values.retain)})`);
    retainMs = h * 3_600_000;
  }
  const { vacuum } = await import('../sinks/delta/maintenance.ts');
  const r = await vacuum(dir, { retainMs, dryRun: values['dry-run'], check: !values['no-retention-check'] });
  for (const f of r.files) process.stdout.write(f + '\n');
  process.stderr.write(`${values['dry-run'] ? 'would delete' : 'deleted'} ${r.files.length} file${r.files.length === 1 ? '' : 's'} (${r.bytes} bytes) unused for more than ${r.retentionMs / 3_600_000} h\n`);
  return 0;
}

async function expireCmd(rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { 'older-than': { type: 'string' }, 'retain-last': { type: 'string' }, 'dry-run': { type: 'boolean', default: false } } });
  const dir = tableArg(positionals);
  const { isIceberg } = await import('../sinks/iceberg/view.ts');
  if (dir.endsWith('.metadata.json')) throw new UsageError('expire commits through the filesystem catalog: give the table directory (a JDBC-catalog table is not expired by this command yet)');
  if (!(await isIceberg(dir))) throw new UsageError(`expire works on Iceberg tables; ${dir} is not one (a Delta table's old files go with vacuum)`);
  const hours = values['older-than'] === undefined ? 120 : Number(values['older-than']);
  if (!(Number.isFinite(hours) && hours >= 0) || values['older-than']?.trim() === '') throw new UsageError(`--older-than takes a number of hours, such as 120 (got ${JSON.stringify(values['older-than'])})`);
  const retainLast = values['retain-last'] === undefined ? 1 : Number(values['retain-last']);
  if (!(Number.isInteger(retainLast) && retainLast >= 1)) throw new UsageError(`--retain-last takes a whole number of 1 or more (got ${JSON.stringify(values['retain-last'])})`);
  const { expireSnapshots } = await import('../sinks/iceberg/expire.ts');
  const r = await expireSnapshots(dir, { olderThanMs: hours * 3_600_000, retainLast, dryRun: values['dry-run'] });
  for (const f of r.files) process.stdout.write(f + '\n');
  process.stderr.write(
    r.expired.length
      ? `${values['dry-run'] ? 'would expire' : `version ${r.version}: expired`} ${r.expired.length} snapshot${r.expired.length === 1 ? '' : 's'} (kept ${r.kept}), ${values['dry-run'] ? 'would delete' : 'deleted'} ${r.files.length} file${r.files.length === 1 ? '' : 's'} only they reached\n`
      : `no snapshot older than ${hours} h beyond the newest ${retainLast}: nothing to expire\n`,
  );
  return 0;
}

function tableArg(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('give one table directory (the directory holding _delta_log)');
  return resolve(positionals[0]);
}

/** The table directory of a Delta-only action; an Iceberg table is refused with what it supports. */
async function deltaTableArg(action: string, positionals: string[]): Promise<string> {
  const dir = tableArg(positionals);
  const { isIceberg } = await import('../sinks/iceberg/view.ts');
  if (await isIceberg(dir)) throw new UsageError(`${action} works on Delta tables; ${dir} is an Iceberg table (lake files reads its snapshots)`);
  return dir;
}

function noTable(dir: string): number {
  process.stderr.write(`sluice lake: ${dir} holds no Delta table (no _delta_log commits): give the directory of a table under the delta sink's path\n`);
  return 1;
}

const ACTIONS: Record<string, (rest: string[]) => Promise<number>> = { files, changes, optimize: optimizeCmd, vacuum: vacuumCmd, expire: expireCmd };

export const lakeCommand: Command = {
  summary: "lake tables: files at a version, Delta's change feed, optimize, vacuum, Iceberg snapshot expiry",
  usage: USAGE,
  async run(args) {
    const [action, ...rest] = args;
    const run = action && Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (!run) throw new UsageError(action ? `unknown action ${action}: use ${Object.keys(ACTIONS).join(', ')}` : `give an action: ${Object.keys(ACTIONS).join(', ')}`);
    return run(rest);
  },
};
