/**
 * The "unwrap" transform: Debezium's ExtractNewRecordState. Turns a change envelope into the flat
 * row a table-shaped sink wants — the `after` image (or, for deletes, what the `delete` option
 * says) — optionally with metadata fields:
 *   __op             c/u/d/r (and t for truncates when they are kept)
 *   __table          <schema>.<table>
 *   __source_ts_ms   commit time in the source database
 *   __deleted        "true"/"false" when deletes are rewritten
 * Tombstones (null values) are dropped: a sink that must delete gets the delete event itself.
 */
import type { Row } from '../../core/event.ts';
import { writeRow } from '../../core/serde/json.ts';
import { parseKey, parseValue, type ParsedEnvelope } from '../../core/serde/parse.ts';
import type { ProcessorContext, RecordTransform } from '../../registry/spec.ts';
import type { UnwrapProcessorConfig } from './spec.ts';
import { outputTopic } from '../common.ts';

export interface UnwrapOptions {
  /** Add __op, __table, __source_ts_ms. */
  addFields?: ('op' | 'table' | 'source_ts_ms')[];
  /**
   * Deletes: `drop` removes them; `rewrite` emits the before image with __deleted: "true" (others
   * get __deleted: "false"); `none` (default) emits them as { kind: 'delete', key } for sinks that
   * apply deletes.
   */
  delete?: 'drop' | 'rewrite' | 'none';
  /** Keep truncate events (kind 'truncate'); default false: they are dropped. */
  keepTruncates?: boolean;
  /** The change's `schema.table` as its source connector names it (default: from the `source` block's schema, else db). */
  table?: string;
}

export type Unwrapped =
  | { kind: 'upsert'; row: Row }
  | { kind: 'delete'; key: Row; row: Row | null }
  | { kind: 'truncate'; table: string };

export function unwrap(env: ParsedEnvelope | null, key: Row | null, opts: UnwrapOptions = {}): Unwrapped | null {
  if (env === null) return null; // tombstone
  const table = opts.table ?? `${String(env.source.schema ?? env.source.db)}.${String(env.source.table)}`;
  if (env.op === 't') return opts.keepTruncates ? { kind: 'truncate', table } : null;
  const fields = opts.addFields ?? [];
  const decorate = (row: Row, deleted?: boolean): Row => {
    const out: Row = { ...row };
    if (fields.includes('op')) out.__op = env.op;
    if (fields.includes('table')) out.__table = table;
    if (fields.includes('source_ts_ms')) out.__source_ts_ms = env.source.ts_ms as number;
    if (deleted !== undefined) out.__deleted = deleted ? 'true' : 'false';
    return out;
  };
  const mode = opts.delete ?? 'none';
  if (env.op === 'd') {
    if (mode === 'drop') return null;
    if (mode === 'rewrite') return { kind: 'upsert', row: decorate(env.before ?? key ?? {}, true) };
    return { kind: 'delete', key: key ?? env.before ?? {}, row: env.before ? decorate(env.before) : null };
  }
  if (!env.after) return null;
  return { kind: 'upsert', row: decorate(env.after, mode === 'rewrite' ? false : undefined) };
}

/** The processor: each change record of the inputs becomes its flat row on the output topic. */
export function unwrapTransform(cfg: UnwrapProcessorConfig, ctx: ProcessorContext): RecordTransform {
  const mode = cfg.delete === 'tombstone' ? 'none' : cfg.delete;
  return {
    apply(rec) {
      if (rec.value === null) return []; // the source's tombstone: the delete before it is unwrapped
      const env = parseValue(rec.value);
      if (env === null) return [];
      const { schema, table } = ctx.tableOf(env.source);
      const topic = outputTopic(cfg.output, rec.topic, { schema, table });
      const key = rec.key === null ? null : parseKey(rec.key);
      const u = unwrap(env, key, { addFields: cfg.addFields, delete: mode, table: `${schema}.${table}` });
      if (u === null || u.kind === 'truncate') return [];
      // The source's schema header stays: a consumer can still find the row's column types.
      if (u.kind === 'delete') return [{ topic, key: rec.key, value: null, headers: rec.headers }];
      return [{ topic, key: rec.key, value: writeRow(u.row), headers: rec.headers }];
    },
  };
}
