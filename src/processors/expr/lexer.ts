/**
 * The expression language's tokenizer: numbers (`12`, `3.5`, `1e3`; integers beyond 2^53 become
 * bigints so that int64 ids compare exactly), strings in '…' or "…" with backslash escapes,
 * identifiers (keywords included: the parser tells them apart), `$names` and operators.
 *
 * String escapes: \n \t \r \\ \' \" \uXXXX. Any other backslash is kept as it is, so regular
 * expressions read naturally: matches(s, '\d+') is the regex \d+.
 */
import { ExprError } from './errors.ts';

export type TokKind = 'num' | 'str' | 'id' | 'meta' | 'op' | 'eof';

export interface Token {
  kind: TokKind;
  /** Operator text, identifier or $name (without the $), or the raw text of a literal. */
  text: string;
  /** The literal's value for 'num' and 'str'. */
  value: number | bigint | string | null;
  pos: number;
  end: number;
}

const OPS2 = new Set(['??', '||', '&&', '==', '!=', '<=', '>=']);
const OPS1 = new Set(['?', ':', '<', '>', '+', '-', '*', '/', '%', '!', '(', ')', '[', ']', ',', '.']);
const HINTS: Record<string, string> = { '=': " (use '==' to compare)", '&': " (use '&&' or 'and')", '|': " (use '||' or 'or')" };

const isDigit = (c: number) => c >= 48 && c <= 57;
const isIdStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isIdPart = (c: number) => isIdStart(c) || isDigit(c);

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  const n = src.length;
  let i = 0;
  const fail = (msg: string, at: number): never => {
    throw new ExprError(msg, at + 1, src);
  };
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    const start = i;
    if (isDigit(c)) {
      while (i < n && isDigit(src.charCodeAt(i))) i++;
      let integer = true;
      if (src[i] === '.' && isDigit(src.charCodeAt(i + 1))) {
        integer = false;
        i++;
        while (i < n && isDigit(src.charCodeAt(i))) i++;
      }
      if (src[i] === 'e' || src[i] === 'E') {
        let j = i + 1;
        if (src[j] === '+' || src[j] === '-') j++;
        if (!isDigit(src.charCodeAt(j))) fail(`invalid number '${src.slice(start, j)}'`, start);
        integer = false;
        i = j;
        while (i < n && isDigit(src.charCodeAt(i))) i++;
      }
      if (i < n && isIdPart(src.charCodeAt(i))) fail(`invalid number '${src.slice(start, i + 1)}'`, start);
      const text = src.slice(start, i);
      let value: number | bigint = Number(text);
      if (integer && !Number.isSafeInteger(value)) value = BigInt(text);
      out.push({ kind: 'num', text, value, pos: start, end: i });
      continue;
    }
    if (c === 39 || c === 34) {
      const q = src[i++];
      let s = '';
      for (;;) {
        if (i >= n) fail('unterminated string', start);
        const ch = src[i];
        if (ch === q) {
          i++;
          break;
        }
        if (ch !== '\\') {
          s += ch;
          i++;
          continue;
        }
        if (i + 1 >= n) fail('unterminated string', start);
        const e = src[i + 1];
        if (e === 'n') s += '\n';
        else if (e === 't') s += '\t';
        else if (e === 'r') s += '\r';
        else if (e === '\\' || e === "'" || e === '"') s += e;
        else if (e === 'u') {
          const hex = src.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape: 4 hex digits are needed', i);
          s += String.fromCharCode(parseInt(hex, 16));
          i += 6;
          continue;
        } else s += '\\' + e;
        i += 2;
      }
      out.push({ kind: 'str', text: src.slice(start, i), value: s, pos: start, end: i });
      continue;
    }
    if (isIdStart(c)) {
      while (i < n && isIdPart(src.charCodeAt(i))) i++;
      out.push({ kind: 'id', text: src.slice(start, i), value: null, pos: start, end: i });
      continue;
    }
    if (c === 36) {
      i++;
      if (!isIdStart(src.charCodeAt(i))) fail("expected a name after '$'", start);
      while (i < n && isIdPart(src.charCodeAt(i))) i++;
      out.push({ kind: 'meta', text: src.slice(start + 1, i), value: null, pos: start, end: i });
      continue;
    }
    const two = src.slice(i, i + 2);
    if (OPS2.has(two)) {
      out.push({ kind: 'op', text: two, value: null, pos: start, end: i + 2 });
      i += 2;
      continue;
    }
    const one = src[i];
    if (OPS1.has(one)) {
      out.push({ kind: 'op', text: one, value: null, pos: start, end: i + 1 });
      i++;
      continue;
    }
    fail(`unexpected character '${one}'${HINTS[one] ?? ''}`, start);
  }
  out.push({ kind: 'eof', text: '', value: null, pos: n, end: n });
  return out;
}
