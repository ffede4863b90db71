/**
 * The interval join's semantics on their own: every pair of a left and a right record with the same
 * key and the right time within [t + lower, t + upper] of the left one is written exactly once,
 * whichever side comes first, records behind the watermark (the smaller of the two sides' largest
 * times, less the bound) are late and pair with nothing, and
 * eviction never loses a pair a later record could still make. The reference pairs records by the
 * definition, by brute force over all of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StateStore } from '../../src/engine/state-store.ts';
import { intervalJoinProcessor, signedMs, type IntervalJoinProcessorConfig } from '../../src/processors/interval-join/spec.ts';
import { intervalJoinTransform } from '../../src/processors/interval-join/join.ts';
import type { TransformInput, TransformOutput } from '../../src/registry/spec.ts';

interface Ev {
  side: 'L' | 'R';
  id: number;
  k: number;
  ts: number;
}

const config = (raw: Record<string, unknown>): IntervalJoinProcessorConfig => {
  const written = { type: 'interval-join', name: 'j', inputs: ['orders'], right: ['payments'], on: 'k', rightOn: 'k', timestamp: 'ts', rightTimestamp: 'ts', as: 'payment', ...raw };
  return intervalJoinProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) as IntervalJoinProcessorConfig;
};
const ctx = { pipeline: 't', logger: undefined as never, tableOf: () => ({ schema: '', table: '' }), isSide: (t: string) => t === 'payments' };
const rec = (e: Ev, i: number): TransformInput => ({ topic: e.side === 'L' ? 'orders' : 'payments', partition: 0, offset: i, key: Buffer.from(JSON.stringify({ id: e.id })), value: Buffer.from(JSON.stringify(e)), timestamp: 0 });

function events(n: number, seed: number): Ev[] {
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  return Array.from({ length: n }, (_, i) => ({ side: rnd() < 0.5 ? 'L' : 'R', id: i, k: Math.floor(rnd() * 30), ts: 1_000_000 + i * 100 - (rnd() < 0.03 ? 20_000 : Math.floor(rnd() * 3000)) }) as Ev);
}

function reference(evs: Ev[], lower: number, upper: number, delay: number) {
  // The watermark before each record: the smaller of the two sides' largest times, less the delay.
  const max = { L: -Infinity, R: -Infinity };
  const ok: Ev[] = [];
  const late: number[] = [];
  for (const e of evs) {
    if (e.ts < Math.min(max.L, max.R) - delay) late.push(e.id);
    else ok.push(e);
    max[e.side] = Math.max(max[e.side], e.ts);
  }
  const pairs: string[] = [];
  for (const l of ok) if (l.side === 'L') for (const r of ok) if (r.side === 'R' && r.k === l.k && r.ts - l.ts >= lower && r.ts - l.ts <= upper) pairs.push(`${l.id}-${r.id}`);
  return { pairs: pairs.sort(), late };
}

function run(cfg: IntervalJoinProcessorConfig, evs: Ev[], store = new StateStore(), base = 0) {
  const t = intervalJoinTransform(cfg, ctx);
  t.open!(store);
  const out: TransformOutput[] = [];
  evs.forEach((e, i) => {
    out.push(...(t.apply(rec(e, base + i)) as TransformOutput[]));
    if (i % 5 === 4) t.tick!(0);
  });
  t.tick!(0);
  return { out, store };
}

describe('interval join', () => {
  for (const [lower, upper] of [['-2s', '5s'], ['0', '10s'], ['-8s', '-1s']]) {
    it(`pairs each left and right record once when the right time is in [t ${lower}, t + ${upper}], late ones apart`, () => {
      const evs = events(4000, 17);
      const cfg = config({ between: { lower, upper }, watermark: '4s' });
      const { out, store } = run(cfg, evs);
      const want = reference(evs, signedMs(lower), signedMs(upper), 4000);
      const joined = out.filter((o) => o.topic === 'j').map((o) => JSON.parse(String(o.value)));
      const pairs = joined.map((j) => `${j.id}-${j.payment.id}`).sort();
      assert.ok(want.pairs.length > 500 && want.late.length > 20, 'a workload with pairs and late records');
      assert.deepEqual(pairs, want.pairs);
      assert.deepEqual(out.filter((o) => o.topic === 'j.late').map((o) => JSON.parse(String(o.value)).id), want.late);
      for (const j of joined) assert.equal(j.k, j.payment.k);
      // Eviction keeps the state near the records that can still pair (not all 4000).
      assert.ok(store.size < 1000, `state holds ${store.size} entries`);
    });
  }

  it('continues from its state as if never stopped', () => {
    const evs = events(3000, 5);
    const cfg = config({ between: { lower: '-2s', upper: '5s' }, watermark: '4s' });
    const whole = run(cfg, evs).out.map((o) => String(o.value)).sort();
    const first = run(cfg, evs.slice(0, 1700));
    const copy = new StateStore();
    for (const [k, v] of first.store.entries()) copy.put(k, JSON.parse(JSON.stringify(v)));
    const second = run(cfg, evs.slice(1700), copy, 1700);
    assert.deepEqual([...first.out, ...second.out].map((o) => String(o.value)).sort(), whole);
  });

  it('reads signed bounds', () => {
    assert.equal(signedMs('-5m'), -300_000);
    assert.equal(signedMs('10s'), 10_000);
    assert.equal(signedMs('0'), 0);
  });
});
