/**
 * The banking example's analytics (examples/banking): the pure rules on plain documents, the mock
 * data against seed 000's mockDataSpec, the templates against the seed's document shapes, and the
 * derivers and lag tracker on a real document store (PostgreSQL JSONB) — incremental derivation,
 * change by change and in an unfriendly table order, must equal a from-scratch rebuild.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { chromium } from 'playwright-core';
import { parse } from 'yaml';
import { derivers, recomputeAll } from '../../examples/banking/analytics.ts';
import { METRICS_ROWS, PATTERN_ROWS, startDashboard } from '../../examples/banking/dashboard.ts';
import { bankingConnectionUrl, createSchema } from '../../examples/banking/generate.ts';
import { createLagTracker } from '../../examples/banking/lag.ts';
import { buildMockData, type MockData, type Row } from '../../examples/banking/mock.ts';
import { formatScaled, sumScaled, toScaled } from '../../examples/banking/money.ts';
import { ODL_PATHS } from '../../examples/banking/odl.ts';
import { accountMetrics, agreementProfile, avgMonthlyTransactions, creditScore, creditScoreBand, customerAnalytics, defaultRisk, effectiveTransactions, transactionPattern, transactionPatterns, type CustomerFacts } from '../../examples/banking/rules.ts';
import { checkAnalytics, expectedAnalytics } from '../../examples/banking/verify.ts';
import { deriveBatch } from '../../src/sinks/document/derive.ts';
import { toJsonText } from '../../src/sinks/document/json.ts';
import { PgJsonStore } from '../../src/sinks/document/pgjson.ts';
import { compileTemplate, render, type Compiled } from '../../src/sinks/document/template.ts';
import { Decimal, type DerivedChange, type Doc } from '../../src/sinks/document/types.ts';
import { freshDatabase } from '../helpers/pg.ts';

const DAY = 86_400_000;
const NOW = new Date('2024-02-01T00:00:00Z');
const d = (iso: string) => new Date(iso);
const dec = (s: string) => new Decimal(s);

// ODL documents as pipeline.yaml's templates shape them (only the fields the rules read).
const customer = (id: number, extra: Partial<{ status: string; city: string | null; state: string | null }> = {}): Doc => ({
  customer_id: id,
  personal_info: { first_name: 'John', last_name: 'Doe', email: `john${id}@example.com`, phone: '+1-555-0123', date_of_birth: d('1985-06-15') },
  address: { line1: '123 Main St', line2: null, city: extra.city === undefined ? 'New York' : extra.city, state: extra.state === undefined ? 'NY' : extra.state, postal_code: '10001', country: 'USA' },
  status: extra.status ?? 'ACTIVE',
});
const account = (id: number, customerId: number, type: string, balance: string, status = 'ACTIVE', creditLimit: string | null = null): Doc => ({
  account_id: id,
  customer_id: customerId,
  account_details: { account_number: `ACC-2024-${String(id).padStart(6, '0')}`, account_type: type, currency: 'USD', status },
  financial_info: { balance: dec(balance), interest_rate: dec('0.0125'), credit_limit: creditLimit === null ? null : dec(creditLimit) },
});
const txn = (id: number, accountId: number, at: string, status = 'COMPLETED'): Doc => ({
  transaction_id: id,
  account_id: accountId,
  transaction_details: { transaction_type: 'DEPOSIT', status },
  financial_info: { amount: dec('10.00'), currency: 'USD' },
  dates: { transaction_date: d(at), posted_date: d(at) },
});
const agreement = (id: number, customerId: number, status: string, payment: string, frequency = 'MONTHLY', principal = '1000.00', balance = '500.00'): Doc => ({
  agreement_id: id,
  customer_id: customerId,
  account_id: null,
  agreement_details: { agreement_number: `AGR-2024-${String(id).padStart(6, '0')}`, agreement_type: 'LOAN', status },
  financial_info: { principal_amount: dec(principal), current_balance: dec(balance), interest_rate: dec('0.0500') },
  payment_terms: { term_months: 12, payment_amount: dec(payment), payment_frequency: frequency },
  dates: { start_date: d('2023-06-01'), end_date: d('2024-06-01') },
});
/** A transaction of a given type and amount. */
const tx = (id: number, accountId: number, at: string, type: string, amount: string, status = 'COMPLETED'): Doc => {
  const t = txn(id, accountId, at, status);
  (t.transaction_details as Doc).transaction_type = type;
  (t.financial_info as Doc).amount = dec(amount);
  return t;
};
const facts = (f: Partial<CustomerFacts>): CustomerFacts => ({ customer: customer(1), accounts: [], transactions: [], agreements: [], ...f });
const times = (...iso: string[]) => iso.map((s) => Date.parse(s));

describe('banking: exact money', () => {
  it('sums decimals as scaled integers, whatever form the store returns them in', () => {
    assert.equal(formatScaled(sumScaled(Array.from({ length: 1000 }, () => dec('0.10')))), '100.00');
    assert.equal(formatScaled(sumScaled([dec('2500.75'), 2500.75, '-0.5', 3n, null])), '5004.00');
    assert.equal(toScaled('2500.7'), 250070n);
    assert.equal(formatScaled(-5n), '-0.05');
    assert.equal(toScaled('0.0125', 4), 125n);
  });
});

describe('banking: analytics rules on plain documents', () => {
  it('avg_monthly_transactions: effective transactions per calendar month with activity', () => {
    const t = [txn(1, 1, '2024-01-03T10:00:00Z'), txn(2, 1, '2024-01-20T10:00:00Z'), txn(3, 1, '2024-01-31T23:59:59Z'), txn(4, 1, '2023-12-15T00:00:00Z'), txn(5, 1, '2024-01-05T00:00:00Z', 'FAILED'), txn(6, 1, '2024-01-06T00:00:00Z', 'REVERSED')];
    const eff = effectiveTransactions(t);
    assert.deepEqual(eff.map((x) => x.id), [4, 1, 2, 3]);
    assert.equal(avgMonthlyTransactions(eff.map((x) => x.at)), 2);
    assert.equal(avgMonthlyTransactions(times('2024-01-01T00:00:00Z', '2024-02-01T00:00:00Z', '2024-02-02T00:00:00Z')), 1.5);
    assert.equal(avgMonthlyTransactions([]), 0);
  });

  it('transaction_pattern from the regularity of the gaps', () => {
    assert.equal(transactionPattern([]), 'INACTIVE');
    assert.equal(transactionPattern(times('2024-01-01T00:00:00Z', '2024-01-09T00:00:00Z')), 'SPORADIC');
    const daily = Array.from({ length: 10 }, (_, i) => Date.parse('2024-01-01T00:00:00Z') + i * DAY + (i % 2) * 3_600_000);
    assert.equal(transactionPattern(daily), 'REGULAR');
    // Gaps of 1, 3, 1, 6, 1, 2 days: coefficient of variation 0.77.
    let t = Date.parse('2024-01-01T00:00:00Z');
    const uneven = [t, ...[1, 3, 1, 6, 1, 2].map((g) => (t += g * DAY))];
    assert.equal(transactionPattern(uneven), 'IRREGULAR');
    const bursts = [...Array.from({ length: 5 }, (_, i) => Date.parse('2024-01-02T00:00:00Z') + i * 60_000), ...Array.from({ length: 5 }, (_, i) => Date.parse('2024-01-28T00:00:00Z') + i * 60_000)];
    assert.equal(transactionPattern(bursts), 'BURSTY');
  });

  it('default_risk: defaults, then liquid funds against monthly obligations, then frozen, suspended, utilisation', () => {
    const checking = (b: string) => account(1, 1, 'CHECKING', b);
    assert.equal(defaultRisk(facts({ accounts: [checking('100000.00')], agreements: [agreement(1, 1, 'DEFAULT', '10.00')] })), 'HIGH');
    assert.equal(defaultRisk(facts({ accounts: [checking('500.00')], agreements: [agreement(1, 1, 'ACTIVE', '600.00')] })), 'HIGH');
    assert.equal(defaultRisk(facts({ accounts: [checking('1500.00')], agreements: [agreement(1, 1, 'ACTIVE', '600.00')] })), 'MEDIUM');
    assert.equal(defaultRisk(facts({ accounts: [checking('1800.00')], agreements: [agreement(1, 1, 'ACTIVE', '600.00')] })), 'LOW');
    // A completed agreement is not an obligation.
    assert.equal(defaultRisk(facts({ accounts: [checking('10.00')], agreements: [agreement(1, 1, 'COMPLETED', '600.00')] })), 'LOW');
    assert.equal(defaultRisk(facts({ accounts: [checking('10.00'), account(2, 1, 'SAVINGS', '5.00', 'FROZEN')] })), 'MEDIUM');
    assert.equal(defaultRisk(facts({ customer: customer(1, { status: 'SUSPENDED' }), accounts: [checking('10.00')] })), 'MEDIUM');
    assert.equal(defaultRisk(facts({ accounts: [checking('10.00'), account(2, 1, 'CREDIT', '-700.00', 'ACTIVE', '1000.00')] })), 'MEDIUM');
    assert.equal(defaultRisk(facts({ accounts: [checking('10.00'), account(2, 1, 'CREDIT', '-699.99', 'ACTIVE', '1000.00')] })), 'LOW');
  });

  it('credit_score_band from the behavioural score', () => {
    const rich = facts({ accounts: [account(1, 1, 'SAVINGS', '30000.00')], agreements: [agreement(1, 1, 'COMPLETED', '10.00')] });
    assert.equal(creditScore(rich), 600 + 120 + 30 + 20);
    assert.equal(creditScoreBand(creditScore(rich)), 'EXCELLENT');
    const typical = facts({ accounts: [account(1, 1, 'CHECKING', '5000.00'), account(2, 1, 'CREDIT', '-500.00', 'ACTIVE', '2000.00')] });
    assert.equal(creditScore(typical), 600 + 60 + 60);
    assert.equal(creditScoreBand(creditScore(typical)), 'GOOD');
    const defaulted = facts({ accounts: [account(1, 1, 'CHECKING', '100.00')], agreements: [agreement(1, 1, 'DEFAULT', '10.00')] });
    assert.equal(creditScoreBand(creditScore(defaulted)), 'VERY_POOR');
    assert.deepEqual([760, 759, 700, 640, 580, 579].map(creditScoreBand), ['EXCELLENT', 'GOOD', 'GOOD', 'FAIR', 'POOR', 'VERY_POOR']);
  });

  it('customer_analytics has the seed shape, counts open accounts and sums the net balance exactly', () => {
    const doc = customerAnalytics(
      facts({
        accounts: [account(1, 1, 'SAVINGS', '15000.10'), account(2, 1, 'CHECKING', '750.15'), account(3, 1, 'CREDIT', '-0.05', 'ACTIVE', '1000.00'), account(4, 1, 'LOAN', '-99.99', 'CLOSED')],
        transactions: [txn(1, 1, '2024-01-10T08:00:00Z'), txn(2, 2, '2024-01-15T16:30:00Z'), txn(3, 2, '2024-01-16T00:00:00Z', 'FAILED')],
      }),
      NOW,
    );
    assert.deepEqual(doc, {
      _id: 1,
      customer_id: 1,
      profile: { name: 'John Doe', email: 'john1@example.com', location: 'New York, NY', status: 'ACTIVE' },
      financial_summary: {
        total_accounts: 3,
        total_balance: dec('15750.20'),
        account_types: ['CHECKING', 'SAVINGS', 'CREDIT'],
        avg_monthly_transactions: 2,
        last_transaction_date: d('2024-01-15T16:30:00Z'),
      },
      risk_profile: { credit_score_band: 'GOOD', default_risk: 'LOW', transaction_pattern: 'SPORADIC' },
      computed_at: NOW,
    });
    assert.equal((customerAnalytics(facts({ customer: customer(2, { city: null }) }), NOW).profile as Doc).location, 'NY');
  });

  it('gives the same analytics from JSONB-style values (numbers, ISO text) as from Decimals and Dates', () => {
    const f = facts({ accounts: [account(1, 1, 'CHECKING', '2500.75'), account(2, 1, 'SAVINGS', '100.00')], transactions: [txn(1, 1, '2024-01-10T08:00:00Z'), txn(2, 1, '2024-01-12T08:00:00Z'), txn(3, 2, '2024-01-14T08:00:00Z')] });
    const loose = JSON.parse(JSON.stringify(f), (_k, v) => (typeof v === 'string' && /^-?\d+\.\d+$/.test(v) ? Number(v) : v)) as CustomerFacts;
    assert.deepEqual(customerAnalytics(loose, NOW), customerAnalytics(f, NOW));
  });

  it('customer_agreement_profiles: every agreement, status summary, monthly payments normalised and rounded once', () => {
    const p = agreementProfile(
      customer(1),
      [agreement(3, 1, 'ACTIVE', '100.00', 'ANNUALLY', '5000.00', '4000.00'), agreement(1, 1, 'ACTIVE', '100.00', 'MONTHLY'), agreement(2, 1, 'ACTIVE', '100.00', 'QUARTERLY'), agreement(4, 1, 'DEFAULT', '999.00'), agreement(5, 1, 'CANCELLED', '1.00', 'MONTHLY', '1000.00', '0.00')],
      NOW,
    )!;
    assert.deepEqual((p.agreements as Doc[]).map((g) => [g.agreement_id, String(g.monthly_payment)]), [[1, '100.00'], [2, '33.33'], [3, '8.33'], [4, '999.00'], [5, '1.00']]);
    assert.deepEqual(p.summary, { total: 5, active: 3, completed: 0, defaulted: 1, cancelled: 1 });
    // 100 + 100/3 + 100/12 = 141.666…: 141.67 when rounded once (141.66 if each part were rounded first).
    assert.deepEqual(p.financial_metrics, { total_principal: dec('9000.00'), total_current_balance: dec('5500.00'), total_monthly_payment: dec('141.67') });
    assert.deepEqual(p.customer, { name: 'John Doe', email: 'john1@example.com', phone: '+1-555-0123', location: 'New York, NY', status: 'ACTIVE' });
    assert.deepEqual(Object.keys((p.agreements as Doc[])[0]), ['agreement_id', 'agreement_number', 'agreement_type', 'status', 'account_id', 'principal_amount', 'current_balance', 'interest_rate', 'term_months', 'payment_amount', 'payment_frequency', 'monthly_payment', 'start_date', 'end_date']);
    assert.equal(agreementProfile(customer(1), [], NOW), null);
  });

  it('account_metrics: credits and debits by the ledger convention, the 30 days up to the last transaction, means rounded once', () => {
    const card = account(7, 1, 'CREDIT', '-140.00', 'ACTIVE', '1000.00');
    const m = accountMetrics(
      card,
      [
        tx(1, 7, '2023-12-01T09:00:00Z', 'WITHDRAWAL', '200.00'),
        // Exactly 30 days before the last transaction: outside the window (last − 30 d, last].
        tx(2, 7, '2024-01-02T09:00:00Z', 'WITHDRAWAL', '100.00'),
        // A payment into a card account adds to its balance: a credit.
        tx(3, 7, '2024-01-20T10:00:00Z', 'PAYMENT', '50.00'),
        tx(4, 7, '2024-01-25T11:00:00Z', 'FEE', '0.01', 'PENDING'),
        tx(5, 7, '2024-01-30T12:00:00Z', 'WITHDRAWAL', '999.00', 'FAILED'),
        tx(6, 7, '2024-02-01T09:00:00Z', 'WITHDRAWAL', '10.00'),
      ],
      NOW,
    );
    assert.deepEqual(m, {
      _id: 7,
      account_id: 7,
      customer_id: 1,
      account_number: 'ACC-2024-000007',
      account_type: 'CREDIT',
      currency: 'USD',
      status: 'ACTIVE',
      balance: dec('-140.00'),
      credit_limit: dec('1000.00'),
      transaction_count: 5,
      total_credits: dec('50.00'),
      total_debits: dec('310.01'),
      net_flow: dec('-260.01'),
      avg_transaction_amount: dec('72.00'),
      largest_transaction: dec('200.00'),
      first_transaction_date: d('2023-12-01T09:00:00Z'),
      last_transaction_date: d('2024-02-01T09:00:00Z'),
      last_30_days: { from: d('2024-01-02T09:00:00Z'), to: d('2024-02-01T09:00:00Z'), transaction_count: 3, total_credits: dec('50.00'), total_debits: dec('10.01'), net_flow: dec('39.99') },
      transactions_by_status: { COMPLETED: 4, PENDING: 1, FAILED: 1, REVERSED: 0 },
      computed_at: NOW,
    });
    // 0.015 rounds half away from zero; a payment into CHECKING is money going out.
    const checking = accountMetrics(account(8, 1, 'CHECKING', '5.00'), [tx(1, 8, '2024-01-01T00:00:00Z', 'PAYMENT', '0.01'), tx(2, 8, '2024-01-02T00:00:00Z', 'DEPOSIT', '0.02')], NOW);
    assert.deepEqual([checking.avg_transaction_amount, checking.total_debits, checking.total_credits], [dec('0.02'), dec('0.01'), dec('0.02')]);
    const idle = accountMetrics(account(9, 1, 'SAVINGS', '0.00'), [], NOW);
    assert.deepEqual([idle.transaction_count, idle.avg_transaction_amount, idle.last_transaction_date, idle.last_30_days], [0, null, null, { from: null, to: null, transaction_count: 0, total_credits: dec('0.00'), total_debits: dec('0.00'), net_flow: dec('0.00') }]);
  });

  it('transaction_patterns: the customer_analytics pattern, by type, hour and weekday, and amounts above mean + 3σ', () => {
    // 2024-01-01 is a Monday; ten daily transactions of 10.00 at 08, 09 or 10 h, then one of 1000.00.
    const ten = Array.from({ length: 10 }, (_, i) => tx(i + 1, i < 5 ? 1 : 2, `2024-01-${String(i + 1).padStart(2, '0')}T${String(8 + (i % 3)).padStart(2, '0')}:00:00Z`, i % 2 ? 'WITHDRAWAL' : 'DEPOSIT', '10.00'));
    const all = [...ten, tx(11, 2, '2024-01-11T15:30:00Z', 'TRANSFER_IN', '1000.00'), tx(12, 2, '2024-01-12T15:30:00Z', 'DEPOSIT', '5000.00', 'REVERSED')];
    const p = transactionPatterns(customer(1), all, NOW);
    assert.equal(p.pattern, (customerAnalytics(facts({ transactions: all }), NOW).risk_profile as Doc).transaction_pattern);
    assert.equal(p.pattern, 'REGULAR');
    assert.deepEqual([p.transaction_count, p.total_amount, p.avg_amount], [11, dec('1100.00'), dec('100.00')]);
    assert.deepEqual(p.by_type, {
      DEPOSIT: { count: 5, amount: dec('50.00') },
      WITHDRAWAL: { count: 5, amount: dec('50.00') },
      TRANSFER_IN: { count: 1, amount: dec('1000.00') },
      TRANSFER_OUT: { count: 0, amount: dec('0.00') },
      PAYMENT: { count: 0, amount: dec('0.00') },
      FEE: { count: 0, amount: dec('0.00') },
    });
    assert.deepEqual((p.by_hour as number[]).map((n, h) => [h, n]).filter(([, n]) => n > 0), [[8, 4], [9, 3], [10, 3], [15, 1]]);
    assert.deepEqual(p.by_weekday, { MONDAY: 2, TUESDAY: 2, WEDNESDAY: 2, THURSDAY: 2, FRIDAY: 1, SATURDAY: 1, SUNDAY: 1 });
    assert.deepEqual([p.peak_hour, p.peak_weekday], [8, 'MONDAY']);
    // 1000.00 against ten of 10.00: z = √10 ≈ 3.16 > 3. The reversed 5000.00 never counts.
    assert.deepEqual(p.anomalies, { count: 1, transactions: [{ transaction_id: 11, account_id: 2, transaction_type: 'TRANSFER_IN', amount: dec('1000.00'), transaction_date: d('2024-01-11T15:30:00Z') }] });
    // With one transaction fewer of 10.00, z = 3 exactly: not above, so no anomaly.
    assert.equal((transactionPatterns(customer(1), all.slice(1), NOW).anomalies as Doc).count, 0);
    const none = transactionPatterns(customer(2), [], NOW);
    assert.deepEqual([none.pattern, none.transaction_count, none.avg_amount, none.peak_hour, none.peak_weekday, (none.anomalies as Doc).count], ['INACTIVE', 0, null, null, null, 0]);
  });
});

// ---- pipeline.yaml, the mock data, and the derivers on a real store ----

const PIPELINE = parse(readFileSync(new URL('../../examples/banking/pipeline.yaml', import.meta.url), 'utf8'));
const collectionsCfg: { table: string; collection: string; document: Record<string, unknown> }[] = PIPELINE.sinks[0].collections;
const templateOf = (collection: string) => collectionsCfg.find((c) => c.collection === collection)!.document;

/** The template's shape: field → nested shape, or the leaf's `$column`/`$$meta`. */
const shapeOf = (t: unknown): unknown => (t && typeof t === 'object' ? Object.fromEntries(Object.entries(t).map(([k, v]) => [k, shapeOf(v)])) : t);

describe('banking: pipeline.yaml templates', () => {
  it('shape customers and accounts exactly as seed 000 Cluster 1 does', () => {
    const meta = { created_at: '$created_at', updated_at: '$updated_at', source_updated_at: '$$source_ts', sync_timestamp: '$$sync_ts' };
    assert.deepEqual(shapeOf(templateOf('customers')), {
      customer_id: '$customer_id',
      personal_info: { first_name: '$first_name', last_name: '$last_name', email: '$email', phone: '$phone', date_of_birth: '$date_of_birth' },
      address: { line1: '$address_line1', line2: '$address_line2', city: '$city', state: '$state', postal_code: '$postal_code', country: '$country' },
      status: '$customer_status',
      metadata: meta,
    });
    assert.deepEqual(shapeOf(templateOf('accounts')), {
      account_id: '$account_id',
      customer_id: '$customer_id',
      account_details: { account_number: '$account_number', account_type: '$account_type', currency: '$currency', status: '$account_status' },
      financial_info: { balance: '$balance', interest_rate: '$interest_rate', credit_limit: '$credit_limit' },
      dates: { opened_date: '$opened_date', closed_date: '$closed_date' },
      metadata: meta,
    });
  });

  it('hold every field the analytics read, and index fields that exist', () => {
    const has = (t: unknown, path: string) => path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), t) !== undefined;
    for (const [collection, paths] of Object.entries(ODL_PATHS)) for (const p of Object.values(paths)) assert.ok(has(templateOf(collection), p), `${collection}.${p}`);
    for (const c of PIPELINE.sinks[0].collections) for (const idx of c.indexes) for (const f of idx) assert.ok(has(c.document, f), `${c.collection} index ${f}`);
  });
});

describe('banking: mock data', () => {
  const now = new Date('2024-02-01T00:00:00Z');
  const data = buildMockData({ customers: 100, seed: 42, now });

  it('follows mockDataSpec: 100 customers, 1–2 accounts each, 10 transactions per account over the last month, 30 % with agreements', () => {
    assert.equal(data.customers.length, 100);
    const perCustomer = new Map<unknown, number>();
    for (const a of data.accounts) perCustomer.set(a.customer_id, (perCustomer.get(a.customer_id) ?? 0) + 1);
    assert.equal(perCustomer.size, 100);
    assert.ok([...perCustomer.values()].every((n) => n === 1 || n === 2));
    assert.ok([...perCustomer.values()].some((n) => n === 2));
    for (const a of data.accounts) assert.equal(data.transactions.filter((t) => t.account_id === a.account_id).length, 10);
    assert.equal(new Set(data.agreements.map((g) => g.customer_id)).size, 30);
    for (const t of data.transactions) {
      const at = Date.parse(String(t.transaction_date).replace(' ', 'T') + 'Z');
      assert.ok(at >= now.getTime() - 30 * DAY && at < now.getTime(), String(t.transaction_date));
    }
    assert.ok(data.accounts.every((a) => /^ACC-\d{4}-\d{6}$/.test(String(a.account_number))));
    assert.equal(new Set(data.customers.map((c) => c.email)).size, 100);
    assert.deepEqual(new Set(data.agreements.map((g) => g.status)), new Set(['ACTIVE', 'COMPLETED', 'DEFAULT', 'CANCELLED']));
  });

  it('keeps the ledger conventions: checking/savings never negative, cards within their limit, debts at most zero', () => {
    for (const a of data.accounts) {
      const b = toScaled(a.balance)!;
      if (a.account_type === 'CHECKING' || a.account_type === 'SAVINGS') assert.ok(b >= 0n, String(a.account_number));
      else assert.ok(b <= 0n, String(a.account_number));
      if (a.account_type === 'CREDIT') assert.ok(-b <= toScaled(a.credit_limit)!);
      if (a.account_status === 'CLOSED') assert.equal(b, 0n);
    }
  });

  it('is deterministic for a seed', () => {
    assert.deepEqual(buildMockData({ customers: 100, seed: 42, now }), data);
    assert.notDeepEqual(buildMockData({ customers: 100, seed: 43, now }).customers, data.customers);
  });
});

const DECIMALS = new Set(['balance', 'interest_rate', 'credit_limit', 'amount', 'principal_amount', 'current_balance', 'payment_amount']);
const TIMES = new Set(['date_of_birth', 'opened_date', 'closed_date', 'start_date', 'end_date', 'transaction_date', 'posted_date', 'created_at', 'updated_at']);
const KEYS: Record<string, string> = { customers: 'customer_id', accounts: 'account_id', transactions: 'transaction_id', agreements: 'agreement_id' };

/** A mock row as the document sink converts it: DECIMAL → Decimal, DATE/DATETIME/TIMESTAMP → Date. */
function typed(row: Row): Record<string, Doc[string]> {
  const out: Record<string, Doc[string]> = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null) out[k] = null;
    else if (DECIMALS.has(k)) out[k] = new Decimal(String(v));
    else if (TIMES.has(k)) out[k] = new Date(String(v).length === 10 ? `${v}T00:00:00Z` : `${String(v).replace(' ', 'T')}Z`);
    else out[k] = v;
  }
  return out;
}

const templates = new Map<string, Compiled>(collectionsCfg.map((c) => [c.table.split('.')[1], compileTemplate(c.document, (p, m) => assert.fail(`${p.join('.')}: ${m}`))]));

/** Applies one change as the document sink does: the ODL document, then the derived keys it touches. */
async function applyChange(odl: PgJsonStore, derived: PgJsonStore, table: string, op: 'c' | 'u' | 'd', beforeRow: Row | null, afterRow: Row | null): Promise<void> {
  const key = KEYS[table];
  const at = new Date('2024-02-01T00:00:00Z');
  if (op === 'd') await odl.deleteIds(table, [beforeRow![key] as number]);
  else {
    const doc = render(templates.get(table)!, { row: typed(afterRow!), sourceTs: at, syncTs: at, op, table: `banking.${table}` }) as Doc;
    await odl.upsert(table, [{ ...doc, _id: afterRow![key] as number }]);
  }
  const change: DerivedChange = { table: `banking.${table}`, op, before: beforeRow && typed(beforeRow), after: afterRow && typed(afterRow) };
  await deriveBatch(derivers, [change], odl, derived, new Date());
}

describe('banking: derivers on PostgreSQL JSONB', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let odl: PgJsonStore;
  let derived: PgJsonStore;
  const now = new Date('2024-02-01T00:00:00Z');

  before(async () => {
    db = await freshDatabase();
    odl = new PgJsonStore(db.client, 'odl');
    derived = new PgJsonStore(db.client, 'analytics');
    for (const c of collectionsCfg) await odl.ensureCollection(c.collection);
    for (const dv of derivers) await derived.ensureCollection(dv.collection, dv.indexes);
  });
  after(async () => db?.drop());

  const apply = (table: string, op: 'c' | 'u' | 'd', beforeRow: Row | null, afterRow: Row | null) => applyChange(odl, derived, table, op, beforeRow, afterRow);

  /** Documents as JSON without computed_at, by _id: how JSONB holds them, so stored and fresh compare alike. */
  const comparable = (docs: Doc[]) =>
    docs
      .map((x) => JSON.parse(toJsonText({ ...x, computed_at: null })) as Record<string, unknown>)
      .sort((a, b) => Number(a._id) - Number(b._id));

  async function assertMatchesRebuild(): Promise<void> {
    const fresh = await recomputeAll(odl, now);
    for (const dv of derivers) assert.deepEqual(comparable(await derived.find(dv.collection, {})), comparable(fresh[dv.collection]), dv.collection);
  }

  it('incremental derivation equals a rebuild, even when transactions arrive before their accounts and customers', async () => {
    const data: MockData = buildMockData({ customers: 12, seed: 7, now });
    // Per-table order kept (as per-key order is), tables in the worst order for lookups.
    for (const t of ['transactions', 'agreements', 'accounts', 'customers'] as const) for (const r of data[t]) await apply(t, 'c', null, r);
    assert.equal(await derived.count('customer_analytics'), 12);
    assert.equal(await derived.count('customer_agreement_profiles'), new Set(data.agreements.map((g) => g.customer_id)).size);
    await assertMatchesRebuild();

    // Updates, each checked on its own so that no later change repairs what an earlier one missed:
    // a balance, an account moved to another customer, a deleted transaction, a defaulted agreement, a move.
    const acct = data.accounts[0];
    await apply('accounts', 'u', acct, { ...acct, balance: '123456.78' });
    await assertMatchesRebuild();
    const moved = data.accounts.find((a) => a.customer_id !== acct.customer_id)!;
    await apply('accounts', 'u', moved, { ...moved, customer_id: acct.customer_id });
    await assertMatchesRebuild();
    const t0 = data.transactions[3];
    await apply('transactions', 'd', t0, null);
    await assertMatchesRebuild();
    const g = data.agreements[0];
    await apply('agreements', 'u', g, { ...g, status: 'DEFAULT' });
    await assertMatchesRebuild();
    const c = data.customers[1];
    await apply('customers', 'u', c, { ...c, city: 'Denver', state: 'CO' });
    await assertMatchesRebuild();

    const ga = (await derived.findOne('customer_analytics', { customer_id: g.customer_id as number }))!;
    assert.equal((ga.risk_profile as Doc).default_risk, 'HIGH');
    const owner = (await derived.findOne('customer_analytics', { customer_id: acct.customer_id as number }))!;
    assert.equal((owner.financial_summary as Doc).total_accounts, data.accounts.filter((x) => x.customer_id === acct.customer_id && x.account_status !== 'CLOSED').length + (moved.account_status !== 'CLOSED' ? 1 : 0));
    assert.equal(((await derived.findOne('customer_analytics', { customer_id: c.customer_id as number }))!.profile as Doc).location, 'Denver, CO');
    const gp = (await derived.findOne('customer_agreement_profiles', { customer_id: g.customer_id as number }))!;
    assert.ok(((gp.summary as Doc).defaulted as number) >= 1);
  });

  it('lag tracker: a probe resolves when its version is visible, older probes of the document with it', async () => {
    const lag = createLagTracker({ odl, analytics: derived, autoStart: false });
    const doc = (await odl.findOne('accounts', {}))!;
    const id = doc.account_id as number;
    const base = (b: string) => ({ ...doc, financial_info: { ...(doc.financial_info as Doc), balance: dec(b) } });
    const probe = (b: string) => ({ store: 'odl' as const, collection: 'accounts', filter: { account_id: id }, expect: { 'financial_info.balance': { decimal: b } } });
    const t = Date.now();
    lag.record({ kind: 'transaction', committedAt: t - 50, probes: [probe('1.10')] });
    lag.record({ kind: 'transaction', committedAt: t - 40, probes: [probe('2.20')] });
    lag.record({ kind: 'transaction', committedAt: t - 30, probes: [probe('3.30')] });
    await lag.pollOnce();
    assert.equal(lag.snapshot().pending, 3);
    // The sink applied the first two before the poller looked: the second's version is visible.
    await odl.upsert('accounts', [base('2.2')]);
    await lag.pollOnce();
    let s = lag.snapshot();
    assert.equal(s.pending, 1);
    assert.equal(s.odl.count, 2);
    assert.ok(s.odl.max! >= 40 && s.odl.max! < 10_000);
    await odl.upsert('accounts', [base('3.30')]);
    await lag.pollOnce();
    s = lag.snapshot();
    assert.deepEqual([s.pending, s.odl.count, s.analytics.count, s.oldestPendingMs], [0, 3, 0, null]);
    await lag.stop();
  });
});

describe('banking: the four analytics equal SQL over MariaDB, and the dashboard shows them (Chromium)', () => {
  let conn: mysql.Connection;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let odl: PgJsonStore;
  let derived: PgJsonStore;
  const now = new Date('2024-02-01T00:00:00Z');
  const data = buildMockData({ customers: 12, seed: 11, now });
  const twoAccounts = data.customers.find((c) => data.accounts.filter((a) => a.customer_id === c.customer_id).length === 2)!.customer_id as number;
  const bigAccount = data.accounts.find((a) => a.customer_id === twoAccounts)!.account_id as number;
  const txRow = (id: number, accountId: number, at: string, type: string, amount: string, status = 'COMPLETED'): Row => ({
    transaction_id: id,
    account_id: accountId,
    transaction_type: type,
    amount,
    currency: 'USD',
    description: 'edge case',
    reference_number: `TXN-EDGE-${id}`,
    counterparty_account: null,
    transaction_date: at,
    posted_date: at,
    status,
  });
  // Edge cases on top of the mock data: a customer without accounts, an account without
  // transactions, one transaction 40 days before the rest, a failed and a pending one, and an
  // amount far above its customer's others.
  const lonely: Row = { customer_id: 100, first_name: 'Ada', last_name: 'Edge', email: 'ada.edge@example.com', customer_status: 'ACTIVE' };
  const idle: Row = { account_id: 100, customer_id: 1, account_number: 'ACC-2024-000100', account_type: 'SAVINGS', balance: '0.00', currency: 'USD', account_status: 'ACTIVE', opened_date: '2024-01-31' };
  const edgeTx = [
    txRow(10_001, 1, '2023-12-01 10:00:00', 'DEPOSIT', '12.34'),
    txRow(10_002, 1, '2024-01-15 03:00:00', 'WITHDRAWAL', '77777.77', 'FAILED'),
    txRow(10_003, 2, '2024-01-20 23:59:59', 'FEE', '0.01', 'PENDING'),
    txRow(10_004, bigAccount, '2024-01-31 12:00:00', 'DEPOSIT', '95000.00'),
  ];

  async function insert(table: string, rows: Row[]): Promise<void> {
    const columns = Object.keys(rows[0]);
    await conn.query('INSERT INTO banking.?? (??) VALUES ?', [table, columns, rows.map((r) => columns.map((c) => r[c]))]);
    const docs = rows.map((r) => ({ ...(render(templates.get(table)!, { row: typed(r), sourceTs: now, syncTs: now, op: 'c', table: `banking.${table}` }) as Doc), _id: r[KEYS[table]] as number }));
    await odl.upsert(table, docs);
    const changes: DerivedChange[] = rows.map((r) => ({ table: `banking.${table}`, op: 'c', before: null, after: typed(r) }));
    // One batch per table, as the sink derives a batch: keys collected over all its changes.
    await deriveBatch(derivers, changes, odl, derived, new Date(), 4);
  }

  before(async () => {
    conn = await mysql.createConnection({ uri: bankingConnectionUrl() });
    await createSchema(conn, { reset: true });
    db = await freshDatabase();
    odl = new PgJsonStore(db.client, 'odl');
    derived = new PgJsonStore(db.client, 'analytics');
    for (const c of collectionsCfg) await odl.ensureCollection(c.collection);
    for (const dv of derivers) await derived.ensureCollection(dv.collection, dv.indexes);
    await conn.query("SET time_zone = '+00:00'");
    for (const t of ['customers', 'accounts', 'transactions', 'agreements'] as const) await insert(t, data[t]);
    await insert('customers', [lonely]);
    await insert('accounts', [idle]);
    await insert('transactions', edgeTx);
    // A transaction moved to another account (both accounts' metrics change) and one deleted.
    const moved = data.transactions.find((t) => t.account_id === bigAccount)!;
    await conn.query('UPDATE banking.transactions SET account_id = 3 WHERE transaction_id = ?', [moved.transaction_id]);
    await applyChange(odl, derived, 'transactions', 'u', moved, { ...moved, account_id: 3 });
    const gone = data.transactions.find((t) => t.account_id === 4)!;
    await conn.query('DELETE FROM banking.transactions WHERE transaction_id = ?', [gone.transaction_id]);
    await applyChange(odl, derived, 'transactions', 'd', gone, null);
  });
  after(async () => {
    await db?.drop();
    await conn?.end();
  });

  it('account_metrics and transaction_patterns kept incrementally equal SQL over MariaDB, edge cases included', async () => {
    const r = await checkAnalytics(conn, derived);
    assert.ok(r.ok, r.lines.join('\n'));
    for (const c of ['customer_analytics', 'customer_agreement_profiles', 'account_metrics', 'transaction_patterns']) assert.match(r.lines.join('\n'), new RegExp(`✔ ${c}: \\d+ documents`));
    // The edge cases are in what SQL computed, so the comparison above covered them.
    const want = await expectedAnalytics(conn);
    assert.equal(want.account_metrics.size, data.accounts.length + 1);
    assert.equal(want.transaction_patterns.size, data.customers.length + 1);
    assert.equal(want.transaction_patterns.get('100')!.pattern, 'INACTIVE');
    assert.equal(want.account_metrics.get('100')!.transaction_count, 0);
    const first = want.account_metrics.get('1')!;
    assert.equal((first.last_30_days as Doc).transaction_count, (first.transaction_count as number) - 1, 'the December deposit is outside the 30 days');
    assert.equal((first.transactions_by_status as Doc).FAILED, data.transactions.filter((t) => t.account_id === 1 && t.status === 'FAILED').length + 1);
    const anomalies = (want.transaction_patterns.get(String(twoAccounts))!.anomalies as { transactions: Doc[] }).transactions;
    assert.deepEqual(anomalies.map((a) => a.transaction_id), [10_004]);
  });

  it('the dashboard page shows account_metrics and transaction_patterns equal to SQL over MariaDB', async () => {
    const dash = await startDashboard({ port: 0, odl, analytics: derived });
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(dash.url);
      await page.waitForSelector('#accountMetrics tbody tr[data-account]');
      await page.waitForSelector('#patterns tbody tr[data-customer]');
      await page.waitForSelector('#anomalyTotal');
      const table = (selector: string, key: string) =>
        page.$$eval(
          `${selector} tbody tr`,
          (trs, k) => trs.map((tr) => ({ id: tr.getAttribute(`data-${k}`)!, cells: Object.fromEntries([...tr.querySelectorAll('td[data-f]')].map((td) => [td.getAttribute('data-f')!, td.textContent ?? ''])) })),
          key,
        );
      const want = await expectedAnalytics(conn);
      const at = (doc: Doc, path: string) => path.split('.').reduce<unknown>((o, k) => (o as Doc | null)?.[k], doc);
      const shown = (v: unknown, money: boolean) => (v === null || v === undefined ? '–' : v instanceof Date ? v.toISOString().slice(0, 16).replace('T', ' ') : money ? formatScaled(toScaled(v)!) : String(v));
      const check = (rows: { id: string; cells: Record<string, string> }[], docs: Map<string, Doc>, moneyFields: string[]) => {
        for (const row of rows) {
          const w = docs.get(row.id);
          assert.ok(w, `row ${row.id} is not in SQL's result`);
          for (const [f, text] of Object.entries(row.cells)) {
            const money = moneyFields.includes(f);
            const got = money && text !== '–' ? formatScaled(toScaled(text)!) : text;
            assert.equal(got, shown(at(w, f), money), `${row.id} ${f}`);
          }
        }
      };
      const metrics = await table('#accountMetrics', 'account');
      assert.equal(metrics.length, METRICS_ROWS);
      assert.equal(Object.keys(metrics[0].cells).length, 13);
      check(metrics, want.account_metrics, ['balance', 'total_credits', 'total_debits', 'avg_transaction_amount', 'largest_transaction', 'last_30_days.net_flow']);
      const patterns = await table('#patterns', 'customer');
      assert.equal(patterns.length, PATTERN_ROWS);
      assert.equal(Object.keys(patterns[0].cells).length, 8);
      check(patterns, want.transaction_patterns, ['total_amount', 'avg_amount']);
      // The label counts and the anomaly total cover the whole collection.
      const byLabel = new Map<string, number>();
      let anomalies = 0;
      for (const p of want.transaction_patterns.values()) {
        byLabel.set(p.pattern as string, (byLabel.get(p.pattern as string) ?? 0) + 1);
        anomalies += (p.anomalies as Doc).count as number;
      }
      const pills = await page.$$eval('#patternLabels [data-pattern]', (els) => els.map((e) => [e.getAttribute('data-pattern')!, Number(e.querySelector('b')!.textContent)] as const));
      for (const [label, n] of pills) assert.equal(n, byLabel.get(label) ?? 0, label);
      assert.equal(await page.getAttribute('#anomalyTotal', 'data-anomalies'), String(anomalies));
    } finally {
      await browser.close();
      await dash.close();
    }
  });

  it('the check names a stale figure in account_metrics and transaction_patterns', async () => {
    const m = (await derived.findOne('account_metrics', { account_id: 1 }))!;
    await derived.upsert('account_metrics', [{ ...m, total_credits: dec('0.01') }]);
    const p = (await derived.findOne('transaction_patterns', { customer_id: twoAccounts }))!;
    await derived.upsert('transaction_patterns', [{ ...p, by_hour: [...(p.by_hour as number[])].reverse() }]);
    const r = await checkAnalytics(conn, derived);
    assert.equal(r.ok, false);
    const text = r.lines.join('\n');
    assert.match(text, /✘ account_metrics: .*1 different \(1 total_credits: MySQL says/, text);
    assert.match(text, new RegExp(`✘ transaction_patterns: .*1 different \\(${twoAccounts} by_hour\\[\\d+\\]: MySQL says`), text);
  });
});
