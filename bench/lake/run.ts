/**
 * bench/lake: changes/s the lake sinks apply from a pre-filled log (issue 14's targets: append
 * ≥ 300k rows/s, merge of 10% updates ≥ 100k rows/s), each beside DuckDB's COPY of the same rows
 * to Parquet in the same run. It is bench/sink-apply with the four lake sinks and a workload of N
 * creates then updates of every tenth key:
 *
 *   node --import tsx bench/lake/run.ts [--rows 200000] [--rounds 3] [--updates 0.1] [--sinks delta,delta-merge,iceberg,iceberg-merge]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' }, updates: { type: 'string', default: '0.1' }, sinks: { type: 'string', default: 'delta,delta-merge,iceberg,iceberg-merge' } } });
const r = spawnSync(process.execPath, ['--import', 'tsx', new URL('../sink-apply/run.ts', import.meta.url).pathname, '--rows', values.rows!, '--rounds', values.rounds!, '--updates', values.updates!, '--sinks', values.sinks!], { stdio: 'inherit' });
process.exit(r.status ?? 1);
