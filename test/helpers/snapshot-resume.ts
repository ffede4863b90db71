/**
 * A snapshot stopped in the middle of a table and resumed, as both sources' tests run it: the log
 * holds the table's rows up to some key K; before the restart, rows on both sides of K change
 * (updates, deletes, inserts, and key changes across K). The restart reads the keys above K from a
 * new snapshot, and streams from the first one: every change below K must be streamed, every
 * change above K left out (the second snapshot holds it), each exactly once.
 */
import assert from 'node:assert/strict';
import type { ReadRecord } from './pipeline.ts';

/**
 * The changes made while the pipeline is stopped, as SQL both PostgreSQL and MariaDB run, for a
 * table `t (id int PRIMARY KEY, v int NOT NULL, pad …)` holding ids 1..n, stopped at key `k`
 * (5 < k < n - 5).
 */
export function changesAcrossTheBoundary(t: string, k: number, n: number): string[] {
  return [
    `UPDATE ${t} SET v = 2 WHERE id IN (1, ${k}, ${k + 1}, ${n - 1})`,
    `DELETE FROM ${t} WHERE id = 2`,
    `DELETE FROM ${t} WHERE id = ${k + 2}`,
    `INSERT INTO ${t} (id, v, pad) VALUES (0, 1, 'new below')`,
    `INSERT INTO ${t} (id, v, pad) VALUES (${n + 1}, 1, 'new above')`,
    // Key changes: below → below, below → above, above → below.
    `UPDATE ${t} SET id = -5, v = 3 WHERE id = 3`,
    `UPDATE ${t} SET id = ${2 * n}, v = 3 WHERE id = 4`,
    `UPDATE ${t} SET id = -7, v = 3 WHERE id = ${k + 3}`,
  ];
}

/** What each key's events must be after the restart (ops in log order), for the keys the changes touched. */
function expected(k: number, n: number): Map<number, string[]> {
  return new Map<number, string[]>([
    [1, ['r:1', 'u:2']], // below: its update streams
    [k, ['r:1', 'u:2']], // the boundary key itself is below
    [k + 1, ['r:2']], // above: read after the update, which is left out
    [n - 1, ['r:2']],
    [2, ['r:1', 'd']],
    [k + 2, []], // deleted above: neither read nor streamed
    [0, ['c:1']],
    [n + 1, ['r:1']], // inserted above: read, its insert left out
    [3, ['r:1', 'd']],
    [-5, ['c:3']],
    [4, ['r:1', 'd']], // the delete of the old key (below) streams...
    [2 * n, ['r:3']], // ...the create of the new key (above) is in the second read
    [k + 3, []], // the old key (above) was never read, its delete is left out...
    [-7, ['c:3']], // ...the new key (below) streams
  ]);
}

/**
 * Checks the log of the table after the restart: each touched key's events exactly as expected,
 * every other key read once (`r`), and the log folded per key equal to the table (`table`: id → v).
 */
export function assertResumedSnapshot(recs: ReadRecord[], k: number, n: number, table: Map<number, number>): void {
  const byKey = new Map<number, string[]>();
  for (const r of recs) {
    if (!r.value) continue;
    const id = Number(r.key.id);
    const row = r.value.after ?? r.value.before;
    const ev = r.value.op === 'd' ? 'd' : `${r.value.op}:${row.v}`;
    byKey.set(id, [...(byKey.get(id) ?? []), ev]);
  }
  const exp = expected(k, n);
  for (const [id, evs] of exp) assert.deepEqual(byKey.get(id) ?? [], evs, `key ${id} (stopped at key ${k})`);
  for (const [id, evs] of byKey) if (!exp.has(id)) assert.deepEqual(evs, ['r:1'], `key ${id}: read once, not changed`);
  const folded = new Map<number, number>();
  for (const [id, evs] of byKey) {
    const last = evs[evs.length - 1];
    if (last !== 'd') folded.set(id, Number(last.split(':')[1]));
  }
  assert.equal(folded.size, table.size, 'the log holds as many rows as the table');
  for (const [id, v] of table) assert.equal(folded.get(id), v, `key ${id}: the log ends at v=${folded.get(id)}, the table has ${v}`);
}
