/**
 * `sluice status --config` as an operator uses it: the log's topics and the pipeline's last
 * status next to the replication slot as the server sees it (active, confirmed LSN, WAL retained),
 * and the log still shown when the database cannot be reached.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { pipelineYaml, useDatabase } from '../helpers/pipeline.ts';

const sluice = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['bin/sluice.js', ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('sluice status --config', () => {
  const f = useDatabase('CREATE TABLE t (id int PRIMARY KEY)');

  it('shows the slot, the pipeline status and the topics', async () => {
    const slot = `st_${f.db.name.slice(-8)}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    const cfgPath = join(f.tmp.dir, 'p.yaml');
    writeFileSync(cfgPath, pipelineYaml('st', f.db.name, f.tmp.dir, `slot: ${slot}`));
    const logDir = join(f.tmp.dir, 'log');
    const log = await openLog(embeddedLogAt(logDir));
    await log.createTopic('st.public.t', { partitions: 1 });
    const { producer } = await log.openProducer('source:st');
    producer.append('st.public.t', { key: '{"id":1}', value: '{"op":"c"}', timestamp: 1 });
    await producer.commit('ck');
    await log.close();
    const updatedAt = new Date(Date.now() - 60_000).toISOString();
    mkdirSync(join(f.tmp.dir, 'state'), { recursive: true });
    writeFileSync(join(f.tmp.dir, 'state', 'status.json'), JSON.stringify({ pipeline: 'st', state: 'running', pid: 4242, source: { phase: 'stream', receivedLsn: '0/10', confirmedLsn: '0/10', snapshot: null }, updatedAt }));

    const none = sluice('status', '--config', cfgPath, '--json');
    assert.equal(none.code, 0, none.err);
    assert.deepEqual(JSON.parse(none.out).slot, { name: slot, exists: false });

    const { rows } = await f.db.client.query(`SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    try {
      const r = sluice('status', '--config', cfgPath, '--json');
      assert.equal(r.code, 0, r.err);
      const s = JSON.parse(r.out);
      assert.equal(s.log, logDir);
      assert.equal(s.slot.name, slot);
      assert.equal(s.slot.active, false);
      assert.equal(s.slot.confirmedFlushLsn, rows[0].lsn);
      assert.equal(typeof s.slot.retainedWalBytes, 'number');
      assert.ok(s.slot.retainedWalBytes >= 0);
      assert.equal(s.pipeline.state, 'running');
      assert.deepEqual(s.topics, [{ name: 'st.public.t', partitions: [{ partition: 0, start: 0, end: 1 }], records: 1 }]);

      const text = sluice('status', '--config', cfgPath);
      assert.equal(text.code, 0, text.err);
      assert.match(text.out, new RegExp(`^log ${logDir}: reachable, 1 topics\\npipeline st: running \\(pid 4242, updated ${updatedAt}; no update for \\d+s: is it still running\\?\\)\\n`));
      assert.match(text.out, /\n {2}source: phase stream, received 0\/10, confirmed 0\/10\n/);
      assert.match(text.out, new RegExp(`\\nslot ${slot}: inactive, confirmed ${rows[0].lsn.replace('/', '\\/')}, retains \\d+\\.\\d MiB of WAL\\n`));
      assert.match(text.out, /\ntopics:\n {2}st\.public\.t {2}1 records {2}p0=0\.\.1\n$/);
    } finally {
      await f.db.client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    }

    const away = join(f.tmp.dir, 'away.yaml');
    writeFileSync(away, `name: st\nsource:\n  type: postgres\n  connection: postgres://postgres@127.0.0.1:1/${f.db.name}\n  slot: ${slot}\nlog:\n  dir: ${logDir}\nstate:\n  dir: ${join(f.tmp.dir, 'state')}\n`);
    const down = sluice('status', '--config', away, '--json');
    assert.equal(down.code, 0, down.err);
    const d = JSON.parse(down.out);
    assert.equal(d.slot.name, slot);
    assert.match(d.slot.error, /cannot connect to PostgreSQL at 127\.0\.0\.1:1/);
    assert.equal(d.topics[0].records, 1, 'the log is still shown');
  });
});
