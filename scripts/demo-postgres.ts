/**
 * `npm run demo:postgres`: captures a small shop database on the local PostgreSQL into the embedded log
 * and shows the change events as they are committed, while a light workload runs.
 *   --seconds N   how long the live part runs (default 20; 0 = until Ctrl-C)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { parseConfig } from '../src/config/index.ts';
import { runPipeline } from '../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../src/log/open.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  console.log('usage: npm run demo:postgres [-- --seconds N]\n\nCreates database sluice_demo on 127.0.0.1:5432, captures it into ./data/demo/log, prints events live and keeps a DuckDB warehouse (./data/demo/warehouse.duckdb) in step.');
  process.exit(0);
}
const seconds = Number(values.seconds);
const say = (s: string) => console.log(`\x1b[36m[demo]\x1b[0m ${s}`);

async function pgAdmin(db = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
  await c.connect();
  return c;
}

async function main(): Promise<void> {
  let admin: pg.Client;
  try {
    admin = await pgAdmin();
  } catch (e) {
    console.error(`PostgreSQL is not reachable on 127.0.0.1:5432 (${(e as Error).message}).\nStart it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);
    process.exit(1);
  }
  // wal_level=logical and replication connections (idempotent; restarts PostgreSQL only once).
  await admin.end();
  execFileSync('bash', ['scripts/setup.sh'], { stdio: 'inherit' });
  admin = await pgAdmin();
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = 'sluice_demo' AND NOT active`);
  await admin.query('DROP DATABASE IF EXISTS sluice_demo WITH (FORCE)');
  await admin.query('CREATE DATABASE sluice_demo');
  await admin.end();
  const db = await pgAdmin('sluice_demo');
  say('created database sluice_demo with customers and orders');
  await db.query(`
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, balance numeric(12,2) NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2), status text, items jsonb, created_at timestamptz DEFAULT now());
    INSERT INTO customers (name, email, balance) SELECT 'Customer ' || g, 'c' || g || '@example.com', g * 10 FROM generate_series(1, 100) g;
    INSERT INTO orders (customer_id, amount, status, items) SELECT 1 + g % 100, g % 97 + 0.99, 'NEW', jsonb_build_array(jsonb_build_object('sku', 'SKU-' || g, 'qty', 1 + g % 3)) FROM generate_series(1, 300) g;
  `);
  const dir = resolve('data/demo');
  rmSync(dir, { recursive: true, force: true });
  const cfg = parseConfig(
    `name: demo
source:
  type: postgres
  connection: postgres://postgres@127.0.0.1:5432/sluice_demo
  heartbeatIntervalMs: 2000
state:
  dir: ${dir}/state
log:
  dir: ${dir}/log
sinks:
  - name: warehouse
    type: duckdb
    path: ${dir}/warehouse.duckdb
server:
  port: 0
logging:
  level: warn
`,
    'demo.yaml',
    process.env,
  );
  say(`pipeline 'demo': snapshot of 400 rows, then streaming; log in ${dir}/log`);
  const ac = new AbortController();
  process.on('SIGINT', () => ac.abort());
  let committed = 0;
  const run = runPipeline(cfg, {
    signal: ac.signal,
    onCommit: ({ records }) => {
      committed += records;
    },
  });
  run.catch((e) => {
    console.error(`pipeline failed: ${e.message}`);
    process.exit(1);
  });

  // Follow the log (as `sluice tail` would) and print one line per event.
  while (!existsSync(`${dir}/log/commits.journal`)) await new Promise((r) => setTimeout(r, 100));
  const log = await openLog(embeddedLogAt(`${dir}/log`), { readOnly: true });
  const positions = new Map<string, number>();
  const lags: number[] = [];
  const follow = async () => {
    for (const t of await log.listTopics()) {
      if (t.name.endsWith('.__schemas')) continue; // table schemas, not change events
      for (const p of await log.offsets(t.name)) {
        const k = `${t.name}/${p.partition}`;
        let off = positions.get(k) ?? p.start;
        while (off < p.end) {
          const { records: recs, next } = await log.read(t.name, p.partition, off, 1 << 20);
          for (const r of recs) {
            if (!r.value) continue;
            const ev = JSON.parse(r.value.toString());
            if (ev.op !== 'r') {
              const lag = Date.now() - ev.source.ts_ms;
              lags.push(lag);
              const row = ev.after ?? ev.before;
              console.log(`  ${ev.op === 'c' ? 'insert' : ev.op === 'u' ? 'update' : ev.op === 'd' ? 'delete' : 'truncate'} ${t.name} key=${r.key?.toString()} ${row ? JSON.stringify(row).slice(0, 90) : ''}  (${lag} ms after commit)`);
            }
          }
          off = next;
        }
        positions.set(k, off);
      }
    }
  };

  const deadline = seconds > 0 ? Date.now() + seconds * 1000 : Infinity;
  let snapshotShown = false;
  let tick = 0;
  while (!ac.signal.aborted && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    await follow();
    if (++tick % 14 !== 0) continue;
    if (!snapshotShown && committed >= 400) {
      snapshotShown = true;
      say(`snapshot done: ${committed} rows in the log. Now changing data every ~0.7 s:`);
    }
    if (snapshotShown) {
      const id = 1 + Math.floor(Math.random() * 100);
      const r = Math.random();
      if (r < 0.5) await db.query(`UPDATE customers SET balance = balance + $2, updated_at = now() WHERE id = $1`, [id, (Math.random() * 100).toFixed(2)]);
      else if (r < 0.85) await db.query(`INSERT INTO orders (customer_id, amount, status, items) VALUES ($1, $2, 'NEW', '[{"sku":"SKU-LIVE","qty":1}]')`, [id, (Math.random() * 200).toFixed(2)]);
      else await db.query(`DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)`);
    }
    await follow();
  }
  await new Promise((r) => setTimeout(r, 1500)); // let the warehouse sink apply the last changes
  ac.abort();
  await run;
  await follow();
  await log.close();
  // The DuckDB warehouse the sink kept in step (read in this process: DuckDB allows one writer).
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const wh = await (await DuckDBInstance.fromCache(`${dir}/warehouse.duckdb`)).connect();
  const q = async (sql: string) => (await wh.runAndReadAll(sql)).getRows()[0];
  const [whCustomers, whBalance] = await q('SELECT count(*), sum(balance) FROM customers');
  const [srcCustomers, srcBalance] = (await db.query({ text: 'SELECT count(*), sum(balance) FROM customers', rowMode: 'array' })).rows[0];
  const [orders] = await q('SELECT count(*) FROM orders');
  const [srcOrders] = (await db.query({ text: 'SELECT count(*) FROM orders', rowMode: 'array' })).rows[0];
  const ops = (await wh.runAndReadAll(`SELECT __op, count(*) FROM orders_changes GROUP BY 1 ORDER BY 1`)).getRows().map(([op, n]) => `${op}=${n}`).join(' ');
  wh.closeSync();
  say(`warehouse ${dir}/warehouse.duckdb: customers ${whCustomers} rows, balance ${whBalance} (source: ${srcCustomers}, ${srcBalance}); orders ${orders} (source ${srcOrders}); orders_changes ${ops}`);
  // A stopped pipeline's slot keeps WAL on the server; the demo's next run starts over anyway.
  await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'sluice_demo' AND NOT active`);
  await db.end();
  lags.sort((a, b) => a - b);
  const p50 = lags[Math.floor(lags.length / 2)] ?? 0;
  const p99 = lags[Math.floor(lags.length * 0.99)] ?? 0;
  say(`done: ${committed} records committed; end-to-end lag commit→log p50 ${p50} ms, p99 ${p99} ms over ${lags.length} changes`);
  say(`read it again: npx sluice tail demo.public.customers --log-dir ${dir}/log --from earliest --max 5`);
  say(`inspect: npx sluice status --log-dir ${dir}/log --state-dir ${dir}/state`);
}

main().catch((e) => {
  console.error(e instanceof Error ? `demo failed: ${e.message}` : e);
  process.exit(1);
});
