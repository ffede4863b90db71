/**
 * Snapshot expiry for the Iceberg tables the sink writes (`sluice lake expire`): snapshots older
 * than a cut-off are dropped from the table's metadata (the current one and the newest
 * `retainLast` always stay), in one commit through the filesystem catalog, and then the files
 * only those snapshots reached are deleted: their manifest lists, the manifests no kept snapshot
 * lists, and the data and delete files no kept manifest lists. Only files an expired snapshot
 * referenced are candidates, so files a running sink has written and not yet committed are never
 * touched; a sink commit that races the expiry fails with ICEBERG_CONFLICT and is retried.
 */
import { rm } from 'node:fs/promises';
import { icebergError } from './errors.ts';
import { readManifest, readManifestList } from './manifest.ts';
import { commitMetadata, readCurrent, type Snapshot, type TableMetadata } from './metadata.ts';

export interface ExpireResult {
  /** The snapshots dropped. */
  expired: number[];
  kept: number;
  /** Files deleted (or, on a dry run, that would be). */
  files: string[];
  /** The metadata version committed (null: dry run, or nothing to expire). */
  version: number | null;
}

/** The files a snapshot reaches: its manifest list, its manifests, their files. */
async function reach(snaps: Snapshot[]): Promise<Set<string>> {
  const out = new Set<string>();
  const seen = new Set<string>();
  for (const s of snaps) {
    out.add(s['manifest-list']);
    for (const m of await readManifestList(s['manifest-list'])) {
      out.add(m.manifest_path);
      if (seen.has(m.manifest_path)) continue;
      seen.add(m.manifest_path);
      for (const f of await readManifest(m)) out.add(f.path);
    }
  }
  return out;
}

export async function expireSnapshots(dir: string, opts: { olderThanMs: number; retainLast: number; dryRun: boolean; now?: number }): Promise<ExpireResult> {
  const cur = await readCurrent(dir);
  if (!cur) throw icebergError('ICEBERG_METADATA_UNREADABLE', `${dir} holds no Iceberg table of the filesystem catalog (no metadata/v<N>.metadata.json): give the directory of a table the iceberg sink wrote`);
  const m = cur.metadata;
  const cutoff = (opts.now ?? Date.now()) - opts.olderThanMs;
  const bySeq = [...m.snapshots].sort((a, b) => b['sequence-number'] - a['sequence-number']);
  const keep = new Set<number>([m['current-snapshot-id'], ...Object.values(m.refs).map((r) => r['snapshot-id']), ...bySeq.slice(0, Math.max(1, opts.retainLast)).map((s) => s['snapshot-id'])]);
  for (const s of m.snapshots) if (s['timestamp-ms'] >= cutoff) keep.add(s['snapshot-id']);
  const kept = m.snapshots.filter((s) => keep.has(s['snapshot-id']));
  const gone = m.snapshots.filter((s) => !keep.has(s['snapshot-id']));
  if (!gone.length) return { expired: [], kept: kept.length, files: [], version: null };
  const keptFiles = await reach(kept);
  const candidates = await reach(gone);
  const files = [...candidates].filter((f) => !keptFiles.has(f)).sort();
  if (opts.dryRun) return { expired: gone.map((s) => s['snapshot-id']), kept: kept.length, files, version: null };
  const next: TableMetadata = {
    ...m,
    'last-updated-ms': Date.now(),
    snapshots: kept,
    'snapshot-log': m['snapshot-log'].filter((e) => keep.has(e['snapshot-id'])),
    'metadata-log': [...m['metadata-log'], { 'timestamp-ms': m['last-updated-ms'], 'metadata-file': cur.file }].slice(-100),
  };
  try {
    await commitMetadata(dir, cur.version + 1, next);
  } catch (e) {
    if ((e as { code?: string }).code === 'ICEBERG_CONFLICT') throw icebergError('ICEBERG_CONFLICT', `expiring snapshots of ${dir}: another writer committed version ${cur.version + 1} first; nothing was expired. Run it again`);
    throw e;
  }
  // Only after the commit: a reader of the new metadata no longer reaches them.
  for (const f of files) await rm(f, { force: true });
  return { expired: gone.map((s) => s['snapshot-id']), kept: kept.length, files, version: cur.version + 1 };
}
