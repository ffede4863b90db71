/**
 * The "outbox" transform: Debezium's Outbox Event Router. Each row inserted into the outbox table
 * (a create, or a snapshot read) becomes one event:
 *
 *   topic     `output` with `{aggregatetype}` replaced by the row's aggregate type (escaped as a
 *             topic part), and `{topic}`, `{schema}`, `{table}` as in the other processors
 *   key       the aggregate id as a JSON value (`"order-17"`, `17`); null when the column is null
 *   value     the payload: JSON text (json/jsonb columns) as that JSON when `expandJsonPayload`,
 *             else a JSON string; any other type as its JSON value; null payload: null (a tombstone)
 *   headers   `id` (the event id as text), `type` (when not null), and `additional` header columns.
 *             The input's headers are not kept: its schema header describes the outbox table.
 *   timestamp the `timestamp` column if configured (and not null), else the commit time.
 *
 * Deletes, tombstones and truncates of the outbox table are ignored: deleting rows right after
 * inserting them is how an outbox table is kept small. Updates follow `onUpdate`.
 *
 * Snapshot reads become events too, so a snapshot of a non-empty outbox table (or a re-snapshot)
 * emits its rows again: consumers deduplicate by the `id` header, as with Debezium.
 */
import type { Row, Value } from '../../core/event.ts';
import { parseJson, parseValue } from '../../core/serde/parse.ts';
import { writeString, writeValue } from '../../core/serde/json.ts';
import type { ProcessorContext, TransformInput, TransformOutput } from '../../registry/spec.ts';
import { topicPart } from '../../sources/common/names.ts';
import { outputTopic } from '../common.ts';
import { outboxError, type OutboxProcessorConfig } from './spec.ts';

/** A value as header text: strings as they are, bytes as base64, others as JSON. */
function headerText(v: Value): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return writeValue(v);
}

/** Whether JSON text parses (json/jsonb columns arrive as text). */
function isJson(s: string): boolean {
  try {
    parseJson(s);
    return true;
  } catch {
    return false;
  }
}

const HAS_OFFSET = /(?:Z|[+-]\d\d(?::?\d\d)?)$/i;

/**
 * Epoch milliseconds of a timestamp column's value: a number (ms; µs from 1e14, ns from 1e17 on,
 * which Debezium's MicroTimestamp and NanoTimestamp are for any date after 1973), or an ISO-8601
 * text (Debezium's ZonedTimestamp; without an offset it is read as UTC). Undefined when unreadable.
 */
export function epochMillis(v: Value): number | undefined {
  if (typeof v === 'bigint') {
    const a = v < 0n ? -v : v;
    const ms = a >= 100_000_000_000_000_000n ? v / 1_000_000n : a >= 100_000_000_000_000n ? v / 1000n : v;
    return Number(ms);
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return undefined;
    const a = Math.abs(v);
    return Math.floor(a >= 1e17 ? v / 1e6 : a >= 1e14 ? v / 1000 : v);
  }
  if (typeof v === 'string') {
    const s = v.trim();
    if (!/^\d{4}-\d\d-\d\d/.test(s)) return undefined;
    const ms = Date.parse(/[T ]\d/.test(s) && !HAS_OFFSET.test(s) ? s + 'Z' : s);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** The processor: each row inserted into the outbox table becomes its event on the output topic (a RecordTransform, synchronous). */
export function outboxTransform(cfg: OutboxProcessorConfig, ctx: ProcessorContext): { apply(rec: TransformInput): TransformOutput[] } {
  const f = cfg.fields;
  const extra = cfg.additional.map((a, i) => ({ column: a.column, name: a.as ?? a.column, placement: a.placement, key: `additional[${i}].column` }));
  const headerCols = extra.filter((a) => a.placement === 'header');
  const envelopeCols = extra.filter((a) => a.placement === 'envelope');
  const usesTopic = /\{(?:topic|schema|table)\}/.test(cfg.output);
  let warned = false;

  /** A column the row must have; `key` is the config key that names it, for the message. */
  const column = (row: Row, col: string, what: string, key: string, where: string): Value => {
    if (!(col in row)) throw outboxError('OUTBOX_ROW_INVALID', `the outbox row of ${where} has no column ${JSON.stringify(col)} (the ${what}, as the processor's ${key} names it); set ${key} to the outbox table's column`);
    return row[col];
  };

  return {
    apply(rec: TransformInput): TransformOutput[] {
      if (rec.value === null) return []; // a tombstone after a delete
      const env = parseValue(rec.value);
      if (env === null) return [];
      if (env.op === 'd' || env.op === 't') return [];
      const { schema, table } = ctx.tableOf(env.source);
      if (env.op === 'u') {
        if (cfg.onUpdate === 'skip') return [];
        const id = env.after && f.id in env.after ? headerText(env.after[f.id]) : '(unknown)';
        if (cfg.onUpdate === 'fail') {
          throw outboxError('OUTBOX_UPDATE', `a row of the outbox table ${schema}.${table} (${f.id} ${id}) was updated: the outbox table must be insert-only (insert events, delete them when you like, never update them); fix the application, or set the processor's onUpdate to warn or skip`);
        }
        if (!warned) {
          warned = true;
          ctx.logger.warn('outbox processor skipped an update of its outbox table, which must be insert-only (further updates are skipped without a warning; onUpdate: skip silences this, fail dead-letters them)', { processor: cfg.name, table: `${schema}.${table}`, id });
        }
        return [];
      }
      if ((env.op !== 'c' && env.op !== 'r') || env.after === null) return [];
      const row = env.after;
      const where = `${schema}.${table}`;

      const id = column(row, f.id, 'event id', 'fields.id', where);
      if (id === null) throw outboxError('OUTBOX_ROW_INVALID', `an outbox row of ${where} has a null event id (column ${JSON.stringify(f.id)}); every event needs an id, which consumers deduplicate by`);
      const aggregateType = column(row, f.aggregateType, 'aggregate type', 'fields.aggregateType', where);
      if (aggregateType === null || aggregateType === '') throw outboxError('OUTBOX_ROW_INVALID', `the outbox row ${headerText(id)} of ${where} has ${aggregateType === null ? 'a null' : 'an empty'} aggregate type (column ${JSON.stringify(f.aggregateType)}), which names its topic`);
      const aggregateId = column(row, f.key, 'aggregate id', 'fields.key', where);
      const type = column(row, f.eventType, 'event type', 'fields.eventType', where);
      const payload = column(row, f.payload, 'payload', 'fields.payload', where);

      let timestamp = typeof env.source.ts_ms === 'number' ? env.source.ts_ms : typeof env.source.ts_ms === 'bigint' ? Number(env.source.ts_ms) : env.ts_ms;
      if (f.timestamp !== undefined) {
        const t = column(row, f.timestamp, 'event timestamp', 'fields.timestamp', where);
        if (t !== null) {
          const ms = epochMillis(t);
          if (ms === undefined) throw outboxError('OUTBOX_ROW_INVALID', `the outbox row ${headerText(id)} of ${where} has a timestamp ${JSON.stringify(headerText(t))} (column ${JSON.stringify(f.timestamp)}) that is neither epoch milliseconds, micro- or nanoseconds nor an ISO-8601 date-time`);
          timestamp = ms;
        }
      }

      let topic = cfg.output.replace(/\{aggregatetype\}/g, () => topicPart(headerText(aggregateType)));
      if (usesTopic) topic = outputTopic(topic, rec.topic, { schema, table });

      const headers: Record<string, string> = { id: headerText(id) };
      if (type !== null) headers.type = headerText(type);
      for (const h of headerCols) {
        const v = column(row, h.column, 'additional column', h.key, where);
        if (v !== null) headers[h.name] = headerText(v);
      }

      let value: string | null = null;
      if (payload !== null) {
        value = typeof payload === 'string' ? (cfg.expandJsonPayload && isJson(payload) ? payload : writeString(payload)) : writeValue(payload);
        // JSON null text in a json column is a null payload too.
        if (value.length <= 8 && value.trim() === 'null') value = null;
      }
      // A null payload stays a tombstone (the aggregate's end in a compacted topic), envelope fields or not.
      if (envelopeCols.length) {
        let s = '{"payload":' + value;
        for (const e of envelopeCols) s += ',' + writeString(e.name) + ':' + writeValue(column(row, e.column, 'additional column', e.key, where));
        if (value !== null) value = s + '}';
      }
      const out: TransformOutput = { topic, key: aggregateId === null ? null : writeValue(aggregateId), value, headers };
      if (typeof timestamp === 'number' && Number.isFinite(timestamp)) out.timestamp = timestamp;
      return [out];
    },
  };
}
