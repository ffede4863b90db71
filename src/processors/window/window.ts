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
import type { KeyedState, RecordTransform, StateRef, TransformInput, TransformOutput } from '../../registry/spec.ts';
import { compileExpr } from '../expr/index.ts';
import { evaluate, eventTime, scopeOf } from '../exprs.ts';
import { compileAggregate, parseAggregate, type Aggregate } from './aggregates.ts';
import { resultChanges } from './results.ts';

export interface WindowOptions {
  name: string;
  output: string;
  late: string;
  groupBy: Record<string, string>;
  window: { type: 'tumbling' | 'hopping' | 'session' | 'global'; size?: number; advance?: number; gap?: number };
  time: 'event' | 'processing';
  timestamp?: string;
  watermark: number;
  allowedLateness: number;
  emit: 'close' | 'update';
  /** `rows`: flat rows; `changes`: change events with a schema, keyed by the group-by fields and window_start, for table sinks. */
  format: 'rows' | 'changes';
  /** The pipeline (names the change events' source). */
  pipeline: string;
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
  /** 1 once emitted as a change (its next emission is an update). */
  x?: 1;
}

/** An open window in memory: its state key (made once) and state. */
interface Entry {
  /** The state entry (its key made once; changed in place, then touched). */
  ref: StateRef;
  /** The window's start (w.s), kept here to find a window without reaching into its state. */
  s: number;
  w: WinState;
  /** Merged into another session or closed: skipped where an index still holds it. */
  gone: boolean;
  /** The next open window of the same group key. */
  next: Entry | null;
}

interface Meta {
  /** The largest record time seen. */
  max: number;
}

const META = 'meta';
/** With the state on disk: the most windows one tick closes. */
const TICK_WINDOWS = 10_000;
const winKey = (gk: string, start: number) => `w\u0000${gk}\u0000${start}`;

export function windowTransform(o: WindowOptions): RecordTransform {
  const what = `processor ${o.name}`;
  const groups = Object.entries(o.groupBy).map(([field, src]) => ({ field, e: compileExpr(src), what: `${what} (groupBy.${field})` }));
  const aggs: Aggregate[] = Object.entries(o.aggregates).map(([name, text]) => compileAggregate(parseAggregate(name, text), what));
  const aggWhat = aggs.map((a) => `${what} (aggregates.${a.def.name})`);
  const ts = o.timestamp ? compileExpr(o.timestamp) : null;
  const { type } = o.window;
  const size = o.window.size ?? 0;
  const advance = type === 'hopping' ? o.window.advance! : size;
  const gap = o.window.gap ?? 0;

  let state: KeyedState;
  /** Not opened (the task's own copy of a parallel window, which only reads records' keys and times): no time seen. */
  let meta: Meta = { max: -Infinity };
  /** The watermark's source as the state holds it. */
  let savedMax = -Infinity;
  const updates = o.emit === 'update';
  /**
   * The open windows in memory, by group key (the one group-by value itself, or the JSON of
   * several), each with its state key made once: the state is written through these, never
   * looked up per record.
   */
  let open = new Map<unknown, Entry>();
  /** Window end → the windows ending then (a merged session leaves its old entry, marked gone). */
  let byEnd = new Map<number, Entry[]>();
  /** Windows changed since the last tick (emit: update). */
  const touched = new Set<Entry>();
  /**
   * State on disk (`state.store: disk`): no window is kept here. A window is read and written by
   * its state key per record, its end is a timer in the store, and only session windows keep an
   * index (group key → the starts of its open sessions) in memory, to find the sessions to merge.
   */
  let disk = false;
  const sessions = new Map<string, number[]>();
  /** Disk: windows changed since the last tick (emit: update), by state key. */
  const touchedKeys = new Map<string, WinState>();
  /** Disk: the last tick stopped at its bound with windows still due. */
  let behind = false;

  const watermark = (): number => (o.time === 'processing' ? meta.max : meta.max - o.watermark);
  const groupKey = (g: unknown[]): unknown => (g.length === 1 && (typeof g[0] === 'string' || typeof g[0] === 'number') ? g[0] : JSON.stringify(g));
  const add = (gk: unknown, e: Entry): void => {
    e.next = open.get(gk) ?? null;
    open.set(gk, e);
    const at = byEnd.get(e.w.e);
    if (at) at.push(e);
    else byEnd.set(e.w.e, [e]);
  };
  const remove = (gk: unknown, e: Entry): void => {
    e.gone = true;
    const head = open.get(gk)!;
    if (head === e) {
      if (e.next) open.set(gk, e.next);
      else open.delete(gk);
    } else {
      let x = head;
      while (x.next !== e) x = x.next!;
      x.next = e.next;
    }
    state.delete(e.ref.key);
    touched.delete(e);
  };

  const recordTime = (rec: TransformInput, scope: ReturnType<typeof scopeOf>): number => {
    if (o.time === 'processing') return Date.now();
    if (!ts) return rec.timestamp;
    return eventTime(ts, scope, what, 'timestamp');
  };

  /** The aggregations' values of the record being applied (made once; each record's are folded in before the next). */
  const vals = new Array<unknown>(aggs.length);
  const fold = (w: WinState): void => {
    for (let i = 0; i < aggs.length; i++) w.a[i] = aggs[i].add(w.a[i], vals[i]);
  };

  /** Window bounds as text: the windows closing together share their bounds, so each is made once. */
  const isoCache = new Map<number, string>();
  const iso = (ms: number): string => {
    let t = isoCache.get(ms);
    if (t === undefined) {
      if (isoCache.size > 10_000) isoCache.clear();
      isoCache.set(ms, (t = new Date(ms).toISOString()));
    }
    return t;
  };

  const row = (w: WinState, final: boolean | null): TransformOutput => {
    const out: Record<string, unknown> = {};
    groups.forEach((g, i) => (out[g.field] = w.g[i]));
    out.window_start = iso(w.s);
    out.window_end = iso(w.e);
    aggs.forEach((a, i) => (out[a.def.name] = a.result(w.a[i])));
    if (o.format === 'changes') return change(w, out, final === false || w.x === 1);
    if (final !== null) out.final = final;
    return { topic: o.output, key: writeValue((w.g.length === 1 ? w.g[0] : w.g) as never), value: writeValue(out as never), timestamp: w.e };
  };

  const changes = resultChanges({ pipeline: o.pipeline, name: o.name, output: o.output, groups: groups.map((g) => g.field), windowed: true, aggregates: aggs.map((a) => ({ name: a.def.name, count: a.def.fn === 'count' || a.def.fn === 'count_distinct' })) });
  /** A result as a change event: a create, or an update of an emitted window. */
  const change = (w: WinState, after: Record<string, unknown>, update: boolean): TransformOutput => {
    w.x = 1;
    return changes(after, null, update ? 'u' : 'c', w.e);
  };

  /**
   * A record's session [t, t + gap) with the open sessions it overlaps (open sessions never overlap
   * each other, so one pass finds them all): one session over all of them. The parts merge in the
   * order of their starts (an older session before the record's own at the same start), so
   * `first` and `last` over merged sessions follow their starts, the same in memory and on disk and
   * after a restart. A session already closed (its end at or before `closedBefore`, waiting to be
   * emitted) takes nothing more.
   */
  const mergeSessions = (own: WinState, others: WinState[], closedBefore: number): { w: WinState; merged: WinState[] } => {
    const merged = others.filter((x) => x.e > closedBefore && x.s < own.e && own.s < x.e);
    if (!merged.length) return { w: own, merged };
    const parts = [...merged, own].sort((x, y) => x.s - y.s);
    let a = parts[0].a;
    for (let i = 1; i < parts.length; i++) {
      const next = parts[i].a;
      a = aggs.map((agg, j) => agg.merge(a[j], next[j]));
    }
    return { w: { g: own.g, s: parts[0].s, e: Math.max(...parts.map((x) => x.e)), a }, merged };
  };
  const addSession = (gj: string, start: number): void => {
    const starts = sessions.get(gj);
    if (starts) starts.push(start);
    else sessions.set(gj, [start]);
  };
  const dropSession = (gj: string, start: number): void => {
    const starts = sessions.get(gj);
    if (!starts) return;
    const i = starts.indexOf(start);
    if (i >= 0) starts.splice(i, 1);
    if (!starts.length) sessions.delete(gj);
  };
  /** Folds a record into its windows with the state on disk; whether any window took it. */
  const applyOnDisk = (g: unknown[], t: number, closedBefore: number, fold: (w: WinState) => void): boolean => {
    const gj = JSON.stringify(g);
    if (type === 'session') {
      if (t + gap <= closedBefore) return false;
      const own: WinState = { g, s: t, e: t + gap, a: aggs.map((a) => a.init()) };
      fold(own);
      const found: WinState[] = [];
      for (const start of sessions.get(gj) ?? []) {
        const other = state.get<WinState>(winKey(gj, start));
        if (other) found.push(other);
      }
      const { w, merged } = mergeSessions(own, found, closedBefore);
      for (const other of merged) {
        const key = winKey(gj, other.s);
        state.delete(key);
        touchedKeys.delete(key);
        dropSession(gj, other.s);
      }
      const key = winKey(gj, w.s);
      state.put(key, w);
      state.timer(w.e, key);
      addSession(gj, w.s);
      if (updates) touchedKeys.set(key, w);
      return true;
    }
    let took = false;
    for (let s = Math.floor(t / advance) * advance; s > t - size; s -= advance) {
      if (s + size <= closedBefore) continue;
      took = true;
      const key = winKey(gj, s);
      let w = state.get<WinState>(key);
      if (w) fold(w);
      else {
        w = { g, s, e: s + size, a: aggs.map((a) => a.init()) };
        fold(w);
        state.timer(w.e, key);
      }
      state.put(key, w);
      if (updates) touchedKeys.set(key, w);
    }
    return took;
  };
  /** Emits the windows closed by `closeAt` with the state on disk, found by their timers. */
  const tickOnDisk = (closeAt: number): TransformOutput[] => {
    const out: TransformOutput[] = [];
    // A bounded number per tick: when many windows end at once (all keys at a minute's end), their
    // results go out over several ticks and commits, not all held in memory at once.
    const keys = state.due(closeAt, TICK_WINDOWS);
    behind = keys.length === TICK_WINDOWS;
    for (const key of keys) {
      const w = state.get<WinState>(key);
      // Gone (merged into another session) or a session since extended past closeAt: its own timer comes.
      if (!w || w.e > closeAt) continue;
      out.push(row(w, o.emit === 'update' ? true : null));
      state.delete(key);
      touchedKeys.delete(key);
      if (type === 'session') dropSession(JSON.stringify(w.g), w.s);
    }
    if (o.emit === 'update') {
      for (const w of touchedKeys.values()) out.push(row(w, false));
      // An update marks the window emitted (a change event's next emission is an update).
      if (o.format === 'changes') for (const [key, w] of touchedKeys) state.put(key, w);
    }
    touchedKeys.clear();
    return out;
  };

  /**
   * A record as apply takes it: everything that can throw (its JSON, time, key and aggregated
   * values, into `vals`) comes before any state changes, so a dead-lettered record leaves no
   * trace. Null for a record that no window takes (a tombstone, a skipped delete).
   */
  let prepared: { rec: TransformInput; t: number; g: unknown[] } | null = null;
  const prepare = (rec: TransformInput): { rec: TransformInput; t: number; g: unknown[] } | null => {
    prepared = null;
    if (rec.value === null) return null;
    const scope = scopeOf(rec);
    const v = scope.value as { op?: unknown; source?: unknown } | null;
    if (o.deletes === 'skip' && v !== null && typeof v === 'object' && v.op === 'd' && v.source !== undefined) return null;
    const t = recordTime(rec, scope);
    const g = new Array<unknown>(groups.length);
    for (let i = 0; i < groups.length; i++) {
      const val = evaluate(groups[i].e, scope, groups[i].what);
      g[i] = typeof val === 'bigint' ? String(val) : (val ?? null);
    }
    for (let i = 0; i < aggs.length; i++) {
      const a = aggs[i];
      vals[i] = a.expr ? evaluate(a.expr, scope, aggWhat[i]) : null;
      // A value its aggregation cannot take (text for sum) throws here, before any window changes.
      a.check?.(vals[i]);
    }
    return (prepared = { rec, t, g });
  };

  return {
    open(s) {
      state = s;
      meta = { max: s.get<Meta>(META)?.max ?? -Infinity };
      savedMax = meta.max;
      open = new Map();
      byEnd = new Map();
      touched.clear();
      disk = s.onDisk;
      sessions.clear();
      touchedKeys.clear();
      for (const [k, v] of s.entries()) {
        if (k === META) continue;
        const w = v as WinState;
        if (disk) {
          s.timer(w.e, k);
          if (type === 'session') addSession(JSON.stringify(w.g), w.s);
        } else add(groupKey(w.g), { ref: s.ref(k, w), s: w.s, w, gone: false, next: null });
      }
    },

    shard(rec) {
      const p = prepare(rec);
      prepared = null;
      if (!p) return null;
      if (p.t > meta.max) meta.max = p.t;
      const gk = groupKey(p.g);
      return typeof gk === 'string' ? gk : String(gk);
    },

    // Every shard takes in every record's time: the watermark is the same in all of them. (A
    // record's own time never closes its own windows, which all end after it, so taking it in
    // before its apply changes nothing.)
    clock: () => meta.max,
    advance(clock) {
      if (clock > meta.max) meta.max = clock;
    },

    apply(rec) {
      const p = prepared?.rec === rec ? prepared : prepare(rec);
      prepared = null;
      if (!p) return [];
      const { t, g } = p;
      const closedBefore = watermark() - o.allowedLateness;
      const gk = groupKey(g);
      let took = false;
      if (disk) took = applyOnDisk(g, t, closedBefore, fold);
      else if (type === 'session') {
        if (t + gap > closedBefore) {
          took = true;
          const own: WinState = { g, s: t, e: t + gap, a: aggs.map((a) => a.init()) };
          fold(own);
          const mine: Entry[] = [];
          for (let x: Entry | null | undefined = open.get(gk); x; x = x.next) mine.push(x);
          const { w, merged } = mergeSessions(
            own,
            mine.map((x) => x.w),
            closedBefore,
          );
          for (const other of mine) if (merged.includes(other.w)) remove(gk, other);
          const e: Entry = { ref: state.ref(winKey(JSON.stringify(g), w.s), w), s: w.s, w, gone: false, next: null };
          add(gk, e);
          if (updates) touched.add(e);
        }
      } else {
        // Windows [s, s + size) holding t: aligned to the epoch, every `advance` ms.
        const last = Math.floor(t / advance) * advance;
        const head = open.get(gk);
        for (let s = last; s > t - size; s -= advance) {
          if (s + size <= closedBefore) continue;
          took = true;
          let e: Entry | undefined;
          for (let x: Entry | null | undefined = head; x; x = x.next) if (x.s === s) e = x;
          if (e) {
            fold(e.w);
            state.touch(e.ref);
          } else {
            const w: WinState = { g, s, e: s + size, a: aggs.map((a) => a.init()) };
            fold(w);
            e = { ref: state.ref(winKey(JSON.stringify(g), s), w), s, w, gone: false, next: null };
            add(gk, e);
          }
          if (updates) touched.add(e);
        }
      }
      // The watermark goes to the state once per batch (tick), not per record.
      if (t > meta.max) meta.max = t;
      if (took) return [];
      return [{ topic: o.late, key: rec.key, value: rec.value, headers: { ...rec.headers, 'sluice.late.window': o.name, 'sluice.late.watermark': new Date(closedBefore + o.allowedLateness).toISOString() } }];
    },

    behind: () => behind,

    tick(now) {
      if (o.time === 'processing' && now > meta.max) meta.max = now;
      if (meta.max !== savedMax) {
        state.put(META, { max: meta.max });
        savedMax = meta.max;
      }
      const out: TransformOutput[] = [];
      const closeAt = watermark() - o.allowedLateness;
      const due: number[] = [];
      for (const end of byEnd.keys()) if (end <= closeAt) due.push(end);
      due.sort((x, y) => x - y);
      if (disk) return tickOnDisk(closeAt);
      for (const end of due) {
        // Several windows close at one end: emit them in a stable order (by state key).
        const entries = byEnd.get(end)!.filter((e) => !e.gone && e.w.e === end).sort((x, y) => (x.ref.key < y.ref.key ? -1 : x.ref.key > y.ref.key ? 1 : 0));
        byEnd.delete(end);
        for (const e of entries) {
          out.push(row(e.w, o.emit === 'update' ? true : null));
          remove(groupKey(e.w.g), e);
        }
      }
      if (o.emit === 'update') for (const e of touched) out.push(row(e.w, false));
      touched.clear();
      return out;
    },
  };
}

