/**
 * The binlog files the pipeline still needs on the server: every file from the one of its durable
 * position (where a restart resumes) to the newest. The server may purge older ones; if it purges
 * one of these, the pipeline cannot resume. Counted on a short connection of its own with
 * `SHOW BINARY LOGS` every `retentionCheckIntervalMs`, into `sluice_source_binlog_files_needed`,
 * `sluice_source_binlog_bytes_needed` and the source's status.
 */
import { Gauge } from '../../core/metrics.ts';
import type { SourceContext } from '../../registry/spec.ts';
import { Poller } from '../common/poll.ts';
import { closeConn, connectAdmin } from './server.ts';
import type { MysqlSourceConfig } from './spec.ts';

export interface BinlogRetentionStatus {
  /** The binlog file a restart resumes from (the durable position's). */
  file: string | null;
  /** Files from it to the newest, and their bytes (null: not counted yet). */
  filesNeeded: number | null;
  bytesNeeded: number | null;
  at: string | null;
  /** Why the last count failed, or that the file is purged (the last good values stay). */
  error?: string;
}

/** Files from `file` on, and their bytes, out of SHOW BINARY LOGS rows (null: `file` is not there). */
export function neededFiles(rows: { Log_name: string; File_size: number | string }[], file: string): { files: number; bytes: number } | null {
  const i = rows.findIndex((r) => r.Log_name === file);
  if (i < 0) return null;
  const from = rows.slice(i);
  return { files: from.length, bytes: from.reduce((n, r) => n + Number(r.File_size), 0) };
}

export class BinlogRetention {
  readonly status: BinlogRetentionStatus = { file: null, filesNeeded: null, bytesNeeded: null, at: null };
  private readonly files: Gauge;
  private readonly bytes: Gauge;
  private readonly poller: Poller;

  /** `file()`: the binlog file of the source's durable position, null before it has one. */
  constructor(cfg: MysqlSourceConfig, ctx: SourceContext, file: () => string | null) {
    const registry = ctx.metrics.registry;
    const labels = { pipeline: ctx.pipeline };
    // The source is created again at each restart: one series for the pipeline.
    this.files =
      registry.find<Gauge>('sluice_source_binlog_files_needed', labels) ??
      registry.register(new Gauge('sluice_source_binlog_files_needed', 'Binlog files the MySQL/MariaDB server must keep for the source to resume: from the file of its durable position to the newest (SHOW BINARY LOGS), counted every retentionCheckIntervalMs', labels));
    this.bytes =
      registry.find<Gauge>('sluice_source_binlog_bytes_needed', labels) ??
      registry.register(new Gauge('sluice_source_binlog_bytes_needed', 'Bytes of the binlog files the source still needs (File_size of SHOW BINARY LOGS from the file of its durable position on)', labels));
    this.poller = new Poller(cfg.retentionCheckIntervalMs, async () => {
      const at = file();
      if (!at) return;
      let conn;
      try {
        conn = await connectAdmin(cfg.connection);
        const [rows] = await conn.query('SHOW BINARY LOGS');
        const n = neededFiles(rows as { Log_name: string; File_size: number }[], at);
        this.status.file = at;
        if (!n) {
          this.status.error = `binlog file ${at} is no longer on the server: the pipeline cannot resume from its durable position`;
          return;
        }
        delete this.status.error;
        this.status.filesNeeded = n.files;
        this.status.bytesNeeded = n.bytes;
        this.status.at = new Date().toISOString();
        this.files.set(n.files);
        this.bytes.set(n.bytes);
      } catch (e) {
        this.status.error = (e as Error).message;
      } finally {
        await closeConn(conn);
      }
    });
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }
}
