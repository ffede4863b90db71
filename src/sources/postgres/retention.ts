/**
 * How much WAL the source's replication slot holds back on the server: the server keeps every WAL
 * segment from the slot's `restart_lsn` on until the slot is confirmed past it, so a stuck or slow
 * pipeline fills the server's disk. Measured on a short connection of its own (never the
 * replication or admin connection, which may be busy with a snapshot or the stream) every
 * `retentionCheckIntervalMs`, into `sluice_source_retained_wal_bytes` and the source's status.
 */
import { Gauge } from '../../core/metrics.ts';
import type { SourceContext } from '../../registry/spec.ts';
import { Poller } from '../common/poll.ts';
import { slotStatus } from './slot.ts';
import type { PostgresSourceConfig } from './spec.ts';

export interface RetentionStatus {
  /** Bytes of WAL between the server's current position and the slot's restart_lsn (null: not measured yet). */
  retainedWalBytes: number | null;
  /** When it was measured (ISO). */
  at: string | null;
  /** Why the last measurement failed (the last good value stays). */
  error?: string;
}

export class SlotRetention {
  readonly status: RetentionStatus = { retainedWalBytes: null, at: null };
  private readonly gauge: Gauge;
  private readonly poller: Poller;

  constructor(cfg: PostgresSourceConfig, ctx: SourceContext) {
    const registry = ctx.metrics.registry;
    const labels = { pipeline: ctx.pipeline, slot: cfg.slot };
    // The source is created again at each restart: one series for the pipeline.
    this.gauge =
      registry.find<Gauge>('sluice_source_retained_wal_bytes', labels) ??
      registry.register(new Gauge('sluice_source_retained_wal_bytes', "Bytes of WAL the PostgreSQL server retains for the source's replication slot (pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)), measured every retentionCheckIntervalMs", labels));
    this.poller = new Poller(cfg.retentionCheckIntervalMs, async () => {
      const s = await slotStatus(cfg.connection, cfg.slot);
      if (s.error) {
        this.status.error = s.error;
        return;
      }
      delete this.status.error;
      if (s.exists === false) return; // not created yet
      this.status.retainedWalBytes = Number(s.retainedWalBytes);
      this.status.at = new Date().toISOString();
      this.gauge.set(this.status.retainedWalBytes);
    });
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }
}
