/**
 * Debezium-compatible JSON for keys and values (the envelope Kafka Connect's JsonConverter writes
 * for Debezium's PostgreSQL connector), with or without the `schema` part. Hand-written over the
 * known envelope shape: this runs once per event on the capture path.
 */
import type { ChangeEvent, FieldSchema, TableSchema } from '../event.ts';
import { writeRow } from './json.ts';

export interface DebeziumOptions {
  schemas: boolean;
  connector: 'postgresql';
  serverName: string;
}

const SOURCE_FIELDS_PG: [string, FieldSchema['type'], boolean, string?][] = [
  ['version', 'string', false],
  ['connector', 'string', false],
  ['name', 'string', false],
  ['ts_ms', 'int64', false],
  ['snapshot', 'string', true, 'io.debezium.data.Enum'],
  ['db', 'string', false],
  ['sequence', 'string', true],
  ['schema', 'string', false],
  ['table', 'string', false],
  ['txId', 'int64', true],
  ['lsn', 'int64', true],
  ['xmin', 'int64', true],
];

function fieldSchemaJson(f: FieldSchema, field?: string): string {
  let s = `{"type":"${f.type}"`;
  if (f.type === 'array' && f.items) s += `,"items":${fieldSchemaJson(f.items)}`;
  if (f.type === 'struct' && f.fields) s += `,"fields":[${f.fields.map((x) => fieldSchemaJson(x, x.field)).join(',')}]`;
  s += `,"optional":${f.optional}`;
  if (f.name) s += `,"name":${JSON.stringify(f.name)}`;
  if (f.version !== undefined) s += `,"version":${f.version}`;
  if (f.parameters) s += `,"parameters":${JSON.stringify(f.parameters)}`;
  if (field !== undefined) s += `,"field":${JSON.stringify(field)}`;
  return s + '}';
}

function rowSchema(table: TableSchema, name: string, optional: boolean, field: string | undefined, keyOnly: boolean): string {
  const cols = table.columns.filter((c) => !keyOnly || c.key);
  return `{"type":"struct","fields":[${cols.map((c) => fieldSchemaJson(keyOnly ? { ...c.schema, optional: false } : c.schema, c.name)).join(',')}],"optional":${optional},"name":${JSON.stringify(name)}${field ? `,"field":"${field}"` : ''}}`;
}

export class DebeziumJsonSerializer {
  private readonly valueSchemas = new WeakMap<TableSchema, string>();
  private readonly keySchemas = new WeakMap<TableSchema, string>();
  private readonly sourceSchema: string;

  constructor(private readonly opts: DebeziumOptions) {
    this.sourceSchema = `{"type":"struct","fields":[${SOURCE_FIELDS_PG.map(([f, t, o, n]) =>
      fieldSchemaJson({ type: t, optional: o, ...(n ? { name: n, version: 1, parameters: { allowed: 'true,last,false,incremental' } } : {}) }, f),
    ).join(',')}],"optional":false,"name":"io.debezium.connector.${opts.connector}.Source","field":"source"}`;
  }

  /** The key: primary-key columns, or null for truncates and tables without a key. */
  key(ev: ChangeEvent): Buffer | null {
    const s = this.keyString(ev);
    return s === null ? null : Buffer.from(s);
  }

  value(ev: ChangeEvent): Buffer {
    return Buffer.from(this.valueString(ev));
  }

  keyString(ev: ChangeEvent): string | null {
    if (!ev.key) return null;
    const payload = writeRow(ev.key);
    if (!this.opts.schemas) return payload;
    let schema = this.keySchemas.get(ev.table);
    if (!schema) {
      schema = rowSchema(ev.table, `${ev.topic}.Key`, false, undefined, true);
      this.keySchemas.set(ev.table, schema);
    }
    return `{"schema":${schema},"payload":${payload}}`;
  }

  valueString(ev: ChangeEvent): string {
    const s = ev.source;
    const src =
      `{"version":"${s.version}","connector":"${s.connector}","name":${JSON.stringify(s.name)},"ts_ms":${s.ts_ms},"snapshot":"${s.snapshot}","db":${JSON.stringify(s.db)},` +
      `"sequence":${s.sequence == null ? 'null' : JSON.stringify(s.sequence)},"schema":${JSON.stringify(s.schema)},"table":${JSON.stringify(s.table)},` +
      `"txId":${s.txId ?? 'null'},"lsn":${s.lsn ?? 'null'},"xmin":${s.xmin ?? 'null'}}`;
    const t = ev.transaction;
    const tx = t ? `{"id":${JSON.stringify(t.id)},"total_order":${t.total_order},"data_collection_order":${t.data_collection_order}}` : 'null';
    const payload = `{"before":${writeRow(ev.before)},"after":${writeRow(ev.after)},"source":${src},"op":"${ev.op}","ts_ms":${ev.ts_ms},"transaction":${tx}}`;
    if (!this.opts.schemas) return payload;
    let schema = this.valueSchemas.get(ev.table);
    if (!schema) {
      const row = (field: string) => rowSchema(ev.table, `${ev.topic}.Value`, true, field, false);
      schema =
        `{"type":"struct","fields":[${row('before')},${row('after')},${this.sourceSchema},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},` +
        `{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}],` +
        `"optional":false,"name":${JSON.stringify(`${ev.topic}.Envelope`)},"version":1}`;
      this.valueSchemas.set(ev.table, schema);
    }
    return `{"schema":${schema},"payload":${payload}}`;
  }
}
