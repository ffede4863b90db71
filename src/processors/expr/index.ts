/**
 * Sluice's expression language, for the `filter`, `map` and `route` processors of pipeline
 * configs: `op == 'u' && number(after.amount) > 1000`, `concat($topic, '.', source.table)`.
 *
 * A small, safe language written for CDC values: fields read as null when missing, numeric strings
 * ("1500.00") and int64 bigints compare and compute as numbers, logic is three-valued like SQL.
 * Source is tokenized (lexer.ts), parsed (parser.ts), type-checked (check.ts) and compiled to JS
 * closures (compile.ts) once; functions are in functions.ts, value semantics in values.ts. No
 * eval, no access beyond a value's own properties.
 *
 *   const e = compileExpr("op == 'u' && number(after.amount) > 1000", { expect: 'boolean' });
 *   e.eval(record.value, { topic, key, timestamp, headers }); // true / false / null, or throws ExprError
 */
import type { ExprType, Meta, Node } from './ast.ts';
import { article, check } from './check.ts';
import { compile } from './compile.ts';
import { ExprError } from './errors.ts';
import { parse } from './parser.ts';

export type { ExprType, Meta } from './ast.ts';
export { ExprError } from './errors.ts';
export { FUNCTIONS } from './functions.ts';

export interface Compiled {
  readonly source: string;
  /** The statically known result type ('any' when it depends on data). */
  readonly type: ExprType;
  /** Field paths read from the record value (e.g. ['after','amount']), for docs/validate. */
  readonly fields: string[][];
  /** The expression's value for one record; throws ExprError when the record's values do not fit. */
  eval(value: unknown, meta: Meta): unknown;
}

export interface CompileOptions {
  /** The type the caller needs: a known static type that differs is a compile error (null fits any). */
  expect?: ExprType;
}

/** Compiles `source`; throws ExprError on syntax errors, unknown functions and type errors. */
export function compileExpr(source: string, opts: CompileOptions = {}): Compiled {
  const ast = parse(source);
  const type = check(ast, source);
  const want = opts.expect;
  if (want && want !== 'any' && type !== want && type !== 'any' && type !== 'null') {
    throw new ExprError(`this expression gives ${article(type)}, but ${article(want)} is needed here`, ast.at + 1, source);
  }
  const fn = compile(ast, source);
  return { source, type, fields: fieldPaths(ast), eval: fn };
}

/**
 * The record-value field paths an expression reads, longest first along each chain:
 * `after.amount > 0 && op == 'u'` reads ['after','amount'] and ['op']. A chain stops at a computed
 * index (`items[0].sku` reads ['items']).
 */
function fieldPaths(root: Node): string[][] {
  const seen = new Map<string, string[]>();
  const walk = (n: Node, top: boolean): void => {
    switch (n.k) {
      case 'field': {
        if (top) {
          const path: string[] = [];
          let b: Node | null = n;
          while (b && b.k === 'field') {
            path.unshift(b.name);
            b = b.obj;
          }
          if (b === null || (b.k === 'meta' && b.name === 'value')) seen.set(JSON.stringify(path), path);
        }
        if (n.obj) walk(n.obj, false);
        return;
      }
      case 'index':
        walk(n.obj, true);
        walk(n.index, true);
        return;
      case 'list':
        n.items.forEach((i) => walk(i, true));
        return;
      case 'unary':
        walk(n.arg, true);
        return;
      case 'bin':
        walk(n.left, true);
        walk(n.right, true);
        return;
      case 'cond':
        walk(n.test, true);
        walk(n.then, true);
        walk(n.else, true);
        return;
      case 'call':
        n.args.forEach((a) => walk(a, true));
        return;
      case 'lit':
      case 'meta':
        return;
    }
  };
  walk(root, true);
  return [...seen.values()];
}
