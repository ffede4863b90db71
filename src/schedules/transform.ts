/**
 * What a schedule does to each record before writing it: a filter and a projection in the
 * processing layer's expression language (the record is the expression's value, as a `map`
 * processor's `$value`), or a user's module. Then the record's key from `key`.
 */
import type { Value } from '../core/event.ts';
import { importUserModule } from '../core/modules.ts';
import type { Logger } from '../core/logger.ts';
import { writeValue } from '../core/serde/json.ts';
import { compileExpr, ExprError, type Compiled, type Meta } from '../processors/expr/index.ts';
import { scheduleError } from './errors.ts';
import { atPath } from './pull.ts';
import type { ScheduleConfig } from './spec.ts';
import type { ScheduleModuleContext, ScheduleTransform } from './types.ts';

export interface RunInfo {
  runId: string;
  /** The fire time the run is for (ms), or its start for a manual run. */
  fireTime: number;
}

/** One output record: its key and value as the log takes them. */
export interface OutRecord {
  key: string | null;
  value: string;
}

export type Transformer = (records: Value[], run: RunInfo) => Promise<OutRecord[]>;

/** Builds the schedule's transformer (loading its module, if any). */
export async function loadTransformer(s: ScheduleConfig, o: { pipeline: string; logger: Logger }): Promise<Transformer> {
  const t = s.transform;
  const filter = t?.filter ? compileExpr(t.filter, { expect: 'boolean' }) : null;
  const base = t?.base ? compileExpr(t.base) : null;
  const fields = Object.entries(t?.fields ?? {}).map(([name, src]) => ({ name, e: compileExpr(src) }));
  const drop = new Set(t?.drop ?? []);
  let fn: ScheduleTransform | null = null;
  let mctx: Omit<ScheduleModuleContext, 'runId' | 'fireTime'> | null = null;
  if (t?.module) {
    let mod: Record<string, unknown>;
    try {
      mod = await importUserModule(t.module, `schedule ${s.name}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'DRIVER_MISSING') throw e;
      throw scheduleError('SCHEDULE_MODULE', `schedule ${s.name} cannot load its module ${t.module}: ${(e as Error).message}`, { cause: e });
    }
    const f = mod[t.export];
    if (typeof f !== 'function') {
      const fns = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw scheduleError('SCHEDULE_MODULE', `the module ${t.module} of schedule ${s.name} exports no function \`${t.export}\`${fns.length ? ` (its functions: ${fns.join(', ')}); set transform.export to one of them` : ''}`);
    }
    fn = f as ScheduleTransform;
    const log = o.logger.child({ schedule: s.name });
    mctx = { pipeline: o.pipeline, schedule: s.name, options: Object.freeze({ ...t.options }), log: { info: (m, x) => log.info(m, x), warn: (m, x) => log.warn(m, x), error: (m, x) => log.error(m, x) } };
  }
  const evalAt = (e: Compiled, rec: Value, meta: Meta, i: number, what: string): unknown => {
    try {
      return e.eval(rec, meta);
    } catch (err) {
      if (err instanceof ExprError) throw scheduleError('SCHEDULE_TRANSFORM', `schedule ${s.name}: record ${i} of the run: transform.${what} (${e.source}) failed: ${err.reason}`, { cause: err });
      throw err;
    }
  };
  const project = (rec: Value, meta: Meta, i: number): Value[] => {
    if (filter && evalAt(filter, rec, meta, i, 'filter') !== true) return [];
    if (!base && fields.length === 0) return [rec];
    const row: Record<string, unknown> = {};
    if (base) {
      const b = evalAt(base, rec, meta, i, 'base');
      if (b !== null && (typeof b !== 'object' || Array.isArray(b))) throw scheduleError('SCHEDULE_TRANSFORM', `schedule ${s.name}: record ${i}: transform.base (${base.source}) gave ${Array.isArray(b) ? 'a list' : `a ${typeof b}`}, not an object`);
      if (b) for (const [k, x] of Object.entries(b)) if (!drop.has(k)) row[k] = x;
    }
    for (const f of fields) row[f.name] = evalAt(f.e, rec, meta, i, `fields.${f.name}`);
    return [row as Value];
  };
  return async (records, run) => {
    const meta: Meta = { topic: s.topic ?? '', key: null, timestamp: run.fireTime, headers: undefined };
    const out: OutRecord[] = [];
    for (let i = 0; i < records.length; i++) {
      let produced = project(records[i], meta, i);
      if (fn && mctx && produced.length) {
        const mine: Value[] = [];
        for (const r of produced) {
          let got: unknown;
          try {
            got = await fn(r as never, { ...mctx, runId: run.runId, fireTime: run.fireTime });
          } catch (e) {
            throw scheduleError('SCHEDULE_TRANSFORM', `schedule ${s.name}: record ${i} of the run: its module's ${t!.export}() threw: ${(e as Error).message}`, { cause: e });
          }
          if (got === null || got === undefined) continue;
          for (const x of Array.isArray(got) ? got : [got]) mine.push(x as Value);
        }
        produced = mine;
      }
      for (const v of produced) {
        let key: string | null = null;
        if (s.key !== undefined) {
          const k = atPath(v, s.key);
          if (k === undefined || k === null) throw scheduleError('SCHEDULE_TRANSFORM', `schedule ${s.name}: record ${i} of the run has no ${s.key} (key); fix \`key\` or the transform`);
          key = writeValue(k as Value);
        }
        out.push({ key, value: writeValue(v) });
      }
    }
    return out;
  };
}
