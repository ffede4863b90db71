/**
 * The window processor's test references, shared by its unit tests and the on-disk state tests:
 * a workload of out-of-order events and the windows the definitions give for it, computed by
 * brute force (every window of every record, the watermark before each record).
 */
import assert from 'node:assert/strict';
import { windowProcessor, type WindowProcessorConfig } from '../../src/processors/window/spec.ts';
import type { TransformInput, TransformOutput } from '../../src/registry/spec.ts';
import { StateStore } from '../../src/engine/state-store.ts';
import { windowTransform } from '../../src/processors/window/window.ts';

export interface Ev {
  user: string;
  amount: number;
  merchant: string;
  ts: number;
}

export const config = (raw: Record<string, unknown>): WindowProcessorConfig & { pipeline: string } => {
  const written = { type: 'window', name: 'w', inputs: ['events'], groupBy: { user: 'user' }, timestamp: 'ts', ...raw };
  return { ...(windowProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) as WindowProcessorConfig), pipeline: 't' };
};

export const rec = (e: Ev, i: number): TransformInput => ({ topic: 'events', partition: 0, offset: i, key: Buffer.from(JSON.stringify(e.user)), value: Buffer.from(JSON.stringify(e)), timestamp: 0 });

export const AGGS = { n: 'count()', total: 'sum(amount)', mean: 'avg(amount)', lo: 'min(amount)', hi: 'max(amount)', merchants: 'count_distinct(merchant)', p90: 'percentile(amount, 0.9)' };

export const parsed = (outs: TransformOutput[]) => outs.map((o) => JSON.parse(String(o.value)));

/** The reference: windows of each record by definition, the watermark before each record, late records, closed windows. */
export function reference(events: Ev[], o: { size: number; advance: number; delay: number; lateness: number }) {
  let max = -Infinity;
  const windows = new Map<string, { user: string; s: number; e: number; evs: Ev[] }>();
  const late: Ev[] = [];
  for (const ev of events) {
    const wm = max - o.delay;
    let took = false;
    for (let s = Math.floor((ev.ts - o.size) / o.advance) * o.advance; s <= ev.ts; s += o.advance) {
      if (!(s <= ev.ts && ev.ts < s + o.size)) continue;
      if (s + o.size + o.lateness <= wm) continue;
      took = true;
      const k = `${ev.user}|${s}`;
      if (!windows.has(k)) windows.set(k, { user: ev.user, s, e: s + o.size, evs: [] });
      windows.get(k)!.evs.push(ev);
    }
    if (!took) late.push(ev);
    max = Math.max(max, ev.ts);
  }
  const wm = max - o.delay;
  const closed = [...windows.values()].filter((w) => w.e + o.lateness <= wm);
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  const p90 = (xs: number[]) => {
    const s = sorted(xs);
    const at = 0.9 * (s.length - 1);
    return s[Math.floor(at)] + (s[Math.ceil(at)] - s[Math.floor(at)]) * (at - Math.floor(at));
  };
  const rows = closed.map((w) => {
    const a = w.evs.map((e) => e.amount);
    return { user: w.user, window_start: new Date(w.s).toISOString(), window_end: new Date(w.e).toISOString(), n: a.length, total: a.reduce((x, y) => x + y, 0), mean: a.reduce((x, y) => x + y, 0) / a.length, lo: Math.min(...a), hi: Math.max(...a), merchants: new Set(w.evs.map((e) => e.merchant)).size, p90: p90(a) };
  });
  return { rows, late };
}

export const key = (r: { user: string; window_start: string }) => `${r.user}|${r.window_start}`;
export const byKey = <T extends { user: string; window_start: string }>(rows: T[]) => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : 1));

/** Events with out-of-order times: mostly within `jitter` of a rising clock, some far behind. */
export function workload(n: number, seed: number, jitter: number): Ev[] {
  let x = seed;
  // A 32-bit LCG in exact integer arithmetic (Math.imul), so the sequence does not collapse.
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  const evs: Ev[] = [];
  for (let i = 0; i < n; i++) {
    const clock = 1_700_000_000_000 + i * 250;
    const back = rnd() < 0.05 ? 20_000 + Math.floor(rnd() * 40_000) : Math.floor(rnd() * jitter);
    evs.push({ user: `u${Math.floor(rnd() * 7)}`, amount: Math.round(rnd() * 10_000) / 100, merchant: `m${Math.floor(rnd() * 5)}`, ts: clock - back });
  }
  return evs;
}

export function close(actual: Record<string, number | string>[], expected: Record<string, number | string>[]) {
  assert.equal(actual.length, expected.length, 'windows emitted');
  actual.forEach((a, i) => {
    for (const [k, v] of Object.entries(expected[i])) {
      if (typeof v === 'number' && !Number.isInteger(v)) assert.ok(Math.abs((a[k] as number) - v) < 1e-6, `${key(a as never)} ${k}: ${a[k]} ≠ ${v}`);
      else assert.equal(a[k], v, `${key(a as never)} ${k}`);
    }
  });
}

/** Session windows of a workload whose sessions end and start (gaps of 30 s every 50 events, from the 10th of each 50). */
export const sessionWorkload = (n: number, users: number, spread: number): Ev[] => workload(n, users, spread).map((e, i) => ({ ...e, ts: e.ts + (i % 50 < 10 ? 0 : 30_000 * Math.floor(i / 50)) }));

/** The windows `c` gives over `evs` in one thread with its state in memory: the closed windows' rows (at least 100 of them). */
export function inOneThread(c: WindowProcessorConfig & { pipeline: string }, evs: Ev[]): { user: string; window_start: string }[] {
  const t = windowTransform(c);
  t.open!(new StateStore());
  const out: TransformOutput[] = [];
  evs.forEach((e, i) => out.push(...(t.apply(rec(e, i)) as TransformOutput[]), ...t.tick!(0)));
  const rows = parsed(out.filter((r) => r.topic === 'w'));
  assert.ok(rows.length > 100, `windows closed (${rows.length})`);
  return rows;
}
