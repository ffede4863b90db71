/**
 * Stream–table join (Kafka Streams' KStream–KTable join): a table record sets (or deletes) the row
 * of its key in the keyed state and writes nothing; a stream record looks its key up and is written
 * as its row with the table row beside it. The row a stream record meets is the table as the
 * processor has read it so far: the join follows the order records are read, not their timestamps.
 */
import { writeValue } from '../../core/serde/json.ts';
import type { KeyedState, ProcessorContext, RecordTransform } from '../../registry/spec.ts';
import { outputTopic } from '../common.ts';
import { compileExpr } from '../expr/index.ts';
import { evaluate, scopeOf } from '../exprs.ts';
import type { JoinProcessorConfig } from './spec.ts';

const rowKey = (v: unknown): string => 't\u0000' + (typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(typeof v === 'bigint' ? String(v) : v));

interface Change {
  op?: unknown;
  before?: unknown;
  after?: unknown;
  source?: unknown;
}

const isChange = (v: unknown): v is Change => v !== null && typeof v === 'object' && !Array.isArray(v) && 'op' in v && 'source' in v;

export function joinTransform(c: JoinProcessorConfig, ctx: ProcessorContext): RecordTransform {
  const what = `processor ${c.name}`;
  const on = compileExpr(c.on);
  const tableKey = c.tableKey ? compileExpr(c.tableKey) : null;
  const keep = c.fields.length ? new Set(c.fields) : null;
  const isSide = ctx.isSide ?? (() => false);
  let state: KeyedState;

  const project = (row: unknown): unknown => {
    if (!keep || row === null || typeof row !== 'object') return row;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) if (keep.has(k)) out[k] = v;
    return out;
  };

  return {
    open(s) {
      state = s;
    },
    apply(rec) {
      if (isSide(rec.topic)) {
        const s = scopeOf(rec);
        let key: unknown;
        if (tableKey) {
          // A delete's row image is `before`: read its key there.
          const v = s.value;
          const image = isChange(v) && v.op === 'd' ? { ...v, after: v.before } : v;
          key = rec.value === null ? null : evaluate(tableKey, { ...s, value: image }, `${what} (tableKey)`);
          if (rec.value === null) return []; // a tombstone after a delete: the delete did it
        } else {
          key = s.meta.key;
          if (key !== null && typeof key === 'object' && !Array.isArray(key) && Object.keys(key).length === 1) key = Object.values(key)[0];
        }
        if (key === null || key === undefined) throw new TypeError(`${what}: a table record without a key (tableKey ${c.tableKey ?? 'the record key'} gave null)`);
        const v = s.value;
        if (v === null || (isChange(v) && v.op === 'd')) state.delete(rowKey(key));
        else if (isChange(v)) {
          if (v.op === 't') return []; // a truncate: its rows' deletes are not in the log
          state.put(rowKey(key), project(v.after));
        } else state.put(rowKey(key), project(v));
        return [];
      }
      if (rec.value === null) return [];
      const s = scopeOf(rec);
      const v = s.value;
      if (isChange(v) && v.op !== 'c' && v.op !== 'u' && v.op !== 'r') return [];
      const key = evaluate(on, s, `${what} (on)`);
      const row = key === null || key === undefined ? undefined : state.get(rowKey(key));
      if (row === undefined && c.kind === 'inner') return [];
      const base = isChange(v) ? v.after : v;
      if (base === null || typeof base !== 'object' || Array.isArray(base)) throw new TypeError(`${what}: a stream record that is no object or change event (${JSON.stringify(base)?.slice(0, 80)})`);
      return [{ topic: outputTopic(c.output, rec.topic), key: rec.key, value: writeValue({ ...(base as object), [c.as]: row ?? null } as never) }];
    },
  };
}
