/**
 * The banking example's analytics (examples/banking): the pure rules on plain documents, the mock
 * data against seed 000's mockDataSpec, the templates against the seed's document shapes, and the
 * derivers and lag tracker on a real document store (PostgreSQL JSONB) — incremental derivation,
 * change by change and in an unfriendly table order, must equal a from-scratch rebuild.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { derivers, recomputeAll } from '../../examples/banking/analytics.ts';
import { createLagTracker } from '../../examples/banking/lag.ts';
import { buildMockData, type MockData, type Row } from '../../examples/banking/mock.ts';
import { formatScaled, sumScaled, toScaled } from '../../examples/banking/money.ts';
import { ODL_PATHS } from '../../examples/banking/odl.ts';
import { agreementProfile, avgMonthlyTransactions, creditScore, creditScoreBand, customerAnalytics, defaultRisk, effectiveTransactions, transactionPattern, type CustomerFacts } from '../../examples/banking/rules.ts';
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

describe('banking: derivers on PostgreSQL JSONB', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let odl: PgJsonStore;
  let derived: PgJsonStore;
  const templates = new Map<string, Compiled>(collectionsCfg.map((c) => [c.table.split('.')[1], compileTemplate(c.document, (p, m) => assert.fail(`${p.join('.')}: ${m}`))]));
  const now = new Date('2024-02-01T00:00:00Z');

  before(async () => {
    db = await freshDatabase();
    odl = new PgJsonStore(db.client, 'odl');
    derived = new PgJsonStore(db.client, 'analytics');
    for (const c of collectionsCfg) await odl.ensureCollection(c.collection);
    for (const dv of derivers) await derived.ensureCollection(dv.collection, dv.indexes);
  });
  after(async () => db?.drop());

  /** Applies one change as the document sink does: the ODL document, then the derived keys it touches. */
  async function apply(table: string, op: 'c' | 'u' | 'd', beforeRow: Row | null, afterRow: Row | null): Promise<void> {
    const key = KEYS[table];
    if (op === 'd') await odl.deleteIds(table, [beforeRow![key] as number]);
    else {
      const doc = render(templates.get(table)!, { row: typed(afterRow!), sourceTs: now, syncTs: now, op, table: `banking.${table}` }) as Doc;
      await odl.upsert(table, [{ ...doc, _id: afterRow![key] as number }]);
    }
    const change: DerivedChange = { table: `banking.${table}`, op, before: beforeRow && typed(beforeRow), after: afterRow && typed(afterRow) };
    await deriveBatch(derivers, [change], odl, derived, new Date());
  }

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
