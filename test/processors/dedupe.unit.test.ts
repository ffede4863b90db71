/**
 * The dedupe processor on its own: the first record of an id passes, repeats within `within` of
 * the clock are dropped, a repeat later than that passes again, records without an id pass, and a
 * restart from the state continues the same. The reference is the definition applied by brute
 * force to the whole sequence.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StateStore } from '../../src/engine/state-store.ts';
import { dedupeProcessor, type DedupeProcessorConfig } from '../../src/processors/dedupe/spec.ts';
import { dedupeTransform } from '../../src/processors/dedupe/dedupe.ts';
import type { TransformOutput } from '../../src/registry/spec.ts';

const config = (raw: Record<string, unknown> = {}): DedupeProcessorConfig => {
  const written = { type: 'dedupe', name: 'd', inputs: ['events'], id: 'id', timestamp: 'ts', within: '10s', ...raw };
  return dedupeProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) as DedupeProcessorConfig;
};

interface Ev {
  n: number;
  id: string | null;
  ts: number;
}

function events(count: number): Ev[] {
  let x = 3;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: count }, (_, n) => ({ n, id: rnd() < 0.05 ? null : `c${Math.floor(rnd() * 300)}`, ts: 1_000_000 + n * 100 - Math.floor(rnd() * 2000) }));
}

function reference(evs: Ev[], within: number): number[] {
  let clock = -Infinity;
  const seen = new Map<string, number>();
  const out: number[] = [];
  for (const e of evs) {
    clock = Math.max(clock, e.ts);
    if (e.id === null) {
      out.push(e.n);
      continue;
    }
    const s = seen.get(e.id);
    if (s !== undefined && s + within >= clock) continue;
    seen.set(e.id, e.ts);
    out.push(e.n);
  }
  return out;
}

function run(evs: Ev[], store = new StateStore()): number[] {
  const t = dedupeTransform(config());
  t.open!(store);
  const out: TransformOutput[] = [];
  evs.forEach((e, i) => {
    out.push(...(t.apply({ topic: 'events', partition: 0, offset: e.n, key: null, value: Buffer.from(JSON.stringify(e)), timestamp: 0 }) as TransformOutput[]));
    if (i % 7 === 6) t.tick!(0);
  });
  t.tick!(0);
  return out.map((o) => JSON.parse(String(o.value)).n);
}

describe('dedupe processor', () => {
  it('passes first records and those without an id, drops repeats within the horizon, passes later ones', () => {
    const evs = events(5000);
    const want = reference(evs, 10_000);
    assert.ok(want.length < 4800 && want.length > 1000, `repeats to drop: ${5000 - want.length}`);
    assert.deepEqual(run(evs), want);
  });

  it('keeps its state near the horizon and continues from it after a restart', () => {
    const evs = events(5000);
    const store = new StateStore();
    const first = run(evs.slice(0, 2500), store);
    assert.ok(store.size < 400, `${store.size} ids held (300 ids, 10 s of events)`);
    const copy = new StateStore();
    for (const [k, v] of store.entries()) copy.put(k, JSON.parse(JSON.stringify(v)));
    assert.deepEqual([...first, ...run(evs.slice(2500), copy)], reference(evs, 10_000));
  });
});
