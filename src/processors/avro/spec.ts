/**
 * The `avro` processor: change events in, the same events out in Avro with Confluent's wire format
 * (a magic byte 0, the 4-byte schema id, the Avro body), for topics that opt in. Each table's key
 * and value schemas are derived from the events' schema records (Debezium's names, as Confluent's
 * AvroConverter writes them: docs/avro.md), registered under `<output topic>-key` and
 * `<output topic>-value` in a Confluent-API schema registry (Confluent's, Apicurio's ccompat API,
 * Redpanda's, `sluice registry serve`) once per table schema, and each record written with them.
 * Whether a new schema may follow the old is the registry's compatibility level's call: a refusal
 * stops the processor with REGISTRY_INCOMPATIBLE before any record of the new schema is written.
 */
import { object, string, type Infer } from '../../config/fields.ts';
import { defineErrors } from '../../core/errors.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';

export const AVRO_ERRORS = defineErrors('Avro processor', {
  AVRO_NOT_CHANGE_EVENT: { retriable: false, meaning: 'a record the avro processor read is not a change event with its schema header (a flat row, an event, a change event from a log without schemas), or is a tombstone of a table none of whose events came before it; the record is dead-lettered. Point the processor\'s inputs at change topics' },
});
export const avroProcessorError = AVRO_ERRORS.error;

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  registry: object(
    {
      url: string({ minLength: 1, description: "The registry API's base URL: `http://host:8081` (Confluent, Redpanda, `sluice registry serve`), `http://host:8080/apis/ccompat/v7` (Apicurio). Credentials may go in it (`http://user:pass@host:8081`)." }),
      username: string({ minLength: 1, description: 'Basic-auth user (write `${REGISTRY_USER}` rather than the name itself).' }).optional('none'),
      password: string({ description: 'Basic-auth password (write `${REGISTRY_PASSWORD}`).' }).optional('none'),
    },
    { description: 'The schema registry (Confluent REST API) the key and value schemas are registered in. Its compatibility level (global, or per subject) decides which schema changes it takes.' },
  ),
});

export type AvroProcessorConfig = Infer<typeof config>;

export const avroProcessor = defineProcessor({
  kind: 'processor',
  type: 'avro',
  title: 'Avro processor',
  docs: 'avro.md',
  config,
  // REGISTRY_* codes (the registry's) are listed once for all (registry/index.ts).
  errors: [AVRO_ERRORS],
  input: 'envelope',
  output: 'event',
  schemas: true,
  check(raw, path, ctx) {
    const url = raw.registry?.url;
    if (typeof url === 'string' && !/^https?:\/\//.test(url) && !url.includes('${')) ctx.fail([...path, 'registry', 'url'], `the registry URL must start with http:// or https:// (got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@'))})`);
    if ((raw.registry?.username === undefined) !== (raw.registry?.password === undefined)) ctx.fail([...path, 'registry'], 'give both `username` and `password`, or neither');
  },
  describe: (c) => `processor ${c.name}: avro ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output} (registry ${c.registry.url.replace(/\/\/[^@/]*@/, '//***@')})`,
  async create(c, ctx) {
    const { avroTransform } = await import('./avro.ts');
    return avroTransform(c, ctx);
  },
});
