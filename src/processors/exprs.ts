/**
 * What the expression processors (`filter`, `route`, `map`) share: checking their expressions when
 * the config is validated (so `sluice validate` points at the line), parsing a record once for
 * them, and turning an expression that fails on a record's values into PROCESSOR_EXPR (the record
 * is then dead-lettered with that code).
 */
import { coreError } from '../core/errors.ts';
import { parseJson } from '../core/serde/parse.ts';
import { openDocuments } from '../core/serde/documents.ts';
import type { CheckContext, TransformInput } from '../registry/spec.ts';
import { compileExpr, ExprError, type Compiled, type ExprType, type Meta } from './expr/index.ts';
import { parseIsoMs } from './expr/time.ts';

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
  // A MongoDB document (Extended JSON text) is read as a row, like a table's.
  return { value: rec.value === null ? null : openDocuments(parseJson(rec.value)), meta: new RecordMeta(rec) };
}

/** A record's metadata; the key is parsed when an expression reads it (`$key`), not before. */
class RecordMeta implements Meta {
  readonly topic: string;
  readonly timestamp: number;
  readonly headers: Record<string, string> | undefined;
  readonly partition?: number;
  readonly offset?: number;
  private parsed: unknown = undefined;
  private readonly raw: Buffer | null;

  constructor(rec: TransformInput) {
    this.topic = rec.topic;
    this.timestamp = rec.timestamp;
    this.headers = rec.headers;
    this.partition = rec.partition;
    this.offset = rec.offset;
    this.raw = rec.key;
  }

  get key(): unknown {
    if (this.parsed === undefined) this.parsed = this.raw === null ? null : parseOrText(this.raw);
    return this.parsed;
  }
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

/**
 * A record's event time from its `key` expression (e.g. `timestamp`, `rightTimestamp`): ms since
 * the epoch, an int64, or an ISO-8601 text; anything else is an error that dead-letters the record.
 */
export function eventTime(e: Compiled, s: Scope, what: string, key: string): number {
  const v = evaluate(e, s, `${what} (${key})`);
  const ms = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? parseIsoMs(v) : undefined;
  if (ms === undefined || !Number.isFinite(ms)) throw new TypeError(`${what}: the ${key} expression (${e.source}) gave ${JSON.stringify(v) ?? String(v)}, not a time in ms or an ISO-8601 text`);
  return ms;
}
