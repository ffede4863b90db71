/**
 * Interval join: a left record at time t and a right record at time u with the same key pair when
 * u − t lies in [lower, upper]. Each record is buffered in keyed state (one entry per record) and
 * meets the other side's buffered records of its key on arrival, so every pair is written once,
 * when its second record arrives. The watermark evicts a left
 * record once t + upper is behind it and a right one once u − lower is, since no partner can come
 * any more; a record already behind the watermark is late and goes to the late topic.
 *
 * The watermark is the smaller of the two sides' largest times, less `watermark` (Flink's rule for
 * an operator of two inputs): the two streams are different topics read as their records come, so
 * one side may be read far ahead of the other, and must not make the other's records late.
 */
import { writeValue } from '../../core/serde/json.ts';
import type { KeyedState, ProcessorContext, RecordTransform, StateRef, TransformInput, TransformOutput } from '../../registry/spec.ts';
import { compileExpr, type Compiled } from '../expr/index.ts';
import { evaluate, eventTime, scopeOf, type Scope } from '../exprs.ts';
import type { IntervalJoinProcessorConfig } from './spec.ts';

type Side = 'L' | 'R';

/** A buffered record as the state holds it. */
interface Held {
  s: Side;
  /** Join key (its JSON), event time, the record key's text, the row. */
  k: string;
  t: number;
  key: string | null;
  v: Record<string, unknown>;
}

interface Entry {
  ref: StateRef;
  h: Held;
  gone: boolean;
}

const META = 'meta';

export function intervalJoinTransform(c: IntervalJoinProcessorConfig, ctx: ProcessorContext): RecordTransform {
  const what = `processor ${c.name}`;
  const { lower, upper } = c.between;
  const sides: Record<Side, { on: Compiled; ts: Compiled | null; what: string }> = {
    L: { on: compileExpr(c.on), ts: c.timestamp ? compileExpr(c.timestamp) : null, what: `${what} (on)` },
    R: { on: compileExpr(c.rightOn), ts: c.rightTimestamp ? compileExpr(c.rightTimestamp) : null, what: `${what} (rightOn)` },
  };
  const isSide = ctx.isSide ?? (() => false);
  let state: KeyedState;
  /** The largest time seen per side, and as the state last held it. */
  let max: Record<Side, number> = { L: -Infinity, R: -Infinity };
  let saved = '';
  const watermark = () => Math.min(max.L, max.R) - c.watermark;
  /** Buffered records by side and join key. */
  let held: Record<Side, Map<string, Entry[]>> = { L: new Map(), R: new Map() };
  /** Entries by the second in which they expire. */
  let expiring = new Map<number, Entry[]>();

  const expiry = (h: Held) => (h.s === 'L' ? h.t + upper : h.t - lower);
  const hold = (e: Entry): void => {
    const m = held[e.h.s];
    const list = m.get(e.h.k);
    if (list) list.push(e);
    else m.set(e.h.k, [e]);
    const sec = Math.floor(expiry(e.h) / 1000);
    const at = expiring.get(sec);
    if (at) at.push(e);
    else expiring.set(sec, [e]);
  };

  const timeOf = (side: Side, rec: TransformInput, scope: Scope): number => {
    const e = sides[side].ts;
    if (!e) return rec.timestamp;
    return eventTime(e, scope, what, side === 'L' ? 'timestamp' : 'rightTimestamp');
  };

  const pair = (l: Held, r: Held): TransformOutput => ({ topic: c.output, key: l.key, value: writeValue({ ...l.v, [c.as]: r.v } as never), timestamp: Math.max(l.t, r.t) });

  return {
    open(s) {
      state = s;
      const m = s.get<{ L: number | null; R: number | null }>(META);
      max = { L: m?.L ?? -Infinity, R: m?.R ?? -Infinity };
      saved = JSON.stringify(max);
      held = { L: new Map(), R: new Map() };
      expiring = new Map();
      for (const [k, v] of s.entries()) if (k !== META) hold({ ref: s.ref(k, v), h: v as Held, gone: false });
    },

    apply(rec) {
      if (rec.value === null) return [];
      const side: Side = isSide(rec.topic) ? 'R' : 'L';
      const scope = scopeOf(rec);
      const v = scope.value as { op?: unknown; source?: unknown; after?: unknown } | null;
      const change = v !== null && typeof v === 'object' && !Array.isArray(v) && 'op' in v && 'source' in v;
      if (change && v.op !== 'c' && v.op !== 'r' && v.op !== 'u') return [];
      const row = change ? v.after : v;
      if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new TypeError(`${what}: a record that is no object or change event (${JSON.stringify(row)?.slice(0, 80)})`);
      const t = timeOf(side, rec, scope);
      const jk = evaluate(sides[side].on, scope, sides[side].what);
      if (jk === null || jk === undefined) return [];
      const wm = watermark();
      if (t < wm) return [{ topic: c.late, key: rec.key, value: rec.value, headers: { ...rec.headers, 'sluice.late.join': c.name, 'sluice.late.watermark': new Date(wm).toISOString() } }];
      const h: Held = { s: side, k: typeof jk === 'bigint' ? JSON.stringify(String(jk)) : JSON.stringify(jk), t, key: rec.key === null ? null : rec.key.toString('utf8'), v: row as Record<string, unknown> };
      const out: TransformOutput[] = [];
      for (const o of held[side === 'L' ? 'R' : 'L'].get(h.k) ?? []) {
        if (o.gone) continue;
        const [l, r] = side === 'L' ? [h, o.h] : [o.h, h];
        const d = r.t - l.t;
        if (d >= lower && d <= upper) out.push(pair(l, r));
      }
      const id = `${side}\u0000${h.k}\u0000${rec.topic}/${rec.partition ?? 0}/${rec.offset ?? 0}`;
      hold({ ref: state.ref(id, h), h, gone: false });
      if (t > max[side]) max[side] = t;
      return out;
    },

    tick() {
      const now = JSON.stringify(max);
      if (now !== saved) {
        // JSON has no -Infinity: a side that has seen nothing is null.
        state.put(META, { L: Number.isFinite(max.L) ? max.L : null, R: Number.isFinite(max.R) ? max.R : null });
        saved = now;
      }
      const wm = watermark();
      if (!Number.isFinite(wm)) return [];
      const limit = Math.floor(wm / 1000);
      for (const [sec, list] of expiring) {
        if (sec > limit) continue;
        const keep: Entry[] = [];
        for (const e of list) {
          if (e.gone) continue;
          if (expiry(e.h) >= wm) {
            keep.push(e);
            continue;
          }
          e.gone = true;
          state.delete(e.ref.key);
          const m = held[e.h.s];
          const rest = m.get(e.h.k)!.filter((x) => x !== e);
          if (rest.length) m.set(e.h.k, rest);
          else m.delete(e.h.k);
        }
        if (keep.length) expiring.set(sec, keep);
        else expiring.delete(sec);
      }
      return [];
    },
  };
}
