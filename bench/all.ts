/**
 * `npm run bench:all`: every benchmark at a reduced size, one after the other, then one table of
 * what each measured beside its same-run reference and its target (issue 12's, or the issue named).
 * Each benchmark is run as its own command (its own process, its own references, its own rounds),
 * as the docs give them; the reduced sizes here trade spread for time (278 s in all on the 2-core machine).
 *
 *   node --import tsx bench/all.ts [--only capture-postgres,sink-apply,…]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SummaryRow } from './common.ts';

const { values } = parseArgs({ options: { only: { type: 'string' } } });

/** Each benchmark and its reduced arguments. */
const BENCHES: [string, string[]][] = [
  ['log-read', ['--rows', '200000', '--rounds', '3']],
  ['sink-apply', ['--rows', '50000', '--rounds', '2']],
  ['capture-postgres', ['--rows', '200000', '--rounds', '2']],
  ['capture-mysql', ['--rows', '200000', '--rounds', '2']],
  ['snapshot', ['--rows', '1000000', '--rounds', '2', '--workload', 'both']],
  ['incremental', ['--rows', '300000', '--rounds', '2']],
  ['latency', ['--rates', '1000,10000,20000', '--seconds', '15']],
  ['capture-kafka', ['--rows', '100000', '--rounds', '1', '--workload', 'small']],
];

const only = values.only?.split(',');
const file = join(tmpdir(), `sluice-bench-all-${process.pid}.jsonl`);
rmSync(file, { force: true });
const failed: string[] = [];
const took: Record<string, number> = {};
for (const [name, args] of BENCHES) {
  if (only && !only.includes(name)) continue;
  process.stderr.write(`\n[bench:all] ${name} ${args.join(' ')}\n`);
  const t = Date.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(`./${name}/run.ts`, import.meta.url).pathname, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, SLUICE_BENCH_SUMMARY: file } });
  took[name] = (Date.now() - t) / 1000;
  if (r.status !== 0) failed.push(`${name} (exit ${r.status ?? r.signal})`);
}

const rows: SummaryRow[] = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as SummaryRow) : [];
rmSync(file, { force: true });
const n = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1));
console.log('\n| benchmark | figure | Sluice | reference | reference figure | ratio | target | met? |');
console.log('| --- | --- | ---: | --- | ---: | ---: | --- | --- |');
for (const r of rows) {
  const ratio = r.reference ? `${(r.figure / r.reference.figure).toFixed(2)}×` : '';
  console.log(`| ${r.bench} | ${r.what} | ${n(r.figure)} | ${r.reference?.name ?? ''} | ${r.reference ? n(r.reference.figure) : ''} | ${ratio} | ${r.target} | ${r.met ? 'yes' : '**no**'} |`);
}
console.log(`\nTimes: ${Object.entries(took).map(([k, s]) => `${k} ${s.toFixed(0)} s`).join(', ')}; total ${Object.values(took).reduce((a, b) => a + b, 0).toFixed(0)} s.`);
if (failed.length) {
  console.log(`Failed: ${failed.join(', ')}`);
  process.exit(1);
}
