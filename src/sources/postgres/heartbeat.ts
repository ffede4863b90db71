/**
 * Heartbeats: a small non-transactional logical message written to the WAL at an interval. It
 * reaches us through the slot like any change, so even when the captured tables are idle (or all
 * traffic is in other databases) we have a fresh position to confirm and the server can recycle
 * WAL instead of retaining it for the slot.
 */
import type pg from 'pg';
import type { Logger } from '../../core/logger.ts';

export const HEARTBEAT_PREFIX = 'sluice.heartbeat';

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  constructor(
    private readonly client: pg.Client,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  async beat(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.client.query(`SELECT pg_logical_emit_message(false, $1, $2)`, [HEARTBEAT_PREFIX, String(Date.now())]);
    } catch (e) {
      this.log.warn('heartbeat failed', { error: (e as Error).message });
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
