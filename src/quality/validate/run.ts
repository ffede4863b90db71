/**
 * One run of a validation suite over a sink's target table: the row checks of the expect
 * processor (src/quality/expectations/checks.ts) over every row, read in keyset pages by primary
 * key; referential and unique as SQL over the whole table (an anti-join, a GROUP BY); volume,
 * freshness and schema judged once for the table. Each expectation reports how many rows it
 * checked and how many failed, with up to `examples` failing keys and the reasons.
 */
import { compileCheck, shown, fmtDuration, type CheckEnv, type RecordCheck, type Subject } from '../expectations/checks.ts';
import { kindOf, type Kind } from '../expectations/config.ts';
import { compileExpr, type Compiled } from '../../processors/expr/index.ts';
import { parseIsoMs } from '../../processors/expr/time.ts';
import { numeric } from '../../processors/expr/values.ts';
import { evaluate, type Scope } from '../../processors/exprs.ts';
import type { ExpectationConfig } from '../../processors/expect/spec.ts';
import type { SchemaRecord } from '../../core/schemas.ts';
import { validationError } from './errors.ts';
import type { TableExpectation, ValidateConfig } from './spec.ts';
import { after, openTableDb, type Row, type TableDb, type TableRef } from './tables.ts';

export interface Example {
  /** The row's primary key: its value, or a mapping of its columns for a composite key (for a table-level check: null). */
  key: unknown;
  reason: string;
}

export interface ExpectationResult {
  name: string;
  check: Kind;
  /** Rows checked (1 for a table-level check: volume, freshness, schema). */
  checked: number;
  /** Rows that failed (0 or 1 for a table-level check). */
  failed: number;
  examples: Example[];
}

export interface ValidationReport {
  sink: string;
  /** The table as the database names it (`public.orders`). */
  table: string;
  rows: number;
  /** Keyset pages read. */
  pages: number;
  ok: boolean;
  expectations: ExpectationResult[];
}

export interface ValidateOptions {
  /** The schedule, for messages. */
  schedule: string;
  signal?: AbortSignal;
  now?: number;
}

const SQL_LEVEL: ReadonlySet<Kind> = new Set<Kind>(['referential', 'unique']);

/** Never consulted: the row checks a table runs keep no state (unique and referential are SQL here). */
const NO_STATE: CheckEnv = {
  state: () => {
    throw new Error('bug: a scheduled validation row check read keyed state');
  },
  clock: () => 0,
};

interface RowTracked {
  r: ExpectationResult;
  check: RecordCheck;
  when: Compiled | null;
}

/** Runs the suite over the table of `sink` (its config, as the pipeline has it). */
export async function validateTable(sink: { type: string; name: string } & Record<string, unknown>, v: ValidateConfig, o: ValidateOptions): Promise<ValidationReport> {
  const db = await openTableDb(sink);
  try {
    return await runSuite(db, sink.name, v, o);
  } finally {
    await db.close();
  }
}

async function runSuite(db: TableDb, sinkName: string, v: ValidateConfig, o: ValidateOptions): Promise<ValidationReport> {
  const now = o.now ?? Date.now();
  const t = db.ref(v.table);
  const columns = await db.columns(t);
  if (!columns.length) throw validationError('VALIDATION_TABLE', `schedule ${o.schedule}: the table ${t.display} does not exist in sink ${sinkName}'s ${db.label} database (has the sink written it yet?)`);
  const pk = await db.primaryKey(t);
  if (!pk.length) throw validationError('VALIDATION_TABLE', `schedule ${o.schedule}: the table ${t.display} has no primary key; a scheduled validation reads a table in pages by its primary key`);
  const result = (e: TableExpectation): ExpectationResult => ({ name: e.name, check: kindOf(e), checked: 0, failed: 0, examples: [] });
  const what = `schedule ${o.schedule}`;
  const all: ExpectationResult[] = [];
  const rowChecks: RowTracked[] = [];
  const later: (() => Promise<void>)[] = [];
  const fresh: { r: ExpectationResult; e: TableExpectation; f: Compiled; newest: number | null; bad: number }[] = [];
  const keyOf = (row: Row): unknown => (pk.length === 1 ? row[pk[0]] : Object.fromEntries(pk.map((k) => [k, row[k]])));
  const example = (r: ExpectationResult, key: unknown, reason: string) => {
    if (r.examples.length < v.examples) r.examples.push({ key, reason });
  };
  for (const e of v.expectations) {
    const r = result(e);
    all.push(r);
    const kind = r.check;
    if (SQL_LEVEL.has(kind)) later.push(() => (kind === 'referential' ? referential(db, t, pk, e, r, v.examples, keyOf) : unique(db, t, e, r, v.examples)));
    else if (kind === 'schema') {
      const schema = { id: 'table', schema: t.schema, table: t.name, columns: columns.map((c) => ({ name: c.name, sourceType: c.type })) } as unknown as SchemaRecord;
      const reason = compileCheck(e as ExpectationConfig, what, NO_STATE).test({ schema } as Subject);
      r.checked = 1;
      if (reason !== null) {
        r.failed = 1;
        example(r, null, reason);
      }
    } else if (kind === 'freshness') fresh.push({ r, e, f: compileExpr(e.freshness!.field!), newest: null, bad: 0 });
    else if (kind !== 'volume') rowChecks.push({ r, check: compileCheck(e as ExpectationConfig, what, NO_STATE), when: e.when ? compileExpr(e.when, { expect: 'boolean' }) : null });
  }
  // The rows, page by page: each page one statement, ordered by the primary key.
  let rows = 0;
  let pages = 0;
  let last: unknown[] | null = null;
  const order = pk.map((k) => db.qi(k)).join(', ');
  if (rowChecks.length || fresh.length || v.expectations.some((e) => e.volume)) {
    for (;;) {
      if (o.signal?.aborted) throw o.signal.reason;
      const where = last ? ` WHERE ${after(db, pk, last)}` : '';
      const page = await db.query(`SELECT * FROM ${db.sql(t)}${where} ORDER BY ${order} LIMIT ${v.chunkRows}`);
      pages++;
      for (const row of page) {
        const scope: Scope = { value: row as never, meta: { topic: t.display, key: null, timestamp: now, headers: undefined } };
        const subject: Subject = { rec: { topic: t.display, key: null, value: null, timestamp: now }, scope, row, now };
        for (const c of rowChecks) {
          if (c.when && evaluate(c.when, scope, `${what} (expectation ${c.r.name}, when)`) !== true) continue;
          c.r.checked++;
          const reason = c.check.test(subject);
          if (reason !== null) {
            c.r.failed++;
            example(c.r, keyOf(row), reason);
          }
        }
        for (const f of fresh) {
          const ms = timeOf(evaluate(f.f, scope, `${what} (expectation ${f.r.name})`));
          if (ms === undefined) f.bad++;
          else if (ms !== null && (f.newest === null || ms > f.newest)) f.newest = ms;
        }
      }
      rows += page.length;
      if (page.length < v.chunkRows) break;
      last = pk.map((k) => page[page.length - 1][k]);
    }
  }
  for (const f of fresh) {
    const fr = f.e.freshness!;
    f.r.checked = 1;
    const reason =
      f.newest === null
        ? `no row has a time in ${f.f.source}${f.bad ? ` (${f.bad} value(s) are no time: ms since the epoch or ISO-8601 text)` : ''}`
        : now - f.newest > fr.maxAge
          ? `the newest ${f.f.source} ${new Date(f.newest).toISOString()} is ${fmtDuration(now - f.newest)} old, older than maxAge ${fmtDuration(fr.maxAge)}`
          : null;
    if (reason !== null) {
      f.r.failed = 1;
      example(f.r, null, reason);
    }
  }
  for (const e of v.expectations) {
    if (!e.volume) continue;
    const r = all.find((x) => x.name === e.name)!;
    r.checked = 1;
    const { min, max } = e.volume;
    const reason = min !== undefined && rows < min ? `${rows} rows in ${t.display}, below min ${min}` : max !== undefined && rows > max ? `${rows} rows in ${t.display}, above max ${max}` : null;
    if (reason !== null) {
      r.failed = 1;
      example(r, null, reason);
    }
  }
  for (const run of later) {
    if (o.signal?.aborted) throw o.signal.reason;
    await run();
  }
  return { sink: sinkName, table: t.display, rows, pages, ok: all.every((r) => r.failed === 0), expectations: all };
}

/** A time value as ms since the epoch; null for null, undefined for a value that is no time. */
function timeOf(v: unknown): number | null | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'string') return undefined;
  // Database text: `2026-12-03 10:00:00.123+00` (PostgreSQL), `2026-12-03 10:00:00` (MySQL/DuckDB, UTC sessions).
  const iso = v.trim().replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00');
  const ms = parseIsoMs(iso) ?? parseIsoMs(iso + 'Z') ?? numeric(v);
  return ms === undefined ? undefined : Number(ms);
}

async function columnsExist(db: TableDb, t: TableRef, cols: string[], what: string): Promise<void> {
  const have = new Set((await db.columns(t)).map((c) => c.name));
  if (!have.size) throw validationError('VALIDATION_TABLE', `${what}: the table ${t.display} does not exist`);
  const missing = cols.filter((c) => !have.has(c));
  if (missing.length) throw validationError('VALIDATION_TABLE', `${what}: the table ${t.display} has no column ${missing.join(', ')}`);
}

/** Referential over tables: rows whose `field` is not null and has no row in the referenced table with that `key` (an anti-join). */
async function referential(db: TableDb, t: TableRef, pk: string[], e: TableExpectation, r: ExpectationResult, examples: number, keyOf: (row: Row) => unknown): Promise<void> {
  const ref = e.referential!;
  const what = `expectation ${e.name} (referential)`;
  const rt = db.ref(ref.table);
  await columnsExist(db, t, [ref.field], what);
  let key = ref.key;
  if (key === undefined) {
    const rpk = await db.primaryKey(rt);
    if (rpk.length !== 1) throw validationError('VALIDATION_TABLE', `${what}: ${rpk.length ? `the table ${rt.display} has a primary key of ${rpk.length} columns` : `the table ${rt.display} has no primary key`}; set referential.key to the column that ${ref.field} refers to`);
    key = rpk[0];
  }
  await columnsExist(db, rt, [key], what);
  const f = `a.${db.qi(ref.field)}`;
  const orphan = `FROM ${db.sql(t)} a WHERE ${f} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${db.sql(rt)} b WHERE b.${db.qi(key)} = ${f})`;
  const [checked] = await db.query(`SELECT COUNT(*) AS n FROM ${db.sql(t)} a WHERE ${f} IS NOT NULL`);
  const [failed] = await db.query(`SELECT COUNT(*) AS n ${orphan}`);
  r.checked = Number(checked.n);
  r.failed = Number(failed.n);
  if (r.failed && examples) {
    const cols = [...new Set([...pk, ref.field])].map((c) => `a.${db.qi(c)}`).join(', ');
    for (const row of await db.query(`SELECT ${cols} ${orphan} ORDER BY ${pk.map((k) => `a.${db.qi(k)}`).join(', ')} LIMIT ${examples}`)) {
      r.examples.push({ key: keyOf(row), reason: `${ref.field} = ${shown(row[ref.field])} has no row in ${rt.display} (${key})` });
    }
  }
}

/** Unique over tables: rows whose values of `fields` (none null) another row has too. */
async function unique(db: TableDb, t: TableRef, e: TableExpectation, r: ExpectationResult, examples: number): Promise<void> {
  const fields = e.unique!.fields;
  const what = `expectation ${e.name} (unique)`;
  await columnsExist(db, t, fields, what);
  const cols = fields.map((c) => db.qi(c)).join(', ');
  const notNull = fields.map((c) => `${db.qi(c)} IS NOT NULL`).join(' AND ');
  const [checked] = await db.query(`SELECT COUNT(*) AS n FROM ${db.sql(t)} WHERE ${notNull}`);
  const dups = `SELECT ${cols}, COUNT(*) AS n FROM ${db.sql(t)} WHERE ${notNull} GROUP BY ${cols} HAVING COUNT(*) > 1`;
  const [failed] = await db.query(`SELECT COALESCE(SUM(d.n), 0) AS n FROM (${dups}) d`);
  r.checked = Number(checked.n);
  r.failed = Number(failed.n);
  if (r.failed && examples) {
    for (const row of await db.query(`${dups} ORDER BY ${cols} LIMIT ${examples}`)) {
      const vals = fields.map((c) => `${c} = ${shown(row[c])}`).join(', ');
      r.examples.push({ key: fields.length === 1 ? row[fields[0]] : Object.fromEntries(fields.map((c) => [c, row[c]])), reason: `${vals} is on ${row.n} rows` });
    }
  }
}
