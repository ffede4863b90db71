/**
 * The lakehouse example's tables and workload, the same on PostgreSQL and MariaDB/MySQL:
 * customers (seed 003's: names, e-mail, city, state, country, tier) and their orders, which are
 * placed, paid or cancelled (updates, with amount changes) and sometimes removed (deletes); now
 * and then a customer leaves. The check (check.ts) compares every lake layer with SQL over them.
 */

export const PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (customer_id bigint PRIMARY KEY, first_name text, last_name text, email text, city text, state text, country text, tier text);
CREATE TABLE IF NOT EXISTS orders (order_id bigint PRIMARY KEY, customer_id bigint NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL);
-- Updates and deletes carry the whole row before: the gold aggregation takes it out.
ALTER TABLE orders REPLICA IDENTITY FULL;`;

export const MYSQL_SCHEMA = `
CREATE TABLE IF NOT EXISTS customers (customer_id BIGINT PRIMARY KEY, first_name VARCHAR(100), last_name VARCHAR(100), email VARCHAR(200), city VARCHAR(100), state VARCHAR(100), country VARCHAR(100), tier VARCHAR(20));
CREATE TABLE IF NOT EXISTS orders (order_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, amount DECIMAL(12,2) NOT NULL, status VARCHAR(20) NOT NULL);`;

/** Runs one statement with `?` placeholders (the PostgreSQL adapter numbers them). */
export type Exec = (sql: string, params?: unknown[]) => Promise<unknown>;

const FIRST = ['Alice', 'Bao', 'Chidi', 'Dana', 'Emil', 'Fatima', 'Goro', 'Hana'];
const LAST = ['Johnson', 'Nguyen', 'Okafor', 'Silva', 'Berg', 'Haddad', 'Sato', 'Novak'];
const PLACES = [
  ['Seattle', 'WA', 'USA'],
  ['Hanoi', 'HN', 'Vietnam'],
  ['Lagos', 'LA', 'Nigeria'],
  ['Porto', null, 'Portugal'],
];
const TIERS = ['Bronze', 'Silver', 'Gold', 'Platinum'];

/** One step of the workload in one transaction: new customers and orders, payments, cancellations, tier changes, a removal now and then. */
export async function step(exec: Exec, n: number): Promise<void> {
  await exec('BEGIN');
  for (let i = 0; i < 3; i++) {
    const id = n * 10 + i;
    const [city, state, country] = PLACES[(n + i) % PLACES.length];
    await exec('INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [id, FIRST[id % FIRST.length], LAST[(id * 3) % LAST.length], `c${id}@example.com`, city, state, country, TIERS[0]]);
  }
  for (let i = 0; i < 6; i++) await exec("INSERT INTO orders VALUES (?, ?, ?, 'placed')", [n * 100 + i, n * 10 + (i % 3), `${(n * 7 + i * 13) % 500}.${String((n + i) % 100).padStart(2, '0')}`]);
  await exec("UPDATE orders SET status = 'paid' WHERE status = 'placed' AND order_id < ? AND MOD(order_id, 2) = 0", [n * 100]);
  await exec("UPDATE orders SET status = 'cancelled', amount = 0 WHERE order_id = ?", [(n - 1) * 100 + 5]);
  await exec('UPDATE customers SET tier = ? WHERE customer_id = ?', [TIERS[n % TIERS.length], (n - 1) * 10 + 1]);
  await exec("UPDATE customers SET city = 'Da Nang', state = 'DN' WHERE customer_id = ?", [(n - 2) * 10 + 2]);
  if (n % 3 === 0) await exec('DELETE FROM orders WHERE order_id = ?', [(n - 1) * 100 + 3]);
  if (n % 5 === 0) await exec('DELETE FROM customers WHERE customer_id = ?', [(n - 3) * 10]);
  await exec('COMMIT');
}

/** What each layer must equal, as SQL over the source (the same text on both databases). */
export const TRUTH = {
  customers: `SELECT customer_id, email, city, tier FROM customers ORDER BY customer_id`,
  orders: `SELECT order_id, customer_id, amount, status FROM orders ORDER BY order_id`,
  // Seed 003's transform: full_name, location (its parts joined by ', ', a missing one as empty).
  analytics: `SELECT customer_id, email, CONCAT(first_name, ' ', last_name) AS full_name, CONCAT(COALESCE(city, ''), ', ', COALESCE(state, ''), ', ', COALESCE(country, '')) AS location, tier FROM customers ORDER BY customer_id`,
  gold: `SELECT customer_id, COUNT(*) AS orders, SUM(amount) AS revenue FROM orders GROUP BY customer_id ORDER BY customer_id`,
};
