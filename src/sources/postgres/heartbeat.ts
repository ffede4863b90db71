/**
 * Heartbeats: a small non-transactional logical message written to the WAL at an interval. It
 * reaches us through the slot like any change, so even when the captured tables are idle (or all
 * traffic is in other databases) we have a fresh position to confirm and the server can recycle
 * WAL instead of retaining it for the slot.
 *
 * A logical message reaches every logical slot of the database: other consumers (a Debezium
 * connector turns them into message events) see Sluice's heartbeats. With `heartbeatActionQuery`
 * the heartbeat runs that SQL instead (Debezium's `heartbeat.action.query`, typically an upsert
 * into a heartbeat table): its WAL reaches only the slots that capture the table, and the stream
 * confirms the positions the server's keepalives report while nothing is pending (stream.ts).
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
    /** SQL to run instead of the logical message; empty: the message. */
    private readonly actionQuery = '',
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
      if (this.actionQuery) await this.client.query(this.actionQuery);
      else await this.client.query(`SELECT pg_logical_emit_message(false, $1, $2)`, [HEARTBEAT_PREFIX, String(Date.now())]);
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
