/**
 * The business rules of the analytics collections (seed 000's Cluster 2), as pure functions of
 * operational-layer documents. No clock, no store: the same documents always give the same result
 * (apart from `computed_at`, which is the `now` passed in), which is what lets the document sink
 * recompute a key after a crash, and lets tests compare incremental results with a rebuild.
 *
 * Rules (also in README.md):
 * - Open accounts are those whose status is not CLOSED; `total_accounts`, `total_balance` and
 *   `account_types` cover open accounts only. Balances are signed: CREDIT and LOAN accounts carry
 *   what the customer owes as a negative balance, so `total_balance` is the net position.
 * - Effective transactions are COMPLETED or PENDING (FAILED and REVERSED never moved money).
 * - `avg_monthly_transactions` = effective transactions ÷ active months, where an active month is
 *   a calendar month (UTC) with at least one effective transaction; one decimal; 0 with none.
 *   It never looks at today's date, so it does not drift while nothing changes.
 * - `transaction_pattern`: INACTIVE (no effective transaction), SPORADIC (1–2), otherwise the
 *   regularity of the gaps between consecutive transaction times, as their coefficient of
 *   variation (standard deviation ÷ mean): ≤ 0.75 REGULAR, ≤ 1.5 IRREGULAR, above BURSTY.
 * - Monthly obligation = payment_amount of ACTIVE agreements normalised to a month (QUARTERLY ÷ 3,
 *   ANNUALLY ÷ 12), summed exactly as twelfths and rounded once, half away from zero, to cents.
 * - Liquid funds = balances of open CHECKING and SAVINGS accounts.
 * - `default_risk`: HIGH if any agreement is in DEFAULT, or liquid funds do not cover one month
 *   of obligations; MEDIUM if they cover fewer than three months, or an account is FROZEN, or the
 *   customer is SUSPENDED, or credit-card utilisation is 70 % or more; LOW otherwise.
 * - `credit_score_band` from a behavioural score (there is no bureau score in the source):
 *   600, + liquid funds (≥ 25,000: 120; ≥ 10,000: 90; ≥ 2,500: 60; ≥ 0: 30), + utilisation of open
 *   CREDIT accounts (none: 30; < 30 %: 60; < 70 %: 20; else −40), + 20 per COMPLETED agreement
 *   (at most 60), − 150 per DEFAULT agreement, − 80 if an account is FROZEN, − 100 if SUSPENDED.
 *   Bands: ≥ 760 EXCELLENT, ≥ 700 GOOD, ≥ 640 FAIR, ≥ 580 POOR, else VERY_POOR.
 * - A credit adds to the account's balance (deposits, incoming transfers, payments into CREDIT and
 *   LOAN accounts: the ledger convention of mock.ts's `signOf`); every other transaction is a debit.
 * - account_metrics' recent window is the 30 days up to and including the account's last
 *   effective transaction, not up to today: a window that slid with the clock would make a
 *   document stale without any change, so it could equal neither a rebuild nor SQL run later.
 * - An anomaly is an effective transaction whose amount exceeds the mean of the customer's
 *   effective amounts by more than three population standard deviations, decided exactly in
 *   integers: n·a − S > 0 and (n·a − S)² > 9·(n·Q − S²), with n, S, Q the count, sum and sum of
 *   squares of the amounts in cents.
 */
import type { Doc } from '../../src/sinks/document/types.ts';
import type { AccountType, TxnType } from './mock.ts';
import { signOf } from './mock.ts';
import { decimalOf, divRound, sumScaled, toScaled } from './money.ts';
import { getPath, idOf, num, ODL_PATHS as P, str, toDate } from './odl.ts';

export interface CustomerFacts {
  customer: Doc;
  accounts: Doc[];
  /** Transactions of all the customer's accounts (open or not). */
  transactions: Doc[];
  agreements: Doc[];
}

const ACCOUNT_TYPE_ORDER = ['CHECKING', 'SAVINGS', 'CREDIT', 'LOAN'];
const PER_YEAR: Record<string, bigint> = { MONTHLY: 12n, QUARTERLY: 4n, ANNUALLY: 1n };

const acctStatus = (a: Doc) => str(getPath(a, P.accounts.status));
const acctType = (a: Doc) => str(getPath(a, P.accounts.type));
const agrStatus = (g: Doc) => str(getPath(g, P.agreements.status));
const isOpen = (a: Doc) => acctStatus(a) !== 'CLOSED';

export function fullName(customer: Doc): string {
  return [str(getPath(customer, P.customers.firstName)), str(getPath(customer, P.customers.lastName))].filter(Boolean).join(' ');
}

/** "City, ST"; just the one that is known when the other is missing; null when neither is. */
export function location(customer: Doc): string | null {
  const parts = [str(getPath(customer, P.customers.city)), str(getPath(customer, P.customers.state))].filter((s): s is string => !!s);
  return parts.length ? parts.join(', ') : null;
}

/** An effective transaction as the rules read it: amount in cents, time in epoch ms. */
export interface Movement {
  id: number;
  at: number;
  accountId: string | number | null;
  type: string | null;
  cents: bigint;
}

/** COMPLETED or PENDING transactions with a readable date, oldest first (ties by id, so the order is total). */
export function effectiveTransactions(transactions: Doc[]): Movement[] {
  const out: Movement[] = [];
  for (const t of transactions) {
    const status = str(getPath(t, P.transactions.status));
    if (status !== 'COMPLETED' && status !== 'PENDING') continue;
    const at = toDate(getPath(t, P.transactions.date));
    if (!at) continue;
    out.push({
      id: num(getPath(t, P.transactions.id)) ?? 0,
      at: at.getTime(),
      accountId: idOf(getPath(t, P.transactions.accountId)),
      type: str(getPath(t, P.transactions.type)),
      cents: toScaled(getPath(t, P.transactions.amount)) ?? 0n,
    });
  }
  return out.sort((a, b) => a.at - b.at || a.id - b.id);
}

export function avgMonthlyTransactions(times: number[]): number {
  if (times.length === 0) return 0;
  const months = new Set(times.map((t) => new Date(t).toISOString().slice(0, 7)));
  return Math.round((times.length / months.size) * 10) / 10;
}

export function transactionPattern(sortedTimes: number[]): 'INACTIVE' | 'SPORADIC' | 'REGULAR' | 'IRREGULAR' | 'BURSTY' {
  if (sortedTimes.length === 0) return 'INACTIVE';
  if (sortedTimes.length < 3) return 'SPORADIC';
  const gaps: number[] = [];
  for (let i = 1; i < sortedTimes.length; i++) gaps.push(sortedTimes[i] - sortedTimes[i - 1]);
  const mean = gaps.reduce((s, g) => s + g, 0) / gaps.length;
  // All at the same instant: one burst, not a rhythm.
  if (mean === 0) return 'BURSTY';
  const variance = gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / gaps.length;
  const cv = Math.sqrt(variance) / mean;
  return cv <= 0.75 ? 'REGULAR' : cv <= 1.5 ? 'IRREGULAR' : 'BURSTY';
}

/** The monthly-normalised payment in twelfths of a cent-unit: exact until the final rounding. */
function paymentTwelfths(g: Doc): bigint {
  const amount = toScaled(getPath(g, P.agreements.paymentAmount)) ?? 0n;
  const perYear = PER_YEAR[str(getPath(g, P.agreements.paymentFrequency)) ?? 'MONTHLY'] ?? 12n;
  return amount * perYear;
}

/** One agreement's payment normalised to a month, in cents (rounded). */
export function monthlyPayment(g: Doc): bigint | null {
  if (getPath(g, P.agreements.paymentAmount) == null) return null;
  return divRound(paymentTwelfths(g), 12n);
}

/** Monthly obligation of the ACTIVE agreements, in twelfths of a cent. */
export function monthlyObligationTwelfths(agreements: Doc[]): bigint {
  return agreements.filter((g) => agrStatus(g) === 'ACTIVE').reduce((s, g) => s + paymentTwelfths(g), 0n);
}

export function liquidFunds(accounts: Doc[]): bigint {
  return sumScaled(accounts.filter((a) => isOpen(a) && (acctType(a) === 'CHECKING' || acctType(a) === 'SAVINGS')).map((a) => getPath(a, P.accounts.balance)));
}

/** Owed and limit over open CREDIT accounts with a limit; null when there is none. */
export function creditUtilisation(accounts: Doc[]): { owed: bigint; limit: bigint } | null {
  let owed = 0n;
  let limit = 0n;
  for (const a of accounts) {
    if (!isOpen(a) || acctType(a) !== 'CREDIT') continue;
    const l = toScaled(getPath(a, P.accounts.creditLimit)) ?? 0n;
    if (l <= 0n) continue;
    const b = toScaled(getPath(a, P.accounts.balance)) ?? 0n;
    owed += b < 0n ? -b : 0n;
    limit += l;
  }
  return limit > 0n ? { owed, limit } : null;
}

const CENTS = (units: number) => BigInt(units) * 100n;

export function creditScore(f: CustomerFacts): number {
  let score = 600;
  const liquid = liquidFunds(f.accounts);
  score += liquid >= CENTS(25_000) ? 120 : liquid >= CENTS(10_000) ? 90 : liquid >= CENTS(2_500) ? 60 : liquid >= 0n ? 30 : 0;
  const u = creditUtilisation(f.accounts);
  // owed/limit < 30 % ⇔ owed·10 < limit·3: integer comparisons, no rounding.
  score += !u ? 30 : u.owed * 10n < u.limit * 3n ? 60 : u.owed * 10n < u.limit * 7n ? 20 : -40;
  const completed = f.agreements.filter((g) => agrStatus(g) === 'COMPLETED').length;
  const defaulted = f.agreements.filter((g) => agrStatus(g) === 'DEFAULT').length;
  score += Math.min(completed, 3) * 20 - defaulted * 150;
  if (f.accounts.some((a) => acctStatus(a) === 'FROZEN')) score -= 80;
  if (str(getPath(f.customer, P.customers.status)) === 'SUSPENDED') score -= 100;
  return score;
}

export function creditScoreBand(score: number): 'EXCELLENT' | 'GOOD' | 'FAIR' | 'POOR' | 'VERY_POOR' {
  return score >= 760 ? 'EXCELLENT' : score >= 700 ? 'GOOD' : score >= 640 ? 'FAIR' : score >= 580 ? 'POOR' : 'VERY_POOR';
}

export function defaultRisk(f: CustomerFacts): 'LOW' | 'MEDIUM' | 'HIGH' {
  if (f.agreements.some((g) => agrStatus(g) === 'DEFAULT')) return 'HIGH';
  const obligation12 = monthlyObligationTwelfths(f.agreements);
  const liquid12 = liquidFunds(f.accounts) * 12n;
  if (obligation12 > 0n && liquid12 < obligation12) return 'HIGH';
  if (obligation12 > 0n && liquid12 < obligation12 * 3n) return 'MEDIUM';
  if (f.accounts.some((a) => acctStatus(a) === 'FROZEN')) return 'MEDIUM';
  if (str(getPath(f.customer, P.customers.status)) === 'SUSPENDED') return 'MEDIUM';
  const u = creditUtilisation(f.accounts);
  if (u && u.owed * 10n >= u.limit * 7n) return 'MEDIUM';
  return 'LOW';
}

/** The `customer_analytics` document (seed 000, Cluster 2), `_id` = customer_id. */
export function customerAnalytics(f: CustomerFacts, now: Date): Doc {
  const id = idOf(getPath(f.customer, P.customers.id));
  const open = f.accounts.filter(isOpen);
  const types = new Set(open.map(acctType).filter((t): t is string => !!t));
  const effective = effectiveTransactions(f.transactions);
  const times = effective.map((t) => t.at);
  return {
    _id: id,
    customer_id: id,
    profile: {
      name: fullName(f.customer),
      email: str(getPath(f.customer, P.customers.email)),
      location: location(f.customer),
      status: str(getPath(f.customer, P.customers.status)),
    },
    financial_summary: {
      total_accounts: open.length,
      total_balance: decimalOf(sumScaled(open.map((a) => getPath(a, P.accounts.balance)))),
      account_types: [...types].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)),
      avg_monthly_transactions: avgMonthlyTransactions(times),
      last_transaction_date: times.length ? new Date(times[times.length - 1]) : null,
    },
    risk_profile: {
      credit_score_band: creditScoreBand(creditScore(f)),
      default_risk: defaultRisk(f),
      transaction_pattern: transactionPattern(times),
    },
    computed_at: now,
  };
}

function rank(type: string): number {
  const i = ACCOUNT_TYPE_ORDER.indexOf(type);
  return i < 0 ? ACCOUNT_TYPE_ORDER.length : i;
}

const money = (v: unknown, scale = 2) => {
  const s = toScaled(v, scale);
  return s === null ? null : decimalOf(s, scale);
};

/**
 * The `customer_agreement_profiles` document (seed 000's Java agreement profile service), or
 * null for a customer without agreements. Principal and current balance total every agreement;
 * the monthly payment totals ACTIVE agreements only — the money currently being paid.
 */
export function agreementProfile(customer: Doc, agreements: Doc[], now: Date): Doc | null {
  if (agreements.length === 0) return null;
  const id = idOf(getPath(customer, P.customers.id));
  const sorted = [...agreements].sort((a, b) => (num(getPath(a, P.agreements.id)) ?? 0) - (num(getPath(b, P.agreements.id)) ?? 0));
  const count = (s: string) => agreements.filter((g) => agrStatus(g) === s).length;
  const monthly = (g: Doc) => {
    const m = monthlyPayment(g);
    return m === null ? null : decimalOf(m);
  };
  return {
    _id: id,
    customer_id: id,
    customer: {
      name: fullName(customer),
      email: str(getPath(customer, P.customers.email)),
      phone: str(getPath(customer, P.customers.phone)),
      location: location(customer),
      status: str(getPath(customer, P.customers.status)),
    },
    agreements: sorted.map((g) => ({
      agreement_id: idOf(getPath(g, P.agreements.id)),
      agreement_number: str(getPath(g, P.agreements.number)),
      agreement_type: str(getPath(g, P.agreements.type)),
      status: agrStatus(g),
      account_id: idOf(getPath(g, P.agreements.accountId)),
      principal_amount: money(getPath(g, P.agreements.principal)),
      current_balance: money(getPath(g, P.agreements.currentBalance)),
      interest_rate: money(getPath(g, P.agreements.interestRate), 4),
      term_months: num(getPath(g, P.agreements.termMonths)),
      payment_amount: money(getPath(g, P.agreements.paymentAmount)),
      payment_frequency: str(getPath(g, P.agreements.paymentFrequency)),
      monthly_payment: monthly(g),
      start_date: toDate(getPath(g, P.agreements.startDate)),
      end_date: toDate(getPath(g, P.agreements.endDate)),
    })),
    summary: {
      total: agreements.length,
      active: count('ACTIVE'),
      completed: count('COMPLETED'),
      defaulted: count('DEFAULT'),
      cancelled: count('CANCELLED'),
    },
    financial_metrics: {
      total_principal: decimalOf(sumScaled(agreements.map((g) => getPath(g, P.agreements.principal)))),
      total_current_balance: decimalOf(sumScaled(agreements.map((g) => getPath(g, P.agreements.currentBalance)))),
      total_monthly_payment: decimalOf(divRound(monthlyObligationTwelfths(agreements), 12n)),
    },
    computed_at: now,
  };
}

// ---- account_metrics and transaction_patterns -------------------------------------------------

/** The transaction types of the source ENUM, in its order. */
export const TRANSACTION_TYPES = ['DEPOSIT', 'WITHDRAWAL', 'TRANSFER_IN', 'TRANSFER_OUT', 'PAYMENT', 'FEE'] as const;
export const WEEKDAYS = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'] as const;
const STATUSES = ['COMPLETED', 'PENDING', 'FAILED', 'REVERSED'] as const;
/** Length of account_metrics' recent window, which ends at the account's last effective transaction. */
export const RECENT_DAYS = 30;
const DAY_MS = 86_400_000;

/** True when the transaction adds to the account's balance; unknown types are debits. */
export function isCredit(type: string | null, accountType: string | null): boolean {
  return type !== null && signOf(type as TxnType, (accountType ?? '') as AccountType) > 0;
}

function flows(moves: Movement[], accountType: string | null): Doc {
  let credits = 0n;
  let debits = 0n;
  for (const m of moves) {
    if (isCredit(m.type, accountType)) credits += m.cents;
    else debits += m.cents;
  }
  return { transaction_count: moves.length, total_credits: decimalOf(credits), total_debits: decimalOf(debits), net_flow: decimalOf(credits - debits) };
}

const sumCents = (moves: Movement[]) => moves.reduce((s, m) => s + m.cents, 0n);
/** Mean in cents, rounded half away from zero; null without transactions. */
const meanOf = (moves: Movement[]) => (moves.length ? decimalOf(divRound(sumCents(moves), BigInt(moves.length))) : null);
const dateAt = (moves: Movement[], i: number) => (moves.length ? new Date(moves[(i + moves.length) % moves.length].at) : null);

/**
 * The `account_metrics` document of one account, `_id` = account_id: the account's identity and
 * balance, then its effective transactions all time and in the 30 days up to its last one.
 */
export function accountMetrics(account: Doc, transactions: Doc[], now: Date): Doc {
  const id = idOf(getPath(account, P.accounts.id));
  const type = acctType(account);
  const eff = effectiveTransactions(transactions);
  const last = eff.length ? eff[eff.length - 1].at : null;
  const from = last === null ? null : last - RECENT_DAYS * DAY_MS;
  const recent = from === null ? [] : eff.filter((m) => m.at > from);
  const byStatus: Record<string, number> = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const t of transactions) {
    const s = str(getPath(t, P.transactions.status));
    if (s !== null && s in byStatus) byStatus[s]++;
  }
  return {
    _id: id,
    account_id: id,
    customer_id: idOf(getPath(account, P.accounts.customerId)),
    account_number: str(getPath(account, P.accounts.number)),
    account_type: type,
    currency: str(getPath(account, P.accounts.currency)),
    status: acctStatus(account),
    balance: money(getPath(account, P.accounts.balance)),
    credit_limit: money(getPath(account, P.accounts.creditLimit)),
    ...flows(eff, type),
    avg_transaction_amount: meanOf(eff),
    largest_transaction: eff.length ? decimalOf(eff.reduce((m, t) => (t.cents > m ? t.cents : m), eff[0].cents)) : null,
    first_transaction_date: dateAt(eff, 0),
    last_transaction_date: dateAt(eff, -1),
    last_30_days: { from: from === null ? null : new Date(from), to: last === null ? null : new Date(last), ...flows(recent, type) },
    transactions_by_status: byStatus,
    computed_at: now,
  };
}

/** Index of the largest count, the first one on ties; null when all are zero. */
function peak(counts: number[]): number | null {
  let best = -1;
  counts.forEach((c, i) => {
    if (c > 0 && (best < 0 || c > counts[best])) best = i;
  });
  return best < 0 ? null : best;
}

/** Effective transactions whose amount is above the mean + 3σ of all of them (exact, see the header). */
export function anomalies(moves: Movement[]): Movement[] {
  const n = BigInt(moves.length);
  const sum = sumCents(moves);
  const spread = n * moves.reduce((s, m) => s + m.cents * m.cents, 0n) - sum * sum;
  return moves.filter((m) => {
    const dev = n * m.cents - sum;
    return dev > 0n && dev * dev > 9n * spread;
  });
}

/**
 * The `transaction_patterns` document of one customer, `_id` = customer_id, over the effective
 * transactions of all the customer's accounts: the pattern label (the same rule, and so the same
 * value, as customer_analytics' risk_profile.transaction_pattern), counts and amounts by type,
 * when in the day (hour, UTC) and the week the customer transacts, and the anomalous amounts.
 */
export function transactionPatterns(customer: Doc, transactions: Doc[], now: Date): Doc {
  const id = idOf(getPath(customer, P.customers.id));
  const eff = effectiveTransactions(transactions);
  const byType: Record<string, { count: number; cents: bigint }> = Object.fromEntries(TRANSACTION_TYPES.map((t) => [t, { count: 0, cents: 0n }]));
  const byHour: number[] = Array.from({ length: 24 }, () => 0);
  const byWeekday: number[] = Array.from({ length: 7 }, () => 0);
  for (const m of eff) {
    const slot = m.type === null ? undefined : byType[m.type];
    if (slot) {
      slot.count++;
      slot.cents += m.cents;
    }
    const at = new Date(m.at);
    byHour[at.getUTCHours()]++;
    byWeekday[(at.getUTCDay() + 6) % 7]++;
  }
  const odd = anomalies(eff);
  const peakDay = peak(byWeekday);
  return {
    _id: id,
    customer_id: id,
    pattern: transactionPattern(eff.map((m) => m.at)),
    transaction_count: eff.length,
    total_amount: decimalOf(sumCents(eff)),
    avg_amount: meanOf(eff),
    first_transaction_date: dateAt(eff, 0),
    last_transaction_date: dateAt(eff, -1),
    by_type: Object.fromEntries(Object.entries(byType).map(([t, v]) => [t, { count: v.count, amount: decimalOf(v.cents) }])),
    by_hour: byHour,
    by_weekday: Object.fromEntries(WEEKDAYS.map((d, i) => [d, byWeekday[i]])),
    peak_hour: peak(byHour),
    peak_weekday: peakDay === null ? null : WEEKDAYS[peakDay],
    anomalies: {
      count: odd.length,
      transactions: odd.map((m) => ({ transaction_id: m.id, account_id: m.accountId, transaction_type: m.type, amount: decimalOf(m.cents), transaction_date: new Date(m.at) })),
    },
    computed_at: now,
  };
}
