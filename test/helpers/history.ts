/**
 * What the kill -9 tests assert about a log, whatever the source: every row's history is complete
 * and unrepeated, and every transaction has exactly one BEGIN and one END that counts its events.
 */
import assert from 'node:assert/strict';
import type { ReadRecord } from './pipeline.ts';

/**
 * For each key of `topic` (rows carry an `id` and a version `v` that each update bumps): the
 * versions follow each other with no gap (lost event) and no repeat (duplicate) from the first
 * sight (snapshot `r` or a `c` at v=1) to a delete or to the table's current `v` (`table`: id → v).
 */
export function assertHistories(recs: ReadRecord[], topic: string, table: Map<number, number>): void {
  const byKey = new Map<number, any[]>();
  for (const r of recs.filter((x) => x.topic === topic && x.value)) {
    const id = r.key.id;
    if (!byKey.has(id)) byKey.set(id, []);
    byKey.get(id)!.push(r.value);
  }
  for (const [id, evs] of byKey) {
    let v: number | null = null;
    let deleted = false;
    for (const e of evs) {
      assert.ok(!deleted, `key ${id}: event after its delete (duplicate) ${JSON.stringify(e)}`);
      if (e.op === 'd') {
        assert.equal(e.before.id, id);
        deleted = true;
        continue;
      }
      if (v === null) assert.ok(e.op === 'r' || (e.op === 'c' && e.after.v === 1), `key ${id}: history starts with ${e.op} v=${e.after.v}`);
      else assert.equal(e.after.v, v + 1, `key ${id}: version ${v} followed by ${e.after.v} (${e.after.v <= v ? 'duplicate' : 'lost event'})`);
      v = e.after.v;
    }
    if (deleted) assert.ok(!table.has(id), `key ${id} deleted in log but present in table`);
    else assert.equal(v, table.get(id), `key ${id}: log ends at v=${v}, table has ${table.get(id)}`);
  }
  for (const id of table.keys()) assert.ok(byKey.has(id), `key ${id} in table but never in the log`);
}

/** One BEGIN and one END per transaction on `transactionTopic`, END counting exactly the events the log holds for it. */
export function assertTransactionBoundaries(recs: ReadRecord[], transactionTopic: string, minTransactions = 10): void {
  const boundaries = new Map<string, string[]>();
  for (const r of recs.filter((x) => x.topic === transactionTopic)) boundaries.set(r.value.id, [...(boundaries.get(r.value.id) ?? []), r.value.status]);
  const perTx = new Map<string, number>();
  for (const r of recs.filter((x) => x.value?.transaction)) perTx.set(r.value.transaction.id, (perTx.get(r.value.transaction.id) ?? 0) + 1);
  assert.ok(perTx.size > minTransactions, `only ${perTx.size} transactions streamed into the log`);
  const ends = new Map(recs.filter((x) => x.topic === transactionTopic && x.value.status === 'END').map((r) => [r.value.id, r.value.event_count]));
  for (const [tx, n] of perTx) {
    assert.deepEqual(boundaries.get(tx), ['BEGIN', 'END'], `transaction ${tx}: boundaries ${boundaries.get(tx)}`);
    assert.equal(ends.get(tx), n, `transaction ${tx}: END says ${ends.get(tx)} events, the log holds ${n}`);
  }
}
