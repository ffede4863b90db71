/**
 * Delta checkpoints (PROTOCOL.md's classic V1 checkpoint): the table's state at a version —
 * protocol, metaData, each application's last `txn`, the live files' `add`s and the unexpired
 * `remove` tombstones — as one Parquet file `<version>.checkpoint.parquet` in `_delta_log`, one
 * action per row, and `_last_checkpoint` pointing at it. Readers (Kernel, Spark) then start from
 * the checkpoint instead of replaying every commit. The sink keeps every JSON commit (no log
 * clean-up), so a checkpoint is an accelerator: a torn one is never pointed at, and is rewritten.
 */
import { randomUUID } from 'node:crypto';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { duckdbDialect } from '../duckdb/dialect.ts';
import type { TableLog } from './log.ts';

const { ql } = duckdbDialect;

const MAP = 'MAP(VARCHAR, VARCHAR)';
/** The checkpoint's columns (the action structs, with the fields this writer fills). */
const COLUMNS = {
  txn: 'STRUCT(appId VARCHAR, version BIGINT, lastUpdated BIGINT)',
  add: `STRUCT(path VARCHAR, partitionValues ${MAP}, size BIGINT, modificationTime BIGINT, dataChange BOOLEAN, stats VARCHAR, tags ${MAP})`,
  remove: `STRUCT(path VARCHAR, deletionTimestamp BIGINT, dataChange BOOLEAN, extendedFileMetadata BOOLEAN, partitionValues ${MAP}, size BIGINT)`,
  metaData: `STRUCT(id VARCHAR, name VARCHAR, description VARCHAR, format STRUCT(provider VARCHAR, options ${MAP}), schemaString VARCHAR, partitionColumns VARCHAR[], configuration ${MAP}, createdTime BIGINT)`,
  protocol: 'STRUCT(minReaderVersion INTEGER, minWriterVersion INTEGER)',
};

const checkpointName = (v: number) => `${String(v).padStart(20, '0')}.checkpoint.parquet`;

/** Writes the checkpoint of `log` (its state at `log.version`), dropping tombstones older than `retentionMs`. */
export async function writeCheckpoint(conn: DuckDBConnection, dir: string, log: TableLog, retentionMs: number, scratch: string): Promise<void> {
  const logDir = join(dir, '_delta_log');
  const now = Date.now();
  const lines: string[] = [JSON.stringify({ protocol: log.protocol }), JSON.stringify({ metaData: log.metaData })];
  for (const [appId, version] of log.txns) lines.push(JSON.stringify({ txn: { appId, version } }));
  for (const add of log.files.values()) lines.push(JSON.stringify({ add: { ...add, dataChange: false } }));
  for (const r of log.removed.values()) if (now - r.deletionTimestamp < retentionMs) lines.push(JSON.stringify({ remove: { ...r, dataChange: false } }));
  const json = join(scratch, `checkpoint-${randomUUID()}.ndjson`);
  const tmp = join(logDir, `.${checkpointName(log.version)}.${randomUUID()}.tmp`);
  try {
    await writeFile(json, lines.join('\n') + '\n');
    const cols = `{${Object.entries(COLUMNS)
      .map(([k, t]) => `${k}: ${ql(t)}`)
      .join(', ')}}`;
    await conn.run(`COPY (SELECT * FROM read_ndjson(${ql(json)}, columns = ${cols}, maximum_object_size = 1073741824)) TO ${ql(tmp)} (FORMAT parquet, COMPRESSION snappy)`);
    await syncFile(tmp);
    await rename(tmp, join(logDir, checkpointName(log.version)));
    // `_last_checkpoint` last, so it never points at a checkpoint not wholly written.
    const last = join(logDir, `._last_checkpoint.${randomUUID()}.tmp`);
    await writeFile(last, JSON.stringify({ version: log.version, size: lines.length, numOfAddFiles: log.files.size }));
    await syncFile(last);
    await rename(last, join(logDir, '_last_checkpoint'));
  } finally {
    await rm(json, { force: true });
    await rm(tmp, { force: true });
  }
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
