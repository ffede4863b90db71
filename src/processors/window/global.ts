/**
 * The `window` processor with `window.type: global`: one running aggregation per key over all
 * time, never closed, as Kafka Streams' table aggregations. It reads change events as changes: a
 * create adds its row, an update takes the row before out and adds the row after (also when the
 * update moves the row to another key), a delete takes its row out. So `sum(after.qty)` over a
 * table's changes is always the sum over the table's current rows. Results go out after each
 * batch for the keys it changed; a key whose rows are all gone is deleted (a tombstone, or a
 * delete event with `format: changes`).
 */
import { writeValue } from '../../core/serde/json.ts';
import type { KeyedState, RecordTransform, TransformOutput } from '../../registry/spec.ts';
import { compileExpr } from '../expr/index.ts';
import { evaluate, scopeOf, type Scope } from '../exprs.ts';
import { compileAggregate, parseAggregate, type Aggregate } from './aggregates.ts';
import { resultChanges } from './results.ts';
import type { WindowOptions } from './window.ts';

/** One key's aggregation as the state holds it. */
interface Group {
  g: unknown[];
  /** Rows in it (it is deleted at 0). */
  n: number;
  a: unknown[];
  /** 1 once emitted. */
  x?: 1;
}


interface Contribution {
  gk: string;
  g: unknown[];
  vals: unknown[];
  sign: 1 | -1;
}

export function globalTransform(o: WindowOptions): RecordTransform {
  const what = `processor ${o.name}`;
  const groups = Object.entries(o.groupBy).map(([field, src]) => ({ field, e: compileExpr(src), what: `${what} (groupBy.${field})` }));
  const aggs: Aggregate[] = Object.entries(o.aggregates).map(([name, text]) => compileAggregate(parseAggregate(name, text), what));
  const aggWhat = aggs.map((a) => `${what} (aggregates.${a.def.name})`);
  /** Aggregations that cannot take a value out: with them, updates and deletes are refused. */
  const fixed = aggs.filter((a) => !a.remove).map((a) => `${a.def.name} (${a.def.fn})`);
  const changes = resultChanges({ pipeline: o.pipeline, name: o.name, output: o.output, groups: groups.map((g) => g.field), windowed: false, aggregates: aggs.map((a) => ({ name: a.def.name, count: a.def.fn === 'count' })) });
  let state: KeyedState;
  const touched = new Map<string, Group>();

  /** A row image's key and values; throws (before any change) when they do not fit. */
  const contribution = (scope: Scope, image: unknown, sign: 1 | -1): Contribution => {
    const v = scope.value as Record<string, unknown>;
    const s: Scope = 'op' in v && 'source' in v ? { value: { ...v, after: image }, meta: scope.meta } : scope;
    const g = groups.map((x) => {
      const val = evaluate(x.e, s, x.what);
      return typeof val === 'bigint' ? String(val) : (val ?? null);
    });
    const vals = aggs.map((a, i) => {
      const val = a.expr ? evaluate(a.expr, s, aggWhat[i]) : null;
      a.check?.(val);
      return val;
    });
    return { gk: 'g\u0000' + JSON.stringify(g), g, vals, sign };
  };

  const row = (w: Group): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    groups.forEach((g, i) => (out[g.field] = w.g[i]));
    aggs.forEach((a, i) => (out[a.def.name] = a.result(w.a[i])));
    return out;
  };

  return {
    open(s) {
      state = s;
      touched.clear();
    },

    apply(rec) {
      if (rec.value === null) return [];
      const scope = scopeOf(rec);
      const v = scope.value as { op?: unknown; source?: unknown; before?: unknown; after?: unknown } | null;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError(`${what}: a record that is no object (${JSON.stringify(v)?.slice(0, 80)})`);
      const parts: Contribution[] = [];
      if ('op' in v && 'source' in v) {
        if ((v.op === 'u' || v.op === 'd') && fixed.length) {
          throw new TypeError(`${what}: ${fixed.join(', ')} cannot take a row out again, so this global window takes inserts only, and ${rec.topic} sent ${v.op === 'u' ? 'an update' : 'a delete'}. Use count, sum and avg over a table whose rows change, or a tumbling window`);
        }
        if (v.op === 'u' || v.op === 'd') {
          if (v.before === null || v.before === undefined) throw new TypeError(`${what}: an ${v.op === 'u' ? 'update' : 'delete'} without its row before, which a global aggregation takes out (PostgreSQL: REPLICA IDENTITY FULL on the table)`);
          parts.push(contribution(scope, v.before, -1));
        }
        if (v.op === 'c' || v.op === 'r' || v.op === 'u') parts.push(contribution(scope, v.after, 1));
      } else parts.push(contribution(scope, v, 1));
      for (const p of parts) {
        // The group's entry (read from the state each time: with the state on disk, only some are in memory).
        const had = state.get<Group>(p.gk);
        if (p.sign < 0 && !had) continue; // a row this processor never saw added
        const w: Group = had ?? { g: p.g, n: 0, a: aggs.map((a) => a.init()) };
        for (let i = 0; i < aggs.length; i++) w.a[i] = p.sign > 0 ? aggs[i].add(w.a[i], p.vals[i]) : aggs[i].remove!(w.a[i], p.vals[i]);
        w.n += p.sign;
        state.put(p.gk, w);
        touched.set(p.gk, w);
      }
      return [];
    },

    tick(now) {
      const out: TransformOutput[] = [];
      for (const [gk, w] of touched) {
        const key = writeValue((w.g.length === 1 ? w.g[0] : w.g) as never);
        if (w.n <= 0) {
          state.delete(gk);
          // A delete event's row before: the key's columns (sinks delete by key).
          const before: Record<string, unknown> = {};
          groups.forEach((g, i) => (before[g.field] = w.g[i]));
          if (w.x) out.push(o.format === 'changes' ? changes(null, before, 'd', now) : { topic: o.output, key, value: null, timestamp: now });
          continue;
        }
        const after = row(w);
        out.push(o.format === 'changes' ? changes(after, null, w.x ? 'u' : 'c', now) : { topic: o.output, key, value: writeValue(after as never), timestamp: now });
        if (!w.x) {
          w.x = 1;
          state.put(gk, w);
        }
      }
      touched.clear();
      return out;
    },
  };
}
