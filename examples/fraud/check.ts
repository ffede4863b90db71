/**
 * The fraud example's check: what the pipeline wrote equals what SQL over the source table says.
 *
 * - every window the watermark closed is on the `features` topic exactly once, with the count,
 *   sum, distinct merchants and largest amount of the transactions SQL puts in it;
 * - the Redis feature store holds, per customer, that customer's latest closed window;
 * - `fraud.alert` holds exactly the windows the rules flag;
 * - `features.late` holds exactly the transactions that came after their window closed.
 *
 *   npx tsx examples/fraud/check.ts      (FRAUD_DB, FRAUD_DIR, FRAUD_KEYS, REDIS_URL as for the pipeline)
 */
import pg from 'pg';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { RespClient } from '../../src/sinks/redis/resp.ts';
import { flagged, LATE_SQL, TRUTH_SQL, type Window } from './data.ts';

export interface CheckResult {
  problems: string[];
  windows: number;
  customers: number;
  alerts: number;
  late: number;
}

async function topic(logDir: string, name: string): Promise<{ key: unknown; value: any }[]> {
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  const out: { key: unknown; value: any }[] = [];
  try {
    if (!(await log.topicInfo(name))) return out;
    for (const { partition, start, end } of await log.offsets(name)) {
      for (let at = start; at < end; ) {
        const r = await log.read(name, partition, at, 4 << 20);
        for (const rec of r.records) out.push({ key: rec.key && JSON.parse(rec.key.toString()), value: rec.value && JSON.parse(rec.value.toString()) });
        if (r.next <= at) break;
        at = r.next;
      }
    }
  } finally {
    await log.close();
  }
  return out;
}

const near = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
const same = (got: Record<string, unknown>, w: Window) =>
  Number(got.customer_id) === w.customer_id && got.window_start === new Date(w.ws).toISOString() && Number(got.txn_count) === w.txn_count && near(Number(got.total), w.total) && Number(got.merchants) === w.merchants && near(Number(got.max_amount), w.max_amount);

export async function check(o: { pg: pg.Client; redis: RespClient; logDir: string; keys: string }): Promise<CheckResult> {
  const problems: string[] = [];
  const truth = (await o.pg.query(TRUTH_SQL)).rows as Window[];
  const id = (c: unknown, ws: unknown) => `${c}@${ws}`;
  const want = new Map(truth.map((w) => [id(w.customer_id, new Date(w.ws).toISOString()), w]));

  // Every closed window once, equal to SQL's.
  const features = (await topic(o.logDir, 'features')).map((r) => r.value.after as Record<string, unknown>);
  const seen = new Set<string>();
  for (const f of features) {
    const k = id(f.customer_id, f.window_start);
    if (seen.has(k)) problems.push(`window ${k} emitted twice`);
    seen.add(k);
    const w = want.get(k);
    if (!w) problems.push(`window ${k} emitted, but SQL has no such closed window`);
    else if (!same(f, w)) problems.push(`window ${k}: ${JSON.stringify(f)}, SQL says ${JSON.stringify(w)}`);
  }
  for (const k of want.keys()) if (!seen.has(k)) problems.push(`window ${k} missing`);

  // The feature store: each customer's latest closed window.
  const latest = new Map<number, Window>();
  for (const w of truth) if ((latest.get(w.customer_id)?.ws ?? -Infinity) < w.ws) latest.set(w.customer_id, w);
  for (const [c, w] of latest) {
    const r = (await o.redis.call('HGETALL', `${o.keys}:${c}`)) as string[];
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < r.length; i += 2) h[r[i]] = r[i + 1];
    if (!same(h, w)) problems.push(`Redis ${o.keys}:${c} holds ${JSON.stringify(h)}, the latest window is ${JSON.stringify(w)}`);
  }

  // Alerts: exactly the flagged windows.
  const alerts = (await topic(o.logDir, 'fraud.alert')).map((r) => id(r.value.after.customer_id, r.value.after.window_start)).sort();
  const wantAlerts = truth.filter(flagged).map((w) => id(w.customer_id, new Date(w.ws).toISOString())).sort();
  if (JSON.stringify(alerts) !== JSON.stringify(wantAlerts)) problems.push(`alerts ${JSON.stringify(alerts.slice(0, 20))}…, the rules flag ${JSON.stringify(wantAlerts.slice(0, 20))}…`);

  // Late transactions, each once.
  const late = (await topic(o.logDir, 'features.late')).map((r) => Number(r.value.after.id));
  const wantLate = (await o.pg.query(LATE_SQL)).rows.map((r) => Number(r.id));
  if (JSON.stringify(late) !== JSON.stringify(wantLate)) problems.push(`late topic holds ${late.length} transactions, SQL says ${wantLate.length} came after their window closed`);

  return { problems, windows: features.length, customers: latest.size, alerts: alerts.length, late: late.length };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/examples\//, '/examples/'))) {
  const client = new pg.Client({ host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? 'postgres', database: process.env.FRAUD_DB ?? 'fraud' });
  await client.connect();
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0');
  const redis = await RespClient.connect({ host: url.hostname, port: Number(url.port || 6379), db: Number(url.pathname.slice(1) || 0), connectTimeoutMs: 5000, commandTimeoutMs: 30_000 });
  const r = await check({ pg: client, redis, logDir: `${process.env.FRAUD_DIR ?? './data/fraud'}/log`, keys: process.env.FRAUD_KEYS ?? 'fraud:features' });
  await client.end();
  redis.close();
  console.log(`${r.windows} windows, ${r.customers} customers in the feature store, ${r.alerts} alerts, ${r.late} late transactions`);
  if (r.problems.length) {
    console.log(`MISMATCH:\n  ${r.problems.slice(0, 30).join('\n  ')}`);
    process.exit(1);
  }
  console.log('OK: every window, feature, alert and late transaction equals SQL over the source');
}
