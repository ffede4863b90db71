/**
 * Data-quality expectations in a running PostgreSQL pipeline (seed 002 §5: non-null keys, numeric
 * ranges, referential consistency order → customer). The test inserts orders, each with the
 * expectations it violates written beside it: that list is the truth the output, the dead-letter
 * topic, status.json and /metrics are held to.
 *
 * - `dlq` failures are in `<pipeline>.dlq` with each reason and are not in the output;
 * - `warn` failures pass through, counted;
 * - `unique` remembers only what was kept (a dead-lettered code is free), and an update of the
 *   same row is no duplicate; `referential` follows the customers table (a deleted customer is
 *   gone); `schema` notices a retyped column; `freshness` and `volume` (max, and min on idle
 *   windows) count;
 * - a `stop` expectation stops its processor at the record with EXPECTATION_STOP, having
 *   written everything before it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { Registry } from '../../src/core/metrics.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const P = 'xq';

/** One order and the expectations of processor q it violates. */
interface Order {
  id: number;
  customer_id: number | null;
  amount: number;
  status: string;
  email: string;
  code: string | null;
  /** Minutes before now of created_at. */
  age?: number;
  fails: string[];
}

const DLQ_ACTIONS = new Set(['customer_present', 'positive_amount', 'known_status', 'unique_code', 'known_customer', 'order_columns']);
const RECORD_EXPECTATIONS = ['customer_present', 'positive_amount', 'email_format', 'known_status', 'unique_code', 'known_customer', 'fresh', 'big_orders_paid', 'order_columns'];

const o = (id: number, customer_id: number | null, amount: number, status: string, email: string, code: string | null, fails: string[] = [], age = 0): Order => ({ id, customer_id, amount, status, email, code, age, fails });

// Phase 1: customers 1..10 are in the table state.
const batchA: Order[] = [
  o(1, 1, 100, 'new', 'a@x.io', 'A1'),
  o(2, null, 50, 'new', 'b@x.io', 'A2', ['customer_present']),
  o(3, 2, -5, 'new', 'c@x.io', 'A3', ['positive_amount']),
  o(4, 3, 20, 'paid', 'not-an-email', 'A4', ['email_format']),
  o(5, 4, 30, 'lost', 'e@x.io', 'A5', ['known_status']),
  o(6, 999, 40, 'new', 'f@x.io', 'A6', ['known_customer']),
  o(7, 5, 60, 'shipped', 'g@x.io', 'A7', ['fresh'], 10),
  o(8, 6, 6000, 'new', 'h@x.io', 'A8', ['big_orders_paid']),
  o(9, null, -1, 'x', 'bad', 'A9', ['customer_present', 'positive_amount', 'email_format', 'known_status', 'fresh'], 10),
  o(10, 7, 20000, 'paid', 'j@x.io', 'A10', ['positive_amount']),
  o(11, 8, 11, 'new', 'k@x.io', 'A11'),
  o(12, 9, 12, 'paid', 'l@x.io', 'A12'),
  o(13, 10, 13, 'shipped', 'm@x.io', 'A13'),
  o(14, 1, 14, 'new', 'n@x.io', 'A14'),
  o(15, 2, 15, 'new', 'o@x.io', null),
];
// Phase 2: customer 10 deleted; codes of kept orders (1; 4, kept with a warning) are taken, order 3's (dead-lettered) is free.
const batchB: Order[] = [
  o(16, 10, 16, 'new', 'p@x.io', 'B16', ['known_customer']),
  o(17, 3, 17, 'new', 'q@x.io', 'A1', ['unique_code']),
  o(18, 3, 18, 'new', 'r@x.io', 'A4', ['unique_code']),
  o(19, 3, 19, 'new', 's@x.io', 'A3'),
];
// Phase 3: orders.status retyped to varchar(20).
const batchC: Order[] = [o(21, 1, 21, 'new', 't@x.io', 'C21', ['order_columns'])];
// Phase 4: an amount the guard processor stops at.
const batchD: Order[] = [o(22, 1, 2_000_000, 'paid', 'u@x.io', 'D22', ['positive_amount', 'order_columns'])];

describe('expect processor', () => {
  const f = useDatabase(`
    CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
    CREATE TABLE orders (id int PRIMARY KEY, customer_id int, amount numeric(10,2), status text, email text, code text, created_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
  `);

  it('dead-letters, warns and stops as each expectation says, with counts equal to the violations inserted', async () => {
    const yaml = pipelineYaml(
      P,
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxDelayMs: 5
processors:
  - name: q
    type: expect
    inputs: [${P}.public.orders]
    state: {commitInterval: 50ms}
    expectations:
      - name: customer_present
        notNull: [after.customer_id]
      - name: positive_amount
        range: {field: after.amount, min: 0, max: 10000}
      - name: email_format
        regex: {field: after.email, pattern: '^[^@ ]+@[^@ ]+$'}
        action: warn
      - name: known_status
        allowed: {field: after.status, values: [new, paid, shipped]}
      - name: unique_code
        unique: {fields: [after.code], window: 1h}
      - name: known_customer
        referential: {field: after.customer_id, table: ${P}.public.customers, key: id}
      - name: fresh
        freshness: {field: after.created_at, maxAge: 5m}
        action: warn
      - name: big_orders_paid
        expr: "after.amount < 5000 || after.status == 'paid'"
        action: warn
      - name: burst
        volume: {window: 1d, max: 20}
      - name: order_columns
        schema: {required: {amount: numeric, customer_id: integer, status: text}}
  - name: guard
    type: expect
    inputs: [${P}.public.orders]
    expectations:
      - name: no_huge_amount
        range: {field: after.amount, max: 1000000}
        action: stop
      - name: trickle
        volume: {window: 1s, min: 1000}
`,
    );
    const cfgPath = join(f.tmp.dir, `${P}.yaml`);
    writeFileSync(cfgPath, yaml);
    const cfg = parseConfig(yaml, cfgPath, {});
    const registry = new Registry();
    const insert = async (os: Order[]) => {
      for (const x of os) {
        await f.db.client.query(`INSERT INTO orders (id, customer_id, amount, status, email, code, created_at) VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(mins => $7))`, [x.id, x.customer_id, x.amount, x.status, x.email, x.code, x.age ?? 0]);
      }
    };
    const stateKeys = async () => (await readAll(cfg.log, `${P}.state.q`)).filter((r) => String(r.key).startsWith(`r\u0000${P}.public.customers`));
    const outIds = async (p: string) => (await readAll(cfg.log, `${p}.${P}.public.orders`)).length;
    const dlq = async () => (await readAll(cfg.log, `${P}.dlq`)).filter((r) => r.headers?.['sluice.processor'] === 'q');
    const status = () => JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
    const dead = (os: Order[]) => os.filter((x) => x.fails.some((e) => DLQ_ACTIONS.has(e))).length;
    let seen = 0; // records q has taken (output + dead letters)

    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger(), registry });
    try {
      await waitUntil('the customers in the referential state', async () => (await stateKeys()).length >= 10, 30_000);
      await insert(batchA);
      seen += batchA.length;
      await waitUntil('batch A checked', async () => (await outIds('q')) + (await dlq()).length >= seen, 20_000);

      await f.db.client.query(`DELETE FROM customers WHERE id = 10`);
      await waitUntil('customer 10 out of the state', async () => (await stateKeys()).some((r) => r.value === null && String(r.key).endsWith('n10')), 20_000);
      await insert(batchB);
      await f.db.client.query(`UPDATE orders SET amount = 110 WHERE id = 1`); // same row, same code: no duplicate
      await f.db.client.query(`DELETE FROM orders WHERE id = 11`); // a delete passes unchecked (its tombstone too)
      seen += batchB.length + 3;
      await waitUntil('batch B checked', async () => (await outIds('q')) + (await dlq()).length >= seen, 20_000);

      await f.db.client.query(`ALTER TABLE orders ALTER COLUMN status TYPE varchar(20)`);
      await insert(batchC);
      seen += batchC.length;
      await waitUntil('batch C checked', async () => (await outIds('q')) + (await dlq()).length >= seen, 20_000);

      // A one-second volume window of the guard has ended (below its min) before the record that stops it.
      await waitUntil('a trickle window to end', async () => (status().processors.find((p: any) => p.name === 'guard')?.expectations.find((x: any) => x.name === 'trickle')?.failed ?? 0) >= 1, 20_000);
      await insert(batchD);
      seen += batchD.length;
      await waitUntil('batch D checked', async () => (await outIds('q')) + (await dlq()).length >= seen, 20_000);
      await waitUntil('the guard stopped', async () => status().processors.find((p: any) => p.name === 'guard')?.state === 'failed', 20_000);
    } finally {
      ac.abort();
      await run;
    }

    const all = [...batchA, ...batchB, ...batchC, ...batchD];
    const kept = all.filter((x) => !x.fails.some((e) => DLQ_ACTIONS.has(e)));
    // The output: the kept orders unchanged, the update of order 1, the delete of order 11 and its tombstone.
    const out = await readAll(cfg.log, `q.${P}.public.orders`);
    assert.deepEqual(out.filter((r) => r.value?.op === 'c').map((r) => r.value.after.id).sort((a, b) => a - b), kept.map((x) => x.id).sort((a, b) => a - b));
    assert.deepEqual(out.filter((r) => r.value?.op === 'u').map((r) => [r.value.after.id, r.value.after.amount]), [[1, '110.00']]);
    assert.deepEqual(out.filter((r) => r.value?.op === 'd').map((r) => r.value.before.id), [11]);
    assert.equal(out.filter((r) => r.value === null).length, 1, 'the tombstone of the delete');
    assert.equal(out.length, kept.length + 3);

    // The dead letters: one per order with a dlq failure, naming every expectation it failed.
    const letters = await dlq();
    assert.equal(letters.length, dead(all));
    for (const r of letters) {
      const id = r.value.after.id as number;
      const x = all.find((y) => y.id === id)!;
      assert.equal(r.headers!['sluice.error.code'], 'EXPECTATION_FAILED');
      const msg = r.headers!['sluice.error.message'];
      for (const e of RECORD_EXPECTATIONS) assert.equal(msg.includes(`expectation ${e} (`), x.fails.includes(e), `order ${id}: ${e} in ${msg}`);
    }
    const reason = (id: number) => letters.find((r) => r.value.after.id === id)!.headers!['sluice.error.message'];
    assert.match(reason(3), /expectation positive_amount \(range\): after\.amount = -5\.00 is below min 0/);
    assert.match(reason(10), /after\.amount = 20000\.00 is above max 10000/);
    assert.match(reason(2), /expectation customer_present \(notNull\): after\.customer_id is null/);
    assert.match(reason(5), /after\.status = 'lost' is not one of 'new', 'paid', 'shipped'/);
    assert.match(reason(6), /after\.customer_id = 999 has no row in xq\.public\.customers \(id\)/);
    assert.match(reason(16), /after\.customer_id = 10 has no row/);
    assert.match(reason(17), /expectation unique_code \(unique\): after\.code = 'A1' was seen on another row/);
    assert.match(reason(21), /expectation order_columns \(schema\): column status is character varying\(20\), not text/);
    assert.match(reason(9), /expectation fresh \(freshness, warn\): after\.created_at .* is 10m(\d+s)? old/);

    // Counts: status.json (as written when the pipeline stopped) and /metrics, against the violations inserted.
    const st = status();
    const q = st.processors.find((p: any) => p.name === 'q');
    const checked = all.length + 1; // every insert and the update; the delete is not checked
    const metrics = registry.render();
    const metric = (proc: string, e: string, result: string) => Number(new RegExp(`^sluice_expectation_checks_total\\{pipeline="${P}",processor="${proc}",expectation="${e}",result="${result}"\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    for (const e of RECORD_EXPECTATIONS) {
      const failed = all.filter((x) => x.fails.includes(e)).length;
      const s = q.expectations.find((x: any) => x.name === e);
      assert.deepEqual({ passed: s.passed, failed: s.failed }, { passed: checked - failed, failed }, `status of ${e}`);
      assert.equal(s.action, DLQ_ACTIONS.has(e) ? 'dlq' : 'warn');
      assert.equal(failed > 0, s.lastFailure !== null);
      assert.equal(metric('q', e, 'fail'), failed, `fail metric of ${e}`);
      assert.equal(metric('q', e, 'pass'), checked - failed, `pass metric of ${e}`);
    }
    // Volume: 22 records counted (inserts, the update, the delete), 21 > 20 fails once; the day's window never ended.
    const burst = q.expectations.find((x: any) => x.name === 'burst');
    assert.deepEqual([burst.check, burst.action, burst.passed, burst.failed], ['volume', 'warn', 0, 1]);
    assert.match(burst.lastFailure.reason, /^21 records in the window .* so far, above max 20$/);
    assert.equal(metric('q', 'burst', 'fail'), 1);
    assert.equal(q.deadLettered, dead(all));

    // The guard stopped at order 22, naming the expectation and the value, after writing every order before it.
    const g = st.processors.find((p: any) => p.name === 'guard');
    assert.equal(g.state, 'failed');
    assert.equal(g.error.code, 'EXPECTATION_STOP');
    assert.match(g.error.message, /expectation no_huge_amount \(range\) failed at xq\.public\.orders\/\d+\/\d+: after\.amount = 2000000\.00 is above max 1000000/);
    const guarded = await readAll(cfg.log, `guard.${P}.public.orders`);
    assert.deepEqual(guarded.filter((r) => r.value?.op === 'c').map((r) => r.value.after.id).sort((a, b) => a - b), all.filter((x) => x.id !== 22).map((x) => x.id).sort((a, b) => a - b));
    const huge = g.expectations.find((x: any) => x.name === 'no_huge_amount');
    assert.deepEqual([huge.passed, huge.failed], [checked - 1, 1]);
    assert.equal(metric('guard', 'no_huge_amount', 'fail'), 1);
    // Idle windows of one second with fewer than 1000 records: at least one ended while the test ran.
    const trickle = g.expectations.find((x: any) => x.name === 'trickle');
    assert.ok(trickle.failed >= 1, JSON.stringify(trickle));
    assert.match(trickle.lastFailure.reason, /records in the window .* \(1s\), below min 1000|0 records in/);
    assert.equal(metric('guard', 'trickle', 'fail'), trickle.failed);

    // What a user sees: `sluice dlq list` with each reason, `sluice status` with each expectation's counts.
    const sluice = (...args: string[]) => spawnSync(process.execPath, ['bin/sluice.js', ...args], { encoding: 'utf8' });
    const list = sluice('dlq', 'list', '--config', cfgPath);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /processor q\txq\.public\.orders\/\d\/\d+\tEXPECTATION_FAILED: processor q: expectation positive_amount \(range\): after\.amount = -5\.00 is below min 0\n/);
    const text = sluice('status', '--config', cfgPath);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /\n {4}expectation positive_amount \(range, dlq\): 18 passed, 4 failed; last failure at \S+: after\.amount = 2000000\.00 is above max 10000\n/);
    assert.match(text.stdout, /\n {4}expectation burst \(volume, warn\): 0 passed, 1 failed; last failure at /);
  });
});
