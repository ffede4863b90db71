/**
 * Alerts end to end: a PostgreSQL-source pipeline whose sink's target table is locked, so the sink
 * really falls behind; a `lag` rule fires once (no repeats while it holds) after `for` at a real
 * HTTP receiver (generic JSON, retried after a 503) and a Slack-style one, and a resolve notice
 * follows once the lock goes and the sink catches up. The retained-WAL metric is checked against
 * SQL over pg_replication_slots while an open transaction pins the slot, and the binlog-files
 * metric of a MariaDB source against SHOW BINARY LOGS. `sluice alerts` shows the rules' state.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { adminClient, freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { freePort, pipelineYaml, tempDir, waitUntil } from '../helpers/pipeline.ts';
import { mysqlAdmin, mysqlPipelineYaml, useMysqlDatabase } from '../helpers/mysql.ts';

interface Received {
  path: string;
  body: any;
  at: number;
}

/** A webhook receiver on a free port: records every POST; the first `failFirst` requests get a 503. */
async function receiver(failFirst: number): Promise<{ port: number; got: Received[]; requests: number; close(): Promise<void> }> {
  const port = await freePort();
  const r = { port, got: [] as Received[], requests: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      if (r.requests <= failFirst) return void res.writeHead(503).end('busy');
      r.got.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')), at: Date.now() });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  r.close = () => new Promise<void>((ok) => server.close(() => ok()));
  return r;
}

const metric = (text: string, name: string): number | null => {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
};

describe('alerts', () => {
  let src: Awaited<ReturnType<typeof freshDatabase>>;
  let tgt: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  before(async () => {
    src = await freshDatabase();
    tgt = await freshDatabase();
    tmp = tempDir();
    await src.client.query(`CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t SELECT g, g FROM generate_series(1, 50) g; CREATE TABLE hold (id int); CREATE TABLE filler (id int, pad text)`);
  });
  after(async () => {
    await src?.drop();
    await tgt?.drop();
    tmp?.remove();
  });

  it('a lagging sink fires a lag alert once after `for`, then resolves; retained WAL is what the slot holds', async () => {
    const hook = await receiver(1);
    const slack = await receiver(0);
    const port = await freePort();
    const yaml = pipelineYaml(
      'alerts',
      src.name,
      tmp.dir,
      'tables: [public.t]\nretentionCheckIntervalMs: 300',
      `sinks:
  - name: wh
    type: postgres
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${tgt.name} }
server: { port: ${port} }
alerts:
  evaluateEvery: 250ms
  receivers:
    - { name: hook, type: webhook, url: "http://127.0.0.1:${hook.port}/hook/\${HOOK_SECRET}", headers: { X-Team: data } }
    - { name: chat, type: slack, url: "http://127.0.0.1:${slack.port}/services/T0/B0/secret" }
  rules:
    - { name: sink-lag, kind: lag, threshold: 2s, for: 2s, labels: { sink: wh }, severity: critical, receivers: [hook, chat] }
    - { name: wal, kind: retainedWal, threshold: 24MiB, receivers: [hook] }
`,
    );
    const file = join(tmp.dir, 'pipeline.yaml');
    writeFileSync(file, yaml);
    const env = { ...process.env, HOOK_SECRET: 's3cret' };
    const cfg = parseConfig(yaml, file, env);
    const statusOf = () => JSON.parse(readFileSync(join(tmp.dir, 'state', 'status.json'), 'utf8'));
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'error' }) });
    const locker = await adminClient(tgt.name);
    let holder: pg.Client | null = null;
    try {
      await waitUntil('the snapshot applied', async () => Number((await tgt.client.query('SELECT count(*) AS c FROM t')).rows[0].c) === 50, 20_000);
      await waitUntil('the sink caught up (lag 0)', async () => statusOf().sinks[0].lagSeconds === 0, 10_000);
      assert.equal(hook.got.length + slack.got.length, 0, 'nothing fires while the sink keeps up and the slot retains little');

      // The target table is locked: the sink's next batch waits on it.
      await locker.query('BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
      const committed = Date.now();
      await src.client.query('UPDATE t SET n = -n WHERE id <= 10');
      await waitUntil('the sink waits on the lock', async () => (await locker.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'sluice sink wh' AND wait_event_type = 'Lock'`)).rowCount === 1, 10_000);
      await waitUntil('the lag alert fired at both receivers', async () => hook.got.some((g) => g.body.rule === 'sink-lag') && slack.got.length > 0, 15_000);
      const fired = hook.got.find((g) => g.body.rule === 'sink-lag')!;
      assert.equal(fired.path, '/hook/s3cret');
      assert.equal(fired.body.status, 'firing');
      assert.equal(fired.body.severity, 'critical');
      assert.equal(fired.body.pipeline, 'alerts');
      assert.equal(fired.body.threshold, 2);
      assert.deepEqual(fired.body.labels, { pipeline: 'alerts', component: 'sink', sink: 'wh' });
      // The lag is the time since the source commit, and `for` held: active > 2 s after it, fired 2 s later.
      assert.ok(fired.body.value > 2 && fired.body.value <= (fired.at - committed) / 1000 + 0.5, `lag ${fired.body.value} s, ${(fired.at - committed) / 1000} s after the commit`);
      assert.ok(fired.at - committed >= 4000, `fired ${fired.at - committed} ms after the commit: the lag passes 2 s, then holds for 2 s`);
      assert.ok(Date.parse(fired.body.startsAt) - committed >= 1500, 'startsAt is when the lag passed the threshold');
      assert.ok(hook.requests >= 2, 'the first delivery got a 503 and was retried');
      assert.match(slack.got[0].body.text, /^:rotating_light: FIRING \[critical\] sink-lag \(pipeline alerts\): sink lag is \d+\.\d s, above 2\.0 s \(component=sink, sink=wh\)$/);
      assert.ok(Array.isArray(slack.got[0].body.blocks));

      // It keeps firing: no more notices (one per firing), and status and `sluice alerts` show it.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(hook.got.filter((g) => g.body.rule === 'sink-lag').length, 1);
      assert.equal(slack.got.length, 1);
      const rule = statusOf().alerts.rules.find((r: { name: string }) => r.name === 'sink-lag');
      assert.equal(rule.state, 'firing');
      assert.ok(rule.value > 4, `status shows the lag growing: ${rule.value}`);
      const cli = spawnSync(process.execPath, ['bin/sluice.js', 'alerts', '--config', file], { encoding: 'utf8', env });
      assert.equal(cli.status, 0, cli.stderr);
      assert.match(cli.stdout, /^ {2}sink-lag \[critical\] lag > 2\.0 s where sink=wh for 2s → hook, chat {2}FIRING since \S+, value \d+\.\d s, last notice \S+$/m);
      assert.match(cli.stdout, /^ {2}hook \(webhook\) http:\/\/127\.0\.0\.1:\d+\/… {2}1 sent, 0 failed, 0 dropped; last error \S+: HTTP 503$/m);
      assert.doesNotMatch(cli.stdout, /s3cret|secret/, 'URLs are shown without their paths');
      const st = spawnSync(process.execPath, ['bin/sluice.js', 'status', '--config', file], { encoding: 'utf8', env });
      assert.equal(st.status, 0, st.stderr);
      assert.match(st.stdout, /^ {2}source: phase stream, received \S+, confirmed \S+, slot retains \d+\.\d MiB of WAL(, |$)/m);
      assert.match(st.stdout, /^ {2}sink wh \(postgres\): running, .* \((\d+)\.\d s behind the source end to end\)$/m);

      // The lock goes: the sink applies the batch, its lag drops, and the alert resolves once.
      await locker.query('ROLLBACK');
      await waitUntil('the resolve notice', async () => hook.got.some((g) => g.body.rule === 'sink-lag' && g.body.status === 'resolved') && slack.got.length === 2, 10_000);
      assert.equal(Number((await tgt.client.query('SELECT count(*) AS c FROM t WHERE n < 0')).rows[0].c), 10, 'the sink applied the waiting changes');
      const resolved = hook.got.find((g) => g.body.rule === 'sink-lag' && g.body.status === 'resolved')!;
      assert.equal(resolved.body.startsAt, fired.body.startsAt);
      assert.ok(Date.parse(resolved.body.endsAt) >= Date.parse(fired.body.startsAt));
      assert.match(slack.got[1].body.text, /^:white_check_mark: RESOLVED \[critical\] sink-lag/);
      await new Promise((r) => setTimeout(r, 750));
      assert.deepEqual(hook.got.filter((g) => g.body.rule === 'sink-lag').map((g) => g.body.status), ['firing', 'resolved']);

      // An open transaction that wrote pins the slot's restart_lsn; the 30 MB of WAL after it are retained.
      holder = await adminClient(src.name);
      await holder.query('BEGIN; INSERT INTO hold VALUES (1)');
      await src.client.query(`INSERT INTO filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 30000) g`);
      const truth = async () => Number((await src.client.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS b FROM pg_replication_slots WHERE slot_name = $1`, [(cfg.source as { slot: string }).slot])).rows[0].b);
      const before = await truth();
      const beforeAt = Date.now();
      await waitUntil('a retention check started after the SQL look', async () => Date.parse(statusOf().source.retentionCheckedAt ?? 0) > beforeAt + 1000, 10_000);
      const exported = metric(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), 'sluice_source_retained_wal_bytes');
      const afterwards = await truth();
      assert.ok(before > 24 << 20, `the slot retains ${before} bytes`);
      assert.ok(exported !== null && exported >= before && exported <= afterwards, `metric ${exported} between what SQL said before (${before}) and after (${afterwards})`);
      await waitUntil('the retained-WAL alert fired', async () => hook.got.some((g) => g.body.rule === 'wal'), 5000);
      assert.ok(hook.got.find((g) => g.body.rule === 'wal')!.body.value >= before);
      assert.ok(statusOf().source.secondsSinceLastEvent['public.t'] >= 0, 'status shows the time since the table\'s last event');
    } finally {
      await holder?.query('ROLLBACK').catch(() => {});
      await holder?.end();
      await locker.query('ROLLBACK').catch(() => {});
      await locker.end();
      ac.abort();
      await run;
      await hook.close();
      await slack.close();
    }
  });
});

describe('binlog retention', () => {
  const f = useMysqlDatabase('CREATE TABLE b (id INT PRIMARY KEY, n INT); INSERT INTO b VALUES (1, 1)');
  it('the binlog files needed are those SHOW BINARY LOGS lists from the durable position on', async () => {
    const yaml = mysqlPipelineYaml('binlogs', f.name, f.tmp.dir, 'retentionCheckIntervalMs: 300');
    const cfg = parseConfig(yaml, 'test.yaml', process.env);
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'error' }) });
    const admin = await mysqlAdmin();
    try {
      const statusOf = () => JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
      await waitUntil('the source streams with a durable position', async () => statusOf().source?.phase === 'stream' && !!statusOf().source?.durablePosition, 20_000);
      const since = Date.now();
      await waitUntil('a binlog check after that', async () => Date.parse(statusOf().source.retentionCheckedAt ?? 0) > since + 1000, 10_000);
      const s = statusOf().source;
      const [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string; File_size: number }[]];
      const file = String(s.durablePosition).split(':')[0];
      const from = logs.findIndex((l) => l.Log_name === file);
      assert.ok(from >= 0, `${file} is on the server`);
      assert.equal(s.binlogFilesNeeded, logs.length - from, `files from ${file} on: ${logs.map((l) => l.Log_name).join(' ')}`);
      assert.ok(s.binlogBytesNeeded > 0 && s.binlogBytesNeeded <= logs.slice(from).reduce((n, l) => n + Number(l.File_size), 0));
    } finally {
      ac.abort();
      await run;
      await admin.end();
    }
  });
});
