/**
 * Documents as JSON text for PostgreSQL JSONB, and back. Writing: Date → ISO-8601 text
 * (`toISOString`), Decimal and bigint → JSON numbers with their exact digits (jsonb keeps numbers
 * as `numeric`, so nothing is rounded), Buffer → base64 text, NaN/±Infinity → null.
 * Reading undoes what it can: a number with a fraction or exponent becomes a Decimal (exact), an
 * integer a number (bigint beyond 2^53), and text in exactly `toISOString`'s form a Date.
 */
import { Decimal, type Doc, type DocValue } from './types.ts';

const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function toJsonText(v: DocValue | undefined): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'null' : JSON.stringify(v.toISOString());
  if (v instanceof Decimal) return JSON_NUMBER.test(v.text) ? v.text : JSON.stringify(v.text);
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString('base64'));
  if (Array.isArray(v)) return '[' + v.map((x) => toJsonText(x)).join(',') + ']';
  let out = '{';
  let first = true;
  for (const k of Object.keys(v)) {
    const x = (v as Doc)[k];
    if (x === undefined) continue;
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + toJsonText(x);
    first = false;
  }
  return out + '}';
}

/** Parses JSON text as PostgreSQL prints jsonb, reviving Decimals, bigints and Dates. */
export function fromJsonText(text: string): DocValue {
  return new Reader(text).value();
}

class Reader {
  i = 0;
  constructor(private readonly s: string) {}

  private ws(): void {
    let c = this.s.charCodeAt(this.i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = this.s.charCodeAt(++this.i);
  }

  value(): DocValue {
    this.ws();
    const s = this.s;
    const c = s[this.i];
    if (c === '{') {
      this.i++;
      const o: Doc = {};
      this.ws();
      if (s[this.i] === '}') return this.i++, o;
      for (;;) {
        this.ws();
        const k = this.string();
        this.ws();
        this.i++; // :
        o[k] = this.value();
        this.ws();
        if (s[this.i++] === '}') return o;
      }
    }
    if (c === '[') {
      this.i++;
      const a: DocValue[] = [];
      this.ws();
      if (s[this.i] === ']') return this.i++, a;
      for (;;) {
        a.push(this.value());
        this.ws();
        if (s[this.i++] === ']') return a;
      }
    }
    if (c === '"') {
      const t = this.string();
      return ISO_DATE.test(t) ? new Date(t) : t;
    }
    if (s.startsWith('true', this.i)) return (this.i += 4), true;
    if (s.startsWith('false', this.i)) return (this.i += 5), false;
    if (s.startsWith('null', this.i)) return (this.i += 4), null;
    const start = this.i;
    while (this.i < s.length && /[-+.eE\d]/.test(s[this.i])) this.i++;
    const t = s.slice(start, this.i);
    if (!JSON_NUMBER.test(t)) throw new Error(`not JSON at offset ${start}: ${s.slice(start, start + 20)}`);
    if (/[.eE]/.test(t)) return new Decimal(t);
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : BigInt(t);
  }

  private string(): string {
    const s = this.s;
    let j = this.i + 1;
    let escaped = false;
    while (s.charCodeAt(j) !== 34) {
      if (s.charCodeAt(j) === 92) {
        escaped = true;
        j++;
      }
      j++;
      if (j >= s.length) throw new Error('unterminated JSON string');
    }
    const raw = s.slice(this.i, j + 1);
    this.i = j + 1;
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  }
}
