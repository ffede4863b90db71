/**
 * What the expression processors (`filter`, `route`, `map`) share: checking their expressions when
 * the config is validated (so `sluice validate` points at the line), parsing a record once for
 * them, and turning an expression that fails on a record's values into PROCESSOR_EXPR (the record
 * is then dead-lettered with that code).
 */
import { coreError } from '../core/errors.ts';
import { parseJson } from '../core/serde/parse.ts';
import type { CheckContext, TransformInput } from '../registry/spec.ts';
import { compileExpr, ExprError, type Compiled, type ExprType, type Meta } from './expr/index.ts';

/** Compiles the expression at `path` of the raw config, reporting a problem there. */
export function checkExpr(source: unknown, path: string[], ctx: CheckContext, expect?: ExprType): void {
  if (typeof source !== 'string') return;
  try {
    compileExpr(source, { expect });
  } catch (e) {
    if (e instanceof ExprError) ctx.fail(path, e.message.replace(/\n/g, '\n    '));
    else throw e;
  }
}

/** A record's value and metadata as expressions read them (the value parsed once). */
export interface Scope {
  value: unknown;
  meta: Meta;
}

export function scopeOf(rec: TransformInput): Scope {
  const key = rec.key === null ? null : parseOrText(rec.key);
  return {
    value: rec.value === null ? null : parseJson(rec.value),
    meta: { topic: rec.topic, key, timestamp: rec.timestamp, headers: rec.headers, partition: rec.partition, offset: rec.offset },
  };
}

function parseOrText(b: Buffer): unknown {
  try {
    return parseJson(b);
  } catch {
    return b.toString('utf8');
  }
}

/** Evaluates `e` on a record; an expression error becomes PROCESSOR_EXPR naming the processor and the expression. */
export function evaluate(e: Compiled, s: Scope, what: string): unknown {
  try {
    return e.eval(s.value, s.meta);
  } catch (err) {
    if (err instanceof ExprError) throw coreError('PROCESSOR_EXPR', `${what}: ${err.reason} (in ${e.source})`, { cause: err });
    throw err;
  }
}
