/**
 * What the kill -9 tests assert about a log, whatever the source, against an independent truth:
 * the workload's own record of what it committed. Each row carries a version `v` that every update
 * bumps; the workload knows, for every transaction it committed, which rows it created, updated (to
 * which version) and deleted.
 *
 * Per key, the log must hold a snapshot read (`r`) of some committed version followed by exactly
 * the committed changes after that version, or, for a row created after its table was read, exactly
 * its whole history: nothing lost, nothing repeated, nothing that was not committed. Every
 * transaction the workload committed once the source streamed must be in the log whole, with one
 * BEGIN and one END that counts its events.
 */
import assert from 'node:assert/strict';
import type { ReadRecord } from './pipeline.ts';

export type Change = { table: string; op: 'c' | 'u' | 'd'; id: number; v: number };

/** The workload's record of what it committed. */
export class WorkloadRecord {
  /** Committed transactions in commit order, with when their COMMIT returned. */
  readonly transactions: { at: number; changes: Change[] }[] = [];
  /** The version each live row is at, by `table/id`; rows present before the workload start at `initial`. */
  private readonly versions = new Map<string, number>();
  private pending: Change[] = [];

  constructor(initial: { table: string; ids: Iterable<number> }[] = []) {
    for (const t of initial) for (const id of t.ids) this.versions.set(`${t.table}/${id}`, 1);
  }

  /** The version `table/id` is at (undefined: not live). */
  version(table: string, id: number): number | undefined {
    return this.versions.get(`${table}/${id}`);
  }

  /** Live ids of `table` the workload created and has not deleted, in this transaction either (for deleting one). */
  created(table: string): number[] {
    const gone = new Set(this.pending.filter((c) => c.op === 'd').map((c) => c.id));
    const out: number[] = [];
    for (const tx of this.transactions) for (const c of tx.changes) if (c.table === table && c.op === 'c' && this.versions.has(`${table}/${c.id}`) && !gone.has(c.id)) out.push(c.id);
    return out;
  }

  /** Notes a change of the transaction being built (call after its statement succeeded). */
  change(table: string, op: Change['op'], id: number): void {
    const k = `${table}/${id}`;
    const v = op === 'c' ? 1 : op === 'u' ? (this.pendingVersion(k) ?? 0) + 1 : (this.pendingVersion(k) ?? 0);
    this.pending.push({ table, op, id, v });
  }

  private pendingVersion(k: string): number | undefined {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const c = this.pending[i];
      if (`${c.table}/${c.id}` === k) return c.op === 'd' ? undefined : c.v;
    }
    return this.versions.get(k);
  }

  /** The transaction committed: its changes become history. */
  committed(): void {
    for (const c of this.pending) {
      const k = `${c.table}/${c.id}`;
      if (c.op === 'd') this.versions.delete(k);
      else this.versions.set(k, c.v);
    }
    if (this.pending.length) this.transactions.push({ at: Date.now(), changes: this.pending });
    this.pending = [];
  }

  /** The transaction rolled back (or failed): forget its changes. */
  rolledBack(): void {
    this.pending = [];
  }

  /** Each key's committed changes of `table`, in commit order. */
  historyOf(table: string): Map<number, Change[]> {
    const m = new Map<number, Change[]>();
    for (const tx of this.transactions) for (const c of tx.changes) if (c.table === table) m.set(c.id, [...(m.get(c.id) ?? []), c]);
    return m;
  }
}

const evText = (op: string, v: number | null) => (op === 'd' ? 'd' : `${op}:${v}`);

/**
 * Checks `topic`'s events for table `table` against the workload's record. `table` maps id → v of
 * the table now; `existedBefore` tells whether a row was there before the workload started (at v=1).
 */
export function assertHistories(recs: ReadRecord[], topic: string, table: Map<number, number>, work: WorkloadRecord, name: string, existedBefore: (id: number) => boolean): void {
  const byKey = new Map<number, { op: string; v: number | null }[]>();
  for (const r of recs) {
    if (r.topic !== topic || !r.value) continue;
    const id = Number(r.key.id);
    const row = r.value.after ?? r.value.before;
    byKey.set(id, [...(byKey.get(id) ?? []), { op: r.value.op, v: r.value.op === 'd' ? null : Number(row.v) }]);
  }
  const history = work.historyOf(name);
  const ids = new Set([...byKey.keys(), ...history.keys(), ...table.keys()]);
  for (const id of ids) {
    const log = byKey.get(id) ?? [];
    const h = history.get(id) ?? [];
    const got = log.map((e) => evText(e.op, e.v)).join(' ');
    const fail = (why: string) => assert.fail(`${name} key ${id}: ${why}; log: [${got}]; committed: [${h.map((c) => evText(c.op, c.v)).join(' ')}]${existedBefore(id) ? ' after v=1 before the workload' : ''}`);
    let rest: Change[];
    if (log.length === 0) {
      // Never in the log: only a row the snapshot did not see and that no streamed change touched.
      if (table.has(id)) fail('the table has it, the log never did');
      continue;
    }
    const first = log[0];
    if (first.op === 'r') {
      // A snapshot read of some committed version; then exactly the changes after it.
      if (first.v === 1 && existedBefore(id)) rest = h;
      else {
        const at = h.findIndex((c) => c.op !== 'd' && c.v === first.v);
        if (at < 0) fail(`read at v=${first.v}, which was never committed`);
        rest = h.slice(at + 1);
      }
      if (log.slice(1).some((e) => e.op === 'r')) fail('read twice');
    } else {
      // Created after its table was read: its whole history.
      if (existedBefore(id)) fail(`a row that existed before the workload starts with ${first.op}, not a read`);
      rest = h;
    }
    const want = rest.map((c) => evText(c.op, c.v)).join(' ');
    const tail = (first.op === 'r' ? log.slice(1) : log).map((e) => evText(e.op, e.v)).join(' ');
    if (tail !== want) fail(`expected [${want}] after ${first.op === 'r' ? `the read at v=${first.v}` : 'nothing'}`);
    const last = log[log.length - 1];
    if (table.has(id)) {
      if (last.op === 'd' || last.v !== table.get(id)) fail(`the log ends at ${evText(last.op, last.v)}, the table has v=${table.get(id)}`);
    } else if (last.op !== 'd') fail('deleted in the table, not in the log');
  }
}

/**
 * Every transaction the workload committed after `since` (when the source was streaming) is in the
 * log whole, under one transaction id, with exactly one BEGIN and one END counting its events; and
 * the transaction topic holds one BEGIN and END for each transaction the log has events of.
 */
export function assertTransactions(recs: ReadRecord[], transactionTopic: string, work: WorkloadRecord, since: number, topicOf: (table: string) => string): void {
  const boundaries = new Map<string, { status: string; count: number | null }[]>();
  for (const r of recs.filter((x) => x.topic === transactionTopic)) boundaries.set(r.value.id, [...(boundaries.get(r.value.id) ?? []), { status: r.value.status, count: r.value.event_count }]);
  const txEvents = new Map<string, Set<string>>();
  for (const r of recs) {
    const tx = r.value?.transaction;
    if (!tx) continue;
    const row = r.value.after ?? r.value.before;
    const set = txEvents.get(tx.id) ?? new Set<string>();
    set.add(`${r.topic}/${r.key.id}/${r.value.op}/${r.value.op === 'd' ? '' : row.v}`);
    txEvents.set(tx.id, set);
  }
  for (const [id, events] of txEvents) {
    const b = boundaries.get(id) ?? [];
    assert.deepEqual(b.map((x) => x.status), ['BEGIN', 'END'], `transaction ${id}: boundaries ${b.map((x) => x.status)}`);
    assert.equal(b[1].count, events.size, `transaction ${id}: END says ${b[1].count} events, the log holds ${events.size}`);
  }
  const bySignature = new Map<string, string>();
  for (const [id, events] of txEvents) bySignature.set([...events].sort().join(' '), id);
  const late = work.transactions.filter((t) => t.at > since);
  assert.ok(late.length > 10, `only ${late.length} transactions were committed while the source streamed`);
  for (const t of late) {
    const sig = t.changes.map((c) => `${topicOf(c.table)}/${c.id}/${c.op}/${c.op === 'd' ? '' : c.v}`).sort().join(' ');
    assert.ok(bySignature.has(sig), `a transaction committed while the source streamed is not in the log whole: ${sig}`);
  }
}
