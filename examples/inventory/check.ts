/**
 * The inventory example's check: the target table inventory_global equals availability as SQL
 * over the source tables computes it, row for row (a SKU and warehouse with no rows left has no
 * row).
 *
 *   npx tsx examples/inventory/check.ts     (INVENTORY_DB, INVENTORY_DW, PGHOST, PGPORT, PGUSER)
 */
import pg from 'pg';
import { TRUTH_SQL } from './data.ts';

export async function check(source: pg.Client, target: pg.Client): Promise<string[]> {
  const want = (await source.query(TRUTH_SQL)).rows.map((r) => JSON.stringify(r));
  const have = (await target.query(`SELECT sku, warehouse, received::float8 AS received, committed::float8 AS committed, available::float8 AS available FROM inventory_global ORDER BY sku, warehouse`)).rows.map((r) => JSON.stringify(r));
  const w = new Set(want);
  const h = new Set(have);
  const problems: string[] = [];
  const missing = want.filter((r) => !h.has(r));
  const extra = have.filter((r) => !w.has(r));
  if (missing.length) problems.push(`${missing.length} of SQL's ${want.length} rows missing or different, e.g. ${missing.slice(0, 3).join(' ')}`);
  if (extra.length) problems.push(`${extra.length} rows SQL does not have, e.g. ${extra.slice(0, 3).join(' ')}`);
  return problems;
}

if (process.argv[1]?.endsWith('check.ts')) {
  const conn = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres' };
  const source = new pg.Client({ ...conn, database: process.env.INVENTORY_DB ?? 'inventory' });
  const target = new pg.Client({ ...conn, database: process.env.INVENTORY_DW ?? 'inventory_dw' });
  await source.connect();
  await target.connect();
  const problems = await check(source, target);
  await source.end();
  await target.end();
  if (problems.length) {
    console.log(`MISMATCH:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('OK: inventory_global equals availability as SQL over the source computes it');
}
