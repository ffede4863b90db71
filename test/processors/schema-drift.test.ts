/**
 * Schema drift (seed 002): a source table gains a column, loses one and retypes one while a
 * pipeline runs. A processor with `onSchemaChange: continue` reports each change once on
 * `<pipeline>.schema-changes` (the columns and types as PostgreSQL's catalog states them), counts
 * it in its metric and goes on; after a restart it reports nothing twice. A processor with
 * `onSchemaChange: stop` stops at the first change with PROCESSOR_SCHEMA_CHANGED.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { Registry } from '../../src/core/metrics.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';

describe('schema drift', () => {
  const f = useDatabase(`
    CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price int, note text);
    INSERT INTO items SELECT g, 'i' || g, g, 'n' FROM generate_series(1, 5) g;
  `);

  it('reports each column change once, goes on or stops per onSchemaChange, and repeats nothing after a restart', async () => {
    const yaml = pipelineYaml(
      'sd',
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxDelayMs: 5
processors:
  - {name: watch, type: filter, inputs: [sd.public.items], where: "true"}
  - {name: strict, type: filter, inputs: [sd.public.items], where: "true", onSchemaChange: stop}
`,
    );
    const cfg = parseConfig(yaml, join(f.tmp.dir, 'sd.yaml'), {});
    const typeOf = async (col: string) => (await f.db.client.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'items'::regclass AND attname = $1`, [col])).rows[0].t as string;
    const changes = async () => (await readAll(cfg.log, 'sd.schema-changes')).map((r) => r.value);
    const watched = async () => (await readAll(cfg.log, 'watch.')).length;

    const registry = new Registry();
    let ac = new AbortController();
    let run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger(), registry });
    let priceBefore: string;
    try {
      await waitUntil('the snapshot filtered', async () => (await watched()) >= 5, 60_000);
      await f.db.client.query(`ALTER TABLE items ADD COLUMN qty bigint NOT NULL DEFAULT 0`);
      await f.db.client.query(`INSERT INTO items VALUES (6, 'i6', 6, 'n', 3)`);
      await waitUntil('the first change reported', async () => (await changes()).length >= 1, 30_000);
      await f.db.client.query(`ALTER TABLE items DROP COLUMN note`);
      await f.db.client.query(`INSERT INTO items VALUES (7, 'i7', 7, 4)`);
      priceBefore = await typeOf('price');
      await f.db.client.query(`ALTER TABLE items ALTER COLUMN price TYPE numeric(12,2)`);
      await f.db.client.query(`INSERT INTO items VALUES (8, 'i8', 8.5, 5)`);
      await waitUntil('three changes reported and the rows filtered', async () => (await changes()).length >= 3 && (await watched()) >= 8, 30_000);
    } finally {
      ac.abort();
      await run;
    }
    const status = registry.render();
    assert.match(status, /sluice_schema_changes_total\{[^}]*processor="watch"[^}]*\} 3/, 'the metric counts the three changes');

    const got = await changes();
    assert.equal(got.length, 3, 'each change once');
    assert.ok(got.every((c) => c.processor === 'watch' && c.table === 'public.items' && c.topic === 'sd.public.items'));
    assert.deepEqual([got[0].added, got[0].removed, got[0].changed], [[{ name: 'qty', type: `${await typeOf('qty')} not null` }], [], []]);
    assert.deepEqual([got[1].added, got[1].removed, got[1].changed], [[], [{ name: 'note', type: 'text' }], []]);
    assert.deepEqual([got[2].added, got[2].removed, got[2].changed], [[], [], [{ name: 'price', from: priceBefore, to: await typeOf('price') }]]);
    assert.equal(got[1].from, got[0].to, 'each change starts from the schema the last one ended at');

    // The strict processor stopped at the first change: it passed the snapshot and nothing after.
    const strict = await readAll(cfg.log, 'strict.');
    assert.deepEqual(strict.map((r) => r.value.after.id).sort(), [1, 2, 3, 4, 5]);

    // A restart: the watcher reads its reported changes back and repeats none; the strict one stops again at the same record.
    ac = new AbortController();
    const r2 = new Registry();
    run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger(), registry: r2 });
    try {
      await f.db.client.query(`INSERT INTO items VALUES (9, 'i9', 9, 6)`);
      await waitUntil('the row after the restart filtered', async () => (await watched()) >= 9, 30_000);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      ac.abort();
      await run;
    }
    assert.equal((await changes()).length, 3, 'no change reported twice');
    assert.equal((await readAll(cfg.log, 'strict.')).length, 5);
  });
});
