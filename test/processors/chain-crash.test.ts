/**
 * A chain of processors (filter → map) under load through ten kill -9 of the pipeline process:
 * every change the workload committed that passes the filter is mapped exactly once, and every one
 * the map's expression fails on is in the dead-letter topic exactly once, none in both, none lost.
 * The truth is the workload's own record of what it committed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

describe('processor chain through kill -9', () => {
  const f = useDatabase(`CREATE TABLE ev (id int PRIMARY KEY, qty int NOT NULL, amount numeric(10,2) NOT NULL);`);

  it('maps each passing change once and dead-letters each failing one once, through ten kills', async () => {
    const cfgPath = join(f.tmp.dir, 'chain.yaml');
    writeFileSync(
      cfgPath,
      pipelineYaml(
        'kc',
        f.db.name,
        f.tmp.dir,
        '',
        `batch:\n  maxRecords: 100\n  maxDelayMs: 5\nprocessors:\n  - {name: even, type: filter, where: "after.id % 2 == 0"}\n  - name: priced\n    type: map\n    inputs: [even]\n    fields: {id: after.id, unit: "after.amount / after.qty"}\n    output: "priced.{table}"\n`,
      ),
    );
    // Insert-only workload: the ids it committed are the truth. Ids divisible by 13 have qty 0.
    const committed: number[] = [];
    let running = true;
    let next = 1;
    const workload = (async () => {
      while (running) {
        const ids = Array.from({ length: 1 + Math.floor(Math.random() * 20) }, () => next++);
        await f.db.client.query(`INSERT INTO ev SELECT g, CASE WHEN g % 13 = 0 THEN 0 ELSE 1 + g % 5 END, g * 1.5 FROM unnest($1::int[]) g`, [ids]);
        committed.push(...ids);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const logDir = join(f.tmp.dir, 'log');
    let child = startPipelineProcess(cfgPath);
    let kills: number;
    try {
      ({ child, kills } = await killRepeatedly(child, () => startPipelineProcess(cfgPath), { kills: 10, what: 'the chain writing', progress: async () => (await readAll(logDir, 'priced.')).length }));
    } finally {
      running = false;
      await workload;
    }
    assert.equal(kills, 10);
    const last = committed[committed.length - 1];
    const wantMapped = committed.filter((id) => id % 2 === 0 && id % 13 !== 0);
    const wantDead = committed.filter((id) => id % 2 === 0 && id % 13 === 0);
    try {
      await waitUntil('the chain caught up with the workload', async () => {
        const ids = new Set((await readAll(logDir, 'priced.')).map((r) => r.value.id));
        const dead = (await readAll(logDir, 'kc.dlq')).filter((r) => r.topic === 'kc.dlq').length;
        return ids.has(last % 2 === 0 && last % 13 !== 0 ? last : wantMapped[wantMapped.length - 1]) && dead >= wantDead.length;
      }, 120_000);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await stopProcess(child);
    }

    const mapped = (await readAll(logDir, 'priced.')).map((r) => r.value);
    const counts = new Map<number, number>();
    for (const m of mapped) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    assert.deepEqual(twice, [], 'no change mapped twice');
    assert.deepEqual([...counts.keys()].sort((a, b) => a - b), wantMapped, 'every passing change mapped');
    for (const m of mapped) assert.equal(m.unit, (m.id * 1.5) / (1 + (m.id % 5)), `id ${m.id}: amount / qty`);

    const dead = (await readAll(logDir, 'kc.dlq')).filter((r) => r.topic === 'kc.dlq');
    const deadIds = dead.map((d) => d.value.after.id).sort((a: number, b: number) => a - b);
    assert.deepEqual(deadIds, wantDead, 'every failing change dead-lettered once');
    for (const d of dead) {
      assert.equal(d.headers!['sluice.processor'], 'priced');
      assert.equal(d.headers!['sluice.error.code'], 'PROCESSOR_EXPR');
      assert.match(d.headers!['sluice.input.topic'], /^even\.kc\.public\.ev$/);
    }
  });
});
