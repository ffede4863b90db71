/**
 * `sluice run` waits for a log it cannot reach yet (src/engine/runner.ts retries a retriable open),
 * logging each attempt, and a stop while it waits ends the run at once with the last error.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { pipelineYaml, useDatabase } from '../helpers/pipeline.ts';
import { parseConfig } from '../../src/config/index.ts';

describe('a log that cannot be reached at start', () => {
  const f = useDatabase('CREATE TABLE t (id int PRIMARY KEY)');

  it('is retried with a logged warning naming the brokers, and a stop while waiting ends the run within a second', async () => {
    // A port nothing listens on: take one, then close it.
    const port = await new Promise<number>((r) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => r(p));
      });
    });
    const yaml = pipelineYaml('waitlog', f.db.name, f.tmp.dir).replace(/^log:\n(?: {2}.*\n)+/m, `log:\n  backend: kafka\n  brokers: ['127.0.0.1:${port}']\n  connectTimeout: 1s\n`);
    const cfg = parseConfig(yaml, 'test.yaml', process.env);
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({ write: (c, _e, cb) => (c.toString().split('\n').filter(Boolean).forEach((l: string) => lines.push(JSON.parse(l))), cb()) });
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'warn', format: 'json', stream }) });
    const deadline = Date.now() + 20_000;
    while (lines.filter((l) => l.msg === 'cannot open the log; retrying').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const warns = lines.filter((l) => l.msg === 'cannot open the log; retrying');
    assert.ok(warns.length >= 2, `two retried attempts logged (${JSON.stringify(lines)})`);
    assert.equal(warns[0].code, 'LOG_KAFKA_UNREACHABLE');
    assert.match(String(warns[0].error), new RegExp(`127\\.0\\.0\\.1:${port}`));
    const stoppedAt = Date.now();
    ac.abort();
    await assert.rejects(run, (e: { code?: string }) => e.code === 'LOG_KAFKA_UNREACHABLE');
    assert.ok(Date.now() - stoppedAt < 1500, `the stop ended the wait (${Date.now() - stoppedAt} ms)`);
  });
});
