/**
 * `npm run demo`: seed 000's banking operational data layer, end to end on this machine. Prepares
 * the services (scripts/setup.sh: MariaDB's row-based binlog, the MongoDB-compatible server), then
 * runs examples/banking/demo.ts: mock data into MariaDB, the pipeline (snapshot, then binlog) into
 * the operational layer and the analytics, a live workload, and the dashboard.
 *
 *   npm run demo [-- --seconds N] [-- --port 8080] [-- --rate 5] [-- --store postgres]
 *
 * Without --seconds it runs until Ctrl-C; either way it ends by checking that the operational
 * layer equals MySQL and the analytics equal a from-scratch recomputation (exit 1 if not).
 * --store postgres keeps both layers in PostgreSQL JSONB instead of MongoDB.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, tokens } = parseArgs({
  options: {
    store: { type: 'string', default: 'mongodb' },
    help: { type: 'boolean', short: 'h' },
    seconds: { type: 'string' },
    port: { type: 'string' },
    rate: { type: 'string' },
    host: { type: 'string' },
    customers: { type: 'string' },
    seed: { type: 'string' },
    keep: { type: 'boolean' },
    verbose: { type: 'boolean' },
  },
  tokens: true,
  strict: true,
});
if (values.help) {
  console.log(`usage: npm run demo [-- options]

Seed 000's banking operational data layer: MariaDB (binlog) → Sluice → MongoDB documents
(odl_cluster1) → derived analytics (odl_cluster2), with a live workload and a dashboard.

  --seconds N      stop after N seconds (default: run until Ctrl-C), then check the result
  --port P         dashboard port (default 8080; 0 = any free port)
  --rate R         workload writes per second (default 5)
  --customers N    mock customers (default 100, as seed 000)
  --seed S         mock data seed (default 42)
  --store S        mongodb (default) or postgres (both layers in PostgreSQL JSONB)
  --keep           keep the database, log and documents of the last run and resume
  --verbose        pipeline logs at info level`);
  process.exit(0);
}
if (values.store !== 'mongodb' && values.store !== 'postgres') {
  console.error(`--store must be mongodb or postgres (got ${values.store})`);
  process.exit(2);
}

execFileSync('bash', ['scripts/setup.sh'], { stdio: 'inherit' });

const args = tokens.filter((t) => t.kind === 'option' && t.name !== 'store').flatMap((t) => (t.kind === 'option' ? [t.rawName, ...(t.value !== undefined ? [t.value] : [])] : []));
if (values.store === 'postgres') {
  // Same pipeline with the PostgreSQL JSONB document sink (database sluice_banking, two schemas).
  execFileSync('psql', ['-X', '-q', '-h', '127.0.0.1', '-U', 'postgres', '-d', 'postgres', '-c', 'DROP DATABASE IF EXISTS sluice_banking WITH (FORCE)', '-c', 'CREATE DATABASE sluice_banking'], { stdio: 'inherit' });
  const { readFileSync } = await import('node:fs');
  const yaml = readFileSync('examples/banking/pipeline.yaml', 'utf8')
    .replace(/type: mongodb.*\n\s*connection: mongodb:\/\/127\.0\.0\.1:27017\n(\s*)database: odl_cluster1/, 'type: postgres_jsonb\n$1connection: postgres://postgres@127.0.0.1:5432/sluice_banking\n$1schema: odl_cluster1')
    .replace(/connection: mongodb:\/\/127\.0\.0\.1:27017\n(\s*)database: odl_cluster2/, 'connection: postgres://postgres@127.0.0.1:5432/sluice_banking\n$1schema: odl_cluster2');
  writeFileSync('examples/banking/pipeline.postgres.yaml', yaml);
  args.push('--config', 'examples/banking/pipeline.postgres.yaml');
}
// Ctrl-C reaches the demo too (same process group): it stops, checks and exits; wait for it.
process.on('SIGINT', () => {});
const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/banking/demo.ts', ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
