/**
 * The window processor's semantics on their own: which windows a record falls in, when a window
 * closes (watermark and allowed lateness), what is late, what each aggregation gives, session
 * merging, updates, and that state restored from its changelog continues the same computation.
 * Each result is compared with a reference the test computes by brute force from the definitions
 * (every window of every record, the watermark before each record).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StateStore } from '../../src/engine/state-store.ts';
import { percentileCont, parseAggregate } from '../../src/processors/window/aggregates.ts';
import { windowTransform } from '../../src/processors/window/window.ts';
import type { RecordTransform, TransformInput, TransformOutput } from '../../src/registry/spec.ts';
import { AGGS, byKey, close, config, key, parsed, rec, reference, workload, type Ev } from '../helpers/window-reference.ts';

function run(t: RecordTransform, events: Ev[], store = new StateStore()): { out: TransformOutput[]; late: TransformOutput[] } {
  t.open!(store);
  const out: TransformOutput[] = [];
  const late: TransformOutput[] = [];
  events.forEach((e, i) => {
    for (const o of t.apply(rec(e, i)) as TransformOutput[]) (o.topic === 'w.late' ? late : out).push(o);
    if (i % 7 === 6) out.push(...t.tick!(0));
  });
  out.push(...t.tick!(0));
  return { out, late };
}

describe('window processor', () => {
  it('tumbling: every aggregation of every closed window, late records apart, as the definitions say', () => {
    const evs = workload(3000, 7, 4000);
    const t = windowTransform(config({ window: { type: 'tumbling', size: '10s' }, watermark: '5s', aggregates: AGGS }));
    const { out, late } = run(t, evs);
    const want = reference(evs, { size: 10_000, advance: 10_000, delay: 5000, lateness: 0 });
    assert.ok(want.late.length > 50, 'the workload has late records');
    close(byKey(parsed(out)), byKey(want.rows));
    assert.deepEqual(parsed(late), want.late, 'late records go to the late topic, unchanged, in order');
    assert.equal(late[0].headers!['sluice.late.window'], 'w');
    // Each window once, keyed by the group-by value.
    assert.equal(new Set(parsed(out).map(key)).size, out.length);
    assert.equal(String(out[0].key), JSON.stringify(parsed(out)[0].user));
  });

  it('allowed lateness keeps windows open for records behind the watermark', () => {
    const evs = workload(3000, 11, 4000);
    const strict = reference(evs, { size: 10_000, advance: 10_000, delay: 1000, lateness: 0 });
    const lenient = reference(evs, { size: 10_000, advance: 10_000, delay: 1000, lateness: 30_000 });
    assert.ok(lenient.late.length < strict.late.length, 'the lateness takes records the strict windows refuse');
    const t = windowTransform(config({ window: { type: 'tumbling', size: '10s' }, watermark: '1s', allowedLateness: '30s', aggregates: AGGS }));
    const { out, late } = run(t, evs);
    close(byKey(parsed(out)), byKey(lenient.rows));
    assert.equal(late.length, lenient.late.length);
  });

  it('hopping: a record counts in each of its size/advance windows', () => {
    const evs = workload(2000, 3, 2000);
    const t = windowTransform(config({ window: { type: 'hopping', size: '10s', advance: '2500ms' }, watermark: '3s', aggregates: AGGS }));
    const { out } = run(t, evs);
    const want = reference(evs, { size: 10_000, advance: 2500, delay: 3000, lateness: 0 });
    close(byKey(parsed(out)), byKey(want.rows));
  });

  it('session windows merge records less than gap apart, also when a record bridges two sessions', () => {
    const at = (s: number) => 1_700_000_000_000 + s * 1000;
    const evs: Ev[] = [
      { user: 'a', amount: 1, merchant: 'x', ts: at(0) },
      { user: 'a', amount: 2, merchant: 'x', ts: at(15) },
      { user: 'b', amount: 5, merchant: 'y', ts: at(21) },
      { user: 'a', amount: 3, merchant: 'z', ts: at(8) }, // [8,18) bridges [0,10) and [15,25) with gap 10s
      { user: 'a', amount: 4, merchant: 'x', ts: at(45) },
      { user: 'b', amount: 6, merchant: 'y', ts: at(100) },
    ];
    const t = windowTransform(config({ window: { type: 'session', gap: '10s' }, watermark: '15s', aggregates: { n: 'count()', total: 'sum(amount)', merchants: 'count_distinct(merchant)' } }));
    const { out, late } = run(t, evs);
    assert.deepEqual(late, []);
    const rows = byKey(parsed(out));
    assert.deepEqual(rows, [
      { user: 'a', window_start: new Date(at(0)).toISOString(), window_end: new Date(at(25)).toISOString(), n: 3, total: 6, merchants: 2 },
      { user: 'a', window_start: new Date(at(45)).toISOString(), window_end: new Date(at(55)).toISOString(), n: 1, total: 4, merchants: 1 },
      { user: 'b', window_start: new Date(at(21)).toISOString(), window_end: new Date(at(31)).toISOString(), n: 1, total: 5, merchants: 1 },
    ]);
  });

  it('restores from its changelog and continues as if never stopped', async () => {
    const evs = workload(2000, 5, 4000);
    const c = config({ window: { type: 'tumbling', size: '10s' }, watermark: '5s', aggregates: AGGS });
    const whole = run(windowTransform(c), evs);
    // Stop after 1200 records; hand the state over as the changelog would (JSON), start a new transform.
    const first = new StateStore();
    const a = run(windowTransform(c), evs.slice(0, 1200), first);
    const copy = new StateStore();
    for (const [k, v] of first.entries()) copy.put(k, JSON.parse(JSON.stringify(v)));
    const b = run(windowTransform(c), evs.slice(1200), copy);
    assert.deepEqual(byKey(parsed([...a.out, ...b.out])), byKey(parsed(whole.out)));
    assert.equal(a.late.length + b.late.length, whole.late.length);
  });

  it('emit: update sends the current result after each batch, then the final one', () => {
    const at = (s: number) => 1_700_000_000_000 + s * 1000;
    const t = windowTransform(config({ window: { type: 'tumbling', size: '10s' }, emit: 'update', aggregates: { n: 'count()' } }));
    t.open!(new StateStore());
    t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: at(1) }, 0));
    assert.deepEqual(parsed(t.tick!(0)), [{ user: 'a', window_start: new Date(at(0)).toISOString(), window_end: new Date(at(10)).toISOString(), n: 1, final: false }]);
    assert.deepEqual(t.tick!(0), [], 'nothing changed, nothing sent');
    t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: at(2) }, 1));
    t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: at(12) }, 2));
    assert.deepEqual(
      parsed(t.tick!(0)).map((r) => [r.window_start, r.n, r.final]),
      [
        [new Date(at(0)).toISOString(), 2, true],
        [new Date(at(10)).toISOString(), 1, false],
      ],
    );
  });

  it('processing time: windows of the wall clock close on the tick', () => {
    const t = windowTransform(config({ window: { type: 'tumbling', size: '1s' }, time: 'processing', timestamp: undefined, aggregates: { n: 'count()' } }));
    t.open!(new StateStore());
    const now = Date.now();
    t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: 0 }, 0));
    t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: 0 }, 1));
    assert.deepEqual(t.tick!(now), []);
    const rows = parsed(t.tick!(now + 2000));
    assert.equal(rows.length, 1);
    assert.equal(rows[0].n, 2);
    assert.ok(Date.parse(rows[0].window_start) <= now + 1 && Date.parse(rows[0].window_end) > now - 1000);
  });

  it('a record whose values do not fit is refused before it touches the state', () => {
    const t = windowTransform(config({ window: { type: 'tumbling', size: '10s' }, aggregates: { total: 'sum(amount)' } }));
    const store = new StateStore();
    t.open!(store);
    assert.throws(() => t.apply(rec({ user: 'a', amount: 'lots' as never, merchant: 'x', ts: 1000 }, 0)), /w \(total\): "lots" is not a number/);
    assert.throws(() => t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: 'yesterday' as never }, 0)), /timestamp expression \(ts\) gave "yesterday"/);
    assert.equal(store.size, 0);
    assert.equal(store.pending, 0);
  });

  it('a full state stops with STATE_LIMIT and says what to change', () => {
    const t = windowTransform(config({ window: { type: 'tumbling', size: '10s' }, aggregates: { n: 'count()' } }));
    t.open!(new StateStore(3, 'processor w'));
    t.apply(rec({ user: 'a', amount: 1, merchant: 'x', ts: 1000 }, 0));
    t.apply(rec({ user: 'b', amount: 1, merchant: 'x', ts: 1000 }, 1));
    t.apply(rec({ user: 'c', amount: 1, merchant: 'x', ts: 1000 }, 2));
    assert.throws(() => t.apply(rec({ user: 'd', amount: 1, merchant: 'x', ts: 1000 }, 3)), (e: Error & { code?: string }) => e.code === 'STATE_LIMIT' && /holds 3 state entries.*raise state.maxKeys/.test(e.message));
  });

  it('aggregations parse with clear errors, and percentile interpolates as percentile_cont', () => {
    assert.deepEqual(parseAggregate('p', 'percentile(after.amount, 0.95)'), { name: 'p', fn: 'percentile', arg: 'after.amount', p: 0.95 });
    assert.deepEqual(parseAggregate('n', 'COUNT(*)'), { name: 'n', fn: 'count', arg: null });
    assert.throws(() => parseAggregate('x', 'median(a)'), /unknown aggregation median: use one of count, sum/);
    assert.throws(() => parseAggregate('x', 'sum()'), /sum\(\) needs an expression/);
    assert.throws(() => parseAggregate('x', 'percentile(a, 2)'), /fraction from 0 to 1/);
    assert.throws(() => parseAggregate('x', 'amount'), /function\(expression\)/);
    assert.equal(percentileCont([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(percentileCont([10, 20, 30, 40, 50], 0.9), 46);
    assert.equal(percentileCont([], 0.5), null);
  });
});

describe('window processor, global', () => {
  const src = { connector: 'postgresql', schema: 'public', table: 'lines' };
  const ev = (op: string, before: object | null, after: object | null, i: number): TransformInput => ({ topic: 'lines', partition: 0, offset: i, key: null, value: Buffer.from(JSON.stringify({ before, after, source: src, op })), timestamp: 0 });
  const cfgOf = (format: string) => ({ ...config({ groupBy: { sku: 'after.sku' }, timestamp: undefined, window: { type: 'global' }, aggregates: { lines: 'count()', qty: 'sum(after.qty)', mean: 'avg(after.qty)' }, format }) });

  it('keeps each key the aggregate of its current rows: updates and deletes take rows out, a key move too', async () => {
    const { globalTransform } = await import('../../src/processors/window/global.ts');
    const t = globalTransform(cfgOf('rows') as never);
    t.open!(new StateStore());
    // Brute-force reference: the table itself, as a map of id → row.
    const table = new Map<number, { sku: string; qty: number }>();
    const changes: [string, number, { sku: string; qty: number } | null][] = [
      ['c', 1, { sku: 'a', qty: 2 }], ['c', 2, { sku: 'a', qty: 3 }], ['c', 3, { sku: 'b', qty: 5 }],
      ['u', 1, { sku: 'a', qty: 7 }], ['u', 2, { sku: 'b', qty: 3 }], ['d', 3, null], ['c', 4, { sku: 'c', qty: 1 }], ['d', 4, null],
    ];
    const latest = new Map<string, unknown>();
    changes.forEach(([op, id, row], i) => {
      const before = table.get(id) ?? null;
      if (row) table.set(id, row);
      else table.delete(id);
      t.apply(ev(op, before && { id, ...before }, row && { id, ...row }, i));
      if (i % 3 === 2 || i === changes.length - 1) for (const o of t.tick!(0)) latest.set(String(o.key), o.value === null ? null : JSON.parse(String(o.value)));
    });
    const want = new Map<string, unknown>();
    for (const r of table.values()) {
      const w = (want.get(JSON.stringify(r.sku)) as { sku: string; lines: number; qty: number; mean: number }) ?? { sku: r.sku, lines: 0, qty: 0, mean: 0 };
      w.lines++;
      w.qty += r.qty;
      w.mean = w.qty / w.lines;
      want.set(JSON.stringify(r.sku), w);
    }
    // Keys whose rows are all gone end as tombstones (c had a row, then none: it was emitted and deleted).
    for (const [k, v] of latest) if (!want.has(k)) assert.equal(v, null, `key ${k} deleted`);
    assert.deepEqual(new Map([...latest].filter(([, v]) => v !== null)), want);
  });

  it('with format: changes, a key is created, updated and deleted as a table row', async () => {
    const { globalTransform } = await import('../../src/processors/window/global.ts');
    const t = globalTransform(cfgOf('changes') as never);
    t.open!(new StateStore());
    t.apply(ev('c', null, { id: 1, sku: 'a', qty: 2 }, 0));
    const [c] = t.tick!(1000);
    t.apply(ev('u', { id: 1, sku: 'a', qty: 2 }, { id: 1, sku: 'a', qty: 4 }, 1));
    const [u] = t.tick!(2000);
    t.apply(ev('d', { id: 1, sku: 'a', qty: 4 }, null, 2));
    const [d] = t.tick!(3000);
    const v = (o: TransformOutput) => JSON.parse(String(o.value));
    assert.deepEqual([v(c).op, v(c).after], ['c', { sku: 'a', lines: 1, qty: 2, mean: 2 }]);
    assert.deepEqual([v(u).op, v(u).after], ['u', { sku: 'a', lines: 1, qty: 4, mean: 4 }]);
    assert.deepEqual([v(d).op, v(d).before, v(d).after], ['d', { sku: 'a' }, null]);
    assert.deepEqual(JSON.parse(String(d.key)), { sku: 'a' });
    assert.ok(c.schema && c.headers?.s === c.schema.id && c.schema.keyColumns.join() === 'sku');
  });
});
