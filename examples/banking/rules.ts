/**
 * The business rules of the two analytics collections (seed 000's Cluster 2), as pure functions of
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
 */
import type { Doc } from '../../src/sinks/document/types.ts';
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

/** COMPLETED or PENDING transactions with a readable date, oldest first (ties by id, so the order is total). */
export function effectiveTransactions(transactions: Doc[]): { id: number; at: number }[] {
  const out: { id: number; at: number }[] = [];
  for (const t of transactions) {
    const status = str(getPath(t, P.transactions.status));
    if (status !== 'COMPLETED' && status !== 'PENDING') continue;
    const at = toDate(getPath(t, P.transactions.date));
    if (at) out.push({ id: num(getPath(t, P.transactions.id)) ?? 0, at: at.getTime() });
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
