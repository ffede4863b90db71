/**
 * The WAL backlog of the PostgreSQL capture benchmarks (bench/capture-postgres, bench/capture-kafka):
 * `small` (3-column inserts in 1000-row transactions) or `mixed` (11 columns of common types;
 * transactions of 1..1000 inserts, then updates of half of them and deletes of a tenth). Returns
 * the change events written and the log records they give (a delete adds a tombstone).
 */
import type pg from 'pg';

export async function generate(db: pg.Client, workload: string, rows: number): Promise<{ changes: number; records: number }> {
  if (workload === 'small') {
    // 1000-row transactions of single-row inserts into a 3-column table.
    for (let i = 0; i < rows; i += 1000) await db.query(`INSERT INTO small SELECT g, g % 1000, 'name-' || g FROM generate_series($1::int, $2::int) g`, [i + 1, Math.min(i + 1000, rows)]);
    return { changes: rows, records: rows };
  }
  // mixed: transactions of 1..1000 rows; inserts, then updates of half, deletes of a tenth.
  let changes = 0;
  let deletes = 0;
  let next = 1;
  while (changes < rows) {
    const k = Math.min(1 + Math.floor(Math.random() * 1000), Math.ceil((rows - changes) / 1.6));
    await db.query('BEGIN');
    await db.query(
      `INSERT INTO mixed SELECT g, g * 7, (g % 100000)::numeric / 100, 'text ' || g, now(), jsonb_build_object('k', g, 'tags', jsonb_build_array('a', 'b')), gen_random_uuid(), g % 2 = 0, decode(lpad(to_hex(g), 8, '0'), 'hex'), current_date - (g % 365), ARRAY['x', g::text] FROM generate_series($1::int, $2::int) g`,
      [next, next + k - 1],
    );
    const u = await db.query(`UPDATE mixed SET amount = amount + 1, note = note || '!' WHERE id BETWEEN $1 AND $2 AND id % 2 = 0`, [next, next + k - 1]);
    const d = await db.query(`DELETE FROM mixed WHERE id BETWEEN $1 AND $2 AND id % 10 = 0`, [next, next + k - 1]);
    await db.query('COMMIT');
    changes += k + (u.rowCount ?? 0) + (d.rowCount ?? 0);
    deletes += d.rowCount ?? 0;
    next += k;
  }
  return { changes, records: changes + deletes };
}
