/**
 * Seed 004's stream jobs as examples/clickstream ships them: the gateway writes app events and
 * clicks to the log in three rounds, and after each the pipeline runs with --drain (a batch run
 * to the end of the log), killed with kill -9 mid-run in the first two rounds and started again.
 * The DuckDB tables then equal what SQL over the gateway's events computes: every closed 5-minute
 * and 10-minute window and session once, late events in none.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { check } from '../../examples/clickstream/check.ts';
import { gateway } from '../../examples/clickstream/data.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { countRecords, tempDir } from '../helpers/pipeline.ts';

describe('examples/clickstream', () => {
  it('its DuckDB tables equal SQL over the events, after drains killed mid-run', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.remove());
    const env = { CLICKSTREAM_DIR: tmp.dir };
    const cfg = join(process.cwd(), 'examples/clickstream/pipeline.yaml');
    const drain = () =>
      new Promise<void>((resolve, reject) => {
        const c = spawn(process.execPath, ['bin/sluice.js', 'run', cfg, '--drain'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        c.stderr.on('data', (d) => (err += d));
        c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sluice run --drain exited ${code}:\n${err.slice(-3000)}`))));
      });
    let killsMidRun = 0;
    for (let round = 0; round < 3; round++) {
      await gateway(tmp.dir, { events: 15_000, seed: 11 });
      if (round < 2) {
        const child = startPipelineProcess(cfg, ['--drain'], [], env);
        // Kill it once the sessions window has committed some state, while it is still running.
        const stateTopic = 'clickstream.state.sessions';
        const logDir = join(tmp.dir, 'log');
        const before = await countRecords(logDir, stateTopic).catch(() => 0);
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && child.exitCode === null && (await countRecords(logDir, stateTopic).catch(() => 0)) <= before) await new Promise((r) => setTimeout(r, 20));
        if (child.exitCode === null) killsMidRun++;
        await stopProcess(child, 'SIGKILL');
      }
      await drain();
    }
    assert.equal(killsMidRun, 2, 'both kills landed while the pipeline was running');
    const r = await check(tmp.dir);
    assert.deepEqual(r.problems, []);
    assert.ok(r.rows.app_event_counts > 100 && r.rows.page_clicks > 50 && r.rows.sessions > 300, `windows to check: ${JSON.stringify(r.rows)}`);
  });
});
