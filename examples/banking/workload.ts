/**
 * A light live workload on the banking database, for the demo and for lag measurement: new
 * transactions that move their account's balance in the same MySQL transaction, customer address
 * and status changes, new accounts (with their opening deposit), new agreements and agreement
 * payments (debited from the customer's checking account when it has the funds).
 *
 * Each write reports a CommitRecord (lag.ts) with the time COMMIT returned and what the operational
 * layer and the analytics must show once the change went through. The expected analytics totals
 * are read in the same MySQL transaction as the write, so they are exactly what the source holds.
 * Status flips carry no probe: ACTIVE → INACTIVE → ACTIVE repeats values, which a content match
 * cannot tell apart (see lag.ts).
 */
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { CITIES, STREETS, STREET_SUFFIXES } from './data.ts';
import type { CommitRecord, Probe } from './lag.ts';
import { accountNumber, buildAgreement, describe, drawTransaction, fitToBalance, money, sqlDate, sqlDateTime, type AccountType } from './mock.ts';
import { formatScaled, toScaled } from './money.ts';
import { Rng } from './random.ts';

export type OpKind = 'transaction' | 'customer_update' | 'new_account' | 'new_agreement' | 'agreement_payment';

export interface WorkloadOptions {
  /** Writes (MySQL transactions) per second. */
  ratePerSec: number;
  seed?: number;
  /** Relative weights of the operations. Default: 70/10/5/5/10 in OpKind order. */
  mix?: Partial<Record<OpKind, number>>;
  /** Called after each COMMIT (give it LagTracker.record). */
  onCommit?: (commit: CommitRecord) => void;
}

export interface WorkloadStats {
  running: boolean;
  targetRatePerSec: number;
  /** Commits per second over the last 10 s. */
  ratePerSec: number;
  total: number;
  byKind: Record<OpKind, number>;
  errors: number;
  lastError: string | null;
  /** The last few writes, newest first. */
  recent: { kind: OpKind; committedAt: number; text: string }[];
}

export interface Workload {
  stop(): Promise<void>;
  stats(): WorkloadStats;
}

interface AccountState {
  id: number;
  customerId: number;
  type: AccountType;
  status: string;
}
interface AgreementState {
  id: number;
  customerId: number;
  status: string;
}

const DEFAULT_MIX: Record<OpKind, number> = { transaction: 70, customer_update: 10, new_account: 5, new_agreement: 5, agreement_payment: 10 };
const cents = (v: unknown) => Number(toScaled(v) ?? 0n);
const dec = (v: unknown) => ({ decimal: formatScaled(toScaled(v) ?? 0n) });

export async function startWorkload(conn: Connection, opts: WorkloadOptions): Promise<Workload> {
  const rng = new Rng(opts.seed ?? Date.now() % 2_147_483_647);
  const mix = { ...DEFAULT_MIX, ...opts.mix } as Record<OpKind, number>;
  await conn.query("SET time_zone = '+00:00'");
  await conn.query('USE banking');

  const q = async <T extends RowDataPacket>(sql: string, params: unknown[] = []) => (await conn.query<T[]>(sql, params))[0];
  const customers = (await q<RowDataPacket>('SELECT customer_id, customer_status, city, state FROM customers')).map((r) => ({
    id: Number(r.customer_id),
    status: String(r.customer_status),
    location: `${r.city}, ${r.state}`,
  }));
  const accounts: AccountState[] = (await q<RowDataPacket>('SELECT account_id, customer_id, account_type, account_status FROM accounts')).map((r) => ({
    id: Number(r.account_id),
    customerId: Number(r.customer_id),
    type: r.account_type as AccountType,
    status: String(r.account_status),
  }));
  const agreements: AgreementState[] = (await q<RowDataPacket>('SELECT agreement_id, customer_id, status FROM agreements')).map((r) => ({
    id: Number(r.agreement_id),
    customerId: Number(r.customer_id),
    status: String(r.status),
  }));
  if (customers.length === 0) throw new Error('banking.customers is empty: run generate() (npx tsx examples/banking/generate.ts) before the workload');
  /** Locations each customer was given lately: never reused, so a location identifies its version. */
  const pastLocations = new Map<number, string[]>();

  const stats: WorkloadStats = { running: true, targetRatePerSec: opts.ratePerSec, ratePerSec: 0, total: 0, byKind: { transaction: 0, customer_update: 0, new_account: 0, new_agreement: 0, agreement_payment: 0 }, errors: 0, lastError: null, recent: [] };
  const commitTimes: number[] = [];

  /** Runs `body` in a MySQL transaction; returns its result with the time COMMIT returned. */
  async function inTransaction<T>(body: () => Promise<T | null>): Promise<{ value: T; committedAt: number } | null> {
    await conn.beginTransaction();
    try {
      const value = await body();
      if (value === null) {
        await conn.rollback();
        return null;
      }
      await conn.commit();
      return { value, committedAt: Date.now() };
    } catch (e) {
      await conn.rollback().catch(() => undefined);
      throw e;
    }
  }

  /** Open-account count and net balance of a customer, as the customer_analytics rules count them. */
  async function customerTotals(customerId: number): Promise<Probe> {
    const [r] = await q<RowDataPacket>("SELECT COUNT(*) AS n, COALESCE(SUM(balance), 0) AS total FROM accounts WHERE customer_id = ? AND account_status <> 'CLOSED'", [customerId]);
    return { store: 'analytics', collection: 'customer_analytics', filter: { customer_id: customerId }, expect: { 'financial_summary.total_accounts': Number(r.n), 'financial_summary.total_balance': dec(r.total) } };
  }

  /** Posts a transaction on an account and moves its balance; null when the account cannot take it. */
  async function post(accountId: number, forced?: ReturnType<typeof describe>): Promise<{ probes: Probe[]; text: string; customerId: number } | null> {
    const [a] = await q<RowDataPacket>('SELECT customer_id, account_type, account_status, balance, credit_limit FROM accounts WHERE account_id = ? FOR UPDATE', [accountId]);
    if (!a || a.account_status !== 'ACTIVE') return null;
    const type = a.account_type as AccountType;
    const balance = cents(a.balance);
    const limit = a.credit_limit === null ? null : cents(a.credit_limit);
    const t = forced ?? fitToBalance(rng, drawTransaction(rng, type), type, balance, limit);
    const sign = t.type === 'DEPOSIT' || t.type === 'TRANSFER_IN' || (t.type === 'PAYMENT' && (type === 'CREDIT' || type === 'LOAN')) ? 1 : -1;
    const after = balance + sign * t.cents;
    if (t.cents <= 0 || ((type === 'CHECKING' || type === 'SAVINGS') && after < 0)) return null;
    const now = Date.now();
    const [ins] = await conn.query<ResultSetHeader>(
      `INSERT INTO transactions (account_id, transaction_type, amount, currency, description, reference_number, counterparty_account, transaction_date, posted_date, status)
       VALUES (?, ?, ?, 'USD', ?, ?, ?, ?, ?, 'COMPLETED')`,
      [accountId, t.type, money(t.cents), t.description, `TXN-${sqlDate(now).replaceAll('-', '')}-${String(rng.int(0, 99_999_999)).padStart(8, '0')}`, t.counterparty, sqlDateTime(now), sqlDateTime(now)],
    );
    await conn.query('UPDATE accounts SET balance = ? WHERE account_id = ?', [money(after), accountId]);
    const customerId = Number(a.customer_id);
    return {
      customerId,
      text: `${t.type} ${money(t.cents)} on account ${accountId} → balance ${money(after)}`,
      probes: [
        { store: 'odl', collection: 'transactions', filter: { transaction_id: ins.insertId }, expect: { 'financial_info.amount': { decimal: money(t.cents) } } },
        { store: 'odl', collection: 'accounts', filter: { account_id: accountId }, expect: { 'financial_info.balance': { decimal: money(after) } } },
      ],
    };
  }

  const ops: Record<OpKind, () => Promise<{ probes: Probe[]; text: string } | null>> = {
    async transaction() {
      const open = accounts.filter((a) => a.status === 'ACTIVE');
      if (!open.length) return null;
      const posted = await post(rng.pick(open).id);
      return posted && { text: posted.text, probes: [...posted.probes, await customerTotals(posted.customerId)] };
    },

    async customer_update() {
      const c = rng.pick(customers);
      if (rng.chance(0.2)) {
        const status = c.status === 'ACTIVE' ? (rng.chance(0.85) ? 'INACTIVE' : 'SUSPENDED') : 'ACTIVE';
        await q('UPDATE customers SET customer_status = ? WHERE customer_id = ?', [status, c.id]);
        c.status = status;
        return { text: `customer ${c.id} status → ${status}`, probes: [] };
      }
      const past = pastLocations.get(c.id) ?? [c.location];
      const choices = CITIES.filter((p) => !past.includes(`${p.city}, ${p.state}`));
      if (!choices.length) return null;
      const place = rng.pick(choices);
      const line1 = `${rng.int(1, 9_999)} ${rng.pick(STREETS)} ${rng.pick(STREET_SUFFIXES)}`;
      const line2 = rng.chance(0.3) ? `Apt ${rng.int(1, 30)}${rng.pick(['A', 'B', 'C'])}` : null;
      await q('UPDATE customers SET address_line1 = ?, address_line2 = ?, city = ?, state = ?, postal_code = ? WHERE customer_id = ?', [line1, line2, place.city, place.state, `${place.zip3}${String(rng.int(1, 99)).padStart(2, '0')}`, c.id]);
      c.location = `${place.city}, ${place.state}`;
      pastLocations.set(c.id, [...past, c.location]);
      const probes: Probe[] = [
        { store: 'odl', collection: 'customers', filter: { customer_id: c.id }, expect: { 'address.line1': line1, 'address.city': place.city } },
        { store: 'analytics', collection: 'customer_analytics', filter: { customer_id: c.id }, expect: { 'profile.location': c.location } },
      ];
      return { text: `customer ${c.id} moved to ${line1}, ${c.location}`, probes };
    },

    async new_account() {
      const c = rng.pick(customers);
      const type = rng.weighted<'SAVINGS' | 'CHECKING' | 'CREDIT'>({ SAVINGS: 50, CHECKING: 30, CREDIT: 20 });
      const [r] = await q<RowDataPacket>('SELECT COALESCE(MAX(account_id), 0) + 1 AS id FROM accounts FOR UPDATE');
      const id = Number(r.id);
      const now = Date.now();
      const limit = type === 'CREDIT' ? rng.int(4, 40) * 50_000 : null;
      const rate = { CHECKING: rng.int(10, 50), SAVINGS: rng.int(150, 450), CREDIT: rng.int(1_499, 2_499), LOAN: rng.int(499, 899) }[type];
      await q(
        `INSERT INTO accounts (account_id, customer_id, account_number, account_type, balance, currency, account_status, interest_rate, credit_limit, opened_date)
         VALUES (?, ?, ?, ?, 0.00, 'USD', 'ACTIVE', ?, ?, ?)`,
        [id, c.id, accountNumber(id, now), type, formatScaled(BigInt(rate), 4), limit === null ? null : money(limit), sqlDate(now)],
      );
      const probes: Probe[] = [{ store: 'odl', collection: 'accounts', filter: { account_id: id }, expect: { 'account_details.account_number': accountNumber(id, now) } }];
      let text = `new ${type} account ${accountNumber(id, now)} for customer ${c.id}`;
      if (type !== 'CREDIT') {
        const opening = await post(id, { type: 'DEPOSIT', cents: rng.int(100, 5_000) * 100, description: 'Opening deposit', counterparty: null });
        if (opening) {
          probes.push(...opening.probes);
          text += ` (${opening.text})`;
        }
      }
      accounts.push({ id, customerId: c.id, type, status: 'ACTIVE' });
      return { text, probes: [...probes, await customerTotals(c.id)] };
    },

    async new_agreement() {
      const c = rng.pick(customers);
      const [r] = await q<RowDataPacket>('SELECT COALESCE(MAX(agreement_id), 0) + 1 AS id FROM agreements FOR UPDATE');
      const row = buildAgreement(rng, Number(r.id), c.id, accounts.filter((a) => a.customerId === c.id && a.status === 'ACTIVE'), Date.now(), { status: 'ACTIVE', startNow: true });
      const cols = Object.keys(row);
      await q(`INSERT INTO agreements (${cols.join(', ')}) VALUES (?)`, [cols.map((k) => row[k])]);
      const [n] = await q<RowDataPacket>('SELECT COUNT(*) AS n FROM agreements WHERE customer_id = ?', [c.id]);
      agreements.push({ id: Number(row.agreement_id), customerId: c.id, status: 'ACTIVE' });
      const probes: Probe[] = [
        { store: 'odl', collection: 'agreements', filter: { agreement_id: Number(row.agreement_id) }, expect: { 'agreement_details.agreement_number': String(row.agreement_number) } },
        { store: 'analytics', collection: 'customer_agreement_profiles', filter: { customer_id: c.id }, expect: { 'summary.total': Number(n.n) } },
      ];
      return { text: `new ${row.agreement_type} agreement ${row.agreement_number} for customer ${c.id}, principal ${row.principal_amount}`, probes };
    },

    async agreement_payment() {
      const active = agreements.filter((g) => g.status === 'ACTIVE');
      if (!active.length) return null;
      const g = rng.pick(active);
      const [a] = await q<RowDataPacket>('SELECT agreement_number, agreement_type, current_balance, payment_amount, status FROM agreements WHERE agreement_id = ? FOR UPDATE', [g.id]);
      if (!a || a.status !== 'ACTIVE' || a.payment_amount === null) {
        g.status = a ? String(a.status) : 'GONE';
        return null;
      }
      const balance = cents(a.current_balance);
      const due = cents(a.payment_amount);
      // An investment payment is a contribution: it grows the balance; every other kind pays it down.
      const investment = a.agreement_type === 'INVESTMENT';
      const paid = investment ? due : Math.min(due, balance);
      if (paid <= 0) return null;
      const after = investment ? balance + paid : balance - paid;
      const status = !investment && after === 0 ? 'COMPLETED' : 'ACTIVE';
      await q('UPDATE agreements SET current_balance = ?, status = ? WHERE agreement_id = ?', [money(after), status, g.id]);
      g.status = status;
      const probes: Probe[] = [{ store: 'odl', collection: 'agreements', filter: { agreement_id: g.id }, expect: { 'financial_info.current_balance': { decimal: money(after) }, 'agreement_details.status': status } }];
      let text = `payment ${money(paid)} on ${a.agreement_number} → balance ${money(after)}${status === 'COMPLETED' ? ' (paid off)' : ''}`;
      const checking = accounts.find((x) => x.customerId === g.customerId && x.type === 'CHECKING' && x.status === 'ACTIVE');
      if (checking) {
        const debit = await post(checking.id, { type: 'PAYMENT', cents: paid, description: `${investment ? 'Contribution' : 'Installment'} ${a.agreement_number}`, counterparty: null });
        if (debit) {
          probes.push(...debit.probes, await customerTotals(g.customerId));
          text += ` from checking ${checking.id}`;
        }
      }
      const [s] = await q<RowDataPacket>('SELECT COALESCE(SUM(current_balance), 0) AS total FROM agreements WHERE customer_id = ?', [g.customerId]);
      probes.push({ store: 'analytics', collection: 'customer_agreement_profiles', filter: { customer_id: g.customerId }, expect: { 'financial_metrics.total_current_balance': dec(s.total) } });
      return { text, probes };
    },
  };

  let stopped = false;
  let wake: (() => void) | null = null;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  async function runOne(): Promise<void> {
    const kind = rng.weighted(mix);
    try {
      const done = await inTransaction(ops[kind]);
      if (!done) return;
      stats.total++;
      stats.byKind[kind]++;
      commitTimes.push(done.committedAt);
      stats.recent = [{ kind, committedAt: done.committedAt, text: done.value.text }, ...stats.recent].slice(0, 10);
      opts.onCommit?.({ kind, committedAt: done.committedAt, probes: done.value.probes });
    } catch (e) {
      stats.errors++;
      stats.lastError = `${kind}: ${(e as Error).message}`;
    }
  }

  const interval = 1000 / Math.max(0.01, opts.ratePerSec);
  const loop = (async () => {
    let next = performance.now();
    while (!stopped) {
      await runOne();
      next += interval;
      const wait = next - performance.now();
      // Behind by more than a second: start afresh instead of bursting to catch up.
      if (wait < -1000) next = performance.now();
      else if (wait > 0) await sleep(wait);
    }
  })();

  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      stats.running = false;
    },
    stats() {
      const now = Date.now();
      while (commitTimes.length && commitTimes[0] < now - 10_000) commitTimes.shift();
      return { ...stats, ratePerSec: Math.round((commitTimes.length / 10) * 10) / 10, byKind: { ...stats.byKind }, recent: [...stats.recent] };
    },
  };
}
