/**
 * The expect processor's checks on their own (no service): flat rows and events as well as
 * change events, the referential table fed by flat rows (a tombstone deletes by record key),
 * unique values leaving their window and surviving a restart through the state, volume verdicts
 * on a clock the test drives, and config mistakes reported at their line.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { Registry } from '../../src/core/metrics.ts';
import { StateStore } from '../../src/engine/state-store.ts';
import { planTopology } from '../../src/engine/topology.ts';
import { expectTransform } from '../../src/processors/expect/expect.ts';
import type { ExpectProcessorConfig } from '../../src/processors/expect/spec.ts';
import { VolumeCheck } from '../../src/quality/expectations/volume.ts';
import type { RecordTransform, TransformInput } from '../../src/registry/spec.ts';

const pipeline = (processors: string) => `name: p\nlog: {dir: /tmp/sluice-unused}\nprocessors:\n${processors}`;

function configOf(expectations: string): ExpectProcessorConfig {
  const y = pipeline(`  - name: q\n    type: expect\n    inputs: [topic:events]\n    expectations:\n${expectations}`);
  return parseConfig(y, 'p.yaml', {}).processors[0] as unknown as ExpectProcessorConfig;
}

function problems(processors: string): string {
  try {
    parseConfig(pipeline(processors), 'p.yaml', {});
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('the config was accepted');
}

const quiet = createLogger({ level: 'error' });

function transform(expectations: string, side?: (t: string) => boolean) {
  const registry = new Registry();
  const t = expectTransform(configOf(expectations), { pipeline: 'p', logger: quiet, tableOf: () => ({ schema: 's', table: 't' }), isSide: side, registry });
  const store = new StateStore();
  t.open?.(store);
  return { t, store, registry };
}

let offset = 0;
const rec = (value: unknown, o: Partial<TransformInput> = {}): TransformInput => ({ topic: 'events', partition: 0, offset: offset++, key: null, value: value === null ? null : Buffer.from(JSON.stringify(value)), timestamp: 1_000_000, ...o });

/** What apply does with a record: 'pass', or the error's code and message. */
function verdict(t: RecordTransform, r: TransformInput): string {
  try {
    const out = t.apply(r) as unknown[];
    return out.length ? 'pass' : 'none';
  } catch (e) {
    const err = e as { code?: string; message: string; deadLetter?: boolean; halt?: boolean };
    return `${err.code}${err.deadLetter ? ' dlq' : ''}${err.halt ? ' halt' : ''}: ${err.message}`;
  }
}

const statusOf = (t: RecordTransform) => (t.status!().expectations as { name: string; passed: number; failed: number }[]).map((x) => `${x.name} ${x.passed}/${x.failed}`);

describe('expect processor (checks)', () => {
  it('checks flat rows: null, range, regex, allowed, expr, schema by JSON type; null passes all but notNull', () => {
    const { t, registry } = transform(`      - name: nn
        notNull: [id, amount]
      - name: rng
        range: {field: amount, min: 0, max: 100}
        action: warn
      - name: re
        regex: {field: email, pattern: '^[a-z]+@x$', flags: i}
      - name: al
        allowed: {field: tier, values: [gold, 10]}
      - name: ex
        expr: "amount <= limit"
      - name: sc
        schema: {required: {id: integer, email: string, tags: array}}
`);
    assert.equal(verdict(t, rec({ id: 1, amount: '5.50', email: 'A@X', tier: 'gold', limit: 10, tags: [] })), 'pass');
    assert.equal(verdict(t, rec({ id: 2, amount: 5, email: null, tier: '10.00', limit: null, tags: [] })), 'pass', 'nulls pass; "10.00" is 10');
    assert.equal(verdict(t, rec({ id: 3, amount: 500, email: 'a@x', tier: 'gold', limit: 1000, tags: [] })), 'pass', 'a warn failure passes');
    assert.equal(verdict(t, rec({ id: null, amount: 5, email: 'a@y', tier: 'silver', limit: 1, tags: 'x' })), "EXPECTATION_FAILED dlq: processor q: expectation nn (notNull): id is null; expectation re (regex): email = 'a@y' does not match ^[a-z]+@x$; expectation al (allowed): tier = 'silver' is not one of 'gold', 10; expectation ex (expr): amount <= limit is false; expectation sc (schema): column tags = 'x' is not array");
    assert.equal(verdict(t, rec({ id: 1.5, amount: 'abc', tags: [] })), "EXPECTATION_FAILED dlq: processor q: expectation rng (range, warn): amount = 'abc' is not a number; expectation sc (schema): column id = 1.5 is not integer; column email is missing");
    assert.equal(verdict(t, rec(null)), 'pass', 'a tombstone passes unchecked');
    assert.deepEqual(statusOf(t), ['nn 4/1', 'rng 3/2', 're 4/1', 'al 4/1', 'ex 4/1', 'sc 3/2']);
    assert.match(registry.render(), /sluice_expectation_checks_total\{pipeline="p",processor="q",expectation="rng",result="fail"\} 2\n/);
  });

  it('skips deletes and truncates of change events; `when` narrows an expectation', () => {
    const { t } = transform(`      - name: pos
        range: {field: after.n, min: 0}
        when: "op != 'r'"
`);
    const ev = (op: string, n: number | null) => rec({ op, before: op === 'd' ? { n: -1 } : null, after: n === null ? null : { n }, source: {} });
    assert.equal(verdict(t, ev('r', -1)), 'pass', 'snapshot rows are left out by when');
    assert.equal(verdict(t, ev('d', null)), 'pass');
    assert.equal(verdict(t, ev('t', null)), 'pass');
    assert.match(verdict(t, ev('c', -1)), /^EXPECTATION_FAILED dlq: .*after\.n = -1 is below min 0$/);
    assert.deepEqual(statusOf(t), ['pos 0/1']);
  });

  it('stops at a record of a stop expectation, before anything else is decided', () => {
    const { t } = transform(`      - name: a
        notNull: [x]
      - name: b
        range: {field: x, max: 10}
        action: stop
`);
    assert.match(verdict(t, rec({ x: 11 }, { topic: 'events', partition: 2, offset: 41 })), /^EXPECTATION_STOP halt: processor q stopped: expectation b \(range\) failed at events\/2\/41: x = 11 is above max 10\./);
  });

  it('keeps a referenced table from flat rows (a tombstone deletes by record key) and checks against it', () => {
    const side = (topic: string) => topic === 'customers';
    const { t } = transform(`      - name: ref
        referential: {field: customer, table: customers, key: id}
`, side);
    const row = (id: number, v: unknown) => rec(v, { topic: 'customers', key: Buffer.from(JSON.stringify({ id })) });
    assert.equal(verdict(t, row(1, { id: 1, name: 'a' })), 'none', 'table records are not passed on');
    assert.equal(verdict(t, row(2, { id: 2, name: 'b' })), 'none');
    assert.equal(verdict(t, rec({ customer: '1' })), 'pass', 'text "1" finds 1');
    assert.equal(verdict(t, row(1, null)), 'none');
    assert.equal(verdict(t, rec({ customer: 1 })), 'EXPECTATION_FAILED dlq: processor q: expectation ref (referential): customer = 1 has no row in customers (id)');
    assert.equal(verdict(t, rec({ customer: 2 })), 'pass');
    assert.equal(verdict(t, rec({ customer: null })), 'pass');
  });

  it('remembers unique values of kept records for the window, across a restart from the state', () => {
    const { t, store } = transform(`      - name: u
        unique: {fields: [code, region], window: 10s}
`);
    const at = (code: string, ts: number, key: string | null = null, region = 'eu') => rec({ code, region }, { timestamp: ts, key: key === null ? null : Buffer.from(key) });
    assert.equal(verdict(t, at('A', 1000, 'k1')), 'pass');
    assert.equal(verdict(t, at('A', 2000, 'k1')), 'pass', 'the same row again');
    assert.equal(verdict(t, at('A', 2000, 'k1', 'us')), 'pass', 'another region');
    assert.match(verdict(t, at('A', 3000, 'k2')), /^EXPECTATION_FAILED dlq: .*code = 'A', region = 'eu' was seen on another row 1s before \(within 10s\)$/);
    assert.equal(verdict(t, at('B', 4000)), 'pass');
    t.tick!(0);
    // A restart: a new transform on a copy of the state.
    const copy = new StateStore();
    for (const [k, v] of store.entries()) copy.put(k, JSON.parse(JSON.stringify(v)));
    const again = expectTransform(configOf(`      - name: u
        unique: {fields: [code, region], window: 10s}
`), { pipeline: 'p', logger: quiet, tableOf: () => ({ schema: 's', table: 't' }) });
    again.open!(copy);
    assert.match(verdict(again, at('B', 5000)), /seen on another row/);
    assert.equal(verdict(again, at('C', 20_000)), 'pass');
    again.tick!(0);
    assert.equal(verdict(again, at('B', 20_001)), 'pass', 'B left the window (the clock is at 20 s)');
    assert.ok([...copy.entries()].every(([k]) => !k.includes('sA')), 'A expired from the state');
  });

  it('volume: one verdict per window, max at the record that passes it, min when a window ends, the first window not held to min', () => {
    const v = new VolumeCheck({ window: 1000, min: 2, max: 3 }, 10_500);
    assert.deepEqual(v.record(10_600), []);
    assert.deepEqual(v.tick(11_000), [], 'the partial first window is not judged against min');
    for (const t of [11_100, 11_200, 11_300]) assert.deepEqual(v.record(t), []);
    assert.deepEqual(v.record(11_400), [{ pass: false, times: 1, reason: '4 records in the window 00:00:11–00:00:12 UTC (1s) so far, above max 3' }]);
    assert.deepEqual(v.record(11_500), [], 'once per window');
    assert.deepEqual(v.record(12_100), [], 'the failed window is not judged again');
    assert.deepEqual(v.record(12_200), []);
    assert.deepEqual(v.tick(13_000), [{ pass: true, times: 1 }]);
    assert.deepEqual(v.tick(16_500), [
      { pass: false, times: 1, reason: '0 records in the window 00:00:13–00:00:14 UTC (1s), below min 2' },
      { pass: false, times: 2, reason: '0 records in 2 windows from 00:00:14–00:00:15 UTC (1s) on, below min 2' },
    ]);
  });

  it('volume with stop: a window below min stops the processor from its tick', () => {
    const { t } = transform(`      - name: steady
        volume: {window: 1s, min: 5}
        action: stop
`);
    assert.equal(verdict(t, rec({ a: 1 })), 'pass');
    assert.deepEqual(t.tick!(Date.now()), [], 'the partial first window is not held to min');
    assert.throws(() => t.tick!(Date.now() + 5000), (e: Error & { code: string; halt?: boolean }) => e.code === 'EXPECTATION_STOP' && e.halt === true && /expectation steady \(volume\) failed: 0 records in .* below min 5/.test(e.message));
  });

  it('tells the referenced tables apart: the engine names the table entry of each side topic', () => {
    const cfg = parseConfig(
      `name: shop
source: {type: postgres, connection: {database: shop}}
processors:
  - name: flat
    type: unwrap
    inputs: [shop.public.payments]
  - name: q
    type: expect
    inputs: [shop.public.orders]
    expectations:
      - {name: c, referential: {field: after.customer_id, table: shop.public.customers, key: id}}
      - {name: p, referential: {field: after.id, table: flat, key: order_id}}
      - {name: c2, referential: {field: after.buyer_id, table: shop.public.customers}}
`,
      'p.yaml',
      {},
    );
    const q = planTopology(cfg).processors.get('q')!;
    assert.equal(q.sideEntry!('shop.public.customers'), 'shop.public.customers');
    assert.equal(q.sideEntry!('flat.shop.public.payments'), 'flat');
    assert.equal(q.sideEntry!('shop.public.orders'), undefined);
    assert.equal(q.reads('shop.public.orders') && q.reads('flat.shop.public.payments') && q.reads('shop.public.customers'), true);
  });

  it('reports config mistakes at their line', () => {
    const y = `  - name: q
    type: expect
    inputs: [topic:t]
    expectations:
      - name: two
        notNull: [a]
        range: {field: a, min: 0}
      - name: none
        action: warn
      - name: re
        regex: {field: a, pattern: "a(b"}
      - name: vol
        volume: {window: 1m, max: 5}
        action: dlq
      - name: re
        expr: "a +"
      - name: r2
        range: {field: a}
`;
    const msg = problems(y);
    const line = (text: string, nth = 1) => {
      let n = 0;
      return pipeline(y).split('\n').findIndex((l) => l.includes(text) && ++n === nth) + 1;
    };
    assert.match(msg, new RegExp(`p\\.yaml:${line('range: {field: a, min: 0}')}:\\d+: .*expectation two has 2 checks \\(notNull, range\\)`));
    assert.match(msg, new RegExp(`p\\.yaml:${line('name: none')}:\\d+: .*expectation none has no check`));
    assert.match(msg, new RegExp(`p\\.yaml:${line('pattern: "a(b"')}:\\d+: .*not a valid regular expression`));
    assert.match(msg, new RegExp(`p\\.yaml:${line('action: dlq')}:\\d+: .*volume checks windows, not records.*use action warn or stop`));
    assert.match(msg, new RegExp(`p\\.yaml:${line('name: re', 2)}:\\d+: .*two expectations are named re`));
    assert.match(msg, new RegExp(`p\\.yaml:${line('expr: "a +"')}:\\d+: .*unexpected end of expression`));
    assert.match(msg, new RegExp(`p\\.yaml:${line('range: {field: a}')}:\\d+: .*a range needs min, max or both`));
    assert.match(problems(`  - name: q
    type: expect
    expectations:
      - name: x
        notnull: [a]
`), /p\.yaml:8:9: .*notnull: unknown key \(did you mean .notNull.\?\); allowed: name, action, when, notNull/);
  });
});
