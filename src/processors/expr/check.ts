/**
 * The expression language's static checker: infers each node's type bottom-up and rejects, at
 * compile time with the column of the offending operand, what can never work whatever the record
 * holds: unknown functions (with a "did you mean"), wrong arity, and operands of a known type an
 * operator or function cannot take (`'abc' * 2`, `!5`, `true + 1`, `length(5)`, `'x'.y`).
 *
 * Types are nullable: 'number' means "a number (or bigint) or null". Fields, `$key` and header
 * values are 'any'; only literals and computed results have known types. A string is accepted
 * where a number is needed (CDC decimals are numeric strings) unless it is a literal that is not
 * numeric.
 */
import { joinTypes, META_NAMES, type ExprType, type Node } from './ast.ts';
import { ExprError } from './errors.ts';
import { FUNCTION_DEFS, suggest, type Param } from './functions.ts';
import { isNumericString } from './values.ts';

const ARTICLE: Record<ExprType, string> = { number: 'a number', string: 'a string', boolean: 'a boolean', null: 'null', list: 'a list', object: 'an object', any: 'a value' };

export function article(t: ExprType): string {
  return ARTICLE[t];
}

/** The static type of `root`; throws ExprError on what can never work. */
export function check(root: Node, src: string): ExprType {
  const err = (msg: string, at: number): never => {
    throw new ExprError(msg, at + 1, src);
  };
  /** The operand's source, shortened, for messages. */
  const text = (n: Node): string => {
    const s = src.slice(n.pos, n.end);
    return s.length > 40 ? s.slice(0, 40) + '…' : s;
  };
  const isBadNumericLiteral = (n: Node): boolean => n.k === 'lit' && typeof n.value === 'string' && !isNumericString(n.value);

  const needNumber = (n: Node, t: ExprType): void => {
    if (t === 'boolean' || t === 'list' || t === 'object') err(`${text(n)} is ${article(t)}, not a number`, n.pos);
    if (isBadNumericLiteral(n)) err(`${text(n)} is not a number`, n.pos);
  };
  const needBoolean = (n: Node, t: ExprType): void => {
    if (t === 'number' || t === 'string' || t === 'list' || t === 'object') err(`${text(n)} is ${article(t)}, not a boolean`, n.pos);
  };
  const needOrderable = (n: Node, t: ExprType, op: string): void => {
    if (t === 'boolean' || t === 'list' || t === 'object') err(`${text(n)} is ${article(t)}: '${op}' compares numbers or strings`, n.pos);
  };
  const needParam = (n: Node, t: ExprType, p: Param, fn: string): void => {
    if (t === 'any' || t === 'null' || p.types.includes('any')) return;
    if (p.numeric && t === 'string') {
      if (isBadNumericLiteral(n)) err(`${text(n)} is not a number, but ${fn}() needs ${p.desc}`, n.pos);
      return;
    }
    if (!p.types.includes(t)) err(`${text(n)} is ${article(t)}, but ${fn}() needs ${p.desc}`, n.pos);
  };

  const visit = (n: Node): ExprType => {
    switch (n.k) {
      case 'lit':
        return n.value === null ? 'null' : typeof n.value === 'bigint' ? 'number' : (typeof n.value as ExprType);
      case 'list':
        for (const it of n.items) visit(it);
        return 'list';
      case 'meta':
        return META_NAMES[n.name];
      case 'field': {
        if (n.obj) {
          const t = visit(n.obj);
          if (t === 'number' || t === 'string' || t === 'boolean') err(`${text(n.obj)} is ${article(t)}: it has no fields`, n.at);
        }
        return 'any';
      }
      case 'index': {
        const t = visit(n.obj);
        if (t === 'number' || t === 'string' || t === 'boolean') err(`${text(n.obj)} is ${article(t)}: it has no fields or elements`, n.at);
        const ti = visit(n.index);
        if (ti === 'boolean' || ti === 'list' || ti === 'object') err(`${text(n.index)} is ${article(ti)}: an index is a number or a string`, n.index.pos);
        return 'any';
      }
      case 'unary': {
        const t = visit(n.arg);
        if (n.op === '!') {
          needBoolean(n.arg, t);
          return t === 'null' ? 'null' : 'boolean';
        }
        needNumber(n.arg, t);
        return t === 'null' ? 'null' : 'number';
      }
      case 'cond': {
        needBoolean(n.test, visit(n.test));
        return joinTypes(visit(n.then), visit(n.else));
      }
      case 'bin':
        return binary(n);
      case 'call':
        return call(n);
    }
  };

  const binary = (n: Extract<Node, { k: 'bin' }>): ExprType => {
    const lt = visit(n.left);
    const rt = visit(n.right);
    switch (n.op) {
      case '??':
        return lt === 'null' ? rt : joinTypes(lt, rt);
      case 'and':
      case 'or':
        needBoolean(n.left, lt);
        needBoolean(n.right, rt);
        return 'boolean';
      case '==':
      case '!=':
        return 'boolean';
      case '<':
      case '<=':
      case '>':
      case '>=':
        needOrderable(n.left, lt, n.op);
        needOrderable(n.right, rt, n.op);
        if (lt === 'number' && isBadNumericLiteral(n.right)) err(`${text(n.right)} is not a number: '${n.op}' cannot compare it with a number`, n.right.pos);
        if (rt === 'number' && isBadNumericLiteral(n.left)) err(`${text(n.left)} is not a number: '${n.op}' cannot compare it with a number`, n.left.pos);
        return lt === 'null' || rt === 'null' ? 'null' : 'boolean';
      case 'in':
      case 'not in':
        if (rt === 'number' || rt === 'boolean') err(`${text(n.right)} is ${article(rt)}: '${n.op}' needs a list, a string or an object on its right`, n.right.pos);
        if (rt === 'string' && lt !== 'string' && lt !== 'any' && lt !== 'null') err(`${text(n.left)} is ${article(lt)}: '${n.op}' with a string on its right looks for a string`, n.left.pos);
        return lt === 'null' || rt === 'null' ? 'null' : 'boolean';
      default:
        needNumber(n.left, lt);
        needNumber(n.right, rt);
        return lt === 'null' || rt === 'null' ? 'null' : 'number';
    }
  };

  const call = (n: Extract<Node, { k: 'call' }>): ExprType => {
    const def = FUNCTION_DEFS.get(n.name);
    if (!def) {
      const s = suggest(n.name);
      return err(`unknown function '${n.name}'${s ? ` (did you mean '${s}'?)` : ''}`, n.at);
    }
    const count = n.args.length;
    if (count < def.min || count > def.max) {
      const want = def.min === def.max ? `${def.min}` : def.max === Infinity ? `at least ${def.min}` : `${def.min} or ${def.max}`;
      err(`${def.name}() takes ${want} argument${(def.max === Infinity ? def.min : def.max) === 1 ? '' : 's'}, but ${count === 0 ? 'none was' : count === 1 ? '1 was' : `${count} were`} given`, n.at);
    }
    const types = n.args.map((a, i) => {
      const t = visit(a);
      needParam(a, t, def.params[Math.min(i, def.params.length - 1)], def.name);
      return t;
    });
    def.check?.(n.args, (msg, at) => err(msg, at.pos));
    if (!def.nulls && types.includes('null')) return 'null';
    return def.result ? def.result(types) : def.returns;
  };

  return visit(root);
}
