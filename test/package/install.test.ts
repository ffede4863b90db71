/**
 * The package as a user gets it: `npm pack` (whose prepack runs `npm run build`), then
 * `npm install <tarball> --omit=dev` into an empty project, and the installed `sluice` command
 * runs a PostgreSQL → embedded-log pipeline with production dependencies only (no tsx, no
 * TypeScript). A second install without optional dependencies (the MongoDB and DuckDB drivers)
 * must still start and validate pipelines that name those sinks.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from '../helpers/pg.ts';
import { pipelineYaml, tempDir } from '../helpers/pipeline.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], cwd: string, timeoutMs = 60_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** `npm init -y` in a fresh directory, then the user's install of the tarball. */
function installInto(dir: string, tarball: string, ...extra: string[]): string {
  mkdirSync(dir);
  ok(run(NPM, ['init', '-y'], dir), 'npm init -y');
  ok(run(NPM, ['install', tarball, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', ...extra], dir), `npm install ${extra.join(' ')}`);
  return dir;
}

describe('the installed package', () => {
  const tmp = tempDir('sluice-pkg-');
  let tarball = '';
  let app = '';
  const sluice = (cwd: string, ...args: string[]) => run(process.execPath, [join(cwd, 'node_modules/.bin/sluice'), ...args], cwd);

  before(() => {
    // Exactly what `npm publish` does before uploading: prepack builds dist/, then pack.
    const packed = run(NPM, ['pack', '--pack-destination', tmp.dir], ROOT, 120_000);
    ok(packed, 'npm pack');
    assert.match(packed.stdout + packed.stderr, /> sluice@[^ ]+ build/, 'prepack runs npm run build');
    const tgz = readdirSync(tmp.dir).filter((f) => f.endsWith('.tgz'));
    assert.equal(tgz.length, 1, `one tarball in ${tmp.dir}: ${tgz.join(', ')}`);
    tarball = join(tmp.dir, tgz[0]);
    app = installInto(join(tmp.dir, 'app'), tarball);
  });
  after(() => tmp.remove());

  it('ships the build, the bin and the docs, and no sources or tests', () => {
    const files = ok(run('tar', ['tzf', tarball], tmp.dir), 'tar tzf').split('\n').filter(Boolean);
    for (const f of ['package/package.json', 'package/README.md', 'package/bin/sluice.js', 'package/dist/cli/main.js', 'package/dist/index.js', 'package/dist/index.d.ts', 'package/docs/config.md', 'package/dist/server/ui/index.html', 'package/dist/server/ui/app.js', 'package/dist/server/ui/style.css']) {
      assert.ok(files.includes(f), `${f} in the tarball`);
    }
    const stray = files.filter((f) => !/^package\/(package\.json|README\.md|LICENSE|bin\/|dist\/|docs\/)/.test(f));
    assert.deepEqual(stray, []);
    assert.deepEqual(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), []);
  });

  it('installs with production dependencies only: no tsx, no TypeScript, no sources', () => {
    const nm = join(app, 'node_modules');
    assert.ok(existsSync(join(nm, 'sluice/dist/cli/main.js')));
    assert.ok(existsSync(join(nm, 'pg')), 'pg installed');
    for (const dev of ['tsx', 'typescript', 'eslint', 'esbuild']) assert.ok(!existsSync(join(nm, dev)), `${dev} must not be installed`);
    assert.ok(!existsSync(join(nm, 'sluice/src')));
  });

  it('sluice --help and --version run from dist/', () => {
    const help = ok(sluice(app, '--help'), 'sluice --help');
    for (const cmd of ['run', 'validate', 'tail', 'status', 'schema']) assert.match(help, new RegExp(`\\n  ${cmd} `), cmd);
    const version = ok(sluice(app, '--version'), 'sluice --version').trim();
    assert.equal(version, JSON.parse(ok(run(NPM, ['pkg', 'get', 'version'], ROOT), 'npm pkg get version')));
  });

  it("the public entry loads in Node and type-checks in a user's TypeScript", () => {
    const js = ok(run(process.execPath, ['--input-type=module', '-e', `import * as s from 'sluice'; console.log(Object.keys(s).sort().join(','), new s.SluiceError('X', 'm').code)`], app), 'import sluice');
    assert.equal(js.trim(), 'Decimal,SluiceError X');
    writeFileSync(join(app, 'derive.ts'), `import { Decimal, SluiceError, type Deriver, type DerivedChange, type Doc, type DocumentStore } from 'sluice';
export const derivers: Deriver[] = [{
  collection: 'totals',
  affected: (c: DerivedChange) => (c.after?.id != null ? [c.after.id as number] : []),
  compute: async (key, source: DocumentStore): Promise<Doc | null> => ({ _id: key, n: await source.count('t'), total: new Decimal('1.50') }),
  allKeys: async () => [],
}];
// @ts-expect-error compute is missing: the types resolved (an \`any\` would accept this)
export const incomplete: Deriver = { collection: 'x', affected: () => [], allKeys: async () => [] };
export const isCoded = (e: unknown): boolean => e instanceof SluiceError && e.code.length > 0;
`);
    // Without @types/node and with skipLibCheck, so it takes a second, not five; the expected error
    // above proves the declarations resolved.
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['derive.ts'] }));
    ok(run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], app), 'tsc over a derive module importing sluice');
  });

  it('validates, runs a PostgreSQL snapshot into the log, and tails it: the rows equal the table', async () => {
    const db = await freshDatabase();
    try {
      await db.client.query(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, note text, qty bigint, active boolean);
        INSERT INTO items SELECT g, 'item ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'n' || (g * 3) END, g::bigint * 1000003, g % 2 = 0 FROM generate_series(1, 250) g`);
      const cfg = join(tmp.dir, 'pipeline.yaml');
      writeFileSync(cfg, pipelineYaml('pkg', db.name, tmp.dir, 'snapshot: initial_only'));
      assert.match(ok(sluice(app, 'validate', cfg), 'sluice validate'), /^OK: .*snapshot initial_only/);

      // `run` stops by itself once the snapshot is in the log (snapshot: initial_only).
      const child = spawn(process.execPath, [join(app, 'node_modules/.bin/sluice'), 'run', cfg], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      clearTimeout(timer);
      assert.equal(code, 0, `sluice run: ${stderr}`);

      const tail = ok(sluice(app, 'tail', 'pkg.public.items', '--log-dir', join(tmp.dir, 'log')), 'sluice tail');
      const events = tail.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      assert.ok(events.every((e) => (e.payload ?? e).op === 'r'), 'snapshot reads');
      const rows = events.map((e) => (e.payload ?? e).after).sort((a, b) => a.id - b.id);
      const expected = (await db.client.query(`SELECT coalesce(json_agg(row_to_json(i) ORDER BY id), '[]') AS rows FROM items i`)).rows[0].rows;
      assert.equal(rows.length, 250);
      assert.deepEqual(rows, expected);

      // The operations console ships as files beside the build: `sluice ui` serves them from dist/.
      const ui = spawn(process.execPath, [join(app, 'node_modules/.bin/sluice'), 'ui', '--config', cfg, '--port', '0'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        let out = '';
        ui.stdout.on('data', (d) => (out += d));
        ui.stderr.on('data', (d) => (out += d));
        const url = await new Promise<string>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`sluice ui did not say where it listens: ${out}`)), 15_000);
          ui.stdout.on('data', () => {
            const m = /console at (http:\/\/127\.0\.0\.1:\d+)\/ui\//.exec(out);
            if (!m) return;
            clearTimeout(t);
            resolve(m[1]);
          });
          ui.once('exit', (c) => {
            clearTimeout(t);
            reject(new Error(`sluice ui exited ${c}: ${out}`));
          });
        });
        for (const [path, type] of [['/ui/', /text\/html/], ['/ui/app.js', /javascript/], ['/ui/style.css', /text\/css/]] as const) {
          const r = await fetch(url + path);
          assert.equal(r.status, 200, path);
          assert.match(r.headers.get('content-type') ?? '', type, path);
          assert.ok((await r.text()).length > 100, path);
        }
        const status = await (await fetch(url + '/api/status')).json();
        assert.equal(status.pipeline, 'pkg');
      } finally {
        ui.kill('SIGINT');
        await new Promise((r) => (ui.exitCode !== null ? r(null) : ui.once('exit', r)));
      }
    } finally {
      await db.drop();
    }
  });

  it('without optional dependencies it starts, validates MongoDB and DuckDB sinks, and a run says which driver to install (and which package log.compression: lz4 needs)', async () => {
    const lean = installInto(join(tmp.dir, 'lean'), tarball, '--omit=optional');
    for (const pkg of ['mongodb', '@duckdb/node-api', 'lz4-napi', 'tsx']) assert.ok(!existsSync(join(lean, 'node_modules', pkg)), `${pkg} must not be installed`);
    ok(sluice(lean, '--help'), 'sluice --help');
    const db = await freshDatabase();
    try {
      await db.client.query(`CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)`);
      const sinks = {
        duckdb: `  - name: warehouse\n    type: duckdb\n    path: ${join(lean, 'w.duckdb')}\n`,
        mongodb: `  - name: odl\n    type: mongodb\n    connection: mongodb://127.0.0.1:27017\n    database: odl\n`,
      };
      const yaml = (name: string, which: (keyof typeof sinks)[]) => `${pipelineYaml(name, db.name, join(lean, name), 'snapshot: initial_only')}sinks:\n${which.map((w) => sinks[w]).join('')}`;
      const both = join(lean, 'both.yaml');
      writeFileSync(both, yaml('both', ['duckdb', 'mongodb']));
      assert.match(ok(sluice(lean, 'validate', both), 'sluice validate'), /^OK: .*warehouse → duckdb.*odl → mongodb/);
      for (const [sink, pkg] of [['duckdb', '@duckdb/node-api'], ['mongodb', 'mongodb']] as const) {
        const cfg = join(lean, `${sink}.yaml`);
        writeFileSync(cfg, yaml(sink, [sink]));
        // The pipeline ends (the source stops after its snapshot) with the coded error in its output.
        const r = run(process.execPath, [join(lean, 'node_modules/.bin/sluice'), 'run', cfg], lean, 30_000);
        const esc = pkg.replace(/[/.]/g, '\\$&');
        assert.match(r.stderr, new RegExp(`DRIVER_MISSING.*needs the npm package ${esc}: run npm install ${esc}`), `sluice run with a ${sink} sink (exit ${r.status}): ${r.stderr}`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
      // The default compression (auto) fell back to Brotli, built into Node, for the log those runs wrote.
      const segs = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? segs(join(d, e.name)) : e.name.endsWith('.seg') ? [join(d, e.name)] : []));
      const magics = new Set(segs(join(lean, 'duckdb', 'log')).map((f) => readFileSync(f).toString('latin1', 0, 4)).filter(Boolean));
      assert.ok(magics.has('SLBB') && !magics.has('SLB4'), `batch magics of the lean install's log: ${[...magics]}`);
      // LZ4 asked for explicitly needs its optional package.
      const lz4 = join(lean, 'lz4.yaml');
      writeFileSync(lz4, pipelineYaml('lz4', db.name, join(lean, 'lz4'), 'snapshot: initial_only').replace('  partitions: 3\n', '  partitions: 3\n  compression: lz4\n'));
      const r = run(process.execPath, [join(lean, 'node_modules/.bin/sluice'), 'run', lz4], lean, 30_000);
      assert.notEqual(r.status, 0, 'the run fails');
      assert.match(r.stderr, /LOG_CODEC_UNAVAILABLE.*log\.compression lz4 needs the npm package lz4-napi.*run npm install lz4-napi, or set log\.compression to brotli or none/, `sluice run with log.compression: lz4: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await db.drop();
    }
  });
});
