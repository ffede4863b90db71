/**
 * The avro processor's transform: per change event, its table's registered key and value schemas
 * (derived from the event's schema record, registered once per schema record and output topic),
 * then the key and value encoded with them and framed with their ids. A tombstone keeps a null
 * value; its key is framed with the key schema of its table's last event (the delete before it).
 *
 * Registry failures are not the record's fault: they are marked `halt`, so the task stops (or, for
 * a registry that does not answer, retries) rather than dead-lettering every record after them.
 */
import { AvroCodec } from '../../core/avro/index.ts';
import type { FieldSchema } from '../../core/event.ts';
import { SCHEMA_HEADER, type SchemaRecord } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import type { ProcessorContext, RecordTransform, TransformInput } from '../../registry/spec.ts';
import { SchemaRegistryClient } from '../../schema-registry/client.ts';
import { encodeFramed, jsonToAvro, registerCdcSchemas, type RegisteredCdcSchemas } from '../../schema-registry/wire.ts';
import { outputTopic } from '../common.ts';
import { avroProcessorError, type AvroProcessorConfig } from './spec.ts';

interface Writer {
  schemas: RegisteredCdcSchemas;
  key: AvroCodec | null;
  value: AvroCodec;
}

/** The `source` block schema of events of `connector` (from the source specs; undefined: the common fields). */
async function sourceSchemaOf(connector: string): Promise<FieldSchema | undefined> {
  const { SOURCES } = await import('../../components.ts');
  for (const s of SOURCES) if (s.debezium.connector === connector) return s.debezium.schemaFor?.(connector) ?? s.debezium.sourceSchema;
  for (const s of SOURCES) {
    const f = s.debezium.schemaFor?.(connector);
    if (f?.name === `io.debezium.connector.${connector}.Source`) return f;
  }
  return undefined;
}

/** Marks an error of the registry as the processor's, not the record's (the task stops or retries). */
function halt(e: unknown): never {
  if (e && typeof e === 'object') (e as { halt?: boolean }).halt = true;
  throw e;
}

export function avroTransform(c: AvroProcessorConfig, ctx: ProcessorContext): RecordTransform {
  const client = new SchemaRegistryClient({ url: c.registry.url, auth: c.registry.username !== undefined ? { username: c.registry.username, password: c.registry.password ?? '' } : undefined });
  /** Schema record id + output topic → its registered schemas (registration once per table schema). */
  const writers = new Map<string, Promise<Writer>>();
  /** Input topic → the writer of its last event (for the tombstone after a delete). */
  const lastOf = new Map<string, Writer>();

  const writerFor = (rec: SchemaRecord, topic: string): Promise<Writer> => {
    const k = `${rec.id}\n${topic}`;
    let w = writers.get(k);
    if (!w) {
      w = (async () => {
        // Names from the source's topic (`<prefix>.<schema>.<table>.Envelope`), subjects from the output topic.
        const schemas = await registerCdcSchemas(client, rec, rec.topic, await sourceSchemaOf(rec.connector), topic);
        ctx.logger.info('avro processor registered schemas', { processor: c.name, table: `${rec.schema}.${rec.table}`, subject: schemas.valueSubject, valueId: schemas.valueId, keyId: schemas.keyId });
        return { schemas, key: schemas.key ? new AvroCodec(schemas.key) : null, value: new AvroCodec(schemas.value) };
      })();
      writers.set(k, w);
      // A failure is not cached: the next record (after a restart, a retry) registers again.
      w.catch(() => writers.delete(k));
    }
    return w;
  };

  const notChange = (rec: TransformInput, why: string) =>
    avroProcessorError('AVRO_NOT_CHANGE_EVENT', `processor ${c.name}: the record at ${rec.topic}/${rec.partition}/${rec.offset} ${why}: point the processor's inputs at change topics (Debezium envelopes with their schema header ${SCHEMA_HEADER})`);

  const encodeKey = (w: Writer, rec: TransformInput): Buffer | null => {
    if (rec.key === null || !w.key || !w.schemas.key) return null;
    return encodeFramed(w.schemas.keyId!, w.key, jsonToAvro(w.schemas.key, parseJson(rec.key)));
  };

  const headersOf = (rec: TransformInput): Record<string, string> | undefined => {
    if (!rec.headers) return undefined;
    const { [SCHEMA_HEADER]: _s, ...rest } = rec.headers;
    return Object.keys(rest).length ? rest : undefined;
  };

  return {
    async apply(rec) {
      const sid = rec.headers?.[SCHEMA_HEADER];
      const schema = sid ? ctx.schemaOf?.(sid) : undefined;
      if (rec.value === null) {
        // A tombstone: the key as its table's last event framed it.
        const w = schema ? await writerFor(schema, outputTopic(c.output, rec.topic, schema)).catch(halt) : lastOf.get(rec.topic);
        const topic = outputTopic(c.output, rec.topic, schema);
        if (rec.key !== null && !w) throw notChange(rec, 'is a tombstone of a table whose key schema is not known (no event of it came before)');
        return [{ topic, key: w ? encodeKey(w, rec) : null, value: null, headers: headersOf(rec) }];
      }
      if (!schema) throw notChange(rec, `is not a change event with a known schema (header ${SCHEMA_HEADER}${sid ? ` = ${sid}, not in the log's schema topics` : ' missing'})`);
      const env = parseJson(rec.value) as Record<string, unknown> | null;
      if (!env || typeof env !== 'object' || !('op' in env)) throw notChange(rec, 'has no op');
      const topic = outputTopic(c.output, rec.topic, schema);
      const w = await writerFor(schema, topic).catch(halt);
      lastOf.set(rec.topic, w);
      const value = encodeFramed(w.schemas.valueId, w.value, jsonToAvro(w.schemas.value, env));
      return [{ topic, key: encodeKey(w, rec), value, headers: headersOf(rec) }];
    },
  };
}
