/**
 * The banking demo's dashboard: one self-contained page (dashboard-page.ts) polling `/api/state`
 * every 500 ms. The state shows what the demo is about — rows changed in MySQL turning up as
 * nested documents in the operational layer, and as recomputed analytics — with the workload's
 * rate and the measured end-to-end lag.
 *
 * The store is read at most once per 400 ms however many browsers poll (one shared computation),
 * so an open dashboard adds a bounded load to the store whose lag it is showing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Decimal, type Doc, type DocumentStore, type DocValue } from '../../src/sinks/document/types.ts';
import { DASHBOARD_HTML } from './dashboard-page.ts';
import type { LagSnapshot, LagTracker } from './lag.ts';
import { getPath, toDate } from './odl.ts';
import type { WorkloadStats } from './workload.ts';

export const ODL_COLLECTIONS = ['customers', 'accounts', 'transactions', 'agreements'] as const;
export const ANALYTICS_COLLECTIONS = ['customer_analytics', 'customer_agreement_profiles', 'account_metrics', 'transaction_patterns'] as const;
/** Rows of the account_metrics table and the transaction_patterns table: the documents computed last. */
export const METRICS_ROWS = 8;
export const PATTERN_ROWS = 6;

export interface DashboardOptions {
  port: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  odl: DocumentStore;
  analytics: DocumentStore;
  workload?: { stats(): WorkloadStats } | null;
  lag?: Pick<LagTracker, 'snapshot'> | null;
}

export interface DashboardState {
  at: string;
  counts: { odl: Record<string, number>; analytics: Record<string, number> };
  recent: { customers: unknown[]; accounts: unknown[] };
  analyticsChanged: unknown[];
  /** account_metrics documents computed last, latest first. */
  accountMetrics: unknown[];
  /** transaction_patterns: customers per pattern label and anomalous transactions over the whole collection, and the documents computed last. */
  patterns: { byLabel: Record<string, number>; anomalies: number; customersWithAnomalies: number; recent: unknown[] };
  workload: WorkloadStats | null;
  lag: LagSnapshot | null;
  error: string | null;
}

/**
 * A document as JSON the page can print the way the MongoDB shell does: dates and decimals are
 * tagged (`{$date}`, `{$decimal}`) instead of becoming bare strings, bigints keep their digits.
 */
export function toWire(v: DocValue | undefined): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return { $long: v.toString() };
  if (v instanceof Date) return { $date: Number.isNaN(v.getTime()) ? null : v.toISOString() };
  if (v instanceof Decimal) return { $decimal: v.text };
  if (Buffer.isBuffer(v)) return { $binary: v.toString('base64') };
  if (Array.isArray(v)) return v.map(toWire);
  if (typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toWire(x);
    return o;
  }
  return v;
}

/** The `n` documents with the latest date at `path`, latest first. */
function latest(docs: Doc[], path: string, n: number): Doc[] {
  const at = (d: Doc) => toDate(getPath(d, path))?.getTime() ?? 0;
  return docs
    .map((d) => ({ d, t: at(d) }))
    .sort((a, b) => b.t - a.t || String(b.d._id).localeCompare(String(a.d._id)))
    .slice(0, n)
    .map((x) => x.d);
}

export async function collectState(o: DashboardOptions): Promise<DashboardState> {
  const state: DashboardState = {
    at: new Date().toISOString(),
    counts: { odl: {}, analytics: {} },
    recent: { customers: [], accounts: [] },
    analyticsChanged: [],
    accountMetrics: [],
    patterns: { byLabel: {}, anomalies: 0, customersWithAnomalies: 0, recent: [] },
    workload: o.workload?.stats() ?? null,
    lag: o.lag?.snapshot() ?? null,
    error: null,
  };
  try {
    for (const c of ODL_COLLECTIONS) state.counts.odl[c] = await o.odl.count(c);
    for (const c of ANALYTICS_COLLECTIONS) state.counts.analytics[c] = await o.analytics.count(c);
    state.recent.customers = latest(await o.odl.find('customers', {}), 'metadata.sync_timestamp', 3).map(toWire);
    state.recent.accounts = latest(await o.odl.find('accounts', {}), 'metadata.sync_timestamp', 3).map(toWire);
    state.analyticsChanged = latest(await o.analytics.find('customer_analytics', {}), 'computed_at', 4).map(toWire);
    state.accountMetrics = latest(await o.analytics.find('account_metrics', {}), 'computed_at', METRICS_ROWS).map(toWire);
    const patterns = await o.analytics.find('transaction_patterns', {});
    for (const p of patterns) {
      const label = String(p.pattern);
      state.patterns.byLabel[label] = (state.patterns.byLabel[label] ?? 0) + 1;
      const n = Number(getPath(p, 'anomalies.count') ?? 0);
      state.patterns.anomalies += n;
      if (n > 0) state.patterns.customersWithAnomalies++;
    }
    state.patterns.recent = latest(patterns, 'computed_at', PATTERN_ROWS).map(toWire);
  } catch (e) {
    state.error = (e as Error).message;
  }
  return state;
}

export async function startDashboard(o: DashboardOptions): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  let cached: { at: number; body: string } | null = null;
  let inflight: Promise<string> | null = null;

  const stateBody = async (): Promise<string> => {
    if (cached && Date.now() - cached.at < 400) return cached.body;
    inflight ??= collectState(o)
      .then((s) => {
        const body = JSON.stringify(s);
        cached = { at: Date.now(), body };
        return body;
      })
      .finally(() => {
        inflight = null;
      });
    return inflight;
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(DASHBOARD_HTML);
      return;
    }
    if (path === '/api/state') {
      stateBody().then(
        (body) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body),
        (e: Error) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: e.message })),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address}:${addr.port}/`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
