/**
 * An Iceberg table's snapshot as DuckDB SQL, for `sluice lake files` (DuckDB's iceberg extension
 * cannot be installed here): the snapshot's live data files, each with its data sequence number,
 * less the rows an equality-delete file of a higher sequence number matches on its columns (the
 * spec's rule for applying deletes), and columns a file predates read as null.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { duckdbDialect } from '../duckdb/dialect.ts';
import { readCurrent, type TableMetadata } from './metadata.ts';
import { readManifest, readManifestList } from './manifest.ts';
import { icebergError } from './errors.ts';
import { duckOf } from './types.ts';

const { qi, ql } = duckdbDialect;

/** The metadata of `target`: a table directory (its newest `vN.metadata.json`) or a metadata file itself (a JDBC catalog's `metadata_location`). */
export async function loadMetadata(target: string): Promise<{ metadata: TableMetadata; file: string }> {
  if (target.endsWith('.metadata.json')) return { metadata: JSON.parse(await readFile(target, 'utf8')) as TableMetadata, file: target };
  const cur = await readCurrent(target);
  if (!cur) throw icebergError('ICEBERG_METADATA_UNREADABLE', `${target} holds no Iceberg table of the filesystem catalog (no metadata/v<N>.metadata.json): give the table's directory, or for a JDBC-catalog table its metadata_location file`);
  return cur;
}

/** Whether `dir` looks like an Iceberg table (a `metadata/` with metadata files) or is a metadata file. */
export async function isIceberg(target: string): Promise<boolean> {
  if (target.endsWith('.metadata.json')) return true;
  try {
    return (await readdir(join(target, 'metadata'))).some((n) => n.endsWith('.metadata.json'));
  } catch {
    return false;
  }
}

/** The snapshot's rows as SQL (null: no data files); `snapshotId` default the current one. */
export async function snapshotSql(metadata: TableMetadata, snapshotId?: number): Promise<{ snapshotId: number; sql: string | null; files: string[] }> {
  const id = snapshotId ?? metadata['current-snapshot-id'];
  const snap = metadata.snapshots.find((s) => s['snapshot-id'] === id);
  if (!snap) throw icebergError('ICEBERG_METADATA_UNREADABLE', `the table has no snapshot ${id}: its snapshots are ${metadata.snapshots.map((s) => s['snapshot-id']).join(', ') || 'none'}`);
  const schema = metadata.schemas.find((s) => s['schema-id'] === snap['schema-id']) ?? metadata.schemas.at(-1)!;
  const data: { path: string; sequence: number }[] = [];
  const deletes: { path: string; sequence: number; ids: number[] }[] = [];
  for (const m of await readManifestList(snap['manifest-list'])) {
    for (const f of await readManifest(m)) {
      if (f.content === 0) data.push({ path: f.path, sequence: f.sequence });
      else if (f.content === 2) deletes.push({ path: f.path, sequence: f.sequence, ids: f.equalityIds ?? [] });
      else throw icebergError('ICEBERG_TABLE_FOREIGN', `${f.path} is a position-delete file, which this view does not apply (the sink writes none)`);
    }
  }
  if (!data.length) return { snapshotId: id, sql: null, files: [] };
  const cols = schema.fields.map((f) => qi(f.name)).join(', ');
  // Every column typed, so that one no file has yet still reads (as null).
  const typed = `SELECT ${schema.fields.map((f) => `NULL::${duckOf(f.type)} AS ${qi(f.name)}`).join(', ')}, NULL::BIGINT AS __seq WHERE false`;
  const read = (files: { path: string; sequence: number }[]) => [typed, ...files.map((f) => `SELECT *, ${f.sequence}::BIGINT AS __seq FROM read_parquet(${ql(f.path)}, hive_partitioning = false)`)].join(' UNION ALL BY NAME ');
  let sql = `SELECT ${cols} FROM (${read(data)}) d`;
  const byIds = new Map<string, typeof deletes>();
  for (const d of deletes) byIds.set(d.ids.join(','), [...(byIds.get(d.ids.join(',')) ?? []), d]);
  const conds: string[] = [];
  for (const [ids, files] of byIds) {
    const names = ids.split(',').map((i) => schema.fields.find((f) => f.id === Number(i))!.name);
    conds.push(`NOT EXISTS (SELECT 1 FROM (${read(files)}) x WHERE x.__seq > d.__seq AND ${names.map((n) => `x.${qi(n)} IS NOT DISTINCT FROM d.${qi(n)}`).join(' AND ')})`);
  }
  if (conds.length) sql += ` WHERE ${conds.join(' AND ')}`;
  return { snapshotId: id, sql, files: data.map((f) => f.path) };
}
