/**
 * The derive transform: per change event, the derived columns evaluated on each row image (with
 * `row` the image), added to `before` and `after`; dropped columns removed; the event's schema
 * header pointing at the derived schema (made once per input schema, content-addressed like the
 * sources' schemas), which goes to the processor's schema topic with the first event using it.
 */
import { createHash } from 'node:crypto';
import type { FieldSchema } from '../../core/event.ts';
import { SCHEMA_HEADER, type SchemaColumn, type SchemaRecord } from '../../core/schemas.ts';
import { writeValue } from '../../core/serde/json.ts';
import type { ProcessorContext, RecordTransform, TransformInput } from '../../registry/spec.ts';
import { outputTopic } from '../common.ts';
import { compileExpr } from '../expr/index.ts';
import { evaluate, scopeOf } from '../exprs.ts';
import { deriveError, type DeriveProcessorConfig, type DerivedType } from './spec.ts';

const COLUMN: Record<DerivedType, { connect: FieldSchema; sourceType: string }> = {
  text: { connect: { type: 'string', optional: true }, sourceType: 'text' },
  bigint: { connect: { type: 'int64', optional: true }, sourceType: 'bigint' },
  double: { connect: { type: 'double', optional: true }, sourceType: 'double precision' },
  boolean: { connect: { type: 'boolean', optional: true }, sourceType: 'boolean' },
  timestamptz: { connect: { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1 }, sourceType: 'timestamp with time zone' },
  date: { connect: { type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1 }, sourceType: 'date' },
};

const DAY_MS = 86_400_000;

/** `v` as a value of `type` in the event's JSON form, or DERIVE_VALUE. */
function typed(v: unknown, type: DerivedType, column: string, what: string): unknown {
  if (v === null || v === undefined) return null;
  const bad = () => deriveError('DERIVE_VALUE', `${what}: the column ${column} (${type}) cannot hold ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)?.slice(0, 60)}; convert it in the expression (e.g. int(...), string(...)) or declare another type in \`types\``);
  switch (type) {
    case 'text':
      return typeof v === 'string' ? v : typeof v === 'object' ? writeValue(v as never) : String(v);
    case 'bigint': {
      if (typeof v === 'bigint') return v;
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return BigInt(v.trim());
      throw bad();
    }
    case 'double': {
      const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || (typeof v === 'string' && v.trim() === '') || Number.isNaN(n)) throw bad();
      return n;
    }
    case 'boolean':
      if (typeof v !== 'boolean') throw bad();
      return v;
    case 'timestamptz': {
      const ms = typeof v === 'number' || typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? Date.parse(v) : NaN;
      if (!Number.isFinite(ms)) throw bad();
      return new Date(ms).toISOString();
    }
    case 'date': {
      if (typeof v === 'number' && Number.isInteger(v)) return v;
      const ms = typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v) ? Date.parse(`${v}T00:00:00Z`) : NaN;
      if (!Number.isFinite(ms)) throw bad();
      return Math.round(ms / DAY_MS);
    }
  }
}

export function deriveTransform(c: DeriveProcessorConfig, ctx: ProcessorContext): RecordTransform {
  const columns = Object.entries(c.columns).map(([name, src]) => ({ name, e: compileExpr(src), type: (c.types[name] ?? 'text') as DerivedType, what: `processor ${c.name} (columns.${name})` }));
  const added = new Set(columns.map((x) => x.name));
  const drop = new Set(c.drop);
  /** Input schema id → the derived schema, per output topic. */
  const derived = new Map<string, SchemaRecord>();
  const schemaFor = (input: SchemaRecord, topic: string): SchemaRecord => {
    const k = `${input.id}\n${topic}`;
    let s = derived.get(k);
    if (s) return s;
    const keyDropped = input.keyColumns.find((x) => drop.has(x));
    if (keyDropped) throw deriveError('DERIVE_DROP_KEY', `processor ${c.name}: drop names ${keyDropped}, a key column of ${input.schema}.${input.table}: its events would lose their key. Drop non-key columns only`);
    const cols: SchemaColumn[] = input.columns.filter((x) => !drop.has(x.name) && !added.has(x.name));
    for (const x of columns) cols.push({ name: x.name, sourceType: COLUMN[x.type].sourceType, optional: true, key: false, connect: COLUMN[x.type].connect });
    const body = { connector: input.connector, topic, schema: input.schema, table: input.table, keyColumns: input.keyColumns, columns: cols };
    s = { id: createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16), ...body };
    derived.set(k, s);
    return s;
  };
  const image = (env: Record<string, unknown>, row: Record<string, unknown> | null, scope: ReturnType<typeof scopeOf>): Record<string, unknown> | null => {
    if (!row) return null;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row)) if (!drop.has(k)) out[k] = v;
    const s = { value: { ...env, row }, meta: scope.meta };
    for (const x of columns) out[x.name] = typed(evaluate(x.e, s, x.what), x.type, x.name, x.what);
    return out;
  };
  return {
    apply(rec: TransformInput) {
      const topic = outputTopic(c.output, rec.topic);
      // A tombstone follows its delete: it keeps its key.
      if (rec.value === null) return [{ topic, key: rec.key, value: null, headers: rec.headers }];
      const sid = rec.headers?.[SCHEMA_HEADER];
      const input = sid ? ctx.schemaOf?.(sid) : undefined;
      if (!input) throw deriveError('DERIVE_NOT_CHANGE_EVENT', `processor ${c.name}: the record at ${rec.topic}/${rec.partition}/${rec.offset} is not a change event with a known schema (header ${SCHEMA_HEADER}${sid ? ` = ${sid}, not in the log's schema topics` : ' missing'}): point the processor's inputs at change topics`);
      const scope = scopeOf(rec);
      const env = scope.value as Record<string, unknown>;
      if (!env || typeof env !== 'object' || !('op' in env)) throw deriveError('DERIVE_NOT_CHANGE_EVENT', `processor ${c.name}: the record at ${rec.topic}/${rec.partition}/${rec.offset} has no op: it is not a change event`);
      const schema = schemaFor(input, topic);
      const out = { ...env, before: image(env, env.before as Record<string, unknown> | null, scope), after: image(env, env.after as Record<string, unknown> | null, scope) };
      return [{ topic, key: rec.key, value: writeValue(out as never), headers: { ...rec.headers, [SCHEMA_HEADER]: schema.id }, schema }];
    },
  };
}
