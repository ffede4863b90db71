/**
 * A real pipeline into Apache Iceberg, read back by Iceberg's own Java library (iceberg-core,
 * iceberg-data, iceberg-parquet through scripts/iceberg-reader.sh): PostgreSQL (a snapshot, then
 * many small commits of inserts, updates moving rows between partitions, deletes and an added
 * column) → the log → two Iceberg sinks, every change a row (bronze, append) and the current row
 * per key (silver, merge-on-read with equality deletes, partitioned by region, day and a bucket of
 * the key).
 *
 * The truth is the source database at two moments. Iceberg reads silver's snapshot of each moment
 * equal to the source then, with deletes applied; bronze's rows fold to the source at both
 * snapshots, hold every change once, and an incremental append scan between the two snapshots
 * gives exactly the changes made between them. The Parquet files carry the schema's field ids.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { readManifestList } from '../../src/sinks/iceberg/manifest.ts';
import { PG_HOST, PG_PORT } from '../helpers/pg.ts';
import { pipelineYaml, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const quiet = createLogger({ level: 'error' });
const READER = new URL('../../scripts/iceberg-reader.sh', import.meta.url).pathname;

type Row = Record<string, unknown>;

/** What Iceberg Java reads (`mode` of scripts/iceberg-reader.sh) of a table: `--table <dir>`, or through a JDBC catalog. */
function iceberg<T>(mode: string, table: string[], ...args: string[]): T {
  const r = spawnSync('bash', [READER, mode, ...table, ...args], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`Iceberg Java could not read ${table.join(' ')} (${mode} ${args.join(' ')}; exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** The current metadata's snapshot (the metadata file `file` names, or the newest vN.metadata.json in `dir`): its id, summary (offsets), and the records all snapshots added. */
function current(dir: string, file?: string): { id: number; offsets: string; records: number } | null {
  if (!file) {
    let names: string[];
    try {
      names = readdirSync(join(dir, 'metadata')).filter((n) => /^v\d+\.metadata\.json$/.test(n));
    } catch {
      return null;
    }
    if (!names.length) return null;
    file = join(dir, 'metadata', `v${Math.max(...names.map((n) => Number(/\d+/.exec(n)![0])))}.metadata.json`);
  }
  const m = JSON.parse(readFileSync(file, 'utf8'));
  const snap = m.snapshots.find((s: { 'snapshot-id': number }) => s['snapshot-id'] === m['current-snapshot-id']);
  const offsets = Object.entries(snap.summary as Record<string, string>)
    .filter(([k]) => k.startsWith('sluice:'))
    .map(([k, val]) => `${k.split(':').slice(-2).join(':')}=${val}`)
    .sort()
    .join(',');
  return { id: snap['snapshot-id'], offsets, records: m.snapshots.reduce((n: number, s: { summary: Record<string, string> }) => n + Number(s.summary['added-records'] ?? 0), 0) };
}

/** Source rows in the reader's value forms. */
const SOURCE = `SELECT id::text AS id, region, balance::text AS balance, big::text AS big, (extract(epoch FROM ts) * 1000000)::bigint::text AS ts,
    (extract(epoch FROM tstz) * 1000000)::bigint::text AS tstz, d::text AS d, flag, f8, tags, replace(encode(b, 'base64'), E'\\n', '') AS b, NOTE AS note
  FROM accounts ORDER BY id`;
const pick = (r: Row, note: boolean) => JSON.stringify([r.id, r.region, r.balance, r.big, r.ts, r.tstz, r.d, r.flag, r.f8 === null || r.f8 === undefined ? null : Number(r.f8), r.tags, r.b, note ? (r.note ?? null) : null]);

/** Each key's last change by log position (a delete removes the key), as `pick` lines. */
function fold(rows: Row[], note: boolean): string[] {
  const last = new Map<string, Row>();
  for (const r of [...rows].sort((a, b) => Number(BigInt(a.__change_id as string) - BigInt(b.__change_id as string)))) last.set(String(r.id), r);
  return [...last.values()].filter((r) => r.__op !== 'd').map((r) => pick(r, note)).sort();
}

describe('PostgreSQL → Iceberg sinks, read by Iceberg Java', () => {
  const f = useDatabase(`CREATE TABLE accounts (id bigint PRIMARY KEY, region text, balance numeric(12,2), big bigint, ts timestamp(6), tstz timestamptz, d date, flag boolean, f8 float8, tags text[], b bytea);
    INSERT INTO accounts SELECT g, (ARRAY['eu', 'us', 'ap/south', NULL])[g % 4 + 1], g * 1.25, 9007199254740993 + g, TIMESTAMP '2026-01-02 03:04:05.123456' + g * INTERVAL '7 hours',
      TIMESTAMPTZ '2026-06-30 23:59:59.999999+02' + g * INTERVAL '5 hours', DATE '2026-01-01' + g, g % 2 = 0, g / 3.0, ARRAY['a', 'b' || g], decode(lpad(to_hex(g), 8, '0'), 'hex')
    FROM generate_series(1, 120) g;`);

  it('silver (JDBC catalog) equals the source at each snapshot; bronze (filesystem) folds to it, holds every change once, and its incremental scan holds the changes between', async () => {
    const wh = join(f.tmp.dir, 'wh');
    const bronzeDir = join(wh, 'bronze', 'public', 'accounts');
    const bronze = ['--table', bronzeDir];
    const silver = ['--jdbc', `jdbc:postgresql://${PG_HOST}:${PG_PORT}/${f.db.name}`, '--id', 'public.accounts', '--catalog', 'lake'];
    const yaml = pipelineYaml(
      'ice',
      f.db.name,
      f.tmp.dir,
      '',
      `sinks:
  - {name: bronze, type: iceberg, path: ${join(wh, 'bronze')}, manifestMergeCount: 5, batch: {maxRecords: 30, maxDelayMs: 5}}
  - {name: silver, type: iceberg, mode: merge, path: ${join(wh, 'silver')}, partitionBy: [region, day(tstz), 'bucket[4](id)'], manifestMergeCount: 3, catalog: {type: jdbc, connection: "postgres://postgres@${PG_HOST}:${PG_PORT}/${f.db.name}", name: lake}, batch: {maxRecords: 30, maxDelayMs: 5}}
`,
    );
    const c = f.db.client;
    const source = async (note: boolean) => ((await c.query(SOURCE.replace('NOTE', note ? 'note' : 'NULL::text'))).rows as Row[]).map((r) => pick(r, note)).sort();
    /** Both tables at the same place in the log, bronze holding `changes` rows. */
    /** Silver's current snapshot, as the JDBC catalog's row names it. */
    const silverNow = async () => {
      const r = await c.query(`SELECT metadata_location FROM iceberg_tables WHERE catalog_name = 'lake' AND table_namespace = 'public' AND table_name = 'accounts'`).catch(() => ({ rows: [] }));
      return r.rows.length ? current('', String(r.rows[0].metadata_location)) : null;
    };
    const caughtUp = (changes: number) => async () => {
      const b = current(bronzeDir);
      const s = await silverNow();
      return !!b && !!s && b.records >= changes && b.offsets === s.offsets;
    };
    const ac = new AbortController();
    const done = runPipeline(parseConfig(yaml, 'ice.yaml', {}), { signal: ac.signal, logger: quiet });
    done.catch(() => {});
    let changes = 120;
    let first: string[];
    let second: string[];
    let b1: number;
    let s1: number;
    try {
      first = await source(false);
      await waitUntil('the snapshot in the Iceberg tables', caughtUp(changes), 90_000);
      b1 = current(bronzeDir)!.id;
      s1 = (await silverNow())!.id;
      for (let i = 0; i < 24; i++) {
        await c.query('BEGIN');
        changes += (await c.query(`UPDATE accounts SET balance = balance + 0.01 * $1, tstz = tstz + INTERVAL '1 day' WHERE id % 12 = $2`, [i + 1, i % 12])).rowCount!;
        changes += (await c.query(`UPDATE accounts SET region = CASE WHEN region = 'eu' THEN 'us' ELSE 'eu' END WHERE id = $1`, [i * 5 + 3])).rowCount!;
        changes += (await c.query(`INSERT INTO accounts (id, region, balance, big, ts, tstz, d, flag, f8, tags, b) VALUES ($1, 'eu', 0.01, -9223372036854775808, '1970-01-01 00:00:00', '1969-12-31 23:59:59.5+00', '0001-01-01', NULL, 'NaN', '{}', '')`, [500 + i])).rowCount!;
        if (i % 3 === 0) changes += (await c.query(`DELETE FROM accounts WHERE id = $1`, [i * 4 + 2])).rowCount!;
        await c.query('COMMIT');
        if (i === 11) await c.query(`ALTER TABLE accounts ADD COLUMN note text`);
        if (i >= 11) changes += (await c.query(`UPDATE accounts SET note = 'n' || $1 WHERE id = $2`, [i, 500 + i - 1])).rowCount!;
      }
      second = await source(true);
      await waitUntil('the workload in the Iceberg tables', caughtUp(changes), 90_000);
    } finally {
      ac.abort();
      await done;
    }

    // Silver: the current rows, deletes applied, now and at the snapshot's snapshot (time travel).
    const now = iceberg<{ rows: Row[] }>('scan', silver);
    assert.deepEqual(now.rows.map((r) => pick(r, true)).sort(), second!, 'silver equals the source');
    const then = iceberg<{ rows: Row[] }>('scan', silver, '--snapshot', String(s1!));
    assert.deepEqual(then.rows.map((r) => pick(r, false)).sort(), first!, 'silver at the snapshot equals the source then');
    const meta = iceberg<{ formatVersion: number; schema: { id: number; name: string; type: string }[]; partitionSpec: { name: string; transform: string; sourceName: string }[]; snapshots: { id: string; operation: string }[] }>('snapshots', silver);
    assert.equal(meta.formatVersion, 2);
    assert.deepEqual(
      meta.partitionSpec.map((p) => [p.name, p.transform, p.sourceName]),
      [
        ['region', 'identity', 'region'],
        ['tstz_day', 'day', 'tstz'],
        ['id_bucket', 'bucket[4]', 'id'],
      ],
    );
    assert.ok(meta.snapshots.some((s) => s.operation === 'overwrite'), 'merge snapshots with equality deletes');
    // Manifests were merged (manifestMergeCount: 3): the current snapshot lists fewer than it had commits.
    const silverFile = String((await c.query(`SELECT metadata_location FROM iceberg_tables WHERE catalog_name = 'lake'`)).rows[0].metadata_location);
    const silverMeta = JSON.parse(readFileSync(silverFile, 'utf8'));
    const lists = (await readManifestList(silverMeta.snapshots.at(-1)['manifest-list'])).length;
    assert.ok(lists <= 6 && silverMeta.snapshots.length > 10, `${lists} manifests after ${silverMeta.snapshots.length} commits`);
    const files = iceberg<{ files: { content: string; parquetFieldIds: Record<string, number | null> }[] }>('files', silver);
    assert.ok(files.files.some((x) => x.content === 'equality_deletes'), 'equality delete files are live');
    // Every column and list element has its field id (a list's repeated group has none, as in Iceberg's own files).
    for (const x of files.files) assert.ok(Object.entries(x.parquetFieldIds).every(([path, id]) => typeof id === 'number' || path.endsWith('.list')), `every Parquet column has a field id: ${JSON.stringify(x.parquetFieldIds)}`);

    // Bronze: every change once, folding to the source now and at the snapshot's snapshot.
    const all = iceberg<{ rows: Row[]; schema: { name: string; type: string }[] }>('scan', bronze);
    assert.equal(all.rows.length, changes, 'one row per change');
    assert.equal(new Set(all.rows.map((r) => r.__change_id)).size, changes, 'no change twice');
    assert.deepEqual(fold(all.rows, true), second!, 'bronze folds to the source');
    assert.deepEqual(
      Object.fromEntries(all.schema.map((x) => [x.name, x.type])),
      { __change_id: 'long', __op: 'string', __source_ts_ms: 'long', __synced_at: 'timestamptz', id: 'long', region: 'string', balance: 'decimal(12,2)', big: 'long', ts: 'timestamp', tstz: 'timestamptz', d: 'date', flag: 'boolean', f8: 'double', tags: 'list<string>', b: 'binary', note: 'string' },
      'Iceberg types of the source columns',
    );
    const early = iceberg<{ rows: Row[] }>('scan', bronze, '--snapshot', String(b1!));
    assert.deepEqual(fold(early.rows, false), first!, 'bronze at the snapshot folds to the source then');
    // Incremental: the rows appended after the snapshot's snapshot are the changes made since.
    const inc = iceberg<{ rows: Row[] }>('incremental', bronze, '--from', String(b1!));
    assert.equal(inc.rows.length, changes - early.rows.length, 'the incremental scan holds the changes after the snapshot');
    assert.ok(inc.rows.every((r) => r.__op !== 'r'), 'and no snapshot read');

    // DuckDB (no iceberg extension here) over `sluice lake files --sql`: silver's current rows with
    // the equality deletes applied (the table given as its catalog's metadata file), bronze's changes.
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    await duck.run(`SET TimeZone = 'UTC'`);
    for (const [target, view] of [
      [silverFile, 's'],
      [bronzeDir, 'b'],
    ]) {
      const l = spawnSync(process.execPath, ['bin/sluice.js', 'lake', 'files', target, '--sql', view], { encoding: 'utf8' });
      assert.equal(l.status, 0, l.stderr);
      await duck.run(l.stdout);
    }
    const duckRows = (await duck.runAndReadAll(`SELECT id::VARCHAR AS id, region, balance::VARCHAR AS balance, big::VARCHAR AS big, epoch_us(ts)::VARCHAR AS ts, epoch_us(tstz)::VARCHAR AS tstz, d::VARCHAR AS d, flag, f8, tags, to_base64(b) AS b, note FROM s`)).getRowObjectsJson();
    assert.deepEqual(duckRows.map((r) => pick({ ...r, f8: r.f8 === 'NaN' ? 'NaN' : r.f8 }, true)).sort(), second!, 'DuckDB over silver\'s files, deletes applied, equals the source');
    const duckChanges = (await duck.runAndReadAll(`SELECT count(*)::INTEGER AS n, count(DISTINCT __change_id)::INTEGER AS k FROM b`)).getRows()[0];
    assert.deepEqual(duckChanges, [changes, changes], 'DuckDB over bronze\'s files: every change once');
    duck.closeSync();

    // Snapshot expiry: every snapshot but the newest two goes, with the files only they reached
    // (their manifest lists, manifests merged away); Iceberg Java reads the same rows after, and
    // the first snapshot no more.
    const before = iceberg<{ snapshots: unknown[] }>('snapshots', bronze).snapshots.length;
    const exp = spawnSync(process.execPath, ['bin/sluice.js', 'lake', 'expire', bronzeDir, '--older-than', '0', '--retain-last', '2'], { encoding: 'utf8' });
    assert.equal(exp.status, 0, exp.stderr);
    const deleted = exp.stdout.split('\n').filter(Boolean);
    assert.match(exp.stderr, new RegExp(`expired ${before - 2} snapshots \\(kept 2\\), deleted ${deleted.length} files`));
    assert.ok(deleted.some((p) => p.includes('/snap-')) && deleted.every((p) => !existsSync(p)), 'the expired snapshots\' manifest lists are deleted');
    assert.equal(iceberg<{ snapshots: unknown[] }>('snapshots', bronze).snapshots.length, 2);
    assert.equal(iceberg<{ rows: Row[] }>('scan', bronze).rows.length, changes, 'every change still read after expiry');
    assert.throws(() => iceberg('scan', bronze, '--snapshot', String(b1!)), /snapshot/i, 'the expired snapshot is gone');
  });
});
