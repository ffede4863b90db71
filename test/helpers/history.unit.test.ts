/**
 * The kill -9 tests' checker (helpers/history.ts) catches what it claims to: given a workload's
 * record and a log, it fails on a lost insert of a row deleted later, a lost insert+delete
 * transaction, a repeated change, a read of a version never committed, a transaction not in the
 * log whole, and a wrong END count.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertHistories, assertTransactions, WorkloadRecord } from './history.ts';
import type { ReadRecord } from './pipeline.ts';

const T = 'p.public.hot';
let offset = 0;
const ev = (op: string, id: number, v: number | null, tx?: string): ReadRecord => ({
  topic: T,
  partition: 0,
  offset: offset++,
  key: { id },
  value: { op, before: op === 'd' ? { id, v: 0 } : null, after: op === 'd' ? null : { id, v }, transaction: tx ? { id: tx } : null },
});
const boundary = (id: string, status: string, count: number | null): ReadRecord => ({ topic: 'p.transaction', partition: 0, offset: offset++, key: { id }, value: { id, status, event_count: count } });

/** Row 1 existed at v=1; the workload: tx1 updates 1 → 2 and creates 10; tx2 deletes 10; tx3 creates and deletes 11. */
function workload(): WorkloadRecord {
  const w = new WorkloadRecord([{ table: 'hot', ids: [1] }]);
  w.change('hot', 'u', 1);
  w.change('hot', 'c', 10);
  w.committed();
  w.change('hot', 'd', 10);
  w.committed();
  w.change('hot', 'c', 11);
  w.change('hot', 'd', 11);
  w.committed();
  // Rolled back: never in the log.
  w.change('hot', 'u', 1);
  w.rolledBack();
  return w;
}
const table = new Map([[1, 2]]);
const existed = (id: number) => id === 1;
const good = () => [ev('r', 1, 1), ev('u', 1, 2, 't1'), ev('c', 10, 1, 't1'), ev('d', 10, null, 't2'), ev('c', 11, 1, 't3'), ev('d', 11, null, 't3')];
const check = (recs: ReadRecord[]) => assertHistories(recs, T, table, workload(), 'hot', existed);

describe('the kill -9 checker', () => {
  it('accepts a log that holds exactly what was committed, read at any committed version', () => {
    check(good());
    // The read may come after the update (and after the row created later was already deleted).
    check([ev('r', 1, 2), ev('c', 11, 1), ev('d', 11, null)]);
  });

  it('fails on a lost insert of a row deleted later, a repeat, a lost update and an uncommitted version', () => {
    const without = (i: number) => good().filter((_, j) => j !== i);
    assert.throws(() => check(without(2)), /key 10/, 'lost insert of a row deleted later');
    // (A whole insert+delete missing looks like one the snapshot never saw: the transaction check
    // below catches it for what was committed while the source streamed.)
    assert.throws(() => check([...good(), ev('u', 1, 2)]), /key 1/, 'repeated change');
    assert.throws(() => check([ev('r', 1, 3), ...good().slice(2)]), /never committed/, 'a read of a version never committed (the rolled-back one)');
    assert.throws(() => check(without(1)), /key 1/, 'lost update');
  });

  it('fails when a transaction committed while streaming is not in the log whole, or its END miscounts', () => {
    const w = workload();
    for (const t of w.transactions) t.at = 2; // all committed after the source streamed (since = 1)
    const more = (n: number) => Array.from({ length: n }, (_, i) => i); // the check wants enough transactions to mean something
    for (const i of more(11)) {
      w.change('hot', 'c', 100 + i);
      w.committed();
      w.transactions[w.transactions.length - 1].at = 2;
    }
    const log = (drop?: string, endCount?: number): ReadRecord[] => {
      const recs = [...good(), ...more(11).map((i) => ev('c', 100 + i, 1, `x${i}`))].filter((r) => !(drop && r.value.transaction?.id === drop && r.value.op === 'd'));
      const txs = ['t1', 't2', 't3', ...more(11).map((i) => `x${i}`)];
      const counts: Record<string, number> = { t1: 2, t2: 1, t3: 2 };
      for (const t of txs) recs.push(boundary(t, 'BEGIN', null), boundary(t, 'END', t === 't3' && endCount !== undefined ? endCount : (counts[t] ?? 1) - (t === drop ? 1 : 0)));
      return recs;
    };
    assertTransactions(log(), 'p.transaction', w, 1, () => T);
    assert.throws(() => assertTransactions(log('t3'), 'p.transaction', w, 1, () => T), /not in the log whole/);
    const withoutT3 = log().filter((r) => r.value.transaction?.id !== 't3' && r.key.id !== 't3');
    assert.throws(() => assertTransactions(withoutT3, 'p.transaction', w, 1, () => T), /not in the log whole/, 'a lost insert+delete transaction');
    assert.throws(() => assertTransactions(log(undefined, 3), 'p.transaction', w, 1, () => T), /END says 3 events, the log holds 2/);
  });
});
