/**
 * The expression language's compiler: turns a checked syntax tree into nested JS closures, once,
 * so that evaluating a record is a few plain function calls (no tree walking, no eval).
 *
 * Sub-expressions whose inputs are all literals are folded to constants when they give a
 * primitive (`-2`, `1000 * 60`, `upper('x')`); a literal list on the right of `in` is built once.
 * Common cases get a fast path inline (two numbers for arithmetic and comparison, strict equality)
 * and fall back to the general semantics of values.ts.
 */
import type { BinOp, Meta, Node } from './ast.ts';
import { ExprError } from './errors.ts';
import { FUNCTION_DEFS, type Fail } from './functions.ts';
import { arith, compare, eq, fieldGetter, getField, isRecord, kindOf, numeric, show, type ArithOp } from './values.ts';

export type Fn = (v: unknown, m: Meta) => unknown;

interface C {
  fn: Fn;
  /** A constant: depends on no field, meta or impure function. */
  konst: boolean;
}

const NO_META: Meta = { topic: '', key: null, timestamp: 0, headers: undefined };

export function compile(root: Node, src: string): Fn {
  const failAt = (n: Node): Fail => {
    const s = src.slice(n.pos, n.end);
    const snippet = s.length > 60 ? s.slice(0, 60) + '…' : s;
    return (msg: string): never => {
      throw new ExprError(`${msg} (in ${snippet})`, n.at + 1, src);
    };
  };

  /** A constant sub-expression evaluated now, when it evaluates without error to a primitive. */
  const fold = (c: C): C => {
    if (!c.konst) return c;
    let value: unknown;
    try {
      value = c.fn(null, NO_META);
    } catch {
      return { fn: c.fn, konst: false }; // fails at run time, as written
    }
    if (typeof value === 'object' && value !== null) return { fn: c.fn, konst: false }; // lists are built per record: callers may keep them
    return { fn: () => value, konst: true };
  };

  const visit = (n: Node): C => {
    switch (n.k) {
      case 'lit': {
        const value = n.value;
        return { fn: () => value, konst: true };
      }
      case 'list': {
        const items = n.items.map((i) => visit(i).fn);
        return {
          fn: (v, m) => {
            const out = new Array<unknown>(items.length);
            for (let i = 0; i < items.length; i++) out[i] = items[i](v, m);
            return out;
          },
          konst: false,
        };
      }
      case 'meta':
        return { fn: metaReader(n.name), konst: false };
      case 'field':
        return { fn: fieldReader(n), konst: false };
      case 'index': {
        const obj = visit(n.obj).fn;
        const idx = visit(n.index).fn;
        return { fn: (v, m) => index(obj(v, m), idx(v, m)), konst: false };
      }
      case 'unary':
        return fold(unary(n));
      case 'cond': {
        const test = visit(n.test);
        const then = visit(n.then);
        const other = visit(n.else);
        const fail = failAt(n.test);
        const [t, a, b] = [test.fn, then.fn, other.fn];
        const fn: Fn = (v, m) => {
          const c = t(v, m);
          if (c === true) return a(v, m);
          if (c === false || c === null) return b(v, m);
          return fail(`${show(c)} is not a boolean`);
        };
        return fold({ fn, konst: test.konst && then.konst && other.konst });
      }
      case 'bin':
        return fold(binary(n));
      case 'call':
        return fold(call(n));
    }
  };

  const fieldReader = (n: Extract<Node, { k: 'field' }>): Fn => {
    const path: string[] = [];
    let base: Node | null = n;
    while (base && base.k === 'field') {
      path.unshift(base.name);
      base = base.obj;
    }
    const from: Fn = base === null ? (v) => v : base.k === 'meta' ? metaReader(base.name) : visit(base).fn;
    const gets = path.map(fieldGetter);
    if (gets.length === 1) {
      const [a] = gets;
      return (v, m) => a(from(v, m));
    }
    if (gets.length === 2) {
      const [a, b] = gets;
      return (v, m) => b(a(from(v, m)));
    }
    return (v, m) => {
      let o = from(v, m);
      for (let i = 0; i < gets.length && o !== null; i++) o = gets[i](o);
      return o;
    };
  };

  const unary = (n: Extract<Node, { k: 'unary' }>): C => {
    const arg = visit(n.arg);
    const f = arg.fn;
    const fail = failAt(n);
    if (n.op === '!') {
      return {
        fn: (v, m) => {
          const a = f(v, m);
          if (typeof a === 'boolean') return !a;
          return a === null ? null : fail(`${show(a)} is not a boolean`);
        },
        konst: arg.konst,
      };
    }
    return {
      fn: (v, m) => {
        const a = f(v, m);
        if (typeof a === 'number') return -a;
        if (a === null) return null;
        const x = numeric(a) ?? fail(`${show(a)} is not a number`);
        return -x;
      },
      konst: arg.konst,
    };
  };

  const binary = (n: Extract<Node, { k: 'bin' }>): C => {
    const fail = failAt(n);
    const op = n.op;
    if (op === 'in' || op === 'not in') return membership(n, fail);
    const l = visit(n.left);
    const r = visit(n.right);
    const konst = l.konst && r.konst;
    const [lf, rf] = [l.fn, r.fn];
    switch (op) {
      case '??':
        return { fn: (v, m) => lf(v, m) ?? rf(v, m), konst };
      case 'and':
      case 'or':
        return { fn: logic(op, lf, rf, fail), konst };
      case '==':
        return { fn: (v, m) => eq(lf(v, m), rf(v, m)), konst };
      case '!=':
        return { fn: (v, m) => !eq(lf(v, m), rf(v, m)), konst };
      case '<':
      case '<=':
      case '>':
      case '>=':
        return { fn: comparison(op, lf, rf, fail), konst };
      default:
        return { fn: arithmetic(op, lf, rf, fail), konst };
    }
  };

  const membership = (n: Extract<Node, { k: 'bin' }>, fail: Fail): C => {
    const negate = n.op === 'not in';
    const l = visit(n.left);
    const lf = l.fn;
    if (n.right.k === 'list') {
      const items = n.right.items.map(visit);
      if (items.every((i) => i.konst)) {
        // A literal list: built once; a set when it holds only strings.
        const list = items.map((i) => i.fn(null, NO_META));
        const strings = list.every((x) => typeof x === 'string') ? new Set(list) : undefined;
        return {
          fn: (v, m) => {
            const a = lf(v, m);
            if (a === null) return null;
            if (strings && typeof a === 'string') return strings.has(a) !== negate;
            for (const x of list) if (eq(a, x)) return !negate;
            return negate;
          },
          konst: l.konst,
        };
      }
    }
    const r = visit(n.right);
    const rf = r.fn;
    return {
      fn: (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        if (a === null || b === null) return null;
        return inside(a, b, n.op, fail) !== negate;
      },
      konst: l.konst && r.konst,
    };
  };

  const call = (n: Extract<Node, { k: 'call' }>): C => {
    const def = FUNCTION_DEFS.get(n.name);
    if (!def) throw new ExprError(`unknown function '${n.name}'`, n.at + 1, src); // the checker reports it first
    const args = n.args.map(visit);
    const fs = args.map((a) => a.fn);
    const impl = def.prepare?.(n.args) ?? def.impl;
    const fail = failAt(n);
    const own = def.nulls === 'own';
    const konst = !def.impure && args.every((a) => a.konst);
    let fn: Fn;
    if (fs.length === 1) {
      const [f0] = fs;
      fn = (v, m) => {
        const a = f0(v, m);
        return a === null && !own ? null : (impl([a], fail) ?? null);
      };
    } else if (fs.length === 2) {
      const [f0, f1] = fs;
      fn = (v, m) => {
        const a = f0(v, m);
        const b = f1(v, m);
        return (a === null || b === null) && !own ? null : (impl([a, b], fail) ?? null);
      };
    } else {
      fn = (v, m) => {
        const a = new Array<unknown>(fs.length);
        for (let i = 0; i < fs.length; i++) {
          a[i] = fs[i](v, m);
          if (a[i] === null && !own) return null;
        }
        return impl(a, fail) ?? null;
      };
    }
    return { fn, konst };
  };

  return visit(root).fn;
}

function metaReader(name: string): Fn {
  switch (name) {
    case 'topic':
      return (_v, m) => m.topic;
    case 'key':
      return (_v, m) => m.key ?? null;
    case 'timestamp':
      return (_v, m) => m.timestamp;
    case 'headers':
      return (_v, m) => m.headers ?? null;
    case 'partition':
      return (_v, m) => m.partition ?? null;
    case 'offset':
      return (_v, m) => m.offset ?? null;
    default:
      return (v) => v ?? null; // $value
  }
}

/** `o[i]`: an element of a list by integer position, a field of an object by name; null otherwise. */
function index(o: unknown, i: unknown): unknown {
  if (o === null || i === null || o === undefined || i === undefined) return null;
  if (Array.isArray(o)) {
    const k = typeof i === 'bigint' ? Number(i) : i;
    return typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < o.length ? (o[k] ?? null) : null;
  }
  if (typeof i === 'string') return getField(o, i);
  if (typeof i === 'number' || typeof i === 'bigint') return getField(o, String(i));
  return null;
}

/** `a in b` for non-null operands: an element of a list, a substring of a string, an own key of an object. */
function inside(a: unknown, b: unknown, op: string, fail: Fail): boolean {
  if (Array.isArray(b)) {
    for (const x of b) if (eq(a, x)) return true;
    return false;
  }
  if (typeof b === 'string' || isRecord(b)) {
    if (typeof a !== 'string') fail(`${show(a)} is ${kindOf(a)}: '${op}' with ${typeof b === 'string' ? 'a string on its right looks for a string' : 'an object on its right looks for a key (a string)'}`);
    return typeof b === 'string' ? b.includes(a as string) : Object.hasOwn(b, a as string);
  }
  return fail(`${show(b)} is ${kindOf(b)}: '${op}' needs a list, a string or an object on its right`);
}

/** Three-valued AND/OR over booleans and null, short-circuiting; anything else is an error. */
function logic(op: 'and' | 'or', lf: Fn, rf: Fn, fail: Fail): Fn {
  const stop = op === 'or'; // the value that decides alone
  const notBool = (x: unknown): never => fail(`${show(x)} is not a boolean`);
  return (v, m) => {
    const a = lf(v, m);
    if (a === stop) return stop;
    if (a !== !stop && a !== null) notBool(a);
    const b = rf(v, m);
    if (b === stop) return stop;
    if (b !== !stop && b !== null) notBool(b);
    return a === null || b === null ? null : !stop;
  };
}

function comparison(op: '<' | '<=' | '>' | '>=', lf: Fn, rf: Fn, fail: Fail): Fn {
  const slow = (a: unknown, b: unknown): number => {
    const c = compare(a, b);
    return c === undefined ? fail(`cannot compare ${show(a)} with ${show(b)}`) : c;
  };
  switch (op) {
    case '<':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        if (typeof a === 'number' && typeof b === 'number') return a < b;
        return a === null || b === null ? null : slow(a, b) < 0;
      };
    case '<=':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        if (typeof a === 'number' && typeof b === 'number') return a <= b;
        return a === null || b === null ? null : slow(a, b) <= 0;
      };
    case '>':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        if (typeof a === 'number' && typeof b === 'number') return a > b;
        return a === null || b === null ? null : slow(a, b) > 0;
      };
    case '>=':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        if (typeof a === 'number' && typeof b === 'number') return a >= b;
        return a === null || b === null ? null : slow(a, b) >= 0;
      };
  }
}

function arithmetic(op: Exclude<BinOp, 'in' | 'not in' | '??' | 'and' | 'or' | '==' | '!=' | '<' | '<=' | '>' | '>='>, lf: Fn, rf: Fn, fail: Fail): Fn {
  const slow = (a: unknown, b: unknown): unknown => {
    if (a === null || b === null) return null;
    const na = numeric(a) ?? fail(`${show(a)} is not a number`);
    const nb = numeric(b) ?? fail(`${show(b)} is not a number`);
    return arith(op as ArithOp, na, nb) ?? fail('division by zero');
  };
  switch (op) {
    case '+':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        return typeof a === 'number' && typeof b === 'number' ? a + b : slow(a, b);
      };
    case '-':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        return typeof a === 'number' && typeof b === 'number' ? a - b : slow(a, b);
      };
    case '*':
      return (v, m) => {
        const a = lf(v, m);
        const b = rf(v, m);
        return typeof a === 'number' && typeof b === 'number' ? a * b : slow(a, b);
      };
    default:
      return (v, m) => slow(lf(v, m), rf(v, m));
  }
}
