/**
 * Expectations as a config declares them: the check kinds, which one an expectation has, its
 * action, and the checks `sluice validate` makes beyond the schema (one kind per expectation,
 * unique names, regular expressions and expressions that compile, bounds in order), each reported
 * at its line. Light: loaded with the registry.
 */
import type { CheckContext } from '../../registry/spec.ts';
import { checkExpr } from '../../processors/exprs.ts';

export const KINDS = ['notNull', 'unique', 'range', 'regex', 'allowed', 'expr', 'referential', 'freshness', 'volume', 'schema'] as const;
export type Kind = (typeof KINDS)[number];
export type Action = 'warn' | 'dlq' | 'stop';

/** The kinds that keep keyed state (the processor is stateful when it has one). */
export const stateKinds: ReadonlySet<Kind> = new Set<Kind>(['unique', 'referential']);

/** The check kind of an expectation (the one of KINDS it has). */
export function kindOf(e: object): Kind {
  const k = KINDS.find((x) => (e as Record<string, unknown>)[x] !== undefined);
  if (!k) throw new Error('bug: an expectation without a check passed validation');
  return k;
}

/** The action an expectation takes: as written, else `dlq` (`warn` for volume, which checks windows, not records). */
export const actionOf = (e: { action?: Action } & object): Action => e.action ?? (kindOf(e) === 'volume' ? 'warn' : 'dlq');

/** The distinct `table`s of the referential expectations, in order: the processor's side inputs. */
export function referentialTables(es: readonly object[]): string[] {
  const out: string[] = [];
  for (const e of es) {
    const t = (e as { referential?: { table: string } }).referential?.table;
    if (t !== undefined && !out.includes(t)) out.push(t);
  }
  return out;
}

const isObj = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks the raw (schema-valid) `expectations` list at `path`. */
export function checkExpectations(raw: unknown, path: string[], ctx: CheckContext): void {
  if (!Array.isArray(raw)) return;
  const names = new Map<string, number>();
  raw.forEach((e, i) => {
    if (!isObj(e)) return;
    const at = [...path, String(i)];
    if (typeof e.name === 'string') {
      if (names.has(e.name)) ctx.fail([...at, 'name'], `two expectations are named ${e.name} (the other is number ${names.get(e.name)! + 1}): names must be unique in the processor`);
      else names.set(e.name, i);
    }
    const kinds = KINDS.filter((k) => e[k] !== undefined);
    if (kinds.length === 0) {
      ctx.fail(at, `expectation ${e.name ?? i + 1} has no check: give it one of ${KINDS.join(', ')}`);
      return;
    }
    if (kinds.length > 1) {
      ctx.fail([...at, kinds[1]], `expectation ${e.name ?? i + 1} has ${kinds.length} checks (${kinds.join(', ')}): one check per expectation; split it into ${kinds.length} expectations`);
      return;
    }
    const kind = kinds[0];
    const c = e[kind];
    const sub = [...at, kind];
    checkExpr(e.when, [...at, 'when'], ctx, 'boolean');
    if (kind === 'volume' && e.action === 'dlq') {
      ctx.fail([...at, 'action'], `expectation ${e.name}: volume checks windows, not records, so there is no record to dead-letter: use action warn or stop`);
    }
    if (kind === 'volume' && e.when !== undefined) ctx.fail([...at, 'when'], `expectation ${e.name}: volume counts every record; put a filter processor before it to count only some`);
    switch (kind) {
      case 'notNull':
        (c as unknown[]).forEach((f, j) => checkExpr(f, [...sub, String(j)], ctx));
        break;
      case 'unique':
        (c.fields as unknown[]).forEach((f, j) => checkExpr(f, [...sub, 'fields', String(j)], ctx));
        if (c.window === 0) ctx.fail([...sub, 'window'], 'the window must be longer than 0 (e.g. 1h)');
        break;
      case 'range':
        checkExpr(c.field, [...sub, 'field'], ctx);
        if (c.min === undefined && c.max === undefined) ctx.fail(sub, `expectation ${e.name}: a range needs min, max or both`);
        if (typeof c.min === 'number' && typeof c.max === 'number' && c.min > c.max) ctx.fail([...sub, 'max'], `max (${c.max}) is below min (${c.min}): no value could pass`);
        break;
      case 'regex':
        checkExpr(c.field, [...sub, 'field'], ctx);
        if (typeof c.pattern === 'string') {
          try {
            new RegExp(c.pattern, c.flags ?? '');
          } catch (err) {
            ctx.fail([...sub, 'pattern'], `not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
          }
        }
        break;
      case 'allowed':
        checkExpr(c.field, [...sub, 'field'], ctx);
        (c.values as unknown[]).forEach((v, j) => {
          if (v !== null && typeof v === 'object') ctx.fail([...sub, 'values', String(j)], 'allowed values are texts, numbers, booleans or null, not lists or mappings');
        });
        break;
      case 'expr':
        if (typeof c === 'string') checkExpr(c, sub, ctx, 'boolean');
        break;
      case 'referential':
        checkExpr(c.field, [...sub, 'field'], ctx);
        break;
      case 'freshness':
        checkExpr(c.field, [...sub, 'field'], ctx);
        if (c.maxAge === 0) ctx.fail([...sub, 'maxAge'], 'maxAge must be longer than 0 (e.g. 5m)');
        break;
      case 'volume':
        if (c.min === undefined && c.max === undefined) ctx.fail(sub, `expectation ${e.name}: a volume check needs min, max or both`);
        for (const b of ['min', 'max'] as const) if (typeof c[b] === 'number' && c[b] < 0) ctx.fail([...sub, b], `${b} must be 0 or more`);
        if (typeof c.min === 'number' && typeof c.max === 'number' && c.min > c.max) ctx.fail([...sub, 'max'], `max (${c.max}) is below min (${c.min}): no window could pass`);
        if (c.window === 0) ctx.fail([...sub, 'window'], 'the window must be longer than 0 (e.g. 1m)');
        break;
      case 'schema': {
        const req = c.required;
        if (!isObj(req) || Object.keys(req).length === 0) ctx.fail([...sub, 'required'], 'name the required columns with their types, e.g. {id: integer, amount: numeric}');
        else for (const [col, t] of Object.entries(req)) if (typeof t !== 'string' || t.trim() === '') ctx.fail([...sub, 'required', col], `the type of column ${col} must be a type name such as integer, numeric, text or string (or any)`);
        break;
      }
    }
  });
}
