/**
 * The clickstream example's check: the DuckDB tables the pipeline wrote equal what SQL over the
 * gateway's events computes (DuckDB over the JSON-lines files, in the order the log took them):
 *
 * - the watermark before each event is the largest event time before it in its topic, less 30 s;
 * - an event behind it whose windows have all closed is late and counts nowhere;
 * - the rest are grouped into 5-minute (app events) and 10-minute (clicks) windows and 5-minute-gap
 *   sessions, and every window the final watermark closed must be in its table, once, equal.
 *
 *   npx tsx examples/clickstream/check.ts      (with the pipeline stopped: DuckDB's file is its own)
 */
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { TOPICS } from './data.ts';

const DELAY = 30_000;

/** The events of a topic with their arrival order (`rn`) and time in ms (`ts`). */
const events = (dir: string, topic: string, columns: string) => `(SELECT *, row_number() OVER () AS rn, round(epoch(timestamp::TIMESTAMPTZ) * 1000)::BIGINT AS ts
  FROM read_json('${join(dir, `${topic}.jsonl`)}', format = 'newline_delimited', columns = {${columns}, timestamp: 'VARCHAR'}))`;

const APP_COLS = "event_type: 'VARCHAR', app_type: 'VARCHAR', user_id: 'VARCHAR'";
const CLICK_COLS = "page_url: 'VARCHAR', user_id: 'VARCHAR', session_id: 'VARCHAR'";

function tumbling(src: string, size: number, keys: string, aggs: string): string {
  return `WITH e AS ${src},
    o AS (SELECT *, (ts // ${size}) * ${size} AS ws, max(ts) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - ${DELAY} AS wm FROM e)
  SELECT ${keys}, ws, ${aggs} FROM o WHERE wm IS NULL OR ws + ${size} > wm
  GROUP BY ${keys}, ws HAVING ws + ${size} <= (SELECT max(ts) - ${DELAY} FROM e)`;
}

function sessions(src: string, gap: number): string {
  return `WITH e AS ${src},
    o AS (SELECT *, max(ts) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - ${DELAY} AS wm FROM e),
    a AS (SELECT * FROM o WHERE wm IS NULL OR ts + ${gap} > wm),
    b AS (SELECT *, CASE WHEN ts >= max(ts) OVER (PARTITION BY user_id ORDER BY ts, rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + ${gap} THEN 1 ELSE 0 END AS brk FROM a),
    c AS (SELECT *, sum(brk) OVER (PARTITION BY user_id ORDER BY ts, rn ROWS UNBOUNDED PRECEDING) AS sid FROM b)
  SELECT user_id, min(ts) AS ws, max(ts) + ${gap} AS we, count(*) AS clicks, count(DISTINCT page_url) AS pages FROM c
  GROUP BY user_id, sid HAVING max(ts) + ${gap} <= (SELECT max(ts) - ${DELAY} FROM e)`;
}

export interface CheckResult {
  problems: string[];
  rows: Record<string, number>;
}

export async function check(dir: string): Promise<CheckResult> {
  const db = await (await DuckDBInstance.create(join(dir, 'analytics.duckdb'))).connect();
  // One thread: row_number() OVER () then follows the files' order, the order the log took the events.
  await db.run('SET threads = 1');
  const app = events(dir, TOPICS.app, APP_COLS);
  const click = events(dir, TOPICS.click, CLICK_COLS);
  const jobs: [string, string, string][] = [
    ['app_event_counts', tumbling(app, 300_000, 'event_type, app_type', 'count(*) AS events, count(DISTINCT user_id) AS users'), `SELECT event_type, app_type, epoch_ms(window_start) AS ws, events, users FROM app_event_counts`],
    ['page_clicks', tumbling(click, 600_000, 'page_url', 'count(*) AS clicks, count(DISTINCT user_id) AS users, count(DISTINCT session_id) AS sessions'), `SELECT page_url, epoch_ms(window_start) AS ws, clicks, users, sessions FROM page_clicks`],
    ['sessions', sessions(click, 300_000), `SELECT user_id, epoch_ms(window_start) AS ws, epoch_ms(window_end) AS we, clicks, pages FROM sessions`],
  ];
  const problems: string[] = [];
  const rows: Record<string, number> = {};
  const text = (r: unknown[]) => JSON.stringify(r.map((v) => (typeof v === 'bigint' ? Number(v) : v)));
  for (const [table, truth, got] of jobs) {
    const want = (await db.runAndReadAll(`SELECT * FROM (${truth}) ORDER BY ALL`)).getRows().map(text);
    const have = (await db.runAndReadAll(`SELECT * FROM (${got}) ORDER BY ALL`)).getRows().map(text);
    rows[table] = have.length;
    const w = new Set(want);
    const h = new Set(have);
    if (h.size !== have.length) problems.push(`${table}: a window twice`);
    const missing = want.filter((r) => !h.has(r));
    const extra = have.filter((r) => !w.has(r));
    if (missing.length) problems.push(`${table}: ${missing.length} of SQL's ${want.length} windows missing or different, e.g. ${missing.slice(0, 3).join(' ')}`);
    if (extra.length) problems.push(`${table}: ${extra.length} windows SQL does not have, e.g. ${extra.slice(0, 3).join(' ')}`);
  }
  db.closeSync();
  return { problems, rows };
}

if (process.argv[1]?.endsWith('check.ts')) {
  const r = await check(process.env.CLICKSTREAM_DIR ?? './data/clickstream');
  console.log(Object.entries(r.rows).map(([t, n]) => `${t}: ${n} windows`).join(', '));
  if (r.problems.length) {
    console.log(`MISMATCH:\n  ${r.problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log('OK: every closed window equals SQL over the events');
}
