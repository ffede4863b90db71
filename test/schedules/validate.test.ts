/**
 * Scheduled validation (a schedule's `validate:`): a PostgreSQL source applied to PostgreSQL,
 * MariaDB and DuckDB sinks, with known bad rows planted in the source (null customers, amounts out
 * of range, a status outside the allowed set, orders without a payment, a duplicated reference).
 * The test's own record of what it planted is the truth: each suite must report exactly those keys
 * and counts — on a cron every second inside the running pipeline (its history, /metrics) and via
 * `sluice schedules run` with the pipeline stopped — and a suite over a good table passes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Registry } from '../../src/core/metrics.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { openLog } from '../../src/log/open.ts';
import { readHistory } from '../../src/schedules/history.ts';
import type { RunEntry } from '../../src/schedules/types.ts';
import { freePort, pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { freshTargets, type Target } from '../helpers/targets.ts';

const ORDERS = 1200;
/** What is planted, by order id: the truth the reports are compared with. */
const NULL_CUSTOMER = [17, 444, 1103];
const NEGATIVE = [5, 999];
const TOO_LARGE = [1150];
const BAD_STATUS = [77, 78];
const NO_PAYMENT = [3, 601, 1199];
/** Payments whose order_id another payment has too (order 40 paid twice). */
const DOUBLE_PAID = 40;

const amountOf = (id: number) => (NEGATIVE.includes(id) ? -id : TOO_LARGE.includes(id) ? 20000 : (id % 97) + 0.5);
const statusOf = (id: number) => (BAD_STATUS.includes(id) ? 'lost' : id % 2 ? 'paid' : 'open');

const SUITE = `
        - {name: id_not_null, notNull: [id]}
        - {name: customer_not_null, notNull: [customer]}
        - {name: amount_range, range: {field: amount, min: 0, max: 10000}}
        - {name: status_allowed, allowed: {field: status, values: [open, paid]}}
        - {name: has_payment, referential: {field: id, table: payments, key: order_id}}
        - {name: rows, volume: {min: 1}}`;

function schedule(name: string, cron: string, sink: string, table: string, suite: string): string {
  return `  - name: ${name}
    cron: "${cron}"
    onMissed: skip
    validate:
      sink: ${sink}
      table: ${table}
      chunkRows: 250
      expectations:${suite}
`;
}

/** The expected per-expectation result of the orders suite: failing counts and example keys, from what was planted. */
function expectedOrders(): { name: string; checked: number; failed: number; keys: unknown[] }[] {
  const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
  return [
    { name: 'id_not_null', checked: ORDERS, failed: 0, keys: [] },
    { name: 'customer_not_null', checked: ORDERS, failed: NULL_CUSTOMER.length, keys: sorted(NULL_CUSTOMER) },
    { name: 'amount_range', checked: ORDERS, failed: NEGATIVE.length + TOO_LARGE.length, keys: sorted([...NEGATIVE, ...TOO_LARGE]) },
    { name: 'status_allowed', checked: ORDERS, failed: BAD_STATUS.length, keys: sorted(BAD_STATUS) },
    { name: 'has_payment', checked: ORDERS, failed: NO_PAYMENT.length, keys: sorted(NO_PAYMENT) },
    { name: 'rows', checked: 1, failed: 0, keys: [] },
  ];
}

/** What a history entry reports, in the shape of expectedOrders (keys as numbers, whatever text the database gave). */
function reported(e: RunEntry): { name: string; checked: number; failed: number; keys: unknown[] }[] {
  assert.ok(e.validation, `no validation in ${JSON.stringify(e)}`);
  return e.validation.expectations.map((x) => ({ name: x.name, checked: x.checked, failed: x.failed, keys: x.examples.map((k) => Number(k.key)) }));
}

/** Metric samples of /metrics text: `name{labels} value`. */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const have = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

async function inProcess(args: string[]): Promise<{ code: number | null; out: string }> {
  const w = process.stdout.write;
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
  try {
    return { code: await main(args), out };
  } finally {
    process.stdout.write = w;
  }
}

describe('scheduled validation', () => {
  const rows = Array.from({ length: ORDERS }, (_, i) => i + 1);
  const f = useDatabase(`
    CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10,2), status text);
    CREATE TABLE payments (id int PRIMARY KEY, order_id int NOT NULL, paid numeric(10,2) NOT NULL);
    INSERT INTO orders VALUES ${rows.map((id) => `(${id}, ${NULL_CUSTOMER.includes(id) ? 'NULL' : `'c${id % 50}'`}, ${amountOf(id)}, '${statusOf(id)}')`).join(', ')};
    INSERT INTO payments VALUES ${rows.filter((id) => !NO_PAYMENT.includes(id)).map((id) => `(${id}, ${id}, ${Math.abs(amountOf(id))})`).join(', ')}, (${ORDERS + 1}, ${DOUBLE_PAID}, 1);
  `);

  it('reports exactly the planted rows, in the history and at /metrics, on cron and on demand; a good table passes', async () => {
    const targets = await freshTargets(f.tmp.dir);
    try {
      await scenario(targets);
    } finally {
      await targets.drop();
    }
  });

  async function scenario(targets: Awaited<ReturnType<typeof freshTargets>>): Promise<void> {
    const port = await freePort();
    const cfgPath = join(f.tmp.dir, 'p.yaml');
    const every = '* * * * * *';
    const schedules =
      'schedules:\n' +
      schedule('orders-pg', every, 'pg', 'public.orders', SUITE) +
      schedule('orders-dk', every, 'dk', 'orders', SUITE) +
      schedule('orders-my', '0 2 * * *', 'my', 'orders', SUITE) +
      // The good table: payments hold a number for every row, each paid amount ≥ 0, rows ≥ 1; unique order_id fails only for the planted double payment.
      schedule('payments-pg', every, 'pg', 'payments', `
        - {name: order_not_null, notNull: [order_id]}
        - {name: paid_positive, range: {field: paid, min: 0}}
        - {name: rows, volume: {min: ${ORDERS - NO_PAYMENT.length}, max: ${ORDERS + 1}}}
        - {name: typed, schema: {required: {id: integer, paid: numeric}}}`) +
      schedule('payments-unique', '0 2 * * *', 'pg', 'payments', `
        - {name: one_per_order, unique: {fields: [order_id], window: 1d}}`) +
      `  - name: recon-pg
    cron: "0 2 * * *"
    reconcile: {sinks: [pg], tables: [public.orders]}
`;
    writeFileSync(cfgPath, pipelineYaml('val', f.db.name, f.tmp.dir, '', `server:\n  port: ${port}\n${targets.sinksYaml()}${schedules}`));
    const cfg = await loadConfig(cfgPath);
    const abort = new AbortController();
    const registry = new Registry();
    const running = runPipeline(cfg, { signal: abort.signal, registry });
    const metrics = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const runsOf = (text: string, s: string) => ['pass', 'fail', 'error'].reduce((n, result) => n + (metric(text, 'sluice_validation_runs_total', { pipeline: 'val', schedule: s, result }) ?? 0), 0);
    let text = '';
    try {
      for (const t of ['postgres', 'mysql', 'duckdb'] as Target[]) {
        await waitUntil(`the snapshot in ${t}`, async () => {
          try {
            return (await targets.count(t, 'SELECT count(*) FROM orders')) === ORDERS && (await targets.count(t, 'SELECT count(*) FROM payments')) === ORDERS - NO_PAYMENT.length + 1;
          } catch {
            return false; // the table is not there yet
          }
        }, 30_000);
      }
      // Runs of a schedule never overlap: two more runs after the snapshot landed means the second started after it.
      const before = await metrics();
      await waitUntil('two validation runs after the snapshot', async () => {
        text = await metrics();
        return ['orders-pg', 'orders-dk', 'payments-pg'].every((s) => runsOf(text, s) >= runsOf(before, s) + 2);
      }, 20_000);
    } finally {
      abort.abort();
      await running;
    }

    // The history: the last cron run of each schedule.
    const log = await openLog(cfg.log, { readOnly: true });
    let history: RunEntry[];
    try {
      history = await readHistory(log, 'val');
    } finally {
      await log.close();
    }
    const last = (s: string) => history.filter((e) => e.schedule === s && e.trigger === 'cron').at(-1)!;
    for (const s of ['orders-pg', 'orders-dk']) {
      const e = last(s);
      assert.equal(e.status, 'failed', s);
      assert.equal(e.error?.code, 'VALIDATION_FAILED', s);
      assert.equal(e.records, ORDERS, `${s}: rows read`);
      assert.deepEqual(reported(e), expectedOrders(), s);
      for (const x of expectedOrders()) {
        // The gauge agrees with the history (the source is static since the snapshot: every later run reports the same).
        assert.equal(metric(text, 'sluice_validation_failures', { pipeline: 'val', schedule: s, expectation: x.name }), x.failed, `${s} ${x.name} at /metrics`);
      }
      assert.ok((metric(text, 'sluice_validation_runs_total', { pipeline: 'val', schedule: s, result: 'fail' }) ?? 0) >= 2, s);
      assert.ok((metric(text, 'sluice_validation_last_run_timestamp_seconds', { pipeline: 'val', schedule: s }) ?? 0) > Date.parse(e.startedAt) / 1000 - 1, s);
    }
    const reasons = last('orders-pg').validation!.expectations.find((x) => x.name === 'amount_range')!.examples.map((x) => x.reason);
    assert.deepEqual(reasons, ['amount = -5.00 is below min 0', 'amount = -999.00 is below min 0', 'amount = 20000.00 is above max 10000']);
    const good = last('payments-pg');
    assert.equal(good.status, 'ok', JSON.stringify(good));
    assert.deepEqual(good.validation!.expectations.map((x) => [x.name, x.failed]), [['order_not_null', 0], ['paid_positive', 0], ['rows', 0], ['typed', 0]]);
    assert.equal(metric(text, 'sluice_validation_runs_total', { pipeline: 'val', schedule: 'payments-pg', result: 'fail' }), 0);
    assert.ok((metric(text, 'sluice_validation_runs_total', { pipeline: 'val', schedule: 'payments-pg', result: 'pass' }) ?? 0) >= 2);

    // On demand, the pipeline stopped: MariaDB's table reports the same keys; unique finds the double payment.
    const run = await inProcess(['schedules', 'run', cfgPath, 'orders-my']);
    assert.equal(run.code, 1, run.out);
    assert.match(run.out, /FAIL customer_not_null \(notNull\): 3 of 1200 failed/);
    const uniq = await inProcess(['schedules', 'run', cfgPath, 'payments-unique']);
    assert.equal(uniq.code, 1, uniq.out);
    const shown = await inProcess(['schedules', 'history', cfgPath, '--limit', '0']);
    assert.equal(shown.code, 0);
    assert.match(shown.out, /orders-my@manual-.*:\n {2}FAIL customer_not_null \(notNull\): 3 of 1200 failed\n {9}17: customer is null/);
    const json = await inProcess(['schedules', 'history', cfgPath, '--json', '--limit', '0']);
    const entries = json.out.trim().split('\n').map((l) => JSON.parse(l) as RunEntry);
    const manual = entries.filter((e) => e.schedule === 'orders-my' && e.trigger === 'manual');
    assert.equal(manual.length, 1);
    assert.deepEqual(reported(manual[0]), expectedOrders());
    const u = entries.find((e) => e.schedule === 'payments-unique')!;
    assert.deepEqual(u.validation!.expectations.map((x) => ({ failed: x.failed, keys: x.examples.map((k) => Number(k.key)) })), [{ failed: 2, keys: [DOUBLE_PAID] }]);

    // A reconcile schedule: the pg target agrees, then one row deleted behind the pipeline's back is found.
    const agree = await inProcess(['schedules', 'run', cfgPath, 'recon-pg']);
    assert.equal(agree.code, 0, agree.out);
    await targets.query('postgres', 'DELETE FROM orders WHERE id = 10');
    const drift = await inProcess(['schedules', 'run', cfgPath, 'recon-pg']);
    assert.equal(drift.code, 1, drift.out);
    const rec = (await inProcess(['schedules', 'history', cfgPath, 'recon-pg', '--json'])).out.trim().split('\n').map((l) => JSON.parse(l) as RunEntry);
    assert.deepEqual(rec.map((e) => [e.status, e.error?.code, e.reconcile]), [
      ['ok', undefined, [{ sink: 'pg', table: 'public.orders', status: 'ok', missing: 0, extra: 0, differing: 0 }]],
      ['failed', 'SCHEDULE_DRIFT', [{ sink: 'pg', table: 'public.orders', status: 'drift', missing: 1, extra: 0, differing: 0 }]],
    ]);
  }
});
