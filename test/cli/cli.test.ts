/** The sluice command as a user runs it: help, validate, tail and status against a real log. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';

// Not test/helpers/pipeline.ts's tempDir: that module brings the PostgreSQL helper, and this file
// is in the unit lane (no services).
function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const sluice = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/sluice.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('sluice CLI', () => {
  it('has --help on every command and rejects unknown ones', () => {
    const top = sluice('--help');
    assert.equal(top.code, 0);
    for (const cmd of ['run', 'validate', 'tail', 'status', 'schema', 'dlq', 'lake', 'registry', 'reconcile', 'schedules', 'alerts', 'ui', 'snapshot']) {
      assert.match(top.out, new RegExp(`\\n  ${cmd} `));
      const h = sluice(cmd, '--help');
      assert.equal(h.code, 0, cmd);
      assert.match(h.out, new RegExp(`^usage: sluice ${cmd}`), cmd);
    }
    const u = sluice('frobnicate');
    assert.equal(u.code, 2);
    assert.match(u.err, /unknown command 'frobnicate'/);
    assert.equal(sluice('tail').code, 2);
    const d = sluice('dlq', 'purge');
    assert.equal(d.code, 2);
    assert.match(d.err, /unknown action purge: use list or replay/);
    const l = sluice('lake', 'files', '/nonexistent/table', '--version', 'x');
    assert.equal(l.code, 2);
    assert.match(l.err, /--version takes a version number \(0, 1, …\), not "x"/);
    const n = sluice('lake', 'files', '/nonexistent/table');
    assert.equal(n.code, 1);
    assert.match(n.err, /\/nonexistent\/table holds no Delta table \(no _delta_log commits\)/);
  });

  it('help <command>, --version, and usage errors exit 2 with a hint', () => {
    const h = sluice('help', 'tail');
    assert.equal(h.code, 0);
    assert.equal(h.out, sluice('tail', '--help').out);
    assert.match(h.out, /\nexamples?:\n {2}sluice tail /);
    for (const cmd of ['run', 'validate', 'status', 'schema']) assert.match(sluice('help', cmd).out, /\n(options|example)/, cmd);
    const v = sluice('--version');
    assert.equal(v.code, 0);
    assert.match(v.out, /^\d+\.\d+\.\d+\n$/);
    const none = sluice();
    assert.equal(none.code, 2);
    assert.match(none.err, /^sluice .*\n\nusage: sluice <command>/);
    const hu = sluice('help', 'frobnicate');
    assert.equal(hu.code, 2);
    assert.match(hu.err, /unknown command 'frobnicate'/);
    const opt = sluice('validate', 'x.yaml', '--strict');
    assert.equal(opt.code, 2);
    assert.match(opt.err, /^sluice validate: Unknown option '--strict'.*\n\nusage: sluice validate/);
    const fmt = sluice('run', 'x.yaml', '--log-format', 'xml');
    assert.equal(fmt.code, 2);
    assert.match(fmt.err, /^sluice run: --log-format must be text or json, not xml\n/);
    const only = sluice('run', 'x.yaml', '--only', 'sinks,workers');
    assert.equal(only.code, 2);
    assert.match(only.err, /^sluice run: --only takes source, processors, sinks \(comma-separated\), not "workers"\n/);
    const two = sluice('validate', 'a.yaml', 'b.yaml');
    assert.equal(two.code, 2);
    assert.match(two.err, /expected exactly one config file/);
    const missing = sluice('validate', 'no/such.yaml');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^error \[CONFIG_INVALID\]: cannot read config no\/such\.yaml: ENOENT/);
  });

  it('the shipped example validates, with its environment defaults or overrides', () => {
    const r = spawnSync(process.execPath, ['bin/sluice.js', 'validate', 'examples/postgres-to-log.yaml'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, PGDATABASE: 'shop', PGPORT: '6543' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'OK: examples/postgres-to-log.yaml (pipeline shop, source postgres postgres@127.0.0.1:6543/shop, all tables, slot sluice_shop, snapshot initial, log ./data/shop/log)\n');
  });

  it('the sinks example validates and lists its sinks', () => {
    const r = spawnSync(process.execPath, ['bin/sluice.js', 'validate', 'examples/postgres-to-sinks.yaml'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, PGDATABASE: 'shop', MYSQL_HOST: 'db.internal' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /, sinks replica → postgres postgres@127\.0\.0\.1:5432\/shop_replica, mysql → mysql root@db\.internal:3306\/shop, warehouse → duckdb \.\/data\/shop\/warehouse\.duckdb\)\n$/);
  });

  it('schema prints the JSON Schema the config is validated against', () => {
    const r = sluice('schema');
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.out);
    assert.equal(schema.title, 'Sluice pipeline');
    assert.deepEqual(schema.required, ['name']); // a pipeline without a source runs its sinks over named topics
    // Each source type has its own keys: the postgres branch has slot, the mysql branch serverId.
    const branch = (t: string) => schema.properties.source.allOf.find((b: any) => b.if.properties.type.const === t).then.properties;
    assert.ok(branch('postgres').tables && branch('postgres').slot);
    assert.ok(branch('mysql').tables && branch('mysql').serverId && !branch('mysql').slot);
  });

  it('validate prints a summary, or the problems with line numbers and exit 1', () => {
    const t = tempDir();
    const good = join(t.dir, 'good.yaml');
    writeFileSync(good, 'name: shop\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1/shop\n  tables: [public.a, public.b]\n');
    const ok = sluice('validate', good);
    assert.equal(ok.code, 0);
    assert.equal(ok.out.trim(), `OK: ${good} (pipeline shop, source postgres postgres@127.0.0.1:5432/shop, 2 tables, slot sluice_shop, snapshot initial, log ./data/shop/log)`);
    const badPath = join(t.dir, 'bad.yaml');
    writeFileSync(badPath, 'name: shop\nsource:\n  type: mssql\n  connection: postgres://x/y\n');
    const bad = sluice('validate', badPath);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^error \[CONFIG_INVALID\]: invalid config \(1 problem\):\n {2}.*bad\.yaml:3:9: source\.type: must be one of "postgres", "mysql", "mongodb" or "couchdb" \(got "mssql"; did you mean "mysql"\?\)/);
    t.remove();
  });

  it('tail and status read a log written by another process', async () => {
    const t = tempDir();
    const log = await openLog(embeddedLogAt(t.dir));
    await log.createTopic('shop.public.orders', { partitions: 2 });
    const { producer } = await log.openProducer('p');
    for (let i = 0; i < 5; i++) producer.append('shop.public.orders', { key: Buffer.from(`{"id":${i}}`), value: Buffer.from(`{"n":${i}}`), timestamp: 1 }, i % 2);
    await producer.commit('c');
    await log.close();
    const all = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--partition', '0');
    assert.equal(all.code, 0, all.err);
    assert.deepEqual(all.out.trim().split('\n'), ['{"n":0}', '{"n":2}', '{"n":4}']);
    const kv = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--from', '1:1', '--format', 'key-value');
    assert.equal(kv.out.trim(), '{"id":3}\t{"n":3}');
    const g1 = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--group', 'audit', '--max', '3');
    assert.equal(g1.out.trim().split('\n').length, 3);
    const g2 = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--group', 'audit');
    assert.equal(g2.out.trim().split('\n').length, 2, 'the group resumes after what it already read');
    const st = sluice('status', '--log-dir', t.dir, '--json');
    assert.equal(st.code, 0, st.err);
    const s = JSON.parse(st.out);
    assert.equal(s.topics[0].name, 'shop.public.orders');
    assert.equal(s.topics[0].records, 5);
    assert.deepEqual(s.groups, [{ group: 'audit', lag: { 'shop.public.orders': 0 } }]);
    const js = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--from', '0:1', '--max', '1', '--format', 'json');
    assert.deepEqual(JSON.parse(js.out), { topic: 'shop.public.orders', partition: 0, offset: 1, timestamp: 1, key: { id: 2 }, value: { n: 2 } });
    const latest = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--from', 'latest');
    assert.equal(latest.code, 0);
    assert.equal(latest.out, '');
    const text = sluice('status', '--log-dir', t.dir);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /\ntopics:\n {2}shop\.public\.orders {2}5 records {2}p0=0\.\.3 p1=0\.\.2\nconsumer groups:\n {2}audit {2}lag \{"shop\.public\.orders":0\}\n$/);
    // A closed pipe (`| head -1`) ends tail quietly.
    const piped = spawnSync('sh', ['-c', `"${process.execPath}" bin/sluice.js tail shop.public.orders --log-dir "${t.dir}" | head -1`], { encoding: 'utf8' });
    assert.equal(piped.stdout, '{"n":0}\n');
    assert.equal(piped.stderr, '');
    const badFrom = sluice('tail', 'shop.public.orders', '--log-dir', t.dir, '--from', 'yesterday');
    assert.equal(badFrom.code, 2);
    assert.match(badFrom.err, /--from must be earliest, latest, <offset> or <partition>:<offset>, not yesterday/);
    assert.equal(sluice('tail', 'shop.public.orders').code, 2, 'no --config or --log-dir');
    const noLog = sluice('status', '--log-dir', join(t.dir, 'none'));
    assert.equal(noLog.code, 1);
    assert.match(noLog.err, /^error \[LOG_MISSING\]: no log at .*none: run the pipeline first/);
    // --follow waits for records committed after it started, by another process's writer. When it
    // has read `latest` is not observable, so the writer commits a pair (one record per partition)
    // every 300 ms until it exits: whatever pair it started before, it prints two of the new
    // records and none of the five old ones.
    const follower = spawn(process.execPath, ['bin/sluice.js', 'tail', 'shop.public.orders', '--log-dir', t.dir, '--from', 'latest', '-f', '--max', '2', '--format', 'key-value'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follower.stdout.on('data', (d) => (followed += d));
    let exited = false;
    const followerExit = new Promise<number | null>((r) => follower.once('exit', (c) => ((exited = true), r(c))));
    const writer = await openLog(embeddedLogAt(t.dir));
    const written: string[] = [];
    try {
      const { producer: p2 } = await writer.openProducer('p');
      for (let round = 0, deadline = Date.now() + 60_000; !exited && Date.now() < deadline; round++) {
        await new Promise((r) => setTimeout(r, 300));
        for (const partition of [0, 1]) {
          const id = 10 + 2 * round + partition;
          p2.append('shop.public.orders', { key: `{"id":${id}}`, value: `{"n":${id}}`, timestamp: 2 }, partition);
          written.push(`{"id":${id}}\t{"n":${id}}`);
        }
        await p2.commit(`c${round + 2}`);
      }
    } finally {
      await writer.close();
      if (!exited) follower.kill();
    }
    assert.equal(await followerExit, 0, `the follower did not stop after 2 records within 60 s; it printed: ${followed}`);
    const lines = followed.trim().split('\n');
    assert.equal(lines.length, 2, followed);
    for (const l of lines) assert.ok(written.includes(l), `printed ${l}, which is not a record committed after it started`);
    const missing = sluice('tail', 'nope', '--log-dir', t.dir);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /error \[LOG_TOPIC_MISSING\]: topic nope does not exist/);
    t.remove();
  });
});
