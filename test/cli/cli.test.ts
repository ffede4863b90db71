/** The sluice command as a user runs it: help, validate, tail and status against a real log. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/embedded/index.ts';
import { tempDir } from '../helpers/pipeline.ts';

const sluice = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/sluice.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('sluice CLI', () => {
  it('has --help on every command and rejects unknown ones', () => {
    const top = sluice('--help');
    assert.equal(top.code, 0);
    for (const cmd of ['run', 'validate', 'tail', 'status', 'schema']) {
      assert.match(top.out, new RegExp(`\\n  ${cmd} `));
      const h = sluice(cmd, '--help');
      assert.equal(h.code, 0, cmd);
      assert.match(h.out, new RegExp(`^usage: sluice ${cmd}`), cmd);
    }
    const u = sluice('frobnicate');
    assert.equal(u.code, 2);
    assert.match(u.err, /unknown command 'frobnicate'/);
    assert.equal(sluice('tail').code, 2);
  });

  it('validate prints a summary, or the problems with line numbers and exit 1', () => {
    const t = tempDir();
    const good = join(t.dir, 'good.yaml');
    writeFileSync(good, 'name: shop\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1/shop\n  tables: [public.a, public.b]\n');
    const ok = sluice('validate', good);
    assert.equal(ok.code, 0);
    assert.equal(ok.out.trim(), `OK: ${good} (pipeline shop, source postgres postgres@127.0.0.1:5432/shop, 2 tables, slot sluice_shop, snapshot initial, log ./data/shop/log)`);
    const badPath = join(t.dir, 'bad.yaml');
    writeFileSync(badPath, 'name: shop\nsource:\n  type: mysql\n  connection: postgres://x/y\n');
    const bad = sluice('validate', badPath);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^error \[CONFIG_INVALID\]: invalid config \(1 problem\):\n {2}.*bad\.yaml:3:9: source\.type: must be one of "postgres" \(got "mysql"\)/);
    t.remove();
  });

  it('tail and status read a log written by another process', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir });
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
    const missing = sluice('tail', 'nope', '--log-dir', t.dir);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /error \[LOG_TOPIC_MISSING\]: topic nope does not exist/);
    t.remove();
  });
});
