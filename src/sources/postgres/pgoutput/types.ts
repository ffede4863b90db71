/**
 * Type mapping: for each column of a relation, the Debezium/Kafka Connect field schema and the
 * converter from pgoutput's text (or binary) value. Built-in types are known by OID; enums,
 * domains, arrays and extension types are resolved from pg_type once per OID (TypeCatalog).
 * The table is documented in docs/connectors/postgres-types.md.
 */
import type pg from 'pg';
import { SluiceError } from '../../../core/errors.ts';
import type { ColumnInfo, FieldSchema, Row, TableSchema, Value } from '../../../core/event.ts';
import { UNAVAILABLE_VALUE } from '../../../core/event.ts';
import * as c from './convert.ts';
import type { RelationMessage, TupleData } from './messages.ts';
import { pgError } from '../errors.ts';

interface TypeRow {
  oid: number;
  typname: string;
  nspname: string;
  typtype: string;
  typcategory: string;
  typelem: number;
  typbasetype: number;
  typdelim: string;
  labels: string | null;
}

export interface ColumnMapping {
  schema: Omit<FieldSchema, 'optional'>;
  text: c.TextConverter;
  binary?: c.BinaryConverter;
}

const S = (type: FieldSchema['type'], name?: string, parameters?: Record<string, string>): Omit<FieldSchema, 'optional'> => ({
  type,
  ...(name ? { name, version: 1 } : {}),
  ...(parameters ? { parameters } : {}),
});

/** Built-in types by OID. */
const BUILTIN: Record<number, ColumnMapping> = {
  16: { schema: S('boolean'), text: c.textToBool, binary: c.binBool },
  17: { schema: S('bytes'), text: c.textToBytea, binary: c.binBytea },
  18: { schema: S('string'), text: c.textToString, binary: c.binText },
  19: { schema: S('string'), text: c.textToString, binary: c.binText },
  20: { schema: S('int64'), text: c.textToBigInt, binary: c.binInt8 },
  21: { schema: S('int16'), text: c.textToInt, binary: c.binInt2 },
  23: { schema: S('int32'), text: c.textToInt, binary: c.binInt4 },
  25: { schema: S('string'), text: c.textToString, binary: c.binText },
  26: { schema: S('int64'), text: c.textToInt, binary: c.binUInt4 },
  114: { schema: S('string', 'io.debezium.data.Json'), text: c.textToString, binary: c.binText },
  142: { schema: S('string', 'io.debezium.data.Xml'), text: c.textToString },
  650: { schema: S('string'), text: c.textToString },
  700: { schema: S('float'), text: c.textToFloat, binary: c.binFloat4 },
  701: { schema: S('double'), text: c.textToFloat, binary: c.binFloat8 },
  774: { schema: S('string'), text: c.textToString },
  790: { schema: S('string'), text: c.textToString },
  829: { schema: S('string'), text: c.textToString },
  869: { schema: S('string'), text: c.textToString },
  1042: { schema: S('string'), text: c.textToString, binary: c.binText },
  1043: { schema: S('string'), text: c.textToString, binary: c.binText },
  1082: { schema: S('int32', 'io.debezium.time.Date'), text: c.textToDate, binary: c.binDate },
  1083: { schema: S('int64', 'io.debezium.time.MicroTime'), text: c.textToMicroTime, binary: c.binMicroTime },
  1114: { schema: S('int64', 'io.debezium.time.MicroTimestamp'), text: c.textToMicroTimestamp, binary: c.binMicroTimestamp },
  1184: { schema: S('string', 'io.debezium.time.ZonedTimestamp'), text: c.textToZonedTimestamp, binary: c.binZonedTimestamp },
  1266: { schema: S('string', 'io.debezium.time.ZonedTime'), text: c.textToZonedTime },
  // varbit as its text ('10101'): bytes would lose the length (leading zero bits) of each value.
  1562: { schema: S('string'), text: c.textToString },
  1700: { schema: S('string'), text: c.textToString, binary: c.binNumeric },
  2950: { schema: S('string', 'io.debezium.data.Uuid'), text: c.textToString, binary: c.binUuid },
  3802: { schema: S('string', 'io.debezium.data.Json'), text: c.textToString, binary: c.binJsonb },
};

/** Type categories whose text output is a faithful string value. */
const STRING_CATEGORIES = new Set(['S', 'G', 'R', 'I', 'T', 'D', 'N', 'C', 'B']);

/** timestamptz(p), p < 6: Debezium writes p fraction digits (none for 0) where timestamptz writes six. */
const ZONED_TIMESTAMP_P: ColumnMapping[] = [0, 1, 2, 3, 4, 5].map((p) => {
  const cut = (v: Value): Value => (typeof v === 'string' && v.endsWith('Z') && v.charCodeAt(v.length - 8) === 46 ? (p === 0 ? v.slice(0, -8) : v.slice(0, p - 7)) + 'Z' : v);
  return { schema: S('string', 'io.debezium.time.ZonedTimestamp'), text: (s: string) => cut(c.textToZonedTimestamp(s)), binary: (b: Buffer) => cut(c.binZonedTimestamp(b)) };
});

export interface RelationSchema {
  relationId: number;
  table: TableSchema;
  /** Converts a tuple; with `keyOnly` (old key tuple) only key columns are returned. */
  decodeTuple(t: TupleData, keyOnly?: boolean): Row;
  /** Replaces unchanged-TOAST placeholders in `after` with the values in `before`, when it has them. */
  fillUnchanged(after: Row, before: Row): void;
  /** Converts one snapshot row of text values, in column order. */
  decodeTextRow(values: (string | null)[]): Row;
}

/** How interval values are written (`source.intervalHandling`). */
export type IntervalHandling = 'string' | 'numeric';

const INTERVAL: Record<IntervalHandling, ColumnMapping> = {
  // ISO 8601, exact: years, months, days and time apart (Debezium's interval.handling.mode=string).
  string: { schema: S('string', 'io.debezium.time.Interval'), text: c.textToIsoInterval },
  // Microseconds, a month as 30.4375 days (Debezium's default, numeric).
  numeric: { schema: S('int64', 'io.debezium.time.MicroDuration'), text: c.textToMicroDuration },
};

export class TypeCatalog {
  private readonly types = new Map<number, TypeRow>();
  constructor(
    private readonly client: pg.Client,
    private readonly binary = false,
    private readonly intervals: IntervalHandling = 'string',
  ) {}

  private async loadTypes(oids: number[]): Promise<void> {
    let missing = oids.filter((o) => !BUILTIN[o] && o !== 1186 && !this.types.has(o));
    while (missing.length > 0) {
      const r = await this.client.query(
        `SELECT t.oid::int AS oid, t.typname, n.nspname, t.typtype, t.typcategory, t.typelem::int AS typelem, t.typbasetype::int AS typbasetype, t.typdelim,
                (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = ANY($1::oid[])`,
        [missing],
      );
      for (const row of r.rows as TypeRow[]) this.types.set(Number(row.oid), { ...row, oid: Number(row.oid), typelem: Number(row.typelem), typbasetype: Number(row.typbasetype) });
      const next = new Set<number>();
      for (const row of r.rows as TypeRow[]) {
        for (const dep of [Number(row.typelem), Number(row.typbasetype)]) if (dep && !BUILTIN[dep] && dep !== 1186 && !this.types.has(dep)) next.add(dep);
      }
      missing = [...next];
    }
  }

  /** The mapping for a type OID, or an error naming the column. */
  mapping(oid: number, typmod: number, where: string): ColumnMapping {
    if (oid === 1184 && typmod >= 0 && typmod < 6) return ZONED_TIMESTAMP_P[typmod];
    if (oid === 1560) {
      // bit(n): bit(1) is a boolean, longer ones bytes.
      return typmod === 1 ? { schema: S('boolean'), text: c.textToBit1 } : { schema: S('bytes', 'io.debezium.data.Bits', { length: String(typmod) }), text: c.textToBits };
    }
    if (oid === 1186) return INTERVAL[this.intervals];
    const b = BUILTIN[oid];
    if (b) return b;
    const t = this.types.get(oid);
    if (!t) throw unsupported(where, `type oid ${oid}`);
    if (t.typtype === 'd') return this.mapping(t.typbasetype, typmod, where);
    if (t.typtype === 'e') {
      return { schema: S('string', 'io.debezium.data.Enum', { allowed: t.labels ?? '' }), text: c.textToString, binary: c.binText };
    }
    if (t.typcategory === 'A' && t.typelem) {
      const el = this.mapping(t.typelem, -1, where);
      const delim = t.typdelim || ',';
      return { schema: { type: 'array', items: { ...el.schema, optional: true } } as Omit<FieldSchema, 'optional'>, text: (s) => c.parseArray(s, el.text, delim) };
    }
    if (STRING_CATEGORIES.has(t.typcategory) || t.typname === 'citext') return { schema: S('string'), text: c.textToString };
    throw unsupported(where, `${t.nspname}.${t.typname}`);
  }

  /** Builds the schema and converters for a Relation message. */
  async relationSchema(rel: RelationMessage): Promise<RelationSchema> {
    await this.loadTypes(rel.columns.map((col) => col.typeOid));
    // The type names come from the message's type OIDs and modifiers, never from the table's
    // current columns: a Relation message decoded after a later ALTER TABLE … TYPE committed still
    // describes the columns as they were when the change was written. (Nullability, key and
    // default are not in the message and are read from the catalog as it stands.)
    const [meta, names] = await Promise.all([
      this.client.query(
        `SELECT a.attname, a.attnotnull,
                (SELECT array_position(i.indkey::int2[], a.attnum) FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary) AS pkpos,
                (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum) AS def
           FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
        [rel.relationId],
      ),
      this.client.query(`SELECT format_type(t.oid, t.typmod) AS typename FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(oid, typmod, n) ORDER BY t.n`, [
        rel.columns.map((col) => col.typeOid),
        rel.columns.map((col) => col.typeModifier),
      ]),
    ]);
    const byName = new Map<string, { attnotnull: boolean; pk: boolean; pkpos: number; def: string | null }>(
      meta.rows.map((r: any) => [r.attname, { attnotnull: r.attnotnull === true || r.attnotnull === 't', pk: r.pkpos != null, pkpos: Number(r.pkpos ?? 0), def: r.def ?? null }]),
    );
    const typeNames: string[] = names.rows.map((r: any) => r.typename);
    const hasPk = [...byName.values()].some((m) => m.pk);
    const columns: ColumnInfo[] = [];
    const text: c.TextConverter[] = [];
    const bin: (c.BinaryConverter | undefined)[] = [];
    for (const [i, col] of rel.columns.entries()) {
      const where = `${rel.namespace}.${rel.name}.${col.name}`;
      const typename = typeNames[i] ?? String(col.typeOid);
      const m = this.mapping(col.typeOid, col.typeModifier, where);
      const info = byName.get(col.name);
      const optional = !(info?.attnotnull ?? false);
      // The event key is the primary key; without one, the replica identity index (not FULL).
      const key = hasPk ? info?.pk === true : rel.replicaIdentity !== 'f' && col.key;
      const schema = { ...m.schema, optional } as FieldSchema;
      // The column default, as Debezium gives it in the Connect schema (literal defaults only).
      const def = info?.def ? defaultValue(info.def, m.text) : undefined;
      if (def !== undefined) schema.default = def;
      columns.push({ name: col.name, typeOid: col.typeOid, typeName: typename, typeModifier: col.typeModifier, key, optional, schema });
      text.push(m.text);
      if (this.binary && !m.binary) {
        throw pgError('PG_BINARY_UNSUPPORTED_TYPE', `column ${where} has type ${typename}, which Sluice cannot read in binary mode. Set source.binary: false.`);
      }
      bin.push(m.binary);
    }
    // Key columns in key order (a composite primary key's declared order), as Debezium's key.
    const keyed = columns.filter((x) => x.key);
    if (hasPk) keyed.sort((a, b) => byName.get(a.name)!.pkpos - byName.get(b.name)!.pkpos);
    const table: TableSchema = { schema: rel.namespace, table: rel.name, columns, keyColumns: keyed.map((x) => x.name) };
    return makeRelationSchema(rel.relationId, table, text, bin);
  }

  /** Schema of a table by name (for the snapshot, which has no Relation message). */
  async tableSchemaByName(schema: string, table: string): Promise<RelationSchema> {
    const r = await this.client.query(
      `SELECT c.oid::int AS oid, c.relreplident AS ident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
      [schema, table],
    );
    if (r.rowCount === 0) throw pgError('PG_TABLE_MISSING', `table ${schema}.${table} does not exist`);
    const oid = Number(r.rows[0].oid);
    const cols = await this.client.query(
      `SELECT a.attname AS name, a.atttypid::int AS oid, a.atttypmod AS typmod,
              COALESCE((SELECT a.attnum = ANY(i.indkey) FROM pg_index i WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident) ORDER BY i.indisprimary DESC LIMIT 1), false) AS key
         FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [oid],
    );
    const rel: RelationMessage = {
      type: 'relation',
      relationId: oid,
      namespace: schema,
      name: table,
      replicaIdentity: r.rows[0].ident,
      columns: cols.rows.map((x: any) => ({ name: x.name, typeOid: Number(x.oid), typeModifier: Number(x.typmod), key: x.key === true || x.key === 't' })),
    };
    return this.relationSchema(rel);
  }
}

/**
 * The value of a column default that is a literal (`'x'::text`, `42`, `(-1)`, `true`,
 * `'2024-01-01'::date`), read with the column's converter; undefined for anything else (functions,
 * sequences, NULL, expressions), which Debezium leaves out of the schema too.
 */
export function defaultValue(expr: string, text: c.TextConverter): Value | undefined {
  let lit: string | null = null;
  const quoted = /^'((?:[^']|'')*)'(?:::[\w\s".]+(?:\(\d+(?:,\d+)?\))?(?:\[\])?)?$/.exec(expr);
  if (quoted) lit = quoted[1].replace(/''/g, "'");
  else {
    const num = /^\(?(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\)?(?:::[\w\s]+)?$/.exec(expr);
    if (num) lit = num[1];
    else if (expr === 'true' || expr === 'false') lit = expr;
  }
  if (lit === null) return undefined;
  try {
    const v = text(lit);
    return typeof v === 'number' && !Number.isFinite(v) ? undefined : v;
  } catch {
    return undefined;
  }
}

/**
 * What Debezium puts in `before` for a column PostgreSQL did not send (a delete's or key change's
 * old row under the default replica identity carries only the key): null, but for a NOT NULL
 * column (Connect allows no null there) its default, else the zero of its type.
 */
function missingValue(col: ColumnInfo): Value {
  const s = col.schema;
  if (s.optional) return null;
  if (s.default !== undefined && s.default !== null) return s.default as Value;
  switch (s.type) {
    case 'boolean':
      return false;
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'array':
      return [];
    case 'int64':
      return col.typeOid === 20 ? 0n : 0;
    case 'struct':
    case 'map':
      return null;
    default:
      return 0;
  }
}

function unsupported(where: string, type: string): SluiceError {
  return pgError(
    'PG_UNSUPPORTED_TYPE',
    `column ${where} has type ${type}, which Sluice cannot map to a change-event field. Exclude the table from source.tables, or add a generated column that casts it to text (ALTER TABLE … ADD COLUMN x_text text GENERATED ALWAYS AS (x::text) STORED) and capture that, or open an issue naming the type.`,
  );
}

/** PG_BAD_VALUE naming the table, column and value, with what to do. */
function badValue(table: TableSchema, i: number, e: unknown): SluiceError {
  const col = table.columns[i];
  return pgError(
    'PG_BAD_VALUE',
    `cannot read the value of column ${col.name} (${col.typeName}) of table ${table.schema}.${table.table}: ${(e as Error).message}. Change or remove that value in the source, or exclude the table from source.tables (or capture a generated column holding the value as text: ALTER TABLE … ADD COLUMN ${col.name}_text text GENERATED ALWAYS AS (${col.name}::text) STORED), then restart`,
  );
}

function makeRelationSchema(relationId: number, table: TableSchema, text: c.TextConverter[], bin: (c.BinaryConverter | undefined)[]): RelationSchema {
  const names = table.columns.map((x) => x.name);
  const keyIdx = table.columns.map((x, i) => (x.key ? i : -1)).filter((i) => i >= 0);
  const isKey = table.columns.map((x) => x.key);
  const missing = table.columns.map(missingValue);
  const n = names.length;
  const convert = (i: number, t: TupleData): Value => {
    const k = t.cols[i * 3];
    if (k === 0x74) {
      const start = t.cols[i * 3 + 1];
      try {
        return text[i](t.buf.toString('utf8', start, start + t.cols[i * 3 + 2]));
      } catch (e) {
        throw badValue(table, i, e);
      }
    }
    if (k === 0x62) {
      try {
        return bin[i]!(t.buf.subarray(t.cols[i * 3 + 1], t.cols[i * 3 + 1] + t.cols[i * 3 + 2]));
      } catch (e) {
        throw badValue(table, i, e);
      }
    }
    if (k === 0x75) return UNAVAILABLE_VALUE;
    return null;
  };
  return {
    relationId,
    table,
    decodeTuple(t: TupleData, keyOnly = false): Row {
      const row: Row = {};
      if (keyOnly && keyIdx.length > 0) {
        // The old key: every column, the others filled as Debezium fills them.
        for (let i = 0; i < n; i++) row[names[i]] = isKey[i] ? convert(i, t) : missing[i];
        return row;
      }
      const m = Math.min(n, t.n);
      for (let i = 0; i < m; i++) row[names[i]] = convert(i, t);
      return row;
    },
    fillUnchanged(after: Row, before: Row): void {
      for (const k of names) if (after[k] === UNAVAILABLE_VALUE && before[k] !== undefined && before[k] !== UNAVAILABLE_VALUE) after[k] = before[k];
    },
    decodeTextRow(values: (string | null)[]): Row {
      const row: Row = {};
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null) row[names[i]] = null;
        else {
          try {
            row[names[i]] = text[i](v);
          } catch (e) {
            throw badValue(table, i, e);
          }
        }
      }
      return row;
    },
  };
}
