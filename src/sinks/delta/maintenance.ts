/**
 * Table maintenance for the Delta tables the sink writes, run by `sluice lake optimize|vacuum`,
 * safely beside a running pipeline:
 *
 * - optimize: small files of each partition are compacted into files of about a target size, in
 *   one commit that removes the small ones and adds the new ones with `dataChange: false` (the
 *   rows do not change, so change-feed and streaming readers skip it). A commit the sink made
 *   meanwhile moves optimize onto the new version when its input files are all still live, and
 *   stops it otherwise (nothing visible changed; run it again).
 * - vacuum: deletes files no longer in the latest version: removed files whose removal is older
 *   than the retention, and files no commit references (a write killed before its commit) or
 *   change-data files, older than the retention. Live files are never deleted. The retention may
 *   not be shorter than the table's (`delta.deletedFileRetentionDuration`, a week by default)
 *   unless the check is turned off, as time travel to the versions within it needs their files.
 */
import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { SLUICE_VERSION } from '../../core/version.ts';
import { deltaError } from './errors.ts';
import { readFilesSql, toUri, writeFiles, type WrittenFile } from './files.ts';
import { commit, readTableLog, retentionMs, type AddAction, type TableLog } from './log.ts';

export interface OptimizeResult {
  /** The version optimize committed (null: nothing to compact). */
  version: number | null;
  removed: number;
  added: number;
  rows: number;
}

const tupleOf = (f: AddAction, cols: string[]) => JSON.stringify(cols.map((c) => f.partitionValues[c] ?? null));

/** Compacts the files smaller than `targetBytes` of each partition that has at least `minFiles` of them. */
export async function optimize(conn: DuckDBConnection, dir: string, opts: { targetBytes: number; minFiles: number; attempts?: number }): Promise<OptimizeResult> {
  let log = await mustRead(dir);
  const cols = log.metaData!.partitionColumns;
  const groups = new Map<string, AddAction[]>();
  for (const f of log.files.values()) {
    if (f.size >= opts.targetBytes) continue;
    const k = tupleOf(f, cols);
    groups.set(k, [...(groups.get(k) ?? []), f]);
  }
  // Bins of files up to the target size, per partition.
  const bins: AddAction[][] = [];
  for (const files of groups.values()) {
    if (files.length < opts.minFiles) continue;
    let bin: AddAction[] = [];
    let size = 0;
    for (const f of files.sort((a, b) => a.modificationTime - b.modificationTime)) {
      if (bin.length && size + f.size > opts.targetBytes) {
        bins.push(bin);
        bin = [];
        size = 0;
      }
      bin.push(f);
      size += f.size;
    }
    bins.push(bin);
  }
  const work = bins.filter((b) => b.length > 1);
  if (!work.length) return { version: null, removed: 0, added: 0, rows: 0 };
  const written: WrittenFile[] = [];
  const inputs = work.flat();
  try {
    for (const bin of work) written.push(...(await writeFiles(conn, await readFilesSql(conn, bin, log.fields, cols, dir), log.fields, cols, dir, { prefix: `part-${String(log.version + 1).padStart(5, '0')}` })));
  } catch (e) {
    await removeWritten(dir, written);
    throw e;
  }
  const rows = written.reduce((n, w) => n + w.rows, 0);
  const inRows = inputs.reduce((n, f) => n + numRecords(f), 0);
  if (inRows >= 0 && rows !== inRows) {
    await removeWritten(dir, written);
    throw deltaError('DELTA_LOG_UNREADABLE', `optimize of ${dir} read ${rows} rows from files whose stats say ${inRows}: nothing was committed; the table's files do not match its log`);
  }
  for (let attempt = 0; ; attempt++) {
    const now = Date.now();
    const actions: object[] = [
      { commitInfo: { timestamp: now, operation: 'OPTIMIZE', operationParameters: { predicate: '[]', targetSize: String(opts.targetBytes) }, isBlindAppend: false, engineInfo: `Sluice/${SLUICE_VERSION}` } },
      ...inputs.map((f) => ({ remove: { path: f.path, deletionTimestamp: now, dataChange: false, extendedFileMetadata: true, partitionValues: f.partitionValues, size: f.size } })),
      ...written.map((w) => ({ add: { path: w.path, partitionValues: w.partitionValues, size: w.size, modificationTime: now, dataChange: false, stats: JSON.stringify({ numRecords: w.rows }) } })),
    ];
    try {
      await commit(dir, log.version + 1, actions);
      return { version: log.version + 1, removed: inputs.length, added: written.length, rows };
    } catch (e) {
      if ((e as { code?: string }).code !== 'DELTA_CONFLICT' || attempt >= (opts.attempts ?? 20)) {
        await removeWritten(dir, written);
        throw e;
      }
      // Another writer committed first: go on top of it if every input file is still live.
      log = await readTableLog(dir);
      const gone = inputs.filter((f) => !log.files.has(f.path));
      if (gone.length) {
        await removeWritten(dir, written);
        throw deltaError('DELTA_CONFLICT', `optimize of ${dir}: version ${log.version} (another writer) removed ${gone.length} of the files being compacted, e.g. ${gone[0].path}; nothing was committed. Run optimize again`);
      }
    }
  }
}

const numRecords = (f: AddAction): number => {
  try {
    return f.stats ? Number(JSON.parse(f.stats).numRecords ?? -Infinity) : -Infinity;
  } catch {
    return -Infinity;
  }
};

async function removeWritten(dir: string, written: WrittenFile[]): Promise<void> {
  for (const w of written) await rm(join(dir, decodeURIComponent(w.path)), { force: true });
}

async function mustRead(dir: string): Promise<TableLog> {
  const log = await readTableLog(dir);
  if (log.version < 0 || !log.metaData) throw deltaError('DELTA_LOG_UNREADABLE', `${dir} holds no Delta table (no _delta_log commits): give the directory of a table under the delta sink's path`);
  return log;
}

export interface VacuumResult {
  /** Files deleted (or, on a dry run, that would be), relative to the table. */
  files: string[];
  bytes: number;
  retentionMs: number;
}

/**
 * Deletes the files of the table at `dir` that its latest version does not reference and that
 * are older than `retainMs` (removed that long ago, or written that long ago and never or no
 * longer referenced). `check`: refuse a retention shorter than the table's.
 */
export async function vacuum(dir: string, opts: { retainMs?: number; dryRun: boolean; check: boolean; now?: number }): Promise<VacuumResult> {
  const log = await mustRead(dir);
  const tableRetention = retentionMs(log);
  const retain = opts.retainMs ?? tableRetention;
  if (opts.check && retain < tableRetention) {
    throw deltaError('DELTA_RETENTION', `vacuum of ${dir} with a retention of ${hours(retain)} would delete files that time travel to versions of the last ${hours(tableRetention)} (the table's delta.deletedFileRetentionDuration, a week by default) still reads, and files a running writer has not committed yet. Keep --retain at ${hours(tableRetention)} or more, or turn the check off with --no-retention-check when nothing writes the table and no reader needs those versions`);
  }
  const now = opts.now ?? Date.now();
  const live = new Set([...log.files.keys()].map((p) => decodeURIComponent(p)));
  const out: VacuumResult = { files: [], bytes: 0, retentionMs: retain };
  const walk = async (d: string): Promise<boolean> => {
    let empty = true;
    for (const e of await readdir(d, { withFileTypes: true })) {
      const abs = join(d, e.name);
      const rel = relative(dir, abs).split(sep).join('/');
      // The log and hidden files are not data; `_change_data` is.
      if ((e.name.startsWith('_') || e.name.startsWith('.')) && !(d === dir && e.name === '_change_data')) {
        empty = false;
        continue;
      }
      if (e.isDirectory()) {
        if ((await walk(abs)) && !opts.dryRun) await rmdir(abs).catch(() => {});
        else empty = false;
        continue;
      }
      if (live.has(rel)) {
        empty = false;
        continue;
      }
      const s = await stat(abs);
      const removedAt = log.removed.get(toUri(rel))?.deletionTimestamp ?? log.removed.get(rel)?.deletionTimestamp;
      const since = Math.max(s.mtimeMs, removedAt ?? 0);
      if (now - since < retain) {
        empty = false;
        continue;
      }
      out.files.push(rel);
      out.bytes += s.size;
      if (!opts.dryRun) await rm(abs, { force: true });
      else empty = false;
    }
    return empty;
  };
  await walk(dir);
  out.files.sort();
  return out;
}

const hours = (ms: number) => `${Math.round((ms / 3_600_000) * 100) / 100} h`;
