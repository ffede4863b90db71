/**
 * Looks up component specs by type. The list itself is src/components.ts; this module is the only
 * way the rest of Sluice reaches a component, so an unknown type fails here with a clear message.
 */
import { LOGS, PROCESSORS, SINKS, SOURCES } from '../components.ts';
import { coreError, CORE_ERRORS, type ErrorArea } from '../core/errors.ts';
import { INGEST_ERRORS } from '../sources/http/spec.ts';
import { SCHEDULE_ERRORS } from '../schedules/errors.ts';
import { RECONCILE_ERRORS } from '../quality/reconcile/errors.ts';
import { VALIDATION_ERRORS } from '../quality/validate/errors.ts';
import { REGISTRY_ERRORS } from '../schema-registry/errors.ts';
import type { AnySpec, LogSpec, ProcessorSpec, SinkSpec, SourceSpec } from './spec.ts';

function lookup<S extends AnySpec>(list: readonly S[], kind: string, type: string): S {
  const s = list.find((x) => x.type === type);
  if (!s) throw coreError('CONFIG_INVALID', `unknown ${kind} type ${JSON.stringify(type)}; known: ${list.map((x) => x.type).join(', ')}`);
  return s;
}

export const sourceSpec = (type: string): SourceSpec => lookup<SourceSpec>(SOURCES, 'source', type);
export const sinkSpec = (type: string): SinkSpec => lookup<SinkSpec>(SINKS, 'sink', type);
export const logSpec = (type: string): LogSpec => lookup<LogSpec>(LOGS, 'log backend', type);
export const processorSpec = (type: string): ProcessorSpec => lookup<ProcessorSpec>(PROCESSORS, 'processor', type);

/**
 * How processors name a change event's table from its `source` block: as the pipeline's source
 * connector does, or, without one (`sourceType` undefined), by PostgreSQL's `schema` or MySQL's `db`.
 */
export function tableNamer(sourceType: string | undefined): (source: Record<string, unknown>) => { schema: string; table: string } {
  if (sourceType) return sourceSpec(sourceType).debezium.tableOf;
  return (source) => ({ schema: String(source.schema ?? source.db ?? ''), table: String(source.table ?? '') });
}

/** Every spec, in registration order: sources, log backends, processors, sinks. */
export function allSpecs(): AnySpec[] {
  return [...SOURCES, ...LOGS, ...PROCESSORS, ...SINKS];
}

/** Every error area: the core's, then each component's (once each, in registration order). */
export function allErrorAreas(extra: ErrorArea<any>[] = []): ErrorArea<any>[] {
  const out: ErrorArea<any>[] = [CORE_ERRORS, INGEST_ERRORS];
  for (const s of allSpecs()) for (const a of s.errors ?? []) if (!out.includes(a)) out.push(a);
  out.push(SCHEDULE_ERRORS);
  out.push(VALIDATION_ERRORS);
  out.push(RECONCILE_ERRORS);
  out.push(REGISTRY_ERRORS);
  for (const a of extra) if (!out.includes(a)) out.push(a);
  return out;
}
