/**
 * End-to-end lag of the banking demo: time from a MySQL COMMIT to the change being visible in the
 * operational layer (ODL) and in the analytics collections.
 *
 * How it is measured. The workload knows what each write must produce, so with each commit it
 * records the commit time (taken when COMMIT returns, an upper bound of the real commit instant)
 * and probes: "document {account_id: 17} in ODL `accounts` has financial_info.balance = 2412.30",
 * "customer_analytics {customer_id: 5} has financial_summary.total_balance = 18002.11". A poller
 * reads each probed document every `pollMs` and, when its content matches, takes the read's start
 * time as the moment the version became visible. A commit's ODL lag is the time until all its ODL
 * probes matched (likewise for analytics). Resolution is one poll interval.
 *
 * Versions are recognised by content, so the workload only probes values that do not come back
 * (balances after a random amount, growing counts, fresh street addresses). Probes of one document
 * are kept in commit order; when the document matches the earliest probe that it matches, that
 * probe and every older one are resolved — the sink applies one document's changes in order, so a
 * later version being visible means the earlier ones were applied (they may have been overwritten
 * before a poll saw them). Probes unresolved after `timeoutMs` are dropped and counted as expired,
 * and the oldest pending probe's age is reported, so a stalled pipeline shows instead of hiding.
 */
import type { Doc, DocumentStore, Filter } from '../../src/sinks/document/types.ts';
import { sameMoney } from './money.ts';
import { getPath } from './odl.ts';

export type StoreName = 'odl' | 'analytics';
/** Expected value at a dotted path: exact, or `{ decimal }` compared as a number ("10.50" = 10.5). */
export type Expected = string | number | boolean | null | { decimal: string };

export interface Probe {
  store: StoreName;
  collection: string;
  /** Finds the one document, e.g. `{ account_id: 17 }`. */
  filter: Filter;
  /** Paths and values the new version has; empty or absent: the document exists. */
  expect?: Record<string, Expected>;
}

export interface CommitRecord {
  /** What the write was, e.g. `transaction`. */
  kind: string;
  /** Epoch ms when COMMIT returned. */
  committedAt: number;
  probes: Probe[];
}

export interface LagStats {
  /** Commits measured in the window. */
  count: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
}

export interface LagSnapshot {
  windowMs: number;
  odl: LagStats;
  analytics: LagStats;
  /** Probes not yet visible. */
  pending: number;
  /** Age of the oldest of them, ms. */
  oldestPendingMs: number | null;
  /** Probes given up after timeoutMs since start. */
  expired: number;
}

export interface LagTracker {
  record(commit: CommitRecord): void;
  /** Checks every pending probe once (the poller calls it every pollMs; tests call it directly). */
  pollOnce(): Promise<void>;
  snapshot(now?: number): LagSnapshot;
  stop(): Promise<void>;
}

export interface LagOptions {
  odl: DocumentStore;
  analytics: DocumentStore;
  pollMs?: number;
  windowMs?: number;
  timeoutMs?: number;
  /** Bound on pending probes: beyond it the oldest are expired, so memory stays bounded. */
  maxPending?: number;
  /** Start the poller (default true). */
  autoStart?: boolean;
}

interface CommitEntry {
  committedAt: number;
  remaining: Record<StoreName, number>;
  seenAt: Record<StoreName, number>;
}
interface Pending {
  probe: Probe;
  commit: CommitEntry;
}

function matchesValue(actual: unknown, expected: Expected): boolean {
  if (expected === null) return actual === null || actual === undefined;
  if (typeof expected === 'object') return sameMoney(actual, expected.decimal);
  if (typeof expected === 'number') return actual !== null && actual !== undefined && Number(actual) === expected;
  if (typeof expected === 'boolean') return actual === expected;
  return actual !== null && actual !== undefined && String(actual) === expected;
}

export function matchesProbe(doc: Doc | null, probe: Probe): boolean {
  if (!doc) return false;
  return Object.entries(probe.expect ?? {}).every(([path, v]) => matchesValue(getPath(doc, path), v));
}

function stats(samples: number[]): LagStats {
  if (samples.length === 0) return { count: 0, p50: null, p95: null, max: null };
  const s = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.max(0, Math.ceil(p * s.length) - 1)];
  return { count: s.length, p50: rank(0.5), p95: rank(0.95), max: s[s.length - 1] };
}

export function createLagTracker(opts: LagOptions): LagTracker {
  const pollMs = opts.pollMs ?? 100;
  const windowMs = opts.windowMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const maxPending = opts.maxPending ?? 20_000;
  const stores: Record<StoreName, DocumentStore> = { odl: opts.odl, analytics: opts.analytics };
  /** Per probed document, its probes in commit order. */
  const byTarget = new Map<string, Pending[]>();
  const samples: Record<StoreName, { at: number; ms: number }[]> = { odl: [], analytics: [] };
  let pendingCount = 0;
  let expired = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;

  const targetKey = (p: Probe) => `${p.store}\u0000${p.collection}\u0000${JSON.stringify(p.filter, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`;

  function prune(now: number): void {
    for (const list of Object.values(samples)) {
      let drop = 0;
      while (drop < list.length && list[drop].at < now - windowMs) drop++;
      if (drop) list.splice(0, drop);
    }
  }

  function resolve(p: Pending, seenAt: number): void {
    const store = p.probe.store;
    const c = p.commit;
    c.seenAt[store] = Math.max(c.seenAt[store], seenAt);
    if (--c.remaining[store] === 0) samples[store].push({ at: seenAt, ms: Math.max(0, c.seenAt[store] - c.committedAt) });
    pendingCount--;
  }

  function expireOld(now: number): void {
    for (const [key, list] of byTarget) {
      while (list.length && (now - list[0].commit.committedAt > timeoutMs || pendingCount > maxPending)) {
        list.shift();
        pendingCount--;
        expired++;
      }
      if (!list.length) byTarget.delete(key);
    }
  }

  async function check(key: string, list: Pending[]): Promise<void> {
    const probe = list[0].probe;
    const readAt = Date.now();
    const doc = await stores[probe.store].findOne(probe.collection, probe.filter);
    const hit = list.findIndex((p) => matchesProbe(doc, p.probe));
    if (hit < 0) return;
    for (const p of list.splice(0, hit + 1)) resolve(p, readAt);
    if (!list.length) byTarget.delete(key);
  }

  async function pollOnce(): Promise<void> {
    expireOld(Date.now());
    const targets = [...byTarget.entries()];
    // A few reads at a time: enough to keep up, without flooding the store the demo is measuring.
    for (let i = 0; i < targets.length; i += 16) {
      await Promise.all(targets.slice(i, i + 16).map(([k, list]) => check(k, list).catch(() => undefined)));
    }
    prune(Date.now());
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = pollOnce().finally(() => {
        running = null;
        schedule();
      });
    }, pollMs);
    timer.unref();
  }
  if (opts.autoStart !== false) schedule();

  return {
    record(commit) {
      const entry: CommitEntry = { committedAt: commit.committedAt, remaining: { odl: 0, analytics: 0 }, seenAt: { odl: 0, analytics: 0 } };
      for (const probe of commit.probes) {
        entry.remaining[probe.store]++;
        const key = targetKey(probe);
        const list = byTarget.get(key) ?? [];
        list.push({ probe, commit: entry });
        byTarget.set(key, list);
        pendingCount++;
      }
    },
    pollOnce,
    snapshot(now = Date.now()) {
      prune(now);
      let oldest: number | null = null;
      for (const list of byTarget.values()) if (list.length && (oldest === null || list[0].commit.committedAt < oldest)) oldest = list[0].commit.committedAt;
      return {
        windowMs,
        odl: stats(samples.odl.map((s) => s.ms)),
        analytics: stats(samples.analytics.map((s) => s.ms)),
        pending: pendingCount,
        oldestPendingMs: oldest === null ? null : Math.max(0, now - oldest),
        expired,
      };
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
