/**
 * Where the analytics find each field in the operational-layer (ODL, seed 000's Cluster 1)
 * documents that pipeline.yaml's templates build. Kept in one place so a template change shows up
 * as one edit here; test/examples/banking-analytics.test.ts checks every path exists in the YAML.
 *
 * Readers are lenient about value types because the document store decides how values come back:
 * MongoDB returns Date and Decimal128, PostgreSQL JSONB returns ISO text and JSON numbers.
 */
import type { Doc, DocValue } from '../../src/sinks/document/types.ts';

export const ODL_PATHS = {
  customers: {
    id: 'customer_id',
    firstName: 'personal_info.first_name',
    lastName: 'personal_info.last_name',
    email: 'personal_info.email',
    phone: 'personal_info.phone',
    city: 'address.city',
    state: 'address.state',
    status: 'status',
  },
  accounts: {
    id: 'account_id',
    customerId: 'customer_id',
    number: 'account_details.account_number',
    type: 'account_details.account_type',
    currency: 'account_details.currency',
    status: 'account_details.status',
    balance: 'financial_info.balance',
    creditLimit: 'financial_info.credit_limit',
  },
  transactions: {
    id: 'transaction_id',
    accountId: 'account_id',
    type: 'transaction_details.transaction_type',
    status: 'transaction_details.status',
    amount: 'financial_info.amount',
    date: 'dates.transaction_date',
  },
  agreements: {
    id: 'agreement_id',
    customerId: 'customer_id',
    accountId: 'account_id',
    number: 'agreement_details.agreement_number',
    type: 'agreement_details.agreement_type',
    status: 'agreement_details.status',
    principal: 'financial_info.principal_amount',
    currentBalance: 'financial_info.current_balance',
    interestRate: 'financial_info.interest_rate',
    termMonths: 'payment_terms.term_months',
    paymentAmount: 'payment_terms.payment_amount',
    paymentFrequency: 'payment_terms.payment_frequency',
    startDate: 'dates.start_date',
    endDate: 'dates.end_date',
  },
} as const;

/** Value at a dotted path, or undefined. */
export function getPath(doc: Doc | null | undefined, path: string): DocValue | undefined {
  let cur: DocValue | undefined = doc ?? undefined;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined || typeof cur !== 'object' || Array.isArray(cur) || cur instanceof Date) return undefined;
    cur = (cur as Doc)[part];
  }
  return cur;
}

export function str(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'string' ? v : String(v);
}

export function num(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(typeof v === 'bigint' ? v : String(v));
  return Number.isFinite(n) ? n : null;
}

/** A key or id as the number it is in MySQL (INT/BIGINT within 2^53), else its text. */
export function idOf(v: unknown): string | number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const s = String(v);
  return /^-?\d{1,15}$/.test(s) ? Number(s) : s;
}

/**
 * A date or time as a Date: Date as is, ISO text parsed, a number taken as epoch ms — except small
 * integers, which are Debezium's days-since-epoch for DATE columns a template left unconverted.
 */
export function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  let d: Date;
  if (v instanceof Date) d = v;
  else if (typeof v === 'number') d = new Date(Math.abs(v) < 1e6 ? v * 86_400_000 : v);
  else d = new Date(String(v));
  return Number.isNaN(d.getTime()) ? null : d;
}
