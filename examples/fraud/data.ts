/**
 * The fraud example's data: a card-transactions table and a generator that writes to it the way
 * a payment service would, with event times a little out of order, some transactions arriving
 * minutes late (a terminal that was offline), and a few customers whose bursts the rules should
 * flag. The check (check.ts) computes the truth from this table with SQL.
 */
import type pg from 'pg';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS transactions (
  id bigint PRIMARY KEY,
  customer_id int NOT NULL,
  merchant_id int NOT NULL,
  amount numeric(12,2) NOT NULL,
  created_at timestamptz NOT NULL
);`;

export interface GenerateOptions {
  transactions: number;
  customers: number;
  /** Event time starts here (ms); each transaction is `stepMs` later than the one before, give or take. */
  startMs: number;
  stepMs: number;
  /** Share of transactions that arrive 30–90 s late. */
  lateShare: number;
  seed: number;
  /** Rows per INSERT (one transaction each). */
  batch: number;
  /** First id (to continue a table). */
  firstId: number;
}

export const DEFAULTS: GenerateOptions = { transactions: 20_000, customers: 200, startMs: Date.UTC(2026, 11, 1, 9, 0, 0), stepMs: 40, lateShare: 0.02, seed: 7, batch: 200, firstId: 1 };

/** Inserts the transactions in id order (the commit order), in batches; resolves with the last id. */
export async function generate(client: pg.Client, opts: Partial<GenerateOptions> = {}): Promise<number> {
  const o = { ...DEFAULTS, ...opts };
  let x = o.seed >>> 0 || 1;
  const rnd = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 4294967296;
  await client.query(SCHEMA);
  let id = o.firstId;
  for (let done = 0; done < o.transactions; ) {
    const n = Math.min(o.batch, o.transactions - done);
    const rows: [number, number, number, string, string][] = [];
    for (let i = 0; i < n; i++, id++) {
      const clock = o.startMs + (id - 1) * o.stepMs;
      // Customers 7 and 13 go on a spree in the middle: many large payments at many merchants.
      const spree = id % 50 === 0 && id > o.transactions / 3 && id < (2 * o.transactions) / 3;
      const customer = spree ? (id % 100 === 0 ? 7 : 13) : 1 + Math.floor(rnd() * o.customers);
      const merchant = spree ? 1 + Math.floor(rnd() * 40) : 1 + Math.floor(rnd() * 12);
      const amount = spree ? 2500 + Math.floor(rnd() * 300_000) / 100 : Math.floor(rnd() * 20_000) / 100;
      const behind = rnd() < o.lateShare ? 30_000 + Math.floor(rnd() * 60_000) : Math.floor(rnd() * 5000);
      rows.push([id, customer, merchant, amount.toFixed(2), new Date(clock - behind).toISOString()]);
    }
    await client.query(
      `INSERT INTO transactions SELECT * FROM unnest($1::bigint[], $2::int[], $3::int[], $4::numeric[], $5::timestamptz[])`,
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3]), rows.map((r) => r[4])],
    );
    done += n;
  }
  return id - 1;
}

/** The windows the pipeline closes, as SQL over the source computes them (see the README for the rules). */
export const TRUTH_SQL = `
WITH o AS (
  SELECT id, customer_id, merchant_id, amount,
         (extract(epoch FROM created_at) * 1000)::bigint AS ts,
         max((extract(epoch FROM created_at) * 1000)::bigint) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 10000 AS wm
  FROM transactions),
w AS (SELECT *, (ts / 120000) * 120000 AS ws FROM o)
SELECT customer_id, ws::float8 AS ws, count(*)::int AS txn_count, sum(amount)::float8 AS total,
       count(DISTINCT merchant_id)::int AS merchants, max(amount)::float8 AS max_amount
FROM w
WHERE wm IS NULL OR ws + 120000 > wm
GROUP BY customer_id, ws
HAVING ws + 120000 <= (SELECT max(ts) - 10000 FROM o)
ORDER BY customer_id, ws`;

/** Transactions that came after their window closed (the late topic holds them). */
export const LATE_SQL = `
WITH o AS (
  SELECT id, (extract(epoch FROM created_at) * 1000)::bigint AS ts,
         max((extract(epoch FROM created_at) * 1000)::bigint) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - 10000 AS wm
  FROM transactions)
SELECT id FROM o WHERE wm IS NOT NULL AND (ts / 120000) * 120000 + 120000 <= wm ORDER BY id`;

export interface Window {
  customer_id: number;
  ws: number;
  txn_count: number;
  total: number;
  merchants: number;
  max_amount: number;
}

/** The rules of pipeline.yaml's `alerts` processor, applied to the truth. */
export const flagged = (w: Window): boolean => w.txn_count >= 8 || w.max_amount >= 4000 || w.merchants >= 6;
