/**
 * The derived (Cluster 2) collections of the banking demo, as document-sink derivers: pipeline.yaml
 * names this module under `derive.module`. Each deriver maps a change to the keys it touches
 * (customers, or accounts for account_metrics), then rebuilds those documents from the
 * operational layer with the pure rules in rules.ts. Recomputing from the layer (instead of patching totals with deltas) is what makes a
 * replayed batch harmless and an incremental result equal to a rebuild.
 */
import type { DerivedChange, Deriver, Doc, DocumentStore } from '../../src/sinks/document/types.ts';
import { getPath, idOf, ODL_PATHS as P } from './odl.ts';
import { accountMetrics, agreementProfile, customerAnalytics, transactionPatterns, type CustomerFacts } from './rules.ts';

type Key = string | number;

/** ODL collection names: the `collection:` of each table in pipeline.yaml. */
export const ODL = { customers: 'customers', accounts: 'accounts', transactions: 'transactions', agreements: 'agreements' } as const;

/** `banking.accounts` → `accounts`: matched without the database, so a renamed database still works. */
const tableOf = (change: DerivedChange) => change.table.slice(change.table.lastIndexOf('.') + 1);

function rowValues(change: DerivedChange, column: string): Key[] {
  const out: Key[] = [];
  for (const row of [change.before, change.after]) {
    const id = idOf(row?.[column]);
    if (id !== null && !out.includes(id)) out.push(id);
  }
  return out;
}

/** The customers owning these accounts, looked up in the operational layer. */
async function customersOfAccounts(accountIds: Key[], source: DocumentStore): Promise<Key[]> {
  const out: Key[] = [];
  for (const accountId of accountIds) {
    // An account not (yet) in the layer: its own insert will recompute its customer, transactions included.
    const account = await source.findOne(ODL.accounts, { [P.accounts.id]: accountId });
    const customerId = idOf(getPath(account, P.accounts.customerId));
    if (customerId !== null && !out.includes(customerId)) out.push(customerId);
  }
  return out;
}

/** Every customer_id in the layer: what a truncate may have touched. */
async function allCustomerIds(source: DocumentStore): Promise<Key[]> {
  const ids = (await source.find(ODL.customers, {})).map((c) => idOf(getPath(c, P.customers.id)));
  return [...new Set(ids.filter((id): id is Key => id !== null))];
}

/** Every account_id in the layer. */
async function allAccountIds(source: DocumentStore): Promise<Key[]> {
  const ids = (await source.find(ODL.accounts, {})).map((a) => idOf(getPath(a, P.accounts.id)));
  return [...new Set(ids.filter((id): id is Key => id !== null))];
}

/** The transactions of these accounts. */
async function transactionsOf(accounts: Doc[], source: DocumentStore): Promise<Doc[]> {
  const transactions: Doc[] = [];
  for (const a of accounts) {
    const accountId = idOf(getPath(a, P.accounts.id));
    if (accountId !== null) transactions.push(...(await source.find(ODL.transactions, { [P.transactions.accountId]: accountId })));
  }
  return transactions;
}

/** Everything the rules need about one customer, or null when the customer is not in the layer. */
export async function loadCustomerFacts(customerId: Key, source: DocumentStore): Promise<CustomerFacts | null> {
  const customer = await source.findOne(ODL.customers, { [P.customers.id]: customerId });
  if (!customer) return null;
  const accounts = await source.find(ODL.accounts, { [P.accounts.customerId]: customerId });
  const transactions = await transactionsOf(accounts, source);
  const agreements = await source.find(ODL.agreements, { [P.agreements.customerId]: customerId });
  return { customer, accounts, transactions, agreements };
}

export const customerAnalyticsDeriver: Deriver = {
  collection: 'customer_analytics',
  indexes: [['customer_id'], ['profile.status'], ['risk_profile.default_risk']],
  async affected(change, source) {
    if (change.op === 't') return allCustomerIds(source);
    switch (tableOf(change)) {
      case 'customers':
      case 'agreements':
      case 'accounts':
        // Before and after images: an account or agreement moved to another customer changes both.
        return rowValues(change, 'customer_id');
      case 'transactions':
        return customersOfAccounts(rowValues(change, 'account_id'), source);
      default:
        return [];
    }
  },
  async compute(key, source, now) {
    const facts = await loadCustomerFacts(key, source);
    return facts ? customerAnalytics(facts, now) : null;
  },
  allKeys: allCustomerIds,
};

export const agreementProfilesDeriver: Deriver = {
  collection: 'customer_agreement_profiles',
  indexes: [['customer_id'], ['summary.defaulted']],
  async affected(change, source) {
    if (change.op === 't') return allCustomerIds(source);
    const table = tableOf(change);
    // The profile embeds customer info and agreements only: account and transaction changes leave it as is.
    return table === 'customers' || table === 'agreements' ? rowValues(change, 'customer_id') : [];
  },
  async compute(key, source, now) {
    const customer = await source.findOne(ODL.customers, { [P.customers.id]: key });
    if (!customer) return null;
    return agreementProfile(customer, await source.find(ODL.agreements, { [P.agreements.customerId]: key }), now);
  },
  async allKeys(source) {
    const ids = (await source.find(ODL.agreements, {})).map((g) => idOf(getPath(g, P.agreements.customerId)));
    return [...new Set(ids.filter((id): id is Key => id !== null))];
  },
};

/** One document per account: its balance and transaction figures (rules.ts `accountMetrics`). */
export const accountMetricsDeriver: Deriver = {
  collection: 'account_metrics',
  indexes: [['account_id'], ['customer_id'], ['account_type'], ['status']],
  async affected(change, source) {
    if (change.op === 't') return allAccountIds(source);
    const table = tableOf(change);
    // A transaction touches its account (both, if it moved); a customer change touches no figure here.
    return table === 'accounts' || table === 'transactions' ? rowValues(change, 'account_id') : [];
  },
  async compute(key, source, now) {
    const account = await source.findOne(ODL.accounts, { [P.accounts.id]: key });
    if (!account) return null;
    return accountMetrics(account, await source.find(ODL.transactions, { [P.transactions.accountId]: key }), now);
  },
  allKeys: allAccountIds,
};

/** One document per customer: how, when and how much the customer transacts (rules.ts `transactionPatterns`). */
export const transactionPatternsDeriver: Deriver = {
  collection: 'transaction_patterns',
  indexes: [['customer_id'], ['pattern'], ['anomalies.count']],
  async affected(change, source) {
    if (change.op === 't') return allCustomerIds(source);
    switch (tableOf(change)) {
      case 'customers':
      case 'accounts':
        // An account that moved takes its transactions from one customer to the other.
        return rowValues(change, 'customer_id');
      case 'transactions':
        return customersOfAccounts(rowValues(change, 'account_id'), source);
      default:
        return [];
    }
  },
  async compute(key, source, now) {
    const customer = await source.findOne(ODL.customers, { [P.customers.id]: key });
    if (!customer) return null;
    const accounts = await source.find(ODL.accounts, { [P.accounts.customerId]: key });
    return transactionPatterns(customer, await transactionsOf(accounts, source), now);
  },
  allKeys: allCustomerIds,
};

export const derivers: Deriver[] = [customerAnalyticsDeriver, agreementProfilesDeriver, accountMetricsDeriver, transactionPatternsDeriver];

/**
 * Every derived document built from scratch, by collection, sorted by `_id`: what the derived
 * store should hold at a quiet point (compare ignoring `computed_at`).
 */
export async function recomputeAll(source: DocumentStore, now = new Date()): Promise<Record<string, Doc[]>> {
  const out: Record<string, Doc[]> = {};
  for (const d of derivers) {
    const docs: Doc[] = [];
    for (const key of await d.allKeys(source)) {
      const doc = await d.compute(key, source, now);
      if (doc) docs.push(doc);
    }
    out[d.collection] = docs.sort((a, b) => String(a._id).localeCompare(String(b._id), 'en', { numeric: true }));
  }
  return out;
}
