/**
 * Secrets in configs: a password substituted into a connection URL is percent-encoded (so one
 * holding `@ : /` stays the password and no piece of it lands in the host or the database), and
 * passwords are masked in config errors, log lines and the error a task reports to status.
 * Also: a config with several kinds of problems lists them all in one message, and two DuckDB
 * sinks on one file are refused by validation.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import type { PostgresSourceConfig } from '../../src/config/types.ts';
import { createLogger } from '../../src/core/logger.ts';
import { supervise, type TaskError } from '../../src/engine/supervisor.ts';

const PW = 'p@ss/w:rd';
/** Every piece of the password long enough to identify it. */
const pieces = (s: string, n = 4) => Array.from({ length: s.length - n + 1 }, (_, i) => s.slice(i, i + n));

function rejected(yaml: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(yaml, 'p.yaml', env);
  } catch (e) {
    return `${(e as { code?: string }).code}\n${(e as Error).message}`;
  }
  throw new Error('expected the config to be rejected');
}

function sluice(args: string[], env: NodeJS.ProcessEnv): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['bin/sluice.js', ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('secrets in the config', () => {
  it('percent-encodes a variable substituted into the user, password, database or parameters of a URL; host, port and a whole-URL variable stay as they are', () => {
    const env = { PW, U: 'app@corp', DB: 'shop/eu', HOST: 'db.internal', PORT: '6543', URL: 'postgres://x:y%40z@h2/d2' };
    const c = parseConfig(`name: s\nsource:\n  type: postgres\n  connection: postgres://\${U}:\${PW}@\${HOST}:\${PORT}/\${DB}\n`, 'p.yaml', env);
    assert.deepEqual((c.source as PostgresSourceConfig).connection, { host: 'db.internal', port: 6543, user: 'app@corp', password: PW, database: 'shop/eu' });
    const whole = parseConfig(`name: s\nsource:\n  type: postgres\n  connection: \${URL}\n`, 'p.yaml', env);
    assert.deepEqual((whole.source as PostgresSourceConfig).connection, { host: 'h2', port: 5432, user: 'x', password: 'y@z', database: 'd2' });
    // A default is substituted the same way; the mapping form takes the value as it is.
    const def = parseConfig(`name: s\nsource:\n  type: postgres\n  connection: postgres://u:\${NOPE:-a@b}@h/d\n`, 'p.yaml', {});
    assert.equal((def.source as PostgresSourceConfig).connection.password, 'a@b');
    const map = parseConfig(`name: s\nsource:\n  type: postgres\n  connection:\n    database: d\n    password: \${PW}\n`, 'p.yaml', env);
    assert.equal((map.source as PostgresSourceConfig).connection.password, PW);
    // MongoDB URLs too.
    const mongo = parseConfig(`name: s\nsource:\n  type: postgres\n  connection: {database: d}\nsinks:\n  - name: m\n    type: mongodb\n    connection: mongodb://app:\${PW}@mongo.local:27017/ods\n`, 'p.yaml', env);
    assert.equal((mongo.sinks[0] as { connection: string }).connection, `mongodb://app:${encodeURIComponent(PW)}@mongo.local:27017/ods`);
  });

  it('sluice validate with PW=p@ss/w:rd in a URL: OK, the right host and database, and no piece of the password in its output', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
    try {
      const cfg = join(dir, 'p.yaml');
      writeFileSync(cfg, 'name: s\nsource:\n  type: postgres\n  connection: postgres://app:${PW}@db.example.com:5432/shop\nsinks:\n  - name: w\n    type: postgres\n    connection: postgres://app:${PW}@wh.example.com/dw\n');
      const r = sluice(['validate', cfg], { PW });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /source postgres app@db\.example\.com:5432\/shop/);
      assert.match(r.out, /postgres app@wh\.example\.com:5432\/dw/);
      for (const p of pieces(PW)) assert.ok(!r.out.includes(p), `"${p}" of the password in: ${r.out}`);
      // An invalid config that holds it: the error shows no piece of it either.
      writeFileSync(cfg, 'name: s\nsource:\n  type: postgres\n  connection: postgres://app:${PW}@db.example.com:5432\n  protocol: 7\n');
      const bad = sluice(['validate', cfg], { PW });
      assert.equal(bad.code, 1);
      assert.match(bad.out, /CONFIG_INVALID/);
      assert.match(bad.out, /the URL names no database/);
      for (const p of pieces(PW)) assert.ok(!bad.out.includes(p), `"${p}" of the password in: ${bad.out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('masks the password of a malformed URL, of an unparseable one, and a password of the wrong type in config errors', () => {
    const m1 = rejected('name: x\nsource:\n  type: postgres\n  connection: postgres//user:hunter2@host/db\n');
    assert.match(m1, /^CONFIG_INVALID\n/);
    assert.match(m1, /source\.connection: must be a URL postgres:\/\/user:password@host:port\/database/);
    assert.match(m1, /got "postgres\/\/user:\*\*\*@host\/db"/);
    assert.doesNotMatch(m1, /hunter2/);
    const m2 = rejected('name: x\nsource:\n  type: postgres\n  connection: postgres://u:hunter2@db:99999/shop\n');
    assert.doesNotMatch(m2, /hunter2/);
    const m3 = rejected('name: x\nsource:\n  type: postgres\n  connection:\n    database: d\n    password: 123456789\n');
    assert.match(m3, /source\.connection\.password: must be a string/);
    assert.doesNotMatch(m3, /123456789/);
    const m4 = rejected('name: x\nsource:\n  type: postgres\n  connection: postgres://u:${PW}@h:notaport/d\n', { PW });
    for (const p of pieces(PW)) assert.ok(!m4.includes(p) && !m4.includes(encodeURIComponent(p)), `"${p}" in: ${m4}`);
    for (const p of pieces(encodeURIComponent(PW))) assert.ok(!m4.includes(p), `"${p}" (encoded) in: ${m4}`);
  });

  it('masks known passwords and URL credentials in log lines, text and JSON', () => {
    parseConfig('name: s\nsource:\n  type: postgres\n  connection: postgres://app:${PW}@db/shop\n', 'p.yaml', { PW: 'Tr0ub4dor&3' });
    for (const format of ['text', 'json'] as const) {
      let out = '';
      const stream = new Writable({ write: (c, _e, cb) => ((out += c.toString()), cb()) });
      const log = createLogger({ format, stream });
      log.warn('could not connect with Tr0ub4dor&3', { url: 'mysql://root:s3cret!@10.0.0.1/db', error: new Error('auth failed for postgres://app:Tr0ub4dor%263@db/shop') });
      assert.doesNotMatch(out, /Tr0ub4dor|s3cret/, out);
      assert.match(out, /mysql:\/\/root:\*\*\*@10\.0\.0\.1\/db/);
      assert.match(out, /postgres:\/\/app:\*\*\*@db\/shop/);
    }
  });

  it('masks passwords in the error a failed task reports (status.json and /status show it)', async () => {
    let reported: TaskError | null = null;
    await assert.rejects(
      supervise({ name: 'sink w', logger: createLogger({ level: 'error', stream: new Writable({ write: (_c, _e, cb) => cb() }) }), signal: new AbortController().signal, onState: (_s, e) => e && (reported = e) }, async () => {
        throw Object.assign(new Error('MongoServerSelectionError for mongodb://app:hunter22@mongo:27017/ods'), { code: 'X' });
      }),
    );
    assert.ok(reported);
    assert.equal((reported as TaskError).message, 'MongoServerSelectionError for mongodb://app:***@mongo:27017/ods');
  });
});

describe('config problems all at once', () => {
  it('lists problems of every kind (YAML types, units, unknown keys, enums, URLs, missing keys) in one message', () => {
    const m = rejected(
      [
        'name: x',
        'source:',
        '  type: postgres',
        '  connection: postgres://u@h',
        '  protocol: 5',
        '  heartbeatIntervalMs: soon',
        '  slto: a',
        'log:',
        '  partitions: many',
        '  segmentBytes: 3 furlongs',
        'batch:',
        '  maxRecords: -1',
        'sinks:',
        '  - type: postgres',
        '    connection: {database: d, port: "x"}',
      ].join('\n') + '\n',
    );
    const lines = m.split('\n').slice(2).map((l) => l.trim());
    const want = [
      /^p\.yaml:4:15: source\.connection: the URL names no database/,
      /^p\.yaml:5:13: source\.protocol: must be 1 or 2 \(got 5\)/,
      /^p\.yaml:6:24: source\.heartbeatIntervalMs: must be a duration/,
      /^p\.yaml:7:3: source\.slto: unknown key \(did you mean 'slot'\?\)/,
      /^p\.yaml:9:15: log\.partitions: must be an integer \(got "many"\)/,
      /^p\.yaml:10:17: log\.segmentBytes: must be a size/,
      /^p\.yaml:12:15: batch\.maxRecords: must be >= 1/,
      /^p\.yaml:14:5: sinks\.0: missing required key 'name'/,
      /^p\.yaml:15:37: sinks\.0\.connection\.port: must be an integer \(got "x"\)/,
    ];
    assert.equal(lines.length, want.length, m);
    want.forEach((re, i) => assert.match(lines[i], re, m));
    assert.match(m, /invalid config \(9 problems\)/);
  });

  it('refuses two DuckDB sinks on one file at validation', () => {
    const m = rejected('name: x\nsource:\n  type: postgres\n  connection: {database: d}\nsinks:\n  - name: a\n    type: duckdb\n    path: ./w.duckdb\n  - name: b\n    type: duckdb\n    path: ./sub/../w.duckdb\n');
    assert.match(m, /^CONFIG_INVALID\n/);
    assert.match(m, /p\.yaml:9:5: sinks\.1: sinks "a" and "b" both write the duckdb file .*\/w\.duckdb; give each sink its own target/);
    // Different files are fine.
    parseConfig('name: x\nsource:\n  type: postgres\n  connection: {database: d}\nsinks:\n  - name: a\n    type: duckdb\n    path: ./w1.duckdb\n  - name: b\n    type: duckdb\n    path: ./w2.duckdb\n', 'p.yaml', {});
  });
});
