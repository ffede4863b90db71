/**
 * The processing graph in a running PostgreSQL pipeline: processors chained by name (a module
 * processor reading the source, a second reading the first), records a module throws on set aside
 * in the dead-letter topic with where they came from, the rest going on, and `sluice dlq replay`
 * handing them back to the processor after a fix, each taken exactly once. Also what `sluice
 * validate` says of a graph: the graph itself, cycles, unknown inputs with their line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { openLog } from '../../src/log/open.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const sluice = (...args: string[]) => spawnSync(process.execPath, ['bin/sluice.js', ...args], { encoding: 'utf8' });

const ENRICH = `
export default function enrich(rec, ctx) {
  const v = rec.value;
  if (!v || !v.after) return null;
  if (v.after.note === 'bad' && !ctx.options.acceptBad) throw new Error('note is bad for id ' + v.after.id);
  return { value: { id: v.after.id, customer: v.after.customer, cents: Math.round(Number(v.after.amount) * 100), op: v.op } };
}
`;
const FLAG = `
export function flag(rec) {
  return { key: rec.value.customer, value: { id: rec.value.id, big: rec.value.cents > 5000 } };
}
`;

describe('processor graph: chains, dead letters and replay', () => {
  const f = useDatabase(`
    CREATE TABLE payments (id int PRIMARY KEY, customer int NOT NULL, amount numeric(10,2) NOT NULL, note text);
    INSERT INTO payments SELECT g, g % 17, (g * 7 % 100) + 0.25, CASE WHEN g IN (7, 70, 150) THEN 'bad' ELSE 'ok' END FROM generate_series(1, 200) g;
  `);

  it('chains processors by name, dead-letters what a module throws on, and replays it after a fix', async () => {
    writeFileSync(join(f.tmp.dir, 'enrich.mjs'), ENRICH);
    writeFileSync(join(f.tmp.dir, 'flag.mjs'), FLAG);
    const yaml = (acceptBad: boolean) =>
      pipelineYaml(
        'chain',
        f.db.name,
        f.tmp.dir,
        '',
        `batch:\n  maxDelayMs: 5\nprocessors:\n  - {name: enrich, type: module, module: ./enrich.mjs, options: {acceptBad: ${acceptBad}}, output: "enriched.{table}"}\n  - {name: flagged, type: module, module: ./flag.mjs, export: flag, inputs: [enrich], output: "flagged.{table}"}\n`,
      );
    const cfgPath = join(f.tmp.dir, 'chain.yaml');
    writeFileSync(cfgPath, yaml(false));

    const v = sluice('validate', cfgPath);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /graph:\n {2}source source \[postgres\] → chain\.<schema>\.<table> \(change events\)\n {2}processor enrich \[module\] ← source → enriched\.\{table\} \(events\)\n {2}processor flagged \[module\] ← enrich → flagged\.\{table\} \(events\)/);

    // First run: snapshot, then updates while streaming.
    const run1 = async () => {
      const cfg = parseConfig(yaml(false), cfgPath, {});
      const ac = new AbortController();
      const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
      try {
        await waitUntil('the snapshot through both processors', async () => (await readAll(cfg.log, 'flagged.')).length >= 197, 60_000);
        await f.db.client.query(`UPDATE payments SET amount = amount + 60 WHERE id BETWEEN 11 AND 60`);
        await waitUntil('the updates through both processors', async () => (await readAll(cfg.log, 'flagged.')).length >= 247, 60_000);
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        ac.abort();
        await run;
      }
      return cfg;
    };
    const cfg = await run1();

    // The three bad rows went to the dead-letter topic, with the input record's topic, partition and
    // offset: the records there are those rows' changes (read from the source topic, not from the processor).
    const dead = (await readAll(cfg.log, 'chain.dlq')).filter((r) => r.topic === 'chain.dlq');
    assert.equal(dead.length, 3, 'one dead letter per bad row');
    const log = await openLog(cfg.log, { readOnly: true });
    try {
      const ids: number[] = [];
      for (const d of dead) {
        assert.equal(d.headers!['sluice.processor'], 'enrich');
        assert.equal(d.headers!['sluice.input.topic'], 'chain.public.payments');
        const { records } = await log.read('chain.public.payments', Number(d.headers!['sluice.input.partition']), Number(d.headers!['sluice.input.offset']), 1);
        const input = JSON.parse(records[0].value!.toString());
        assert.equal(input.after.note, 'bad');
        assert.match(d.headers!['sluice.error.message'], new RegExp(`note is bad for id ${input.after.id}$`));
        ids.push(input.after.id);
      }
      assert.deepEqual(ids.sort((a, b) => a - b), [7, 70, 150]);
    } finally {
      await log.close();
    }

    // Every good change went through both processors once, and the second read the first's output.
    const enriched = (await readAll(cfg.log, 'enriched.')).map((r) => r.value);
    assert.equal(enriched.length, 247);
    const flagged = await readAll(cfg.log, 'flagged.');
    assert.equal(flagged.length, 247);
    const truth = new Map((await f.db.client.query(`SELECT id, customer, (amount * 100)::int AS cents FROM payments`)).rows.map((r) => [r.id, r]));
    const last = new Map<number, { cents: number }>();
    for (const e of enriched) last.set(e.id, e);
    for (const [id, row] of truth) if (![7, 70, 150].includes(id)) assert.equal(last.get(id)?.cents, row.cents, `id ${id}: enriched cents equal the table's`);
    for (const r of flagged) assert.equal(r.key, truth.get(r.value.id).customer, 'the second processor keyed by customer');

    // list, then replay after the fix: each dead letter goes back once.
    const list = sluice('dlq', 'list', '--config', cfgPath);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /processor enrich\tchain\.public\.payments\/\d\/\d+\tFAILED: note is bad for id 7\n/);
    assert.match(list.stdout, /3 dead letter\(s\) in chain\.dlq\n$/);
    writeFileSync(cfgPath, yaml(true));
    const replay = sluice('dlq', 'replay', '--config', cfgPath);
    assert.equal(replay.status, 0, replay.stderr);
    assert.match(replay.stdout, /replayed 3 dead letter\(s\) \(enrich: 3\)/);
    assert.match(sluice('dlq', 'replay', '--config', cfgPath).stdout, /replayed 0 dead letter\(s\)/, 'a second replay replays nothing');

    const cfg2 = parseConfig(yaml(true), cfgPath, {});
    const ac = new AbortController();
    const run = runPipeline(cfg2, { signal: ac.signal, logger: quietLogger() });
    try {
      await waitUntil('the replayed records through both processors', async () => (await readAll(cfg2.log, 'flagged.')).length >= 250, 60_000);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      ac.abort();
      await run;
    }
    const after = (await readAll(cfg2.log, 'enriched.')).map((r) => r.value);
    assert.equal(after.length, 250, 'the three replayed, nothing else again');
    for (const id of [7, 70, 150]) {
      const got = after.filter((e) => e.id === id);
      assert.equal(got.length, 1, `id ${id} once`);
      assert.equal(got[0].cents, truth.get(id).cents);
      assert.equal(got[0].op, 'r', 'the replayed record is the snapshot read it was');
    }
    assert.equal((await readAll(cfg2.log, 'flagged.')).length, 250);
  });

  it('stops a processor with onError: stop at the record, naming it', async () => {
    writeFileSync(join(f.tmp.dir, 'enrich.mjs'), ENRICH);
    const cfg = parseConfig(pipelineYaml('stopper', f.db.name, f.tmp.dir + '/stop', 'snapshot: initial_only', `processors:\n  - {name: enrich, type: module, module: ${join(f.tmp.dir, 'enrich.mjs')}, onError: stop}\n`), 'p.yaml', {});
    await assert.rejects(runPipeline(cfg, { logger: quietLogger() }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ENGINE_TASK_FAILED');
      assert.match(e.message, /processor enrich .*\[PROCESSOR_RECORD\] processor enrich cannot transform the record at stopper\.public\.payments\/\d\/\d+: note is bad for id 7\. Fix the cause/);
      return true;
    });
  });

  it('validate refuses cycles and unknown inputs, pointing at the line', () => {
    const path = join(f.tmp.dir, 'bad.yaml');
    const procs = (a: string, b: string) => `processors:\n  - {name: a, type: module, module: ./enrich.mjs, inputs: [${a}]}\n  - {name: b, type: module, module: ./enrich.mjs, inputs: [${b}]}\n`;
    writeFileSync(join(f.tmp.dir, 'enrich.mjs'), ENRICH);
    writeFileSync(path, pipelineYaml('bad', f.db.name, f.tmp.dir, '', procs('b', 'a')));
    const cycle = sluice('validate', path);
    assert.equal(cycle.status, 1);
    assert.match(cycle.stderr, /ENGINE_GRAPH.*\n.*processors form a cycle: a → b → a; each reads the output of the one before it/);
    writeFileSync(path, pipelineYaml('bad', f.db.name, f.tmp.dir, '', procs('source', 'aa')));
    const typo = sluice('validate', path);
    assert.equal(typo.status, 1);
    const line = pipelineYaml('bad', f.db.name, f.tmp.dir, '', procs('source', 'aa')).split('\n').findIndex((l) => l.includes('[aa]')) + 1;
    assert.match(typo.stderr, new RegExp(`bad\\.yaml:${line}:\\d+: processors\\.1\\.inputs\\.0: "aa" names no processor of this pipeline \\(did you mean "a"\\?\\)`));
  });
});
