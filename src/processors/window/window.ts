/**
 * The `window` processor's transform: groups records by key into tumbling, hopping or session
 * windows of event time (or processing time), folds each record into its windows' aggregations,
 * and emits a window's result once the watermark passes its end plus the allowed lateness.
 *
 * Time: a record's time is its `timestamp` expression (or the log record's timestamp). The
 * watermark is the largest time seen so far less `watermark` (the out-of-orderness bound), as
 * Kafka Streams' stream time less grace. A window [start, end) closes when
 * `end + allowedLateness ≤ watermark`; a record whose windows are all closed by then is late and
 * goes to the late topic unchanged. With processing time the record's time is the wall clock when
 * it is processed and the watermark is the wall clock.
 *
 * Every window and the watermark live in the keyed state (one entry per key and window), so the
 * processor task commits them with the output and input offsets: a restart continues exactly where
 * the last commit left off.
 */
import { writeValue } from '../../core/serde/json.ts';
import type { KeyedState, RecordTransform, TransformInput, TransformOutput } from '../../registry/spec.ts';
import { compileExpr } from '../expr/index.ts';
import { parseIsoMs } from '../expr/time.ts';
import { evaluate, scopeOf } from '../exprs.ts';
import { compileAggregate, parseAggregate, type Aggregate } from './aggregates.ts';

export interface WindowOptions {
  name: string;
  output: string;
  late: string;
  groupBy: Record<string, string>;
  window: { type: 'tumbling' | 'hopping' | 'session'; size?: number; advance?: number; gap?: number };
  time: 'event' | 'processing';
  timestamp?: string;
  watermark: number;
  allowedLateness: number;
  emit: 'close' | 'update';
  aggregates: Record<string, string>;
  deletes: 'skip' | 'include';
}

/** One window of one key, as the state holds it. */
interface WinState {
  /** The group-by values. */
  g: unknown[];
  s: number;
  e: number;
  a: unknown[];
}

interface Meta {
  /** The largest record time seen. */
  max: number;
}

const META = 'meta';
const winKey = (gk: string, start: number) => `w\u0000${gk}\u0000${start}`;

export function windowTransform(o: WindowOptions): RecordTransform {
  const what = `processor ${o.name}`;
  const groups = Object.entries(o.groupBy).map(([field, src]) => ({ field, e: compileExpr(src), what: `${what} (groupBy.${field})` }));
  const aggs: Aggregate[] = Object.entries(o.aggregates).map(([name, text]) => compileAggregate(parseAggregate(name, text), what));
  const ts = o.timestamp ? compileExpr(o.timestamp) : null;
  const { type } = o.window;
  const size = o.window.size ?? 0;
  const advance = type === 'hopping' ? o.window.advance! : size;
  const gap = o.window.gap ?? 0;

  let state: KeyedState;
  let meta: Meta;
  /** Window end → state keys of the windows ending then (may hold keys already gone). */
  let byEnd = new Map<number, Set<string>>();
  /** Session windows: group key → state keys of its open sessions. */
  let sessions = new Map<string, Set<string>>();
  /** Windows changed since the last tick (emit: update). */
  const touched = new Set<string>();

  const watermark = (): number => (o.time === 'processing' ? meta.max : meta.max - o.watermark);
  const index = (k: string, end: number): void => {
    let s = byEnd.get(end);
    if (!s) byEnd.set(end, (s = new Set()));
    s.add(k);
  };

  const recordTime = (rec: TransformInput, scope: ReturnType<typeof scopeOf>): number => {
    if (o.time === 'processing') return Date.now();
    if (!ts) return rec.timestamp;
    const v = evaluate(ts, scope, `${what} (timestamp)`);
    const ms = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? parseIsoMs(v) : undefined;
    if (ms === undefined || !Number.isFinite(ms)) throw new TypeError(`${what}: the timestamp expression (${o.timestamp}) gave ${JSON.stringify(v) ?? String(v)}, not a time in ms or an ISO-8601 text`);
    return ms;
  };

  const row = (w: WinState, final: boolean | null): TransformOutput => {
    const out: Record<string, unknown> = {};
    groups.forEach((g, i) => (out[g.field] = w.g[i]));
    out.window_start = new Date(w.s).toISOString();
    out.window_end = new Date(w.e).toISOString();
    aggs.forEach((a, i) => (out[a.def.name] = a.result(w.a[i])));
    if (final !== null) out.final = final;
    return { topic: o.output, key: writeValue((w.g.length === 1 ? w.g[0] : w.g) as never), value: writeValue(out as never), timestamp: w.e };
  };

  return {
    open(s) {
      state = s;
      meta = s.get<Meta>(META) ?? { max: -Infinity };
      byEnd = new Map();
      sessions = new Map();
      touched.clear();
      for (const [k, v] of s.entries()) {
        if (k === META) continue;
        const w = v as WinState;
        index(k, w.e);
        if (type === 'session') {
          const gk = k.slice(2, k.lastIndexOf('\u0000'));
          let set = sessions.get(gk);
          if (!set) sessions.set(gk, (set = new Set()));
          set.add(k);
        }
      }
    },

    apply(rec) {
      if (rec.value === null) return [];
      const scope = scopeOf(rec);
      const v = scope.value as { op?: unknown; source?: unknown } | null;
      if (o.deletes === 'skip' && v !== null && typeof v === 'object' && v.op === 'd' && v.source !== undefined) return [];
      // Everything that can throw comes before the state changes: a dead-lettered record leaves no trace.
      const t = recordTime(rec, scope);
      const g = groups.map((x) => {
        const val = evaluate(x.e, scope, x.what);
        return typeof val === 'bigint' ? String(val) : (val ?? null);
      });
      const vals = aggs.map((a) => (a.expr ? evaluate(a.expr, scope, `${what} (aggregates.${a.def.name})`) : null));
      // Validate the values against their aggregations on a scratch accumulator (a non-number for sum throws here).
      aggs.forEach((a, i) => a.add(a.init(), vals[i]));

      const closedBefore = watermark() - o.allowedLateness;
      const gk = JSON.stringify(g);
      const fold = (w: WinState): void => {
        for (let i = 0; i < aggs.length; i++) w.a[i] = aggs[i].add(w.a[i], vals[i]);
      };
      let took = false;
      if (type === 'session') {
        if (t + gap > closedBefore) {
          took = true;
          let w: WinState = { g, s: t, e: t + gap, a: aggs.map((a) => a.init()) };
          fold(w);
          const mine = sessions.get(gk) ?? new Set<string>();
          for (const k of [...mine]) {
            const other = state.get<WinState>(k);
            if (!other) {
              mine.delete(k);
              continue;
            }
            if (other.s < w.e && w.s < other.e) {
              w = { g, s: Math.min(w.s, other.s), e: Math.max(w.e, other.e), a: aggs.map((a, i) => a.merge(other.a[i], w.a[i])) };
              state.delete(k);
              mine.delete(k);
              touched.delete(k);
            }
          }
          const k = winKey(gk, w.s);
          state.put(k, w);
          mine.add(k);
          sessions.set(gk, mine);
          index(k, w.e);
          touched.add(k);
        }
      } else {
        // Windows [s, s + size) holding t: aligned to the epoch, every `advance` ms.
        const last = Math.floor(t / advance) * advance;
        for (let s = last; s > t - size; s -= advance) {
          const e = s + size;
          if (e <= closedBefore) continue;
          took = true;
          const k = winKey(gk, s);
          const existing = state.get<WinState>(k);
          const w = existing ?? { g, s, e, a: aggs.map((a) => a.init()) };
          fold(w);
          state.put(k, w);
          if (!existing) index(k, e);
          touched.add(k);
        }
      }
      if (t > meta.max) {
        meta = { max: t };
        state.put(META, meta);
      }
      if (took) return [];
      return [{ topic: o.late, key: rec.key, value: rec.value, headers: { ...rec.headers, 'sluice.late.window': o.name, 'sluice.late.watermark': new Date(closedBefore + o.allowedLateness).toISOString() } }];
    },

    tick(now) {
      if (o.time === 'processing' && now > meta.max) {
        meta = { max: now };
        state.put(META, meta);
      }
      const out: TransformOutput[] = [];
      const closeAt = watermark() - o.allowedLateness;
      const due = [...byEnd.keys()].filter((e) => e <= closeAt).sort((x, y) => x - y);
      for (const end of due) {
        // Several windows close at one end: emit them in a stable order (by key).
        const keys = [...byEnd.get(end)!].sort();
        byEnd.delete(end);
        for (const k of keys) {
          const w = state.get<WinState>(k);
          if (!w || w.e !== end) continue;
          out.push(row(w, o.emit === 'update' ? true : null));
          state.delete(k);
          touched.delete(k);
          if (type === 'session') sessions.get(JSON.stringify(w.g))?.delete(k);
        }
      }
      if (o.emit === 'update') {
        for (const k of touched) {
          const w = state.get<WinState>(k);
          if (w) out.push(row(w, false));
        }
      }
      touched.clear();
      return out;
    },
  };
}
