/**
 * The DuckDB reference of bench/processing in a process of its own: the same job as SQL over the
 * same events (the JSON-lines file the log was filled from), timed from the query's start to its
 * materialized result. Then, untimed, writes the result the benchmark compares (the windows the
 * processor closes) to `resultFile`. Prints the seconds, result rows and peak RSS as JSON.
 *
 *   node bench/out/js/bench/processing/duckdb-child.js <window|join> <dir> <resultFile>
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

const [mode, dir, resultFile] = process.argv.slice(2);
const events = `read_json('${join(dir, 'events.jsonl')}', format = 'newline_delimited', columns = {k: 'VARCHAR', v: 'DOUBLE', ts: 'BIGINT'})`;
const customers = `read_json('${join(dir, 'customers.jsonl')}', format = 'newline_delimited', columns = {k: 'VARCHAR', name: 'VARCHAR', tier: 'VARCHAR'})`;
const instance = await DuckDBInstance.create(':memory:');
const db = await instance.connect();
const sql =
  mode === 'window'
    ? `CREATE TABLE res AS SELECT k, (ts // 60000) * 60000 AS ws, count(*) AS n, sum(v) AS sum, max(v) AS max, max(max(ts)) OVER () AS maxts FROM ${events} GROUP BY ALL`
    : `CREATE TABLE res AS SELECT e.k, e.v, e.ts, c.name, c.tier FROM ${events} e LEFT JOIN ${customers} c USING (k)`;
const t = process.hrtime.bigint();
await db.run(sql);
const seconds = Number(process.hrtime.bigint() - t) / 1e9;
const rows = Number((await db.runAndReadAll('SELECT count(*) FROM res')).getRows()[0][0]);
if (resultFile && mode === 'window') {
  // The windows closed by a watermark 5 s behind the largest time: what the processor emits.
  const r = await db.runAndReadAll(`SELECT k, ws::BIGINT, n::BIGINT, sum, max FROM res WHERE ws + 60000 <= maxts - 5000 ORDER BY k, ws`);
  writeFileSync(resultFile, JSON.stringify(r.getRows().map(([k, ws, n, sum, max]) => [k, Number(ws), Number(n), sum, max])));
}
db.closeSync();
process.stdout.write(JSON.stringify({ seconds, rows, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
process.exit(0);
