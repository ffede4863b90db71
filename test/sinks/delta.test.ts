/**
 * A real pipeline into Delta Lake, read back by Delta's own Java reader (Delta Kernel, through
 * scripts/delta-reader.sh): PostgreSQL (a snapshot, then inserts, updates, deletes, NULLs and an
 * added column, in many small commits) → the log → the Delta sink, every change event a row.
 *
 * The truth is the source database: folding the Delta table's rows by key (the last change of each
 * key, by its log position; a delete removes the key) gives exactly the source table, value for
 * value, at the latest version and, by time travel, at the version the snapshot ended at. Every
 * change the workload made is a row exactly once. A second sink merges (`mode: merge`): its table
 * holds exactly the source rows, now and at its snapshot version.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const quiet = createLogger({ level: 'error' });
const READER = new URL('../../scripts/delta-reader.sh', import.meta.url).pathname;

interface Snapshot {
  version: number;
  schema: { name: string; type: string; nullable: boolean }[];
  rows: Record<string, unknown>[];
}

/** The table as Delta Kernel reads it (at `version`, or the latest). */
function kernelRead(table: string, version?: number): Snapshot {
  const r = spawnSync('bash', [READER, table, ...(version === undefined ? [] : ['--version', String(version)])], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`Delta Kernel could not read ${table}${version === undefined ? '' : ` at version ${version}`} (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Snapshot;
}

/**
 * What a table's `_delta_log` JSON says, parsed here (cheap next to starting Kernel's JVM; the
 * assertions read with Kernel): rows added, and the next offset of each log partition applied.
 */
function logState(table: string): { records: number; applied: Map<string, number> } {
  let names: string[] = [];
  try {
    names = readdirSync(join(table, '_delta_log')).filter((n) => /^\d{20}\.json$/.test(n));
  } catch {
    /* not yet */
  }
  let records = 0;
  const applied = new Map<string, number>();
  for (const n of names) {
    for (const line of readFileSync(join(table, '_delta_log', n), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const a = JSON.parse(line);
      if (a.add) records += JSON.parse(a.add.stats).numRecords;
      if (a.txn) applied.set(a.txn.appId.split(':').slice(-2).join(':'), a.txn.version);
    }
  }
  return { records, applied };
}

/** The current rows a bronze table's change rows give: each key's last change by log position, deletes removing it. */
function fold(rows: Record<string, unknown>[]): Map<string, Record<string, unknown>> {
  const last = new Map<string, Record<string, unknown>>();
  for (const r of [...rows].sort((a, b) => Number(BigInt(a.__change_id as string) - BigInt(b.__change_id as string)))) {
    if (r.__op === 't') last.clear();
    else last.set(String(r.id), r);
  }
  for (const [k, r] of last) if (r.__op === 'd') last.delete(k);
  return last;
}

/** Source rows in the reader's value forms: int64 and decimals as text, timestamps as microseconds since the epoch (text), dates as ISO days, bytes as base64. */
const SOURCE = `SELECT id::text AS id, name, amount::text AS amount, big::text AS big,
    (extract(epoch FROM ts) * 1000000)::bigint::text AS ts, (extract(epoch FROM tstz) * 1000000)::bigint::text AS tstz,
    d::text AS d, flag, f8, tags, doc::text AS doc, replace(encode(b, 'base64'), E'\\n', '') AS b, NOTE_COLUMN
  FROM items ORDER BY id`;

describe('PostgreSQL → Delta Lake sink, read by Delta Kernel', () => {
  const f = useDatabase(`CREATE TABLE items (id bigint PRIMARY KEY, name text, amount numeric(12,2), big bigint, ts timestamp(6), tstz timestamptz, d date, flag boolean, f8 float8, tags text[], doc jsonb, b bytea);
    INSERT INTO items SELECT g, 'item ' || g, (g * 7919 % 100000) / 100.0, 9007199254740993 + g, TIMESTAMP '2026-01-02 03:04:05.123456' + g * INTERVAL '1 minute 0.000001 s',
      TIMESTAMPTZ '2026-06-30 23:59:59.999999+02' + g * INTERVAL '1 hour', DATE '2026-01-01' + g, g % 2 = 0, g / 3.0, ARRAY['a', 'b' || g], jsonb_build_object('n', g, 'tags', jsonb_build_array(g, NULL)), decode(lpad(to_hex(g), 8, '0'), 'hex')
    FROM generate_series(1, 200) g;`);

  const source = async (withNote: boolean) => (await f.db.client.query(SOURCE.replace('NOTE_COLUMN', withNote ? 'note' : 'NULL::text AS note'))).rows as Record<string, unknown>[];

  /** Differences between the folded Delta rows and the source rows ([] when equal). */
  const differences = (got: Map<string, Record<string, unknown>>, want: Record<string, unknown>[], withNote: boolean): string[] => {
    const out: string[] = [];
    if (got.size !== want.length) out.push(`${got.size} rows in Delta, ${want.length} in the source`);
    for (const w of want) {
      const g = got.get(String(w.id));
      if (!g) {
        out.push(`row ${w.id} missing`);
        continue;
      }
      const pick = { id: g.id, name: g.name, amount: g.amount, big: g.big, ts: g.ts, tstz: g.tstz, d: g.d, flag: g.flag, f8: g.f8, tags: g.tags, doc: g.doc, b: g.b, note: withNote ? g.note : null };
      try {
        assert.deepEqual(pick, { ...w, f8: w.f8 === null ? null : Number.isNaN(Number(w.f8)) ? 'NaN' : Number(w.f8) });
      } catch {
        out.push(`row ${w.id}: Delta ${JSON.stringify(pick)} != source ${JSON.stringify(w)}`);
      }
      if (out.length > 5) break;
    }
    return out;
  };

  it('every change is a row once; the rows fold to the source table now and at the snapshot version (time travel)', async () => {
    const lake = join(f.tmp.dir, 'lake');
    const yaml = pipelineYaml(
      'dl',
      f.db.name,
      f.tmp.dir,
      '',
      `sinks:
  - {name: bronze, type: delta, path: ${lake}, tableName: "{schema}_{table}", batch: {maxRecords: 40, maxDelayMs: 5}}
  - {name: silver, type: delta, mode: merge, path: ${join(f.tmp.dir, 'silver')}, batch: {maxRecords: 40, maxDelayMs: 5}}
`,
    );
    const silver = join(f.tmp.dir, 'silver', 'items');
    /** The merged table's rows by key; a key twice fails. */
    const byKey = (rows: Record<string, unknown>[]) => {
      const m = new Map(rows.map((r) => [String(r.id), r]));
      assert.equal(m.size, rows.length, 'each key once in the merged table');
      return m;
    };
    const ac = new AbortController();
    const done = runPipeline(parseConfig(yaml, 'dl.yaml', {}), { signal: ac.signal, logger: quiet });
    done.catch(() => {});
    const table = join(lake, 'public_items');
    const commits = () => readdirSync(join(table, '_delta_log')).filter((n) => /^\d{20}\.json$/.test(n)).length;
    let changes = 200;
    let atSnapshot: Snapshot;
    let silverAtSnapshot: Snapshot;
    let snapshotRows: Record<string, unknown>[];
    try {
      // The snapshot in: the source does not change until Delta Kernel reads all 200 rows.
      await waitUntil('the snapshot in the Delta tables', async () => logState(table).records === 200 && logState(silver).records === 200, 90_000);
      atSnapshot = kernelRead(table);
      silverAtSnapshot = kernelRead(silver);
      snapshotRows = await source(false);
      const c = f.db.client;
      for (let i = 0; i < 30; i++) {
        await c.query('BEGIN');
        changes += (await c.query(`UPDATE items SET amount = amount + 1.01, name = CASE WHEN id % 3 = 0 THEN NULL ELSE name || '+' END WHERE id % 30 = $1`, [i])).rowCount!;
        changes += (await c.query(`INSERT INTO items (id, name, amount, big, ts, tstz, d, flag, f8, tags, doc, b) VALUES ($1, 'new', 0.01, -9223372036854775808, '1970-01-01 00:00:00', '1969-12-31 23:59:59.5+00', '0001-01-01', NULL, 'NaN', '{}', 'null', '')`, [1000 + i])).rowCount!;
        if (i % 4 === 0) changes += (await c.query(`DELETE FROM items WHERE id = $1`, [i * 7 + 1])).rowCount!;
        await c.query('COMMIT');
        if (i === 15) await c.query(`ALTER TABLE items ADD COLUMN note text`);
        if (i >= 15) changes += (await c.query(`UPDATE items SET note = 'n' || $1 WHERE id = $2`, [i, 1000 + i])).rowCount!;
      }
      // Both sinks at the same place in the log, the bronze one holding every change.
      await waitUntil(
        'every change in the Delta tables',
        async () => {
          const b = logState(table);
          return b.records >= changes && JSON.stringify([...b.applied].sort()) === JSON.stringify([...logState(silver).applied].sort());
        },
        90_000,
      );
    } finally {
      ac.abort();
      await done;
    }
    const now = kernelRead(table);
    // Every change once: as many rows as changes made, no change id twice.
    assert.equal(now.rows.length, changes, 'one row per change');
    assert.equal(new Set(now.rows.map((r) => r.__change_id)).size, changes, 'no change twice');
    assert.ok(commits() >= 5, `several commits (${commits()})`);
    // The added column is in the table's schema, nullable, and the rows before it read null.
    assert.deepEqual(
      now.schema.map((c) => c.name),
      ['__change_id', '__op', '__source_ts_ms', '__synced_at', 'id', 'name', 'amount', 'big', 'ts', 'tstz', 'd', 'flag', 'f8', 'tags', 'doc', 'b', 'note'],
    );
    assert.deepEqual(
      Object.fromEntries(now.schema.map((c) => [c.name, c.type])),
      { __change_id: 'long', __op: 'string', __source_ts_ms: 'long', __synced_at: 'timestamp', id: 'long', name: 'string', amount: 'decimal(12,2)', big: 'long', ts: 'timestamp', tstz: 'timestamp', d: 'date', flag: 'boolean', f8: 'double', tags: 'array<string>', doc: 'string', b: 'binary', note: 'string' },
      'Delta types of the source columns',
    );
    let diff = differences(fold(now.rows), await source(true), true);
    assert.deepEqual(diff, [], 'the latest version folds to the source table');
    // Time travel: the version the snapshot ended at folds to the table as it was then.
    const then = kernelRead(table, atSnapshot!.version);
    assert.equal(then.version, atSnapshot!.version);
    diff = differences(fold(then.rows), snapshotRows!, false);
    assert.deepEqual(diff, [], `version ${then.version} folds to the source table at the snapshot`);
    assert.ok(
      then.rows.every((r) => r.__op === 'r'),
      'the snapshot version holds snapshot reads only',
    );
    // The merged table: exactly the source rows, now and at its snapshot version; no key twice.
    const merged = kernelRead(silver);
    assert.deepEqual(differences(byKey(merged.rows), await source(true), true), [], 'the merged table equals the source table');
    assert.ok(merged.version > silverAtSnapshot!.version + 3, `the merged table took several commits (${merged.version})`);
    const mergedThen = kernelRead(silver, silverAtSnapshot!.version);
    assert.deepEqual(differences(byKey(mergedThen.rows), snapshotRows!, false), [], `merged version ${mergedThen.version} equals the source at the snapshot`);
    // DuckDB (no Delta extension here) over the files `sluice lake files` lists: the same changes
    // as Kernel at both versions.
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    for (const [snap, args] of [
      [now, []],
      [then, ['--version', String(then.version)]],
    ] as const) {
      const l = spawnSync(process.execPath, ['bin/sluice.js', 'lake', 'files', table, '--sql', 'v', ...args], { encoding: 'utf8' });
      assert.equal(l.status, 0, l.stderr);
      await duck.run(l.stdout);
      const ids = (await duck.runAndReadAll('SELECT __change_id::VARCHAR FROM v ORDER BY __change_id')).getRows().map((r) => r[0]);
      assert.deepEqual(ids, snap.rows.map((r) => r.__change_id as string).sort((a, b) => Number(BigInt(a) - BigInt(b))), `DuckDB over version ${snap.version}'s files`);
    }
    duck.closeSync();
  });
});
