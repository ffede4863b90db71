/** A SQL sink's failed batch as a coded error: a lost connection, a refusal by the target, or as it was. */
import { SluiceError } from '../../core/errors.ts';
import { sinkError } from '../errors.ts';
import type { SqlDialect } from './dialect.ts';

export interface LostConnection {
  /** `host:port/database`. */
  address: string;
  /** What the driver reported when the connection dropped. */
  error: Error;
}

/**
 * The error to raise for `e`, thrown while applying a batch (which the target rolled back):
 * `SINK_CONNECTION_LOST` (retried) when the connection had dropped, else the sink's own coded error,
 * else `SINK_REJECTED`/`SINK_NO_KEY` (permanent) when the dialect reads it as a refusal, else `e`
 * unchanged (the worker retries it).
 */
export function batchError(d: SqlDialect, e: unknown, lost?: LostConnection | null): unknown {
  if (lost) return sinkError('SINK_CONNECTION_LOST', `lost the connection to ${d.label} ${lost.address}: ${lost.error.message}; reconnecting`, { cause: e });
  if (e instanceof SluiceError) return e;
  const r = d.refusal(e);
  if (r?.code === 'SINK_NO_KEY') {
    return sinkError('SINK_NO_KEY', `the target table has no primary key or unique index matching the source key (${r.detail}); add one (ALTER TABLE … ADD PRIMARY KEY (…)) or let the sink create the table`, { cause: e });
  }
  if (r) return sinkError('SINK_REJECTED', `${d.label} refused the batch: ${r.detail}; nothing of this batch was applied. Fix the target (or the source data) and restart`, { cause: e });
  return e;
}

/** A driver error thrown while applying the changes of `t`, its message naming the source table (a target's words rarely do). */
export function inTable(e: unknown, t: { schema: { schema: string; table: string } }): unknown {
  if (e instanceof Error && !(e instanceof SluiceError) && !e.message.startsWith('table ')) {
    const where = `table ${t.schema.schema}.${t.schema.table}: `;
    e.message = where + e.message;
    // mysql2 keeps the server's words apart as well.
    const m = e as { sqlMessage?: string };
    if (typeof m.sqlMessage === 'string') m.sqlMessage = where + m.sqlMessage;
  }
  return e;
}
