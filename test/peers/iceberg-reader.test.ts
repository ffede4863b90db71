/**
 * The Iceberg reference reader (scripts/iceberg-reader.sh, on Iceberg Java 1.12) checked against a table
 * Iceberg Java itself wrote (`sample-write`, scripts/java/IcebergWriteSample.java): a v2 table partitioned by
 * day(ts) and bucket[4](id), four snapshots (two appends, a row delta with equality and position deletes, an
 * append after a column was added), once as a file-system table and once in Iceberg's JDBC catalog in a
 * PostgreSQL database made for this file.
 *
 * The expected values are written out here from the sample's documented rows, not taken from the writer:
 * timestamps as microseconds computed from their ISO text, bytes as base64, Iceberg's bucket transform
 * computed with its murmur3 hash (checked against the spec's test vector), so a wrong rendering, a delete
 * not applied or a snapshot mixed up fails here.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { adminClient, isStale, PG_HOST, PG_PORT, stampNow } from '../helpers/pg.ts';

const READER = new URL('../../scripts/iceberg-reader.sh', import.meta.url).pathname;

type Row = Record<string, unknown>;
interface Field {
  id: number;
  name: string;
  type: string;
  required: boolean;
}
interface Snapshots {
  formatVersion: number;
  location: string;
  metadataLocation: string;
  currentSchemaId: number;
  schema: Field[];
  identifierFieldIds: number[];
  specId: number;
  partitionSpec: { fieldId: number; name: string; transform: string; sourceId: number; sourceName: string }[];
  properties: Record<string, string>;
  currentSnapshotId: string | null;
  lastSequenceNumber: string;
  snapshots: { id: string; parentId: string | null; sequenceNumber: string; timestampMs: string; operation: string; schemaId: number; summary: Record<string, string> }[];
}
interface Scan {
  snapshotId: string;
  schema: Field[];
  rows: Row[];
}
interface Incremental extends Scan {
  fromSnapshotId: string;
  appendSnapshotIds: string[];
}
interface FileEntry {
  content: 'data' | 'position_deletes' | 'equality_deletes';
  path: string;
  partition: Record<string, unknown>;
  partitionPath: string;
  recordCount: string;
  dataSequenceNumber: string;
  equalityFieldIds: number[] | null;
  columns: Record<string, { valueCount: string | null; nullValueCount: string | null; lowerBound: unknown; upperBound: unknown }>;
  parquetFieldIds: Record<string, number | null>;
}
interface Files {
  snapshotId: string;
  files: FileEntry[];
}
interface Written {
  location: string;
  metadataLocation: string;
  snapshots: { append1: string; append2: string; rowDelta: string; append3: string };
}

/** Runs the reader script; resolves with its stdout, or rejects with its exit status and stderr. */
function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [READER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(Object.assign(new Error(`iceberg-reader ${args.join(' ')} exited ${code}:\n${err}`), { code, stderr: err }))));
  });
}

/** At most `n` readers at once (each is a JVM; the machine has two cores). */
function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((res) => queue.push(res));
    active++;
    try {
      return await f();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

// --- Iceberg's bucket transform for longs: murmur3_x86_32 (seed 0) of the 8-byte little-endian value, then
// (hash & Integer.MAX_VALUE) % N (the Iceberg spec, "Bucket Transform Details").
function murmur3Long(v: bigint): number {
  const bytes = Buffer.alloc(8);
  bytes.writeBigInt64LE(v);
  let h = 0;
  for (let i = 0; i < 8; i += 4) {
    let k = bytes.readInt32LE(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= 8;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
const bucket4 = (id: number): number => (murmur3Long(BigInt(id)) & 0x7fffffff) % 4;

/** Microseconds since the epoch of an ISO time with its offset ("…T12:00:00.000001Z", "…+02:00"), as a string. */
function micros(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:\d\d)$/.exec(iso);
  if (!m) throw new Error(`bad time ${iso}`);
  return String(BigInt(Date.parse(m[1] + m[3])) * 1000n + BigInt((m[2] ?? '').padEnd(6, '0')));
}

const b64 = (hex: string | null): string | null => (hex === null ? null : Buffer.from(hex, 'hex').toString('base64'));

/** A sample row as the reader renders it (ts is UTC wall time, so it is read as if at Z). */
function row(id: number, qty: number | null, price: string, ts: string, tstz: string, day: string | null, name: string | null, payloadHex: string | null, flag: boolean | null, score: number | string | null): Row {
  return { id: String(id), qty, price, ts: micros(`${ts}Z`), tstz: micros(tstz), day, name, payload: b64(payloadHex), flag, score };
}

// The sample's rows (scripts/java/IcebergWriteSample.java documents the same table).
const R1 = row(1, 10, '12.34', '2026-01-01T00:00:00.000001', '2026-01-01T00:00:00.000001Z', '2026-01-01', 'one', '0001', true, 1.5);
const R2 = row(2, 20, '-0.05', '2026-01-01T23:59:59.999999', '2026-01-01T23:59:59.999999+02:00', '2026-01-02', 'two ✓ "q"', 'ff', false, -2.25);
const R3 = row(3, null, '9999999999.99', '2026-01-02T12:00:00', '2026-01-02T12:00:00Z', '2000-02-29', null, '', null, 'NaN');
const R4 = row(4, -7, '0.00', '1969-12-31T23:59:59.999999', '1969-12-31T23:59:59.999999Z', '1900-01-01', 'four', 'deadbeef', true, 1e300);
const R5 = row(5, 2147483647, '-9999999999.99', '2026-01-02T00:00:00', '2026-01-02T00:00:00Z', '2026-01-02', 'five', '05', false, -0);
const R6 = row(6, -2147483648, '0.01', '2026-01-03T06:30:00.5', '2026-01-03T06:30:00.5-05:00', null, 'six', null, true, null);
const R1B = row(1, 11, '12.35', '2026-01-04T00:00:00', '2026-01-04T00:00:00Z', '2026-01-04', 'one v2', '0102', false, 2.5);
const R7 = { ...row(7, 7, '7.00', '2026-01-05T07:07:07.070707', '2026-01-05T07:07:07.070707Z', '2026-01-05', 'seven', '07', true, 7.7), note: 'seven' };
const R8 = { ...row(8, 8, '8.00', '2026-01-05T08:00:00', '2026-01-05T08:00:00Z', '2026-01-05', 'eight', '08', false, 8), note: null };
const withNote = (r: Row): Row => ('note' in r ? r : { ...r, note: null });

const COLUMNS: [string, string, boolean][] = [
  ['id', 'long', true],
  ['qty', 'int', false],
  ['price', 'decimal(12,2)', false],
  ['ts', 'timestamp', false],
  ['tstz', 'timestamptz', false],
  ['day', 'date', false],
  ['name', 'string', false],
  ['payload', 'binary', false],
  ['flag', 'boolean', false],
  ['score', 'double', false],
  ['note', 'string', false],
];
const schemaOf = (n: number): Field[] => COLUMNS.slice(0, n).map(([name, type, required], i) => ({ id: i + 1, name, type, required }));
const FIELD_IDS_V0 = Object.fromEntries(COLUMNS.slice(0, 10).map(([name], i) => [name, i + 1]));

/** The UTC day of a row's ts (microseconds, floored to milliseconds: -1 µs is 1969-12-31). */
const dayOf = (r: Row): string => {
  const us = BigInt(r.ts as string);
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  return new Date(Number(ms)).toISOString().slice(0, 10);
};
const partitionPath = (r: Row): string => `ts_day=${dayOf(r)}/id_bucket=${bucket4(Number(r.id))}`;

describe('Iceberg reference reader (scripts/iceberg-reader.sh) on a table Iceberg Java wrote', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-iceberg-reader-'));
  const dbName = `sluice_iceberg_reader_test_${stampNow()}_${randomBytes(3).toString('hex')}`;
  const jdbc = `jdbc:postgresql://${PG_HOST}:${PG_PORT}/${dbName}`;
  let written: { filesystem: Written; jdbc: Written };
  let fsTable: string;
  const limit = limiter(3);
  const cache = new Map<string, Promise<string>>();
  /** The reader's JSON for these arguments (each distinct call runs once; several run at once). */
  const read = <T>(...args: string[]): Promise<T> => {
    const key = JSON.stringify(args);
    if (!cache.has(key)) {
      const p = limit(() => run(args));
      p.catch(() => {});
      cache.set(key, p);
    }
    return cache.get(key)!.then((s) => JSON.parse(s) as T);
  };

  before(async () => {
    // Fetching the jars is a one-time cost (Maven); not part of the reads' time.
    const fetched = spawnSync('bash', [READER, '--fetch'], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(fetched.status, 0, `iceberg-reader --fetch failed:\n${fetched.stderr}`);
    const admin = await adminClient();
    try {
      // This file's own leftovers from an interrupted run (over two hours old, nobody connected).
      const stale = await admin.query(`SELECT datname FROM pg_database d WHERE datname LIKE 'sluice\\_iceberg\\_reader\\_test\\_%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)`);
      for (const { datname } of stale.rows as { datname: string }[]) if (isStale(datname)) await admin.query(`DROP DATABASE IF EXISTS ${datname}`);
      await admin.query(`CREATE DATABASE ${dbName}`);
    } finally {
      await admin.end();
    }
    written = JSON.parse(await run(['sample-write', '--dir', dir, '--jdbc', jdbc]));
    fsTable = written.filesystem.location;
    // Start every read now, a few at a time; each test awaits its own.
    const s = written.filesystem.snapshots;
    read('snapshots', '--table', fsTable);
    for (const id of [s.append1, s.append2, s.rowDelta]) read('scan', '--table', fsTable, '--snapshot', id);
    read('scan', '--table', fsTable);
    read('incremental', '--table', fsTable, '--from', s.append1);
    read('files', '--table', fsTable, '--snapshot', s.rowDelta);
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    const admin = await adminClient();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  it('computes Iceberg buckets as the spec does (murmur3 test vector)', () => {
    // The spec: hash(34L) = 2017239379.
    assert.equal(murmur3Long(34n), 2017239379);
  });

  it('snapshots: format version, schema with field ids, partition spec, the four snapshots in order', async () => {
    const t = await read<Snapshots>('snapshots', '--table', fsTable);
    const s = written.filesystem.snapshots;
    assert.equal(t.formatVersion, 2);
    assert.equal(t.location, fsTable);
    assert.equal(t.metadataLocation, written.filesystem.metadataLocation);
    assert.equal(t.currentSchemaId, 1);
    assert.deepEqual(t.schema, schemaOf(11));
    assert.deepEqual(t.identifierFieldIds, [1]);
    assert.equal(t.specId, 0);
    assert.deepEqual(t.partitionSpec, [
      { fieldId: 1000, name: 'ts_day', transform: 'day', sourceId: 4, sourceName: 'ts' },
      { fieldId: 1001, name: 'id_bucket', transform: 'bucket[4]', sourceId: 1, sourceName: 'id' },
    ]);
    assert.equal(t.currentSnapshotId, s.append3);
    assert.equal(t.lastSequenceNumber, '4');
    assert.deepEqual(
      t.snapshots.map((x) => [x.id, x.parentId, x.sequenceNumber, x.operation, x.schemaId]),
      [
        [s.append1, null, '1', 'append', 0],
        [s.append2, s.append1, '2', 'append', 0],
        [s.rowDelta, s.append2, '3', 'overwrite', 0],
        [s.append3, s.rowDelta, '4', 'append', 1],
      ],
    );
    for (const x of t.snapshots) assert.match(x.timestampMs, /^\d{13}$/);
    const [a1, a2, rd, a3] = t.snapshots.map((x) => x.summary);
    assert.equal(a1['added-records'], '4');
    assert.equal(a1['added-data-files'], '3');
    assert.equal(a2['added-records'], '2');
    assert.equal(a2['total-records'], '6');
    assert.equal(rd['added-records'], '1');
    assert.equal(rd['added-equality-deletes'], '2');
    assert.equal(rd['added-position-deletes'], '1');
    assert.equal(rd['added-delete-files'], '3');
    assert.equal(a3['added-records'], '2');
    assert.equal(a3['sluice.test'], 'append3');
  });

  it('scan: the rows at every snapshot, deletes applied, in the schema of that snapshot', async () => {
    const s = written.filesystem.snapshots;
    const cases: [string, string | null, Row[], number][] = [
      ['append1', s.append1, [R1, R2, R3, R4], 10],
      ['append2', s.append2, [R1, R2, R3, R4, R5, R6], 10],
      // Row 1 replaced (equality delete + insert), row 2 deleted by position, row 5 by equality; row 3 shares
      // row 5's partition and stays.
      ['rowDelta', s.rowDelta, [R1B, R3, R4, R6], 10],
      ['current', null, [R1B, R3, R4, R6, R7, R8].map(withNote), 11],
    ];
    for (const [label, id, rows, columns] of cases) {
      const got = await read<Scan>('scan', '--table', fsTable, ...(id === null ? [] : ['--snapshot', id]));
      assert.equal(got.snapshotId, id ?? s.append3, label);
      assert.deepEqual(got.schema, schemaOf(columns), label);
      assert.deepEqual(got.rows, rows, label);
    }
  });

  it('incremental: the rows appended between two snapshots (append snapshots only, later deletes not applied)', async () => {
    const s = written.filesystem.snapshots;
    const all = await read<Incremental>('incremental', '--table', fsTable, '--from', s.append1);
    assert.equal(all.fromSnapshotId, s.append1);
    assert.equal(all.snapshotId, s.append3);
    assert.deepEqual(all.appendSnapshotIds, [s.append2, s.append3]);
    assert.deepEqual(all.schema, schemaOf(11));
    assert.deepEqual(all.rows, [R5, R6, R7, R8].map(withNote));
    const one = await read<Incremental>('incremental', '--table', fsTable, '--from', s.append1, '--to', s.append2);
    assert.deepEqual(one.appendSnapshotIds, [s.append2]);
    assert.deepEqual(one.rows, [R5, R6].map(withNote));
    const none = await read<Incremental>('incremental', '--table', fsTable, '--from', s.append2, '--to', s.rowDelta);
    assert.deepEqual(none.appendSnapshotIds, []);
    assert.deepEqual(none.rows, []);
  });

  it('files: live data and delete files with partitions, counts, bounds and Parquet field ids', async () => {
    const s = written.filesystem.snapshots;
    const got = await read<Files>('files', '--table', fsTable, '--snapshot', s.rowDelta);
    assert.equal(got.snapshotId, s.rowDelta);
    const data = got.files.filter((f) => f.content === 'data');
    // One file per partition per commit: [partition, records, data sequence number].
    const expected: [string, string, string][] = [
      [partitionPath(R1), '2', '1'], // rows 1 and 2 share a partition
      [partitionPath(R3), '1', '1'],
      [partitionPath(R4), '1', '1'],
      [partitionPath(R5), '1', '2'],
      [partitionPath(R6), '1', '2'],
      [partitionPath(R1B), '1', '3'],
    ];
    assert.equal(partitionPath(R1), partitionPath(R2));
    assert.equal(partitionPath(R3), partitionPath(R5));
    const key = (x: [string, string, string]) => x.join(' ');
    assert.deepEqual(data.map((f) => [f.partitionPath, f.recordCount, f.dataSequenceNumber] as [string, string, string]).sort((a, b) => key(a).localeCompare(key(b))), [...expected].sort((a, b) => key(a).localeCompare(key(b))));
    for (const f of data) {
      assert.deepEqual(f.parquetFieldIds, FIELD_IDS_V0, f.path);
      const [day, b] = f.partitionPath.split('/').map((p) => p.split('=')[1]);
      assert.deepEqual(f.partition, { ts_day: day, id_bucket: Number(b) });
    }
    const r4File = data.find((f) => f.partitionPath === partitionPath(R4))!;
    assert.deepEqual([r4File.columns['1'].lowerBound, r4File.columns['4'].lowerBound, r4File.columns['3'].upperBound, r4File.columns['8'].lowerBound], ['4', '-1', '0.00', b64('deadbeef')]);
    const r3File = data.find((f) => f.partitionPath === partitionPath(R3) && f.dataSequenceNumber === '1')!;
    assert.equal(r3File.columns['2'].nullValueCount, '1');

    const eq = got.files.filter((f) => f.content === 'equality_deletes');
    assert.deepEqual(eq.map((f) => [f.partitionPath, f.recordCount, f.equalityFieldIds, f.columns['1'].lowerBound, f.dataSequenceNumber, f.parquetFieldIds]).sort(), [
      [partitionPath(R1), '1', [1], '1', '3', { id: 1 }],
      [partitionPath(R5), '1', [1], '5', '3', { id: 1 }],
    ].sort());
    const pos = got.files.filter((f) => f.content === 'position_deletes');
    assert.equal(pos.length, 1);
    const firstFile = data.find((f) => f.partitionPath === partitionPath(R1) && f.dataSequenceNumber === '1')!;
    assert.equal(pos[0].partitionPath, partitionPath(R1));
    assert.equal(pos[0].recordCount, '1');
    // file_path (2147483546) and pos (2147483545), the reserved field ids, in the file and its bounds.
    assert.deepEqual(pos[0].parquetFieldIds, { file_path: 2147483546, pos: 2147483545 });
    assert.equal(pos[0].columns['2147483546'].lowerBound, firstFile.path);
    assert.equal(pos[0].columns['2147483545'].lowerBound, '1');
  });

  it('reads the same table through the JDBC catalog, and from a metadata file or a directory without a version hint', async () => {
    const s = written.jdbc.snapshots;
    const at = ['--jdbc', jdbc, '--warehouse', join(dir, 'jdbc'), '--id', 'sluice_test.sample'];
    const [t, now, first] = await Promise.all([
      read<Snapshots>('snapshots', ...at),
      read<Scan>('scan', ...at, '--catalog', 'sluice'),
      read<Scan>('scan', ...at, '--snapshot', s.append1),
    ]);
    assert.equal(t.formatVersion, 2);
    assert.equal(t.location, join(dir, 'jdbc', 'sluice_test', 'sample'));
    assert.equal(t.metadataLocation, written.jdbc.metadataLocation);
    assert.deepEqual(t.snapshots.map((x) => [x.id, x.operation]), [
      [s.append1, 'append'],
      [s.append2, 'append'],
      [s.rowDelta, 'overwrite'],
      [s.append3, 'append'],
    ]);
    assert.deepEqual(now.rows, [R1B, R3, R4, R6, R7, R8].map(withNote));
    assert.deepEqual(first.rows, [R1, R2, R3, R4]);

    // The catalog's rows as Iceberg wrote them (jdbc.schema-version V1: iceberg_type is there).
    const db = await adminClient(dbName);
    try {
      const tables = await db.query('SELECT catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type FROM iceberg_tables');
      assert.equal(tables.rows.length, 1);
      const r = tables.rows[0];
      assert.deepEqual([r.catalog_name, r.table_namespace, r.table_name, r.metadata_location, r.iceberg_type], ['sluice', 'sluice_test', 'sample', written.jdbc.metadataLocation, 'TABLE']);
      assert.match(r.previous_metadata_location, /\/metadata\/00004-[0-9a-f-]{36}\.metadata\.json$/);
      assert.match(r.metadata_location, /\/metadata\/00005-[0-9a-f-]{36}\.metadata\.json$/);
      const props = await db.query('SELECT catalog_name, namespace, property_key, property_value FROM iceberg_namespace_properties ORDER BY property_key');
      assert.deepEqual(props.rows, [
        { catalog_name: 'sluice', namespace: 'sluice_test', property_key: 'exists', property_value: 'true' },
        { catalog_name: 'sluice', namespace: 'sluice_test', property_key: 'owner', property_value: 'sluice' },
      ]);
    } finally {
      await db.end();
    }

    // The JDBC table's directory has no version-hint.text: read from its newest NNNNN-uuid.metadata.json.
    // An older metadata file of the file-system table: the table as of that commit (v3: after append2).
    const metadataDir = join(t.location, 'metadata');
    assert.ok(!readdirSync(metadataDir).includes('version-hint.text'));
    const [fromDir, fromFile] = await Promise.all([
      read<Scan>('scan', '--table', t.location),
      read<Scan>('scan', '--table', join(fsTable, 'metadata', 'v3.metadata.json')),
    ]);
    assert.equal(fromDir.snapshotId, s.append3);
    assert.deepEqual(fromDir.rows, now.rows);
    assert.equal(fromFile.snapshotId, written.filesystem.snapshots.append2);
    assert.deepEqual(fromFile.rows, [R1, R2, R3, R4, R5, R6]);
  });

  it('fails with exit status 1 and a message for a missing table', async () => {
    const cases: [string[], RegExp][] = [
      [['scan', '--jdbc', jdbc, '--id', 'sluice_test.sample', '--catalog', 'elsewhere'], /Table does not exist: sluice_test\.sample/],
      [['scan', '--table', join(dir, 'nothing-here')], /no such table directory or metadata file/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const e = (await limit(() => run(args)).then(
          () => assert.fail(`${args.join(' ')} succeeded`),
          (err: unknown) => err,
        )) as { code: number; stderr: string };
        assert.equal(e.code, 1, e.stderr);
        assert.match(e.stderr, message);
      }),
    );
  });
});
