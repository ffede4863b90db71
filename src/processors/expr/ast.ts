/**
 * The shapes shared by the expression language's parser, checker and compiler: the static types,
 * the record metadata an expression can read (`$topic`, `$key`, …) and the syntax tree.
 *
 * Every node keeps where it came from in the source: `pos`/`end` (0-based, end exclusive) span the
 * whole sub-expression, quoted in runtime errors as "(in …)"; `at` is the token errors point at
 * (the operator, the function name, the `.` of a field access).
 */

export type ExprType = 'number' | 'string' | 'boolean' | 'null' | 'list' | 'object' | 'any';

/** What an expression can read besides the record value. */
export interface Meta {
  topic: string;
  key: unknown;
  timestamp: number;
  headers: Record<string, string> | undefined;
  partition?: number;
  offset?: number;
}

/** The `$names` an expression may use, with their static types. `$value` is the whole record value. */
export const META_NAMES: Readonly<Record<string, ExprType>> = {
  topic: 'string',
  key: 'any',
  timestamp: 'number',
  headers: 'object',
  partition: 'number',
  offset: 'number',
  value: 'any',
};

export type BinOp =
  | '??' | 'or' | 'and'
  | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in'
  | '+' | '-' | '*' | '/' | '%';

interface Base {
  pos: number;
  end: number;
  at: number;
  /** Height of the subtree (1 for a leaf), bounded by the parser. */
  h: number;
}

export type Node =
  | (Base & { k: 'lit'; value: null | boolean | number | bigint | string })
  | (Base & { k: 'list'; items: Node[] })
  /** `obj.name` / `obj['name']`; `obj` null: a field of the record value. */
  | (Base & { k: 'field'; obj: Node | null; name: string })
  | (Base & { k: 'meta'; name: string })
  | (Base & { k: 'index'; obj: Node; index: Node })
  | (Base & { k: 'unary'; op: '!' | '-'; arg: Node })
  | (Base & { k: 'bin'; op: BinOp; left: Node; right: Node })
  | (Base & { k: 'cond'; test: Node; then: Node; else: Node })
  | (Base & { k: 'call'; name: string; args: Node[] });

/** The type of a value that is either of two types (null fits anything). */
export function joinTypes(a: ExprType, b: ExprType): ExprType {
  if (a === b || b === 'null') return a;
  if (a === 'null') return b;
  return 'any';
}
