/**
 * Runs a user's module as a transform: parses each record's key and value, calls the module's
 * function, and serializes what it returns (see types.ts for the contract).
 */
import { importUserModule } from '../../core/modules.ts';
import { SCHEMA_HEADER } from '../../core/schemas.ts';
import { parseJson } from '../../core/serde/parse.ts';
import { openDocuments } from '../../core/serde/documents.ts';
import { writeValue } from '../../core/serde/json.ts';
import { coreError } from '../../core/errors.ts';
import type { Value } from '../../core/event.ts';
import type { ProcessorContext, RecordTransform, TransformOutput } from '../../registry/spec.ts';
import { outputTopic } from '../common.ts';
import type { ModuleProcessorConfig } from './spec.ts';
import type { JsonValue, ModuleContext, ModuleInit, ModuleOutput, ModuleTransform } from './types.ts';

export async function moduleTransform(cfg: ModuleProcessorConfig, ctx: ProcessorContext): Promise<RecordTransform> {
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(cfg.module, `processor ${cfg.name}`);
  } catch (e) {
    if ((e as { code?: string }).code === 'DRIVER_MISSING') throw e;
    throw coreError('PROCESSOR_MODULE', `processor ${cfg.name} cannot load its module ${cfg.module}: ${(e as Error).message}`, { cause: e });
  }
  const fn = mod[cfg.export] as ModuleTransform | undefined;
  if (typeof fn !== 'function') {
    const fns = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    throw coreError('PROCESSOR_MODULE', `the module ${cfg.module} of processor ${cfg.name} exports no function \`${cfg.export}\`${fns.length ? ` (its functions: ${fns.join(', ')}); set \`export\` to one of them` : ''}`);
  }
  const log = ctx.logger.child({ processor: cfg.name });
  const mctx: ModuleContext = {
    pipeline: ctx.pipeline,
    processor: cfg.name,
    options: Object.freeze({ ...cfg.options }),
    log: { info: (m, f) => log.info(m, f), warn: (m, f) => log.warn(m, f), error: (m, f) => log.error(m, f) },
  };
  const init = mod.init as ModuleInit | undefined;
  if (typeof init === 'function') await init(mctx);
  const keepSchema = cfg.format === 'envelope';

  const write = (out: ModuleOutput, rec: { topic: string; key: Buffer | null; value: Buffer | null; headers?: Record<string, string> }): TransformOutput => {
    if (out === null || typeof out !== 'object' || !('value' in out)) {
      throw new Error(`the module returned ${describe(out)}, not a record: return { value } (and optionally topic, key, headers, timestamp), a list of them, or null to drop the record`);
    }
    let headers = out.headers ?? rec.headers;
    if (!out.headers && !keepSchema && headers?.[SCHEMA_HEADER] !== undefined) {
      headers = { ...headers };
      delete headers[SCHEMA_HEADER];
    }
    return {
      topic: out.topic ?? outputTopic(cfg.output, rec.topic, tableOfValue(rec, ctx)),
      key: out.key === undefined ? rec.key : out.key === null ? null : writeValue(out.key as Value),
      value: out.value === null ? null : writeValue(out.value as Value),
      headers: headers && Object.keys(headers).length ? headers : undefined,
      timestamp: out.timestamp,
    };
  };

  return {
    apply(rec) {
      const input = {
        topic: rec.topic,
        partition: rec.partition ?? 0,
        offset: rec.offset ?? 0,
        key: rec.key === null ? null : (parseJson(rec.key) as JsonValue),
        value: rec.value === null ? null : (openDocuments(parseJson(rec.value)) as JsonValue),
        timestamp: rec.timestamp,
        headers: rec.headers ?? {},
      };
      const finish = (r: ModuleOutput | ModuleOutput[] | null | undefined): TransformOutput[] => {
        if (r === null || r === undefined) return [];
        const list = Array.isArray(r) ? r : [r];
        return list.map((o) => write(o, rec));
      };
      const r = fn(input, mctx);
      return r instanceof Promise ? r.then(finish) : finish(r);
    },
  };
}

/** The table of a change event (for `{schema}`/`{table}` in `output`); undefined for other records. */
function tableOfValue(rec: { value?: Buffer | null }, ctx: ProcessorContext): { schema: string; table: string } | undefined {
  if (!rec.value || rec.value.length === 0 || rec.value[0] !== 0x7b) return undefined;
  const m = /"source":\{/.test(rec.value.toString('latin1', 0, Math.min(rec.value.length, 65536)));
  if (!m) return undefined;
  try {
    const v = parseJson(rec.value) as { source?: Record<string, unknown> };
    return v.source ? ctx.tableOf(v.source) : undefined;
  } catch {
    return undefined;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null inside a list';
  if (Array.isArray(v)) return 'a list inside the list';
  if (typeof v === 'object') return `an object without \`value\` (keys: ${Object.keys(v as object).slice(0, 5).join(', ')})`;
  return `a ${typeof v}`;
}
