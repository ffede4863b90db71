// Runs the tests with Node's test runner.
//
//   node scripts/run-tests.mjs [filter…]          every test/**/*.test.ts, one file at a time (the
//                                                 tests share the machine's PostgreSQL, MariaDB, …)
//   node scripts/run-tests.mjs --unit [filter…]   the unit lane: only test/**/*.unit.test.ts, the
//                                                 files that need no service, several at a time
//
// Filters select files whose path contains one of them: `npm test -- log`.
// test/peers/ is the heavy lane (`npm run test:peers`: a 3-node Kafka cluster, broker faults, sink workers
// scaled out on a Kafka consumer group, the source kill -9 suite on the Kafka and NATS logs, Delta Spark
// reading the Delta sink's change feed, the lake readers' self-tests, rows of 50 MB and tables of 1600
// columns at the targets' size limits, the Cassandra sink against a Cassandra node from Maven Central,
// seed 004's travel platform example at the seed's rates across a kill -9, seed 001's orders with each part
// and the log killed, the lake sinks and the sink error policies through kill -9, the sinks' kill -9
// suite, window state through kill -9, reconcile under a live workload on PostgreSQL, servers that
// hang, pgoutput decoder fuzzing, 1M-row transactions through both sources with bounded memory): it
// runs only when a filter names it, never with plain `npm test`.
//
// A `.unit.test.ts` file promises to need no server (no PostgreSQL, MariaDB, MongoDB, Kafka, Java):
// disk, child processes and in-process libraries only. The unit lane holds it to that by
// construction: it refuses to run a file that imports, directly or through other test/ modules, a
// service helper (test/helpers/pg.ts, targets.ts, mysql.ts) or a server's client package.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { spawnSync } from 'node:child_process';

const SERVICE_HELPERS = ['test/helpers/pg.ts', 'test/helpers/targets.ts', 'test/helpers/mysql.ts'];
const SERVICE_PACKAGES = ['pg', 'mysql2', 'mysql2/promise', 'mongodb'];

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const slash = (p) => p.split(sep).join('/');

/** Module specifiers a file imports at run time: static, re-exported and dynamic with a literal. */
function imports(file) {
  // Type-only imports load nothing at run time.
  const text = readFileSync(file, 'utf8').replace(/\b(?:import|export)\s+type\s[^;]*?\bfrom\s*(['"])[^'"\n]+\1/g, '');
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])([^'"\n]+)\1/g)].map((m) => m[2]);
}

/**
 * Why `file` needs a service, or null: the chain of imports from it to a service helper or client
 * package. Follows relative imports that stay inside test/ (src/ loads drivers only when used).
 */
function serviceChain(file, seen = new Set()) {
  const here = slash(relative(process.cwd(), file));
  if (seen.has(here)) return null;
  seen.add(here);
  for (const spec of imports(file)) {
    if (SERVICE_PACKAGES.includes(spec)) return [here, spec];
    if (!spec.startsWith('.')) continue;
    const target = slash(relative(process.cwd(), resolve(dirname(file), spec)));
    if (SERVICE_HELPERS.includes(target)) return [here, target];
    if (target.startsWith('test/') && existsSync(target)) {
      const rest = serviceChain(target, seen);
      if (rest) return [here, ...rest];
    }
  }
  return null;
}

const PEERS = 'test/peers/';
const args = process.argv.slice(2);
const unit = args.includes('--unit');
const filters = args.filter((a) => a !== '--unit');
const files = walk('test')
  .filter((f) => !unit || f.endsWith('.unit.test.ts'))
  .filter((f) => (filters.length === 0 ? !slash(f).startsWith(PEERS) : filters.some((s) => slash(f).includes(s))))
  .filter((f) => !slash(f).startsWith(PEERS) || filters.some((s) => s.includes('peers')));
if (files.length === 0) {
  console.error(`no ${unit ? 'unit test' : 'test'} files match ${filters.join(' ')}`);
  process.exit(1);
}
if (unit) {
  const refused = files.map((f) => serviceChain(f)).filter(Boolean);
  if (refused.length) {
    console.error('the unit lane runs only files that need no service; these import one:');
    for (const chain of refused) console.error(`  ${chain.join(' → ')}`);
    console.error('rename the file to .test.ts (it runs with npm test), or drop the import.');
    process.exit(1);
  }
}
const concurrency = unit ? Math.max(2, availableParallelism()) : 1;
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, SLUICE_TEST: '1' },
});
process.exit(r.status ?? 1);
