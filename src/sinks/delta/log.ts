/**
 * A Delta table's transaction log (`_delta_log/`), as Delta's PROTOCOL.md defines it, read and
 * written by the Delta sink: commits are newline-delimited JSON files `<version, 20 digits>.json`
 * of actions (protocol, metaData, add, remove, txn, commitInfo). A commit is made atomic and
 * exclusive the way the protocol asks of a file system: the file is written under a temporary name
 * and linked to its version's name, which fails if that name exists (put-if-absent), so two
 * writers can never both commit one version.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { deltaError } from './errors.ts';

/** A field of a Delta schema (`schemaString`). */
export interface DeltaField {
  name: string;
  type: string | { type: 'array'; elementType: DeltaField['type']; containsNull: boolean };
  nullable: boolean;
  metadata: Record<string, unknown>;
}

export interface AddAction {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string;
}

export interface RemoveAction {
  path: string;
  deletionTimestamp: number;
  dataChange: boolean;
  extendedFileMetadata?: boolean;
  partitionValues?: Record<string, string | null>;
  size?: number;
}

export interface Protocol {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export type MetaData = NonNullable<TableLog['metaData']>;

/** What the sink needs of a table's log: where it stands, its schema and metadata, and the writers' transaction versions. */
export interface TableLog {
  /** The last committed version (-1: no commit yet). */
  version: number;
  /** The metaData action in force (null before the first commit). */
  metaData: { id: string; schemaString: string; partitionColumns: string[]; configuration: Record<string, string>; createdTime?: number; format: { provider: string; options: Record<string, string> } } | null;
  fields: DeltaField[];
  /** appId → version of the last `txn` action of each application. */
  txns: Map<string, number>;
  /** Data files of the current version, by path. */
  files: Map<string, AddAction>;
  /** Files removed and not added again (tombstones), by path: what vacuum may delete once their retention passed. */
  removed: Map<string, RemoveAction>;
  /** The protocol action in force (null before the first commit). */
  protocol: Protocol | null;
}

export const commitName = (v: number) => `${String(v).padStart(20, '0')}.json`;
const COMMIT = /^(\d{20})\.json$/;

/** Reads a table's log from its first commit up to `upTo` (default: the last; a table without `_delta_log` is an empty one). */
export async function readTableLog(dir: string, upTo = Infinity): Promise<TableLog> {
  const logDir = join(dir, '_delta_log');
  const out: TableLog = { version: -1, metaData: null, fields: [], txns: new Map(), files: new Map(), removed: new Map(), protocol: null };
  let names: string[];
  try {
    names = await readdir(logDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  const versions = names
    .map((n) => COMMIT.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  if (versions.length && versions[0] !== 0) throw deltaError('DELTA_LOG_UNREADABLE', `the Delta table at ${dir} starts at version ${versions[0]} (a checkpoint this sink does not read, or a log cleaned up): point the sink at a table it wrote, or at an empty directory`);
  for (const [i, v] of versions.entries()) {
    if (v > upTo) break;
    if (v !== i) throw deltaError('DELTA_LOG_UNREADABLE', `the Delta log of ${dir} lacks version ${i} (it has ${v}): the log is damaged`);
    const text = await readFile(join(logDir, commitName(v)), 'utf8');
    for (const [n, line] of text.split('\n').entries()) {
      if (!line.trim()) continue;
      let a: Record<string, any>;
      try {
        a = JSON.parse(line);
      } catch {
        throw deltaError('DELTA_LOG_UNREADABLE', `line ${n + 1} of ${join(logDir, commitName(v))} is not JSON: the log is damaged`);
      }
      if (a.metaData) {
        out.metaData = a.metaData;
        out.fields = (JSON.parse(a.metaData.schemaString) as { fields: DeltaField[] }).fields;
      } else if (a.txn) out.txns.set(a.txn.appId, Number(a.txn.version));
      else if (a.add) {
        out.files.set(a.add.path, a.add);
        out.removed.delete(a.add.path);
      } else if (a.remove) {
        out.files.delete(a.remove.path);
        out.removed.set(a.remove.path, a.remove);
      } else if (a.protocol) out.protocol = a.protocol;
    }
    out.version = v;
  }
  return out;
}

/**
 * Commits `actions` as version `version` of the table at `dir`: written to a temporary file,
 * synced, then linked to the version's name. Another writer that committed that version first
 * makes it fail with DELTA_CONFLICT (nothing of this commit is visible then).
 */
export async function commit(dir: string, version: number, actions: object[]): Promise<void> {
  const logDir = join(dir, '_delta_log');
  await mkdir(logDir, { recursive: true });
  const tmp = join(logDir, `.${commitName(version)}.${randomUUID()}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(actions.map((a) => JSON.stringify(a)).join('\n') + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, join(logDir, commitName(version)));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw deltaError('DELTA_CONFLICT', `version ${version} of the Delta table at ${dir} was committed by another writer: its commit is not this sink's, so this batch is not applied (the sink reads the table's log again and retries)`);
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  // The commit's directory entry is durable before the batch counts as applied.
  const d = await open(logDir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

const DAY_MS = 86_400_000;
const UNIT_MS: Record<string, number> = { millisecond: 1, second: 1000, minute: 60_000, hour: 3_600_000, day: DAY_MS, week: 7 * DAY_MS };

/** How long removed files are kept for time travel: the table's `delta.deletedFileRetentionDuration` (`interval 7 days`), by default a week. */
export function retentionMs(log: TableLog): number {
  const v = log.metaData?.configuration['delta.deletedFileRetentionDuration'];
  const m = v ? /^\s*interval\s+(\d+)\s+(millisecond|second|minute|hour|day|week)s?\s*$/i.exec(v) : null;
  return m ? Number(m[1]) * UNIT_MS[m[2].toLowerCase()] : 7 * DAY_MS;
}

/** Whether the table's Change Data Feed is on. */
export const cdfOn = (log: TableLog): boolean => log.metaData?.configuration['delta.enableChangeDataFeed'] === 'true';
