/**
 * `sluice run` as an operator sees it: JSON logs on stderr, snapshot progress, the HTTP endpoint
 * (/health, /metrics, /status), and a clean stop on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

describe('sluice run', () => {
  const f = useDatabase(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g`);

  it('logs JSON lines, serves health, metrics and status, and stops cleanly on SIGTERM', async () => {
    const cfgPath = join(f.tmp.dir, 'p.yaml');
    writeFileSync(cfgPath, pipelineYaml('ops', f.db.name, f.tmp.dir, '', 'server:\n  port: 0\n').replace('level: warn', 'level: info'));
    const child = spawn(process.execPath, ['bin/sluice.js', 'run', cfgPath, '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const lines = () => stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    try {
      await waitUntil('streaming to start', async () => {
        if (child.exitCode !== null) throw new Error(`sluice run exited: ${stderr}`);
        return lines().some((l) => l.msg === 'streaming changes');
      });
      for (const l of lines()) {
        assert.equal(typeof l.ts, 'string');
        assert.ok(['debug', 'info', 'warn', 'error'].includes(l.level));
        assert.equal(l.pipeline, 'ops');
      }
      assert.ok(lines().some((l) => l.msg === 'snapshot: table done' && l.table === 'public.t' && l.rows === 1000));
      const url = lines().find((l) => l.msg === 'http server listening').url as string;
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 200);
      await f.db.client.query(`INSERT INTO t VALUES (5000, 'new')`);
      await waitUntil('metrics to count the new event', async () => {
        const m = await (await fetch(`${url}/metrics`)).text();
        const v = /sluice_events_out_total\{pipeline="ops",component="source"\} (\d+)/.exec(m);
        return v !== null && Number(v[1]) >= 1001;
      });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /# TYPE sluice_batch_latency_seconds histogram/);
      assert.match(metrics, /sluice_lag_ms\{pipeline="ops",component="source"\} \d+/);
      const status = await (await fetch(`${url}/status`)).json();
      assert.equal(status.source.phase, 'stream');
      assert.match(status.source.confirmedLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.equal((await fetch(`${url}/nope`)).status, 404);
    } finally {
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, `clean exit expected: ${stderr.slice(-500)}`);
    }
    assert.ok(lines().some((l) => l.msg === 'pipeline stopped'));
  });
});
