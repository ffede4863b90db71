/**
 * Builds the banking mock data of seed 000's mockDataSpec as plain rows, without touching a
 * database (generate.ts inserts them): 1–2 accounts per customer, 10 transactions per account
 * within the month before `now`, agreements for 30 % of the customers. The same seed, `now` and
 * first ids give the same rows; money is kept in integer cents so balances add up exactly.
 *
 * Ledger conventions, kept by the workload too: an account's balance is its opening balance plus
 * its COMPLETED transactions; CREDIT and LOAN balances are negative (what the customer owes);
 * checking and savings never go below zero.
 */
import { formatScaled } from './money.ts';
import { BILLERS, CITIES, EMAIL_DOMAINS, EMPLOYERS, FEES, FIRST_NAMES, LAST_NAMES, MERCHANTS, STREETS, STREET_SUFFIXES } from './data.ts';
import { Rng } from './random.ts';

export type Row = Record<string, string | number | null>;
export interface MockData {
  customers: Row[];
  accounts: Row[];
  transactions: Row[];
  agreements: Row[];
}
export interface FirstIds {
  customer: number;
  account: number;
  transaction: number;
  agreement: number;
}
export interface MockOptions {
  customers: number;
  seed: number;
  /** End of the one-month timeline. */
  now: Date;
  /** Ids the new rows start from (after the rows already in the tables). Default 1 each. */
  firstIds?: FirstIds;
}

export type AccountType = 'CHECKING' | 'SAVINGS' | 'CREDIT' | 'LOAN';
export type TxnType = 'DEPOSIT' | 'WITHDRAWAL' | 'TRANSFER_IN' | 'TRANSFER_OUT' | 'PAYMENT' | 'FEE';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export const sqlDateTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
export const sqlDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);
export const money = (cents: number) => formatScaled(BigInt(Math.round(cents)));
const rate = (basisPoints: number) => formatScaled(BigInt(basisPoints), 4);
const pad = (n: number, width: number) => String(n).padStart(width, '0');

export function addMonths(ms: number, months: number): number {
  const d = new Date(ms);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.getTime();
}

export const accountNumber = (id: number, openedMs: number) => `ACC-${new Date(openedMs).getUTCFullYear()}-${pad(id, 6)}`;
export const agreementNumber = (id: number, startMs: number) => `AGR-${new Date(startMs).getUTCFullYear()}-${pad(id, 6)}`;
export const referenceNumber = (id: number, atMs: number) => `TXN-${sqlDate(atMs).replaceAll('-', '')}-${pad(id, 8)}`;

/** +1 when the type adds to the account's balance. On CREDIT and LOAN accounts a PAYMENT pays the debt down. */
export function signOf(type: TxnType, accountType: AccountType): 1 | -1 {
  if (type === 'DEPOSIT' || type === 'TRANSFER_IN') return 1;
  if (type === 'PAYMENT' && (accountType === 'CREDIT' || accountType === 'LOAN')) return 1;
  return -1;
}

const TYPE_WEIGHTS: Record<AccountType, Partial<Record<TxnType, number>>> = {
  CHECKING: { DEPOSIT: 22, WITHDRAWAL: 20, PAYMENT: 30, TRANSFER_IN: 8, TRANSFER_OUT: 12, FEE: 8 },
  SAVINGS: { DEPOSIT: 35, TRANSFER_IN: 30, TRANSFER_OUT: 20, WITHDRAWAL: 15 },
  CREDIT: { WITHDRAWAL: 65, PAYMENT: 28, FEE: 7 },
  LOAN: { PAYMENT: 90, FEE: 10 },
};

/** A transaction's type, amount (cents, positive), description and counterparty, drawn for an account type. */
export function drawTransaction(rng: Rng, accountType: AccountType): { type: TxnType; cents: number; description: string; counterparty: string | null } {
  const type = rng.weighted(TYPE_WEIGHTS[accountType] as Record<TxnType, number>);
  return describe(rng, type, accountType);
}

export function describe(rng: Rng, type: TxnType, accountType: AccountType): { type: TxnType; cents: number; description: string; counterparty: string | null } {
  const external = () => `EXT-${pad(rng.int(0, 9_999_999), 10)}`;
  switch (type) {
    case 'DEPOSIT':
      return rng.chance(0.6)
        ? { type, cents: rng.int(1_200, 4_800) * 100, description: `Payroll deposit - ${rng.pick(EMPLOYERS)}`, counterparty: null }
        : { type, cents: rng.int(2_000, 90_000), description: rng.pick(['Mobile check deposit', 'Cash deposit', 'Branch deposit']), counterparty: null };
    case 'WITHDRAWAL':
      return accountType === 'CREDIT'
        ? { type, cents: rng.int(500, 40_000), description: `Card purchase - ${rng.pick(MERCHANTS)}`, counterparty: null }
        : { type, cents: rng.int(2, 40) * 1_000, description: rng.pick(['ATM withdrawal', 'Branch withdrawal']), counterparty: null };
    case 'PAYMENT':
      if (accountType === 'CREDIT') return { type, cents: rng.int(5_000, 150_000), description: 'Card payment - thank you', counterparty: external() };
      if (accountType === 'LOAN') return { type, cents: rng.int(20_000, 120_000), description: 'Loan installment', counterparty: external() };
      return rng.chance(0.5)
        ? { type, cents: rng.int(1_500, 80_000), description: `Card payment - ${rng.pick(MERCHANTS)}`, counterparty: null }
        : { type, cents: rng.int(4_000, 25_000), description: `Bill payment - ${rng.pick(BILLERS)}`, counterparty: external() };
    case 'TRANSFER_IN':
      return { type, cents: rng.int(50, 2_000) * 100, description: 'Transfer from external account', counterparty: external() };
    case 'TRANSFER_OUT':
      return { type, cents: rng.int(50, 1_500) * 100, description: accountType === 'CHECKING' ? 'Transfer to savings' : 'Transfer to external account', counterparty: external() };
    case 'FEE':
      return { type, cents: rng.int(200, 3_500), description: rng.pick(FEES), counterparty: null };
  }
}

/**
 * Applies a drawn transaction to a balance without breaking the ledger conventions: a debit that
 * would overdraw checking/savings becomes a deposit, a card purchase beyond the limit becomes a
 * payment, and a payment never takes a debt above zero. Returns the transaction to record.
 */
export function fitToBalance(rng: Rng, t: ReturnType<typeof drawTransaction>, accountType: AccountType, balance: number, creditLimit: number | null) {
  let out = t;
  const after = () => balance + signOf(out.type, accountType) * out.cents;
  if ((accountType === 'CHECKING' || accountType === 'SAVINGS') && after() < 0) out = describe(rng, 'DEPOSIT', accountType);
  if (accountType === 'CREDIT' && creditLimit !== null && after() < -creditLimit) out = describe(rng, 'PAYMENT', accountType);
  if ((accountType === 'CREDIT' || accountType === 'LOAN') && after() > 0) out = { ...out, cents: Math.max(0, -balance) };
  return out;
}

type Pattern = 'regular' | 'random' | 'bursty';

/** `n` transaction times in [from, to), by the customer's habit: evenly spaced, uniform, or in two bursts. */
function transactionTimes(rng: Rng, pattern: Pattern, n: number, from: number, to: number): number[] {
  const span = to - from;
  const times: number[] = [];
  if (pattern === 'regular') {
    const step = span / n;
    for (let k = 0; k < n; k++) times.push(from + k * step + step / 2 + (rng.next() - 0.5) * 0.3 * step);
  } else if (pattern === 'random') {
    for (let k = 0; k < n; k++) times.push(from + rng.next() * span);
  } else {
    const centres = [from + rng.next() * (span - 8 * HOUR), from + rng.next() * (span - 8 * HOUR)];
    for (let k = 0; k < n; k++) times.push(centres[k % 2] + rng.next() * 6 * HOUR);
  }
  return times.map((t) => Math.min(to - 1000, Math.floor(t / 1000) * 1000)).sort((a, b) => a - b);
}

export function buildMockData(opts: MockOptions): MockData {
  const rng = new Rng(opts.seed);
  const now = Math.floor(opts.now.getTime() / 1000) * 1000;
  const monthAgo = now - 30 * DAY;
  const ids = { ...(opts.firstIds ?? { customer: 1, account: 1, transaction: 1, agreement: 1 }) };
  const data: MockData = { customers: [], accounts: [], transactions: [], agreements: [] };
  const emails = new Set<string>();
  const accountsOf = new Map<number, { id: number; type: AccountType; openedMs: number }[]>();

  for (let i = 0; i < opts.customers; i++) {
    const customerId = ids.customer++;
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    let email = `${first}.${last}@${rng.pick(EMAIL_DOMAINS)}`.toLowerCase();
    // Ids keep emails unique across runs that add to existing rows, and within a run on a clash.
    if (emails.has(email) || customerId !== i + 1) email = email.replace('@', `${customerId}@`);
    emails.add(email);
    const place = rng.pick(CITIES);
    const createdMs = now - rng.int(200, 3_000) * DAY + rng.int(8, 19) * HOUR;
    const pattern = rng.weighted<Pattern>({ regular: 45, random: 40, bursty: 15 });
    data.customers.push({
      customer_id: customerId,
      first_name: first,
      last_name: last,
      email,
      phone: `+1-555-${pad(rng.int(100, 9_999), 4)}`,
      date_of_birth: sqlDate(Date.UTC(rng.int(1950, 2004), rng.int(0, 11), rng.int(1, 28))),
      address_line1: `${rng.int(1, 9_999)} ${rng.pick(STREETS)} ${rng.pick(STREET_SUFFIXES)}`,
      address_line2: rng.chance(0.25) ? (rng.chance(0.7) ? `Apt ${rng.int(1, 30)}${rng.pick(['A', 'B', 'C', 'D'])}` : `Suite ${rng.int(100, 999)}`) : null,
      city: place.city,
      state: place.state,
      postal_code: `${place.zip3}${pad(rng.int(1, 99), 2)}`,
      country: 'USA',
      customer_status: rng.weighted({ ACTIVE: 88, INACTIVE: 8, SUSPENDED: 4 }),
      created_at: sqlDateTime(createdMs),
      updated_at: sqlDateTime(createdMs),
    });

    const firstType: AccountType = rng.chance(0.75) ? 'CHECKING' : 'SAVINGS';
    const types: AccountType[] = [firstType];
    if (rng.chance(0.5)) types.push(firstType === 'CHECKING' ? rng.weighted<AccountType>({ SAVINGS: 45, CREDIT: 35, LOAN: 20 } as Record<AccountType, number>) : rng.weighted<AccountType>({ CHECKING: 50, CREDIT: 30, LOAN: 20 } as Record<AccountType, number>));
    const mine: { id: number; type: AccountType; openedMs: number }[] = [];
    for (const type of types) {
      const accountId = ids.account++;
      const openedMs = Date.UTC(1970, 0, 1) + Math.floor((createdMs + rng.next() * (monthAgo - 10 * DAY - createdMs)) / DAY) * DAY;
      const status = rng.weighted({ ACTIVE: 94, FROZEN: 3, CLOSED: 3 });
      const creditLimit = type === 'CREDIT' ? rng.int(4, 40) * 50_000 : null;
      let balance =
        type === 'CHECKING' ? rng.int(20_000, 1_500_000) : type === 'SAVINGS' ? rng.int(100_000, 6_000_000) : type === 'CREDIT' ? -rng.int(0, (creditLimit ?? 0) / 2) : -rng.int(500_000, 4_000_000);
      const times = transactionTimes(rng, pattern, 10, monthAgo, status === 'CLOSED' ? now - 2 * DAY : now);
      for (const [k, at] of times.entries()) {
        const closing = status === 'CLOSED' && k === times.length - 1;
        let t = fitToBalance(rng, drawTransaction(rng, type), type, balance, creditLimit);
        // A closed account's last transaction moves out (or pays off) what is left.
        if (closing) t = { type: balance >= 0 ? 'TRANSFER_OUT' : 'PAYMENT', cents: Math.abs(balance), description: 'Account closure', counterparty: `EXT-${pad(rng.int(0, 9_999_999), 10)}` };
        const recent = now - at < 2 * DAY;
        const txStatus = closing ? 'COMPLETED' : recent && rng.chance(0.5) ? 'PENDING' : rng.weighted({ COMPLETED: 94, FAILED: 3, REVERSED: 3 });
        if (txStatus === 'COMPLETED') balance += signOf(t.type, type) * t.cents;
        const transactionId = ids.transaction++;
        data.transactions.push({
          transaction_id: transactionId,
          account_id: accountId,
          transaction_type: t.type,
          amount: money(t.cents),
          currency: 'USD',
          description: t.description,
          reference_number: referenceNumber(transactionId, at),
          counterparty_account: t.counterparty,
          transaction_date: sqlDateTime(at),
          posted_date: txStatus === 'COMPLETED' || txStatus === 'REVERSED' ? sqlDateTime(Math.min(now, at + rng.int(0, 36) * HOUR)) : null,
          status: txStatus,
          created_at: sqlDateTime(at),
          updated_at: sqlDateTime(at),
        });
      }
      const interest = { CHECKING: rng.int(10, 50), SAVINGS: rng.int(150, 450), CREDIT: rng.int(1_499, 2_499), LOAN: rng.int(499, 899) }[type];
      data.accounts.push({
        account_id: accountId,
        customer_id: customerId,
        account_number: accountNumber(accountId, openedMs),
        account_type: type,
        balance: money(balance),
        currency: 'USD',
        account_status: status,
        interest_rate: rate(interest),
        credit_limit: creditLimit === null ? null : money(creditLimit),
        opened_date: sqlDate(openedMs),
        closed_date: status === 'CLOSED' ? sqlDate(now - DAY) : null,
        created_at: sqlDateTime(openedMs + rng.int(9, 16) * HOUR),
        updated_at: sqlDateTime(times[times.length - 1]),
      });
      mine.push({ id: accountId, type, openedMs });
    }
    accountsOf.set(customerId, mine);
  }

  // Exactly 30 % of the customers (rounded) have agreements; which ones is part of the seed.
  const withAgreements = rng.shuffle(data.customers.map((c) => c.customer_id as number)).slice(0, Math.round(opts.customers * 0.3));
  const owners = withAgreements.sort((a, b) => a - b).flatMap((id) => (rng.chance(0.7) ? [id] : [id, id]));
  const statuses = statusDeck(rng, owners.length);
  for (const [k, customerId] of owners.entries()) data.agreements.push(buildAgreement(rng, ids.agreement++, customerId, accountsOf.get(customerId) ?? [], now, { status: statuses[k] }));
  return data;
}

export type AgreementStatus = 'ACTIVE' | 'COMPLETED' | 'DEFAULT' | 'CANCELLED';

/**
 * Agreement statuses dealt from a shuffled deck (15 % completed, 7 % in default, 8 % cancelled, at
 * least one of each once there are four agreements, the rest active) rather than drawn one by one:
 * a small data set then always shows every case the analytics distinguish.
 */
function statusDeck(rng: Rng, n: number): AgreementStatus[] {
  const atLeast = (share: number) => (n >= 4 ? Math.max(1, Math.round(n * share)) : 0);
  const deck: AgreementStatus[] = [];
  for (const [status, share] of [['COMPLETED', 0.15], ['DEFAULT', 0.07], ['CANCELLED', 0.08]] as const) for (let i = 0; i < atLeast(share); i++) deck.push(status);
  while (deck.length < n) deck.push('ACTIVE');
  return rng.shuffle(deck.slice(0, n));
}

type AgreementType = 'LOAN' | 'CREDIT_CARD' | 'OVERDRAFT' | 'INVESTMENT';
const PERIODS_PER_YEAR = { MONTHLY: 12, QUARTERLY: 4, ANNUALLY: 1 } as const;

/**
 * One agreement row of the given status, started within its term before `nowMs` (completed ones
 * ended before it); `startNow` starts it at `nowMs` — the workload's new agreements.
 */
export function buildAgreement(rng: Rng, id: number, customerId: number, accounts: { id: number; type: AccountType }[], nowMs: number, opts: { status: AgreementStatus; startNow?: boolean }): Row {
  const startNow = opts.startNow === true;
  const type = rng.weighted<AgreementType>({ LOAN: 40, CREDIT_CARD: 30, OVERDRAFT: 15, INVESTMENT: 15 });
  const linked = (t: AccountType) => accounts.find((a) => a.type === t)?.id ?? null;
  const accountId = { LOAN: linked('LOAN') ?? linked('CHECKING'), CREDIT_CARD: linked('CREDIT'), OVERDRAFT: linked('CHECKING') ?? accounts[0]?.id ?? null, INVESTMENT: linked('SAVINGS') }[type];
  const principal = { LOAN: rng.int(10, 100) * 50_000, CREDIT_CARD: rng.int(2, 30) * 50_000, OVERDRAFT: rng.int(2, 20) * 25_000, INVESTMENT: rng.int(2, 100) * 100_000 }[type];
  const basis = { LOAN: rng.int(499, 1_299), CREDIT_CARD: rng.int(1_499, 2_499), OVERDRAFT: rng.int(999, 1_999), INVESTMENT: rng.int(200, 650) }[type];
  const term = { LOAN: rng.pick([12, 24, 36, 48, 60]), CREDIT_CARD: null, OVERDRAFT: 12, INVESTMENT: rng.pick([12, 24, 60]) }[type];
  const frequency = type === 'LOAN' ? rng.weighted({ MONTHLY: 85, QUARTERLY: 15 }) : type === 'INVESTMENT' ? rng.weighted({ QUARTERLY: 50, ANNUALLY: 50 }) : 'MONTHLY';
  const status = opts.status;
  const today = Math.floor(nowMs / DAY) * DAY;
  // Completed agreements ended before today; the others started within their term.
  const monthsAgo = startNow ? 0 : status === 'COMPLETED' && term ? term + rng.int(1, 12) : rng.int(1, Math.max(1, Math.min((term ?? 36) - 1, 36)));
  const start = addMonths(today, -monthsAgo);
  const periods = ((term ?? 12) * PERIODS_PER_YEAR[frequency]) / 12;
  const r = basis / 10_000 / PERIODS_PER_YEAR[frequency];
  const payment =
    type === 'LOAN' ? (principal * r) / (1 - (1 + r) ** -periods) : type === 'CREDIT_CARD' ? Math.max(2_500, principal * 0.02) : type === 'OVERDRAFT' ? principal * 0.1 : principal * 0.05;
  const elapsed = term ? Math.min(1, monthsAgo / term) : 0.5;
  const balance =
    status === 'COMPLETED' || status === 'CANCELLED'
      ? 0
      : status === 'DEFAULT'
        ? principal * (0.5 + rng.next() * 0.45)
        : type === 'LOAN'
          ? principal * (1 - elapsed)
          : type === 'INVESTMENT'
            ? principal * (1 + elapsed * basis / 10_000)
            : rng.int(0, principal);
  return {
    agreement_id: id,
    customer_id: customerId,
    account_id: accountId,
    agreement_type: type,
    agreement_number: agreementNumber(id, start),
    principal_amount: money(principal),
    current_balance: money(balance),
    interest_rate: rate(basis),
    term_months: term,
    payment_amount: money(payment),
    payment_frequency: frequency,
    start_date: sqlDate(start),
    end_date: term ? sqlDate(addMonths(start, term)) : null,
    status,
    created_at: sqlDateTime(startNow ? Math.floor(nowMs / 1000) * 1000 : start + 10 * HOUR),
    updated_at: sqlDateTime(startNow ? Math.floor(nowMs / 1000) * 1000 : start + 10 * HOUR),
  };
}
