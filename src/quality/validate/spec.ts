/**
 * A schedule's `validate:` (docs/quality.md#scheduled-validation): an expectation suite over a
 * sink's target table, run on the schedule's cron inside `sluice run` (Great Expectations' job).
 * The expectations take the expect processor's grammar; the checks beyond the schema that a table
 * needs (the sink exists and is a database Sluice reads, no `dlq`, referential over columns) are
 * here, each reported at its line.
 */
import { integer, list, string, object, type Infer } from '../../config/fields.ts';
import type { CheckContext } from '../../registry/spec.ts';
import { expectation } from '../../processors/expect/spec.ts';
import { checkExpectations, KINDS } from '../expectations/config.ts';

/** The sink types whose target tables a scheduled validation reads. */
export const VALIDATED_SINKS: ReadonlySet<string> = new Set(['postgres', 'mysql', 'duckdb']);

/** A plain column name (what referential and unique compare in SQL). */
const COLUMN = /^[A-Za-z_][A-Za-z0-9_$]*$/;

export const VALIDATE = object(
  {
    sink: string({ pattern: '^[A-Za-z0-9_.-]+$', hint: 'letters, digits, _ . -', description: 'A sink of this pipeline (`postgres`, `mysql`, `duckdb`) whose database holds the table; its connection is used.' }),
    table: string({ minLength: 1, description: 'The table: `schema.table` or `table` (PostgreSQL: in the sink\'s `schema`; MySQL/MariaDB: in the sink\'s database; DuckDB: `main`).' }),
    expectations: list(expectation, {
      minItems: 1,
      type: 'list of expectations',
      description: "The suite, in the [expect processor's grammar](quality.md#expectations) over the table's rows as flat records (`amount`, not `after.amount`). Row checks (`notNull`, `range`, `regex`, `allowed`, `expr`) run on every row; `referential` (`table` another table of the same database, `key` its column, default its primary key) and `unique` (plain columns; its `window` is not used: the whole table is checked) are SQL over the whole table; `volume` bounds the row count (no `window`); `freshness` (a `field` is required) judges the newest value; `schema` the table's column types.",
    }),
    chunkRows: integer({ min: 1, description: 'Rows read per query (keyset pages by primary key; each page one short statement, no transaction held).' }).default(10_000),
    examples: integer({ min: 0, max: 1000, description: 'Failing rows kept per expectation as examples (their keys and the reasons) in the run history.' }).default(10),
  },
  { description: 'Runs an expectation suite over a sink\'s target table instead of pulling from an API ([quality.md](quality.md#scheduled-validation)).' },
);

export type ValidateConfig = Infer<typeof VALIDATE>;
export type TableExpectation = ValidateConfig['expectations'][number];

const isObj = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks a raw, schema-valid `validate` mapping at `at` against the pipeline's raw config. */
export function checkValidate(raw: unknown, at: string[], ctx: CheckContext, pipeline: { sinks?: unknown }): void {
  if (!isObj(raw)) return;
  const sinks = Array.isArray(pipeline.sinks) ? pipeline.sinks.filter(isObj) : [];
  const sink = sinks.find((s) => s.name === raw.sink);
  if (!sink) ctx.fail([...at, 'sink'], `the pipeline has no sink ${JSON.stringify(raw.sink)}${sinks.length ? ` (its sinks: ${sinks.map((s) => s.name).join(', ')})` : ' (it has no `sinks:`)'}; name the sink whose database holds the table`);
  else if (!VALIDATED_SINKS.has(String(sink.type))) ctx.fail([...at, 'sink'], `sink ${sink.name} is a ${sink.type} sink: a scheduled validation reads ${[...VALIDATED_SINKS].join(', ')} tables only (yet); validate the records before it with an expect processor instead`);
  if (typeof raw.table === 'string' && raw.table.split('.').length > 2) ctx.fail([...at, 'table'], `${raw.table}: write schema.table or table`);
  const path = [...at, 'expectations'];
  checkExpectations(raw.expectations, path, ctx);
  if (!Array.isArray(raw.expectations)) return;
  raw.expectations.forEach((e: unknown, i: number) => {
    if (!isObj(e)) return;
    const here = [...path, String(i)];
    const kind = KINDS.find((k) => e[k] !== undefined);
    if (e.action === 'dlq' || e.action === 'stop') {
      ctx.fail([...here, 'action'], `expectation ${e.name}: a scheduled validation reports failing rows (run history, metrics, a warning); there is no record to dead-letter and no stream to stop: use action warn or leave it out`);
    }
    if (e.when !== undefined && (kind === 'referential' || kind === 'unique' || kind === 'freshness' || kind === 'schema')) {
      ctx.fail([...here, 'when'], `expectation ${e.name}: \`when\` applies to row checks (notNull, range, regex, allowed, expr); ${kind} is checked over the whole table`);
    }
    if (kind === 'volume' && isObj(e.volume) && e.volume.window !== undefined) ctx.fail([...here, 'volume', 'window'], `expectation ${e.name}: over a table, volume bounds the table's row count; remove \`window\` (it is for the expect processor's streams)`);
    if (kind === 'freshness' && isObj(e.freshness) && e.freshness.field === undefined) ctx.fail([...here, 'freshness'], `expectation ${e.name}: over a table, freshness needs \`field\`: the column with each row's time (its newest value is judged)`);
    if (kind === 'referential' && isObj(e.referential)) {
      const r = e.referential;
      if (typeof r.field === 'string' && !COLUMN.test(r.field)) ctx.fail([...here, 'referential', 'field'], `expectation ${e.name}: over a table, referential compares a column in SQL: give a column name, not ${JSON.stringify(r.field)}`);
      if (typeof r.key === 'string' && !COLUMN.test(r.key)) ctx.fail([...here, 'referential', 'key'], `expectation ${e.name}: give the referenced table's column name, not ${JSON.stringify(r.key)}`);
      if (typeof r.table === 'string' && (r.table.includes('*') || r.table.startsWith('topic:') || r.table.split('.').length > 2)) ctx.fail([...here, 'referential', 'table'], `expectation ${e.name}: over a table, referential names another table of the same database (schema.table or table), not ${JSON.stringify(r.table)}`);
    }
    if (kind === 'unique' && isObj(e.unique) && Array.isArray(e.unique.fields)) {
      e.unique.fields.forEach((f: unknown, j: number) => {
        if (typeof f === 'string' && !COLUMN.test(f)) ctx.fail([...here, 'unique', 'fields', String(j)], `expectation ${e.name}: over a table, unique groups columns in SQL: give a column name, not ${JSON.stringify(f)}`);
      });
    }
  });
}
