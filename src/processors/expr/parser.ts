/**
 * The expression language's parser: precedence climbing over the tokens of lexer.ts, giving the
 * syntax tree of ast.ts. Precedence, lowest first:
 *
 *   ? :   ??   || or   && and   == !=   < <= > >= in, not in   + -   * / %   ! not -(unary)   . [] ()
 *
 * Binary operators are left-associative; `? :` is right-associative. Functions are called by name
 * only (`lower(x)`, no methods). `a['b']` with a literal string is the same field access as `a.b`.
 * Nesting (parentheses, brackets, calls, prefix operators, ternaries) is bounded at MAX_NESTING
 * and the tree's height at MAX_HEIGHT, so that no input can exhaust the stack of the checker,
 * compiler or evaluator.
 */
import { META_NAMES, type BinOp, type Node } from './ast.ts';
import { ExprError } from './errors.ts';
import { tokenize, type Token } from './lexer.ts';

export const MAX_NESTING = 200;
export const MAX_HEIGHT = 1000;

const PREC: Record<string, [number, BinOp]> = {
  '??': [1, '??'],
  '||': [2, 'or'],
  or: [2, 'or'],
  '&&': [3, 'and'],
  and: [3, 'and'],
  '==': [4, '=='],
  '!=': [4, '!='],
  '<': [5, '<'],
  '<=': [5, '<='],
  '>': [5, '>'],
  '>=': [5, '>='],
  in: [5, 'in'],
  '+': [6, '+'],
  '-': [6, '-'],
  '*': [7, '*'],
  '/': [7, '/'],
  '%': [7, '%'],
};

/** A node before its height is known. */
type Draft = { [K in Node['k']]: Omit<Extract<Node, { k: K }>, 'h'> }[Node['k']];

const KEYWORDS = new Set(['true', 'false', 'null', 'and', 'or', 'not', 'in']);

class Parser {
  private readonly toks: Token[];
  private i = 0;
  private depth = 0;

  constructor(private readonly src: string) {
    this.toks = tokenize(src);
  }

  parseAll(): Node {
    if (this.peek().kind === 'eof') this.fail('empty expression', this.peek());
    const e = this.expr();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(`unexpected ${describe(t)}`, t);
    return e;
  }

  private peek(o = 0): Token {
    return this.toks[Math.min(this.i + o, this.toks.length - 1)];
  }

  private next(): Token {
    return this.toks[this.i++];
  }

  private isOp(text: string): boolean {
    const t = this.peek();
    return t.kind === 'op' && t.text === text;
  }

  private expect(text: string): Token {
    if (!this.isOp(text)) this.fail(`expected '${text}'`, this.peek());
    return this.next();
  }

  private fail(msg: string, t: Token | number): never {
    throw new ExprError(msg, (typeof t === 'number' ? t : t.pos) + 1, this.src);
  }

  private enter(t: Token): void {
    if (++this.depth > MAX_NESTING) this.fail(`expression is nested too deeply (more than ${MAX_NESTING} levels)`, t);
  }

  /** A node with its height computed from its children, refused past MAX_HEIGHT. */
  private mk(n: Draft, ...kids: Node[]): Node {
    let h = 0;
    for (const k of kids) if (k.h > h) h = k.h;
    const node = { ...n, h: h + 1 } as Node;
    if (node.h > MAX_HEIGHT) this.fail(`expression is too long or nested too deeply (more than ${MAX_HEIGHT} levels)`, node.at);
    return node;
  }

  /** ternary := binary ('?' ternary ':' ternary)? */
  private expr(): Node {
    const test = this.binary(1);
    if (!this.isOp('?')) return test;
    const q = this.next();
    this.enter(q);
    const then = this.expr();
    this.expect(':');
    const other = this.expr();
    this.depth--;
    return this.mk({ k: 'cond', test, then, else: other, pos: test.pos, end: other.end, at: q.pos }, test, then, other);
  }

  private binOp(): { op: BinOp; prec: number; width: number } | null {
    const t = this.peek();
    if (t.kind === 'id' && t.text === 'not' && this.peek(1).kind === 'id' && this.peek(1).text === 'in') return { op: 'not in', prec: 5, width: 2 };
    if (t.kind !== 'op' && !(t.kind === 'id' && (t.text === 'and' || t.text === 'or' || t.text === 'in'))) return null;
    const p = PREC[t.text];
    return p ? { op: p[1], prec: p[0], width: 1 } : null;
  }

  private binary(minPrec: number): Node {
    let left = this.unary();
    for (;;) {
      const b = this.binOp();
      if (!b || b.prec < minPrec) return left;
      const opTok = this.peek();
      this.i += b.width;
      const right = this.binary(b.prec + 1);
      left = this.mk({ k: 'bin', op: b.op, left, right, pos: left.pos, end: right.end, at: opTok.pos }, left, right);
    }
  }

  private unary(): Node {
    const t = this.peek();
    const bang = (t.kind === 'op' && t.text === '!') || (t.kind === 'id' && t.text === 'not');
    if (bang || (t.kind === 'op' && t.text === '-')) {
      this.enter(t);
      this.i++;
      const arg = this.unary();
      this.depth--;
      if (!bang && arg.k === 'lit' && (typeof arg.value === 'number' || typeof arg.value === 'bigint')) {
        const v = typeof arg.value === 'bigint' ? -arg.value : arg.value === 0 ? 0 : -arg.value;
        return { ...arg, value: v, pos: t.pos, at: t.pos };
      }
      return this.mk({ k: 'unary', op: bang ? '!' : '-', arg, pos: t.pos, end: arg.end, at: t.pos }, arg);
    }
    return this.postfix(this.primary());
  }

  private postfix(e: Node): Node {
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op') return e;
      if (t.text === '.') {
        this.i++;
        const name = this.peek();
        if (name.kind !== 'id') this.fail("expected a field name after '.'", name);
        this.i++;
        e = this.mk({ k: 'field', obj: e, name: name.text, pos: e.pos, end: name.end, at: t.pos }, e);
      } else if (t.text === '[') {
        this.enter(t);
        this.i++;
        const index = this.expr();
        const close = this.expect(']');
        this.depth--;
        e =
          index.k === 'lit' && typeof index.value === 'string'
            ? this.mk({ k: 'field', obj: e, name: index.value, pos: e.pos, end: close.end, at: t.pos }, e)
            : this.mk({ k: 'index', obj: e, index, pos: e.pos, end: close.end, at: t.pos }, e, index);
      } else if (t.text === '(') {
        this.fail('only functions can be called, by name (like lower(x)): values have no methods', t);
      } else return e;
    }
  }

  private primary(): Node {
    const t = this.next();
    const leaf = { pos: t.pos, end: t.end, at: t.pos, h: 1 };
    switch (t.kind) {
      case 'num':
      case 'str':
        return { k: 'lit', value: t.value, ...leaf };
      case 'meta':
        if (!Object.hasOwn(META_NAMES, t.text)) {
          const valid = Object.keys(META_NAMES).map((n) => '$' + n).join(', ');
          this.fail(`unknown '$${t.text}': the valid names are ${valid}`, t);
        }
        return { k: 'meta', name: t.text, ...leaf };
      case 'id':
        if (t.text === 'true' || t.text === 'false') return { k: 'lit', value: t.text === 'true', ...leaf };
        if (t.text === 'null') return { k: 'lit', value: null, ...leaf };
        if (KEYWORDS.has(t.text)) this.fail(`unexpected '${t.text}'`, t);
        if (this.isOp('(')) return this.call(t);
        return { k: 'field', obj: null, name: t.text, ...leaf };
      case 'op':
        if (t.text === '(') {
          this.enter(t);
          const inner = this.expr();
          const close = this.expect(')');
          this.depth--;
          return { ...inner, pos: t.pos, end: close.end };
        }
        if (t.text === '[') {
          this.enter(t);
          const items = this.list(']');
          const close = this.next();
          this.depth--;
          return this.mk({ k: 'list', items, pos: t.pos, end: close.end, at: t.pos }, ...items);
        }
        break;
      case 'eof':
        this.fail('unexpected end of expression', t);
    }
    this.fail(`unexpected ${describe(t)}`, t);
  }

  /** Comma-separated expressions up to `close` (left for the caller to consume). */
  private list(close: string): Node[] {
    const items: Node[] = [];
    if (this.isOp(close)) return items;
    for (;;) {
      items.push(this.expr());
      if (this.isOp(close)) return items;
      if (!this.isOp(',')) this.fail(`expected ',' or '${close}'`, this.peek());
      this.i++;
    }
  }

  private call(name: Token): Node {
    this.enter(name);
    this.i++; // (
    const args = this.list(')');
    const close = this.next();
    this.depth--;
    return this.mk({ k: 'call', name: name.text, args, pos: name.pos, end: close.end, at: name.pos }, ...args);
  }
}

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of expression';
  return `'${t.kind === 'meta' ? '$' + t.text : t.text}'`;
}

/** The syntax tree of `src`; throws ExprError on a syntax error. */
export function parse(src: string): Node {
  return new Parser(src).parseAll();
}
