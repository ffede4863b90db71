/**
 * One sink of bench/sink-apply in a process of its own, so its peak RSS is the sink's: the
 * product's sink worker, as `sluice run` runs it (batching, read-ahead, retries), reads the log
 * at `logDir` into the target and stops once it has applied `changes` changes. Prints the
 * seconds, the changes applied, its peak RSS and its RSS once loaded, as JSON on stdout.
 *
 *   node bench/out/js/bench/sink-apply/child.js <postgres|mysql|duckdb|delta|delta-merge|iceberg|iceberg-merge> <logDir> <target JSON> <changes> [maxRecords]
 */
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { sinkTaskFor } from '../../src/engine/runner.ts';

const [type, logDir, targetJson, changesArg, batch] = process.argv.slice(2);
const target = JSON.parse(targetJson) as { pgDb: string; myDb: string; duck: string };
const want = Number(changesArg);
const SINKS: Record<string, string> = {
  postgres: `{ name: s, type: postgres, connection: { database: ${target.pgDb} } }`,
  mysql: `{ name: s, type: mysql, connection: { database: ${target.myDb} } }`,
  duckdb: `{ name: s, type: duckdb, path: ${target.duck} }`,
  // The lake sinks write under a directory beside the DuckDB file.
  delta: `{ name: s, type: delta, path: ${target.duck}.lake }`,
  'delta-merge': `{ name: s, type: delta, mode: merge, path: ${target.duck}.lake }`,
  iceberg: `{ name: s, type: iceberg, path: ${target.duck}.wh }`,
  'iceberg-merge': `{ name: s, type: iceberg, mode: merge, path: ${target.duck}.wh }`,
};
const sinkYaml = SINKS[type];
const cfg = parseConfig(`name: bench\nsource: { type: postgres, connection: { database: x } }\nsinks:\n  - ${sinkYaml}\n`, 'bench.yaml', process.env);
if (batch) cfg.sinks[0].batch.maxRecords = Number(batch);
const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
const ac = new AbortController();
let changes = 0;
const worker = sinkTaskFor(cfg, 's', log, {
  logger: createLogger({ level: 'warn' }),
  onApplied: (_s, b) => {
    changes += b.records;
    if (changes >= want) ac.abort();
  },
});
const loadedRssMiB = process.memoryUsage().rss / 1048576;
const t = process.hrtime.bigint();
await worker.run(ac.signal);
const seconds = Number(process.hrtime.bigint() - t) / 1e9;
await log.close();
if (worker.state === 'failed') {
  process.stderr.write(`${type} sink failed: ${worker.lastError?.message}\n`);
  process.exit(1);
}
process.stdout.write(JSON.stringify({ seconds, changes, peakRssMiB: process.resourceUsage().maxRSS / 1024, loadedRssMiB }));
process.exit(0);
