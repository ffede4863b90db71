/**
 * The Delta Spark reference reader (scripts/delta-spark.sh, Delta Spark in Spark local mode) checked against a
 * table Spark itself wrote (`sql` mode): a Change Data Feed table made by CREATE TABLE … TBLPROPERTIES
 * (delta.enableChangeDataFeed = true), then inserts, updates and deletes, one commit each, over two Spark
 * sessions (the second finds the table again by its directory in the warehouse).
 *
 * The expected rows are written out here from the statements, not taken from Spark: a model of the table is
 * applied statement by statement, giving the rows at each version and the changes each commit made (insert,
 * update_preimage and update_postimage of every row an UPDATE matched, delete). `cdf` must give exactly those
 * changes, at the versions the statements made (DESCRIBE HISTORY names the operations), in the reader's
 * documented order; `snapshot` at each version must give the model's rows, and the same JSON as Delta Kernel's
 * reader (scripts/delta-reader.sh), schema and values alike. Values are rendered as both readers document:
 * long and decimal as text, timestamps as microseconds since the epoch (text), dates as ISO days.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const SPARK = new URL('../../scripts/delta-spark.sh', import.meta.url).pathname;
const KERNEL = new URL('../../scripts/delta-reader.sh', import.meta.url).pathname;

type Row = Record<string, unknown>;
interface Field {
  name: string;
  type: string;
  nullable: boolean;
}
interface Snapshot {
  version: number;
  schema: Field[];
  partitionColumns: string[];
  rows: Row[];
}
interface Changes {
  schema: Field[];
  rows: Row[];
}
interface SqlResults {
  results: { statement: string; schema: Field[]; rows: Row[] }[];
}
interface Item {
  id: string;
  name: string | null;
  qty: number | null;
  price: string | null;
  at: string | null;
  day: string | null;
}
type ChangeType = 'insert' | 'update_preimage' | 'update_postimage' | 'delete';
interface Change extends Item {
  _change_type: ChangeType;
  _commit_version: string;
}

/** Microseconds since the epoch of an ISO instant with up to 6 fractional digits (UTC), as text. */
function micros(iso: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(iso);
  assert.ok(m, `not an ISO instant: ${iso}`);
  return String(BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt((m[2] ?? '').padEnd(6, '0')));
}

/** Decimal text (scale 2) times two, exactly. */
const double2 = (price: string | null): string | null => {
  if (price === null) return null;
  const cents = BigInt(price.replace('.', '')) * 2n;
  const neg = cents < 0n;
  const s = (neg ? -cents : cents).toString().padStart(3, '0');
  return `${neg ? '-' : ''}${s.slice(0, -2)}.${s.slice(-2)}`;
};

const CREATE = `CREATE TABLE items (id BIGINT NOT NULL, name STRING, qty INT, price DECIMAL(10,2), at TIMESTAMP, day DATE)
  USING delta TBLPROPERTIES (delta.enableChangeDataFeed = true)`;

/** One statement, one commit: its SQL, the operation DESCRIBE HISTORY names, and what it does to the model. */
interface Step {
  sql: string;
  operation: string;
  apply: (rows: Item[]) => { rows: Item[]; changes: { type: ChangeType; row: Item }[] };
}

const insert = (sql: string, items: Item[]): Step => ({
  sql,
  operation: 'WRITE',
  apply: (rows) => ({ rows: [...rows, ...items], changes: items.map((row) => ({ type: 'insert', row })) }),
});
const update = (sql: string, where: (r: Item) => boolean, set: (r: Item) => Item): Step => ({
  sql,
  operation: 'UPDATE',
  apply: (rows) => ({
    rows: rows.map((r) => (where(r) ? set(r) : r)),
    changes: rows.filter(where).flatMap((r) => [
      { type: 'update_preimage' as const, row: r },
      { type: 'update_postimage' as const, row: set(r) },
    ]),
  }),
});
const remove = (sql: string, where: (r: Item) => boolean): Step => ({
  sql,
  operation: 'DELETE',
  apply: (rows) => ({ rows: rows.filter((r) => !where(r)), changes: rows.filter(where).map((row) => ({ type: 'delete', row })) }),
});

// Version 0 is the CREATE TABLE; step i makes version i + 1. The first session runs FIRST steps, the second the rest.
const FIRST = 3;
const STEPS: Step[] = [
  insert(
    `INSERT INTO items VALUES
      (1, 'one', 10, 1.50, TIMESTAMP'2026-01-02 03:04:05.123456', DATE'2026-01-02'),
      (2, 'two "quoted"\\\\ ü', 20, 12345678.90, TIMESTAMP'1969-12-31 23:59:59.999999', DATE'1969-12-31'),
      (3, 'three', NULL, NULL, NULL, NULL)`,
    [
      { id: '1', name: 'one', qty: 10, price: '1.50', at: micros('2026-01-02T03:04:05.123456Z'), day: '2026-01-02' },
      { id: '2', name: 'two "quoted"\\ ü', qty: 20, price: '12345678.90', at: '-1', day: '1969-12-31' },
      { id: '3', name: 'three', qty: null, price: null, at: null, day: null },
    ],
  ),
  update(`UPDATE items SET qty = qty + 1, name = 'two!' WHERE id = 2`, (r) => r.id === '2', (r) => ({ ...r, qty: r.qty! + 1, name: 'two!' })),
  remove(`DELETE FROM items WHERE id = 1`, (r) => r.id === '1'),
  insert(
    `INSERT INTO items VALUES
      (4, 'four', 40, 0.04, TIMESTAMP'2026-06-30 23:59:59', DATE'2026-06-30'),
      (5, NULL, -5, -99999.99, TIMESTAMP'2000-02-29 12:00:00.000001', DATE'2000-02-29')`,
    [
      { id: '4', name: 'four', qty: 40, price: '0.04', at: micros('2026-06-30T23:59:59Z'), day: '2026-06-30' },
      { id: '5', name: null, qty: -5, price: '-99999.99', at: micros('2000-02-29T12:00:00.000001Z'), day: '2000-02-29' },
    ],
  ),
  // Matches three rows, one of them (3) with a NULL price that stays NULL: still an update of that row.
  update(`UPDATE items SET price = price * 2 WHERE id >= 3`, (r) => Number(r.id) >= 3, (r) => ({ ...r, price: double2(r.price) })),
  remove(`DELETE FROM items WHERE qty IS NULL`, (r) => r.qty === null),
];

/** The model's rows at each version (index = version) and the changes each version made. */
function model(): { states: Item[][]; changes: Change[] } {
  const states: Item[][] = [[]];
  const changes: Change[] = [];
  STEPS.forEach((step, i) => {
    const { rows, changes: made } = step.apply(states[i]);
    states.push(rows);
    for (const c of made) changes.push({ ...c.row, _change_type: c.type, _commit_version: String(i + 1) });
  });
  return { states, changes };
}

const RANK: ChangeType[] = ['insert', 'update_preimage', 'update_postimage', 'delete'];
/** The reader's documented order: version, change type (insert, preimage, postimage, delete), then the columns (id first, unique here). */
const cdfOrder = (a: Change, b: Change): number =>
  Number(a._commit_version) - Number(b._commit_version) || RANK.indexOf(a._change_type) - RANK.indexOf(b._change_type) || Number(a.id) - Number(b.id);

const SCHEMA: Field[] = [
  { name: 'id', type: 'long', nullable: false },
  { name: 'name', type: 'string', nullable: true },
  { name: 'qty', type: 'integer', nullable: true },
  { name: 'price', type: 'decimal(10,2)', nullable: true },
  { name: 'at', type: 'timestamp', nullable: true },
  { name: 'day', type: 'date', nullable: true },
];

/** Runs a reader script; its stdout, or a rejection with its exit status and stderr. */
function run(script: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function json<T>(script: string, ...args: string[]): Promise<T> {
  const r = await run(script, args);
  if (r.status !== 0) throw new Error(`bash ${script} ${args.join(' ')} exited ${r.status}:\n${r.stderr.slice(-4000)}`);
  return JSON.parse(r.stdout) as T;
}

/** At most n of the given tasks at once (each reader call is a JVM; the machine's cores are few). */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

const byId = (rows: Row[]): Row[] => [...rows].sort((a, b) => Number(a.id) - Number(b.id));

describe('Delta Spark reference reader (scripts/delta-spark.sh) on a Change Data Feed table Spark wrote', { timeout: 900_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-delta-spark-reader-'));
  const warehouse = join(dir, 'warehouse');
  const table = join(warehouse, 'items');
  const { states, changes } = model();
  const latest = STEPS.length;
  let history: Row[];
  const limit = limiter(2);
  const reads = new Map<string, Promise<unknown>>();
  /** The JSON of one reader call (each distinct call runs once; two run at once). */
  const read = <T>(script: string, ...args: string[]): Promise<T> => {
    const key = JSON.stringify([script, args]);
    if (!reads.has(key)) {
      const p = limit(() => json<T>(script, ...args));
      p.catch(() => {});
      reads.set(key, p);
    }
    return reads.get(key) as Promise<T>;
  };

  before(async () => {
    // Fetching the jars (Maven) and making the class-data sharing archive are one-time costs, not the reads'.
    for (const script of [SPARK, KERNEL]) {
      const fetched = spawnSync('bash', [script, '--fetch'], { encoding: 'utf8', timeout: 600_000 });
      assert.equal(fetched.status, 0, `${script} --fetch failed:\n${fetched.stderr}`);
    }
    const t0 = Date.now();
    const first = await json<SqlResults>(SPARK, 'sql', warehouse, CREATE, ...STEPS.slice(0, FIRST).map((s) => s.sql));
    assert.equal(first.results.length, 1 + FIRST);
    // A second session: the table is found again by its directory in the warehouse.
    const second = await json<SqlResults>(SPARK, 'sql', warehouse, ...STEPS.slice(FIRST).map((s) => s.sql), 'DESCRIBE HISTORY items');
    history = second.results.at(-1)!.rows;
    console.log(`Spark wrote ${latest + 1} versions in two sessions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Start every read now, two at a time; each test awaits its own.
    read(SPARK, 'cdf', table, '--from', '0');
    read(SPARK, 'cdf', table, '--from', '2', '--to', '4');
    for (let v = 0; v <= latest; v++) {
      read(SPARK, 'snapshot', table, '--version', String(v));
      read(KERNEL, table, '--version', String(v));
    }
    read(SPARK, 'snapshot', table);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--versions names Spark 4 and Delta Spark', () => {
    const r = spawnSync('bash', [SPARK, '--versions'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const v = JSON.parse(r.stdout) as { spark: string; delta: string };
    assert.match(v.spark, /^4\.\d+\.\d+$/);
    assert.match(v.delta, /^\d+\.\d+\.\d+$/);
  });

  it('each statement made one commit, of the operation it names', () => {
    const ops = byVersion(history).map((h) => [h.version, h.operation]);
    assert.deepEqual(ops, [['0', 'CREATE TABLE'], ...STEPS.map((s, i) => [String(i + 1), s.operation])]);
  });

  it('cdf from version 0: every change as the statements made it, at their versions, in the documented order', async () => {
    const got = await read<Changes>(SPARK, 'cdf', table, '--from', '0');
    assert.deepEqual(got.schema, [
      ...SCHEMA,
      { name: '_change_type', type: 'string', nullable: true },
      { name: '_commit_version', type: 'long', nullable: true },
      { name: '_commit_timestamp', type: 'timestamp', nullable: true },
    ]);
    const want = [...changes].sort(cdfOrder);
    assert.deepEqual(
      got.rows.map(({ _commit_timestamp, ...r }) => r),
      want,
    );
    // Each commit's timestamp is the one DESCRIBE HISTORY gives that version.
    const at = new Map(history.map((h) => [h.version as string, h.timestamp as string]));
    for (const r of got.rows) {
      assert.match(r._commit_timestamp as string, /^\d+$/);
      assert.equal(r._commit_timestamp, at.get(r._commit_version as string), `the commit timestamp of version ${r._commit_version}`);
    }
  });

  it('cdf --from 2 --to 4: only those versions', async () => {
    const got = await read<Changes>(SPARK, 'cdf', table, '--from', '2', '--to', '4');
    const want = changes.filter((c) => Number(c._commit_version) >= 2 && Number(c._commit_version) <= 4).sort(cdfOrder);
    assert.deepEqual(
      got.rows.map(({ _commit_timestamp, ...r }) => r),
      want,
    );
    assert.deepEqual(new Set(got.rows.map((r) => r._change_type)), new Set(['update_preimage', 'update_postimage', 'delete', 'insert']));
  });

  it('snapshot at each version: the rows the statements left, and the same JSON as Delta Kernel', async () => {
    for (let v = 0; v <= latest; v++) {
      const spark = await read<Snapshot>(SPARK, 'snapshot', table, '--version', String(v));
      assert.equal(spark.version, v);
      assert.deepEqual(spark.schema, SCHEMA, `schema at version ${v}`);
      assert.deepEqual(spark.partitionColumns, []);
      assert.deepEqual(spark.rows, byId(states[v] as unknown as Row[]), `rows at version ${v}`);
      const kernel = await read<Snapshot>(KERNEL, table, '--version', String(v));
      assert.deepEqual({ ...spark, rows: byId(spark.rows) }, { ...kernel, rows: byId(kernel.rows) }, `Spark and Kernel at version ${v}`);
    }
    const now = await read<Snapshot>(SPARK, 'snapshot', table);
    assert.equal(now.version, latest);
    assert.deepEqual(now.rows, byId(states[latest] as unknown as Row[]));
  });

  it('an error is a message on stderr and exit status 1, nothing on stdout', async () => {
    const past = await run(SPARK, ['cdf', table, '--from', String(latest + 1)]);
    assert.equal(past.status, 1, past.stderr);
    assert.equal(past.stdout, '');
    assert.match(past.stderr, /DeltaSparkRead: .*version/i);
    const usage = await run(SPARK, ['cdf', table]);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /cdf wants --from N/);
  });
});

function byVersion(history: Row[]): Row[] {
  return [...history].sort((a, b) => Number(a.version) - Number(b.version));
}
