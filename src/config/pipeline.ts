/**
 * The pipeline config: the top-level keys, with each component's keys taken from its spec in the
 * registry (src/components.ts). `PIPELINE.schema` is the JSON Schema, `PipelineConfig` the type of a
 * loaded config, `PIPELINE.resolve` applies the defaults.
 */
import { LOGS, PROCESSORS, SINKS, SOURCES } from '../components.ts';
import { INGEST } from '../sources/http/spec.ts';
import { SCHEDULES } from '../schedules/spec.ts';
import { ALERTS } from '../alerts/spec.ts';
import { batchField, pipelineName } from './common.ts';
import { boolean, integer, list, object, oneOf, size, string, tagged, type Field, type Infer } from './fields.ts';

type Variants<S extends readonly { type: string; config: Field<any, any> }[]> = { [K in S[number] as K['type']]: K['config'] };
function variants<const S extends readonly { type: string; config: Field<any, any> }[]>(specs: S): Variants<S> {
  return Object.fromEntries(specs.map((s) => [s.type, s.config])) as Variants<S>;
}

export const PIPELINE = object({
  name: string({ pattern: '^[A-Za-z0-9_.-]+$', description: 'Identifies the pipeline: default slot, topic prefix, producer ids and checkpoints. Renaming a pipeline starts it from scratch.', hint: 'letters, digits, _ . -' }),
  source: tagged(variants(SOURCES), {
    tagDescription: 'Source connector.',
    description: "Where changes are captured. Without it the pipeline captures nothing and runs its processors and sinks over topics already in the log (written by another pipeline, or by Debezium through Kafka Connect); each sink then names its `topics`, each processor its `inputs`.",
  }).optional('none: processors and sinks only'),
  ingest: INGEST.optional('off'),
  log: tagged(variants(LOGS), { tag: 'backend', defaultVariant: 'embedded', tagDescription: 'Where the log lives.', description: 'The durable log between the source and everything else.' }).default({ backend: 'embedded' }, 'embedded, in `./data/<name>/log`'),
  batch: batchField({ maxRecords: 5000, maxBytes: 4 << 20, maxDelayMs: 20 }).describe('Bounds of one log commit of the source: whichever comes first.').default({}, 'the defaults below'),
  processors: list(tagged(variants(PROCESSORS), { tagDescription: 'Processor.' }), { description: 'Steps that read topics and write topics, each exactly once ([processing.md](processing.md)).' }).default([]),
  sinks: list(tagged(variants(SINKS), { tagDescription: 'Sink connector.' }), { description: 'Targets the log is applied to, each exactly once.' }).default([]),
  schedules: SCHEDULES.default([]),
  alerts: ALERTS.optional('off'),
  serialization: object({ schemas: boolean({ description: "Include Debezium's `schema` part in keys and values (JsonConverter `schemas.enable=true`)." }).default(false) }, { description: 'How events are written to the log.' }).default({}, 'the defaults below'),
  // 1 MiB, not 8: a source draining a backlog keeps its queue full, and every queued message is a
  // live object each young-generation GC copies until it is promoted. Measured (bench/capture-*,
  // 300k changes, 2 pairs): PostgreSQL capture +7–16 % changes/s with peak RSS 123–130 instead of
  // 178–196 MiB; MariaDB the same speed, 125–129 instead of 138 MiB; latency p99 no worse.
  maxQueueBytes: size({ description: 'Bound on bytes received from the source but not yet decoded into events; when it is reached the source stops reading until the log catches up.' }).default(1 << 20, '`1MiB`'),
  state: object(
    { dir: string({ type: 'path', description: "The pipeline's own files outside the log: `status.json` (read by `sluice status`) and the PostgreSQL source's spill files." }).default((ctx) => `./data/${pipelineName(ctx)}/state`, '`./data/<name>/state`') },
    { description: 'Where the pipeline keeps its own files.' },
  ).default({}, 'the defaults below'),
  server: object(
    {
      host: string({ description: 'Listen address. Any address but loopback (`127.0.0.1`, `::1`, `localhost`) needs `token`.' }).default('127.0.0.1'),
      port: integer({ min: 0, max: 65535, description: 'Listen port; `0` picks a free one (logged at start).' }).default(8080),
      token: string({ minLength: 16, description: 'Bearer token every endpoint but `/health` then wants (`Authorization: Bearer <token>`; the console asks for it once per tab). Write `${SLUICE_TOKEN}` rather than the token itself; at least 16 characters.' }).optional('none: loopback only'),
    },
    { description: 'Serve `/health`, `/metrics`, `/status` and the operations console ([console.md](console.md)); `server: {}` turns it on with the defaults.' },
  ).optional('off'),
  logging: object(
    {
      level: oneOf(['debug', 'info', 'warn', 'error'] as const, { description: 'Overridden by `sluice run --log-level`.' }).default('info'),
      format: oneOf(['text', 'json'] as const, { description: '`json`: one object per line (`ts`, `level`, `msg`, fields) on stderr. Overridden by `--log-format`.' }).default('text'),
    },
    { description: 'Log lines, always on stderr.' },
  ).default({}, 'the defaults below'),
});

export type PipelineConfig = Infer<typeof PIPELINE>;
