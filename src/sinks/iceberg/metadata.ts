/**
 * Iceberg table metadata (the table spec's `metadata.json`, format version 2) and the filesystem
 * catalog the sink commits it through, laid out as Iceberg's Hadoop tables are: a table directory
 * with `metadata/v<N>.metadata.json` files and `metadata/version-hint.text` naming the newest.
 *
 * A commit is put-if-absent: the next version's file is written under a temporary name and linked
 * to `v<N+1>.metadata.json`, which fails if another writer made that version first. The hint is
 * rewritten after (readers and the sink also look for newer versions than it names), so a kill
 * between the two loses nothing.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { icebergError } from './errors.ts';

export type IcebergType = string | { type: 'list'; 'element-id': number; element: IcebergType; 'element-required': boolean };

export interface SchemaField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergType;
}

export interface TableSchema {
  type: 'struct';
  'schema-id': number;
  fields: SchemaField[];
}

export interface PartitionField {
  'source-id': number;
  'field-id': number;
  name: string;
  transform: string;
}

export interface PartitionSpec {
  'spec-id': number;
  fields: PartitionField[];
}

export interface Snapshot {
  'snapshot-id': number;
  'parent-snapshot-id'?: number;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  summary: Record<string, string> & { operation: string };
  'schema-id': number;
}

export interface TableMetadata {
  'format-version': 2;
  'table-uuid': string;
  location: string;
  'last-sequence-number': number;
  'last-updated-ms': number;
  'last-column-id': number;
  'current-schema-id': number;
  schemas: TableSchema[];
  'default-spec-id': number;
  'partition-specs': PartitionSpec[];
  'last-partition-id': number;
  'default-sort-order-id': number;
  'sort-orders': { 'order-id': number; fields: unknown[] }[];
  properties: Record<string, string>;
  'current-snapshot-id': number;
  refs: Record<string, { 'snapshot-id': number; type: 'branch' | 'tag' }>;
  snapshots: Snapshot[];
  'snapshot-log': { 'timestamp-ms': number; 'snapshot-id': number }[];
  'metadata-log': { 'timestamp-ms': number; 'metadata-file': string }[];
}

const VERSION = /^v(\d+)\.metadata\.json$/;

/** The table's newest metadata and its version in the filesystem catalog (null: no table yet). */
export async function readCurrent(dir: string): Promise<{ version: number; metadata: TableMetadata; file: string } | null> {
  let names: string[];
  try {
    names = await readdir(join(dir, 'metadata'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const versions = names
    .map((n) => VERSION.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  if (!versions.length) return null;
  const version = Math.max(...versions);
  const file = join(dir, 'metadata', `v${version}.metadata.json`);
  let metadata: TableMetadata;
  try {
    metadata = JSON.parse(await readFile(file, 'utf8')) as TableMetadata;
  } catch (e) {
    throw icebergError('ICEBERG_METADATA_UNREADABLE', `${file} is not Iceberg table metadata (${(e as Error).message}): the table is damaged, or not one this sink can continue`);
  }
  if (metadata['format-version'] !== 2) throw icebergError('ICEBERG_TABLE_FOREIGN', `${file} is an Iceberg table of format version ${metadata['format-version']}: this sink writes format version 2 tables only. Point the sink's path or tableName elsewhere`);
  return { version, metadata, file };
}

/**
 * Commits `metadata` as version `version` of the table at `dir`: put-if-absent, so another writer
 * that committed that version first makes it fail with ICEBERG_CONFLICT. Returns the file.
 */
export async function commitMetadata(dir: string, version: number, metadata: TableMetadata): Promise<string> {
  const metaDir = join(dir, 'metadata');
  await mkdir(metaDir, { recursive: true });
  const file = join(metaDir, `v${version}.metadata.json`);
  const tmp = join(metaDir, `.v${version}.metadata.json.${randomUUID()}.tmp`);
  await writeSynced(tmp, JSON.stringify(metadata));
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw icebergError('ICEBERG_CONFLICT', `version ${version} of the Iceberg table at ${dir} was committed by another writer: this batch is not applied (the sink reads the table again and retries)`);
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDir(metaDir);
  // The hint, for readers that start from it (they look for newer versions too).
  const hint = join(metaDir, `.version-hint.${randomUUID()}.tmp`);
  await writeSynced(hint, String(version));
  await rename(hint, join(metaDir, 'version-hint.text'));
  return file;
}

/** Writes `data` to a new file at `path` and syncs it. */
export async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
