/**
 * Seed 004's platform as examples/travel-platform ships it: the simulator sends journeys,
 * bookings, clicks and logs over HTTP at 400 events/s (event time 60× the clock) while the pipeline
 * is killed with kill -9 once and started again; the simulator retries every request until it is
 * acknowledged. The example's own check then finds every acknowledged event once in its topic, the
 * seed's topic settings, and the compacted user and booking state topics and the closed 5-minute
 * windows equal to what the simulator's journal says.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { freePort, tempDir, waitUntil } from '../helpers/pipeline.ts';

function runTsx(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.once('exit', (code) => resolve({ code, out }));
  });
}

describe('examples/travel-platform', () => {
  it('every acknowledged event once, and the state topics and windows equal the journal, across a kill -9', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.remove());
    const port = await freePort();
    const env = { TRAVEL_DIR: tmp.dir, TRAVEL_PORT: String(port), TRAVEL_METRICS_PORT: String(await freePort()) };
    const cfg = join(process.cwd(), 'examples/travel-platform/pipeline.yaml');
    const up = async () => waitUntil('the gateway up', async () => (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)), 30_000);
    let child = startPipelineProcess(cfg, [], [], env);
    try {
      await up();
      const sim = runTsx('examples/travel-platform/simulate.ts', ['--seconds', '10', '--rate', '400', '--time-scale', '60'], env);
      await new Promise((r) => setTimeout(r, 4000));
      await stopProcess(child, 'SIGKILL');
      child = startPipelineProcess(cfg, [], [], env);
      await up();
      const s = await sim;
      assert.equal(s.code, 0, s.out);
      const acked = Number(/done: (\d+) events acknowledged/.exec(s.out)?.[1]);
      const retries = Number(/(\d+) retries; journal/.exec(s.out)?.[1]);
      assert.ok(acked > 2000, s.out);
      assert.ok(retries > 0, `the kill landed while the simulator was sending: ${s.out}`);
      const c = await runTsx('examples/travel-platform/check.ts', ['--wait', '60'], env);
      assert.equal(c.code, 0, c.out);
      assert.match(c.out, /check passed/);
      assert.match(c.out, /topic_processed_events: [1-9]\d* closed windows/);
    } finally {
      await stopProcess(child);
    }
  });
});
