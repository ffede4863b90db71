/**
 * The gateway through kill -9: clients send batches with idempotency keys and retry each batch
 * (same ids) until it is acknowledged, as a client of this API should; the pipeline process is
 * killed mid-load several times. Afterwards the log holds every acknowledged event exactly once and
 * nothing else twice: an acknowledgement meant durable, and a retry of a batch whose answer died
 * with the process was recognised (the ids were read back from the log at restart).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/index.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../../helpers/child.ts';
import { freePort, readAll, tempDir, waitUntil } from '../../helpers/pipeline.ts';

describe('HTTP event gateway through kill -9', () => {
  it('holds every acknowledged event exactly once after 4 kills under load, retries included', async () => {
    const tmp = tempDir();
    const port = await freePort();
    const path = join(tmp.dir, 'p.yaml');
    writeFileSync(
      path,
      `name: gwcrash
log: {backend: embedded, dir: ${tmp.dir}/log}
state: {dir: ${tmp.dir}/state}
ingest:
  port: ${port}
  routes:
    - {path: /events/batch, topic: topic_app_events, batch: true, key: user_id, idempotencyKey: event_id, partitions: 6}
`,
    );
    const cfg = parseConfig(readFileSync(path, 'utf8'), path, {});
    let child = startPipelineProcess(path);
    const acked = new Set<string>();
    const sent = new Set<string>();
    let retries = 0;
    let stop = false;
    let n = 0;
    const client = async (c: number) => {
      while (!stop) {
        const batch = Array.from({ length: 5 }, () => ({ event_id: `c${c}-${++n}`, user_id: `u${n % 11}`, event_type: 'click' }));
        for (const e of batch) sent.add(e.event_id);
        // The same batch until it is acknowledged: refused connections, resets and 503s are retried.
        for (let attempt = 0; ; attempt++) {
          const status = await fetch(`http://127.0.0.1:${port}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) })
            .then(async (r) => (await r.text(), r.status))
            .catch(() => 0);
          if (status === 200) break;
          if (attempt > 0 || status !== 0) retries++;
          await new Promise((r) => setTimeout(r, 30));
        }
        for (const e of batch) acked.add(e.event_id);
      }
    };
    const clients = Array.from({ length: 4 }, (_, c) => client(c));
    try {
      const r = await killRepeatedly(child, () => (child = startPipelineProcess(path)), { kills: 4, progress: async () => acked.size, what: 'events acknowledged' });
      child = r.child;
      const before = acked.size;
      await waitUntil('events acknowledged after the last restart', async () => acked.size > before + 50);
      stop = true;
      await Promise.all(clients);
      await stopProcess(child);
    } finally {
      stop = true;
      await stopProcess(child, 'SIGKILL');
    }
    const ids = (await readAll(cfg.log, 'topic_app_events')).map((r) => r.value.event_id as string);
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, c]) => c > 1);
    assert.deepEqual(twice, [], 'no event twice');
    for (const id of acked) assert.ok(counts.has(id), `acknowledged ${id} is missing`);
    for (const id of counts.keys()) assert.ok(sent.has(id), `${id} was never sent`);
    assert.ok(acked.size > 200, `load ran (${acked.size} acknowledged)`);
    assert.ok(retries > 0, 'the kills landed while clients were sending (some requests had to be retried)');
    tmp.remove();
  });
});
