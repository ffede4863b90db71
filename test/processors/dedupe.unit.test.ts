/**
 * The dedupe processor on its own: the first record of an id passes, repeats within `within` of
 * the clock are dropped, a repeat later than that passes again, records without an id pass, and a
 * restart from the state continues the same. The reference is the definition applied by brute
 * force to the whole sequence.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StateStore } from '../../src/engine/state-store.ts';
import { dedupeTransform } from '../../src/processors/dedupe/dedupe.ts';
import type { TransformOutput } from '../../src/registry/spec.ts';
import { dedupeConfig as config, dedupeEvents as events, dedupeReference as reference, type DedupeEv as Ev } from '../helpers/dedupe-reference.ts';

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
