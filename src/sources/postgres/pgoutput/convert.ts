/**
 * Value converters: PostgreSQL text (and binary) output → Sluice values, following Debezium's
 * PostgreSQL mapping with decimal.handling.mode=string and time.precision.mode=adaptive.
 * Sessions must use DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres (see replication.ts).
 */
import type { Value } from '../../../core/event.ts';

export type TextConverter = (text: string) => Value;
export type BinaryConverter = (b: Buffer) => Value;

const MS_PER_DAY = 86_400_000;
const DAYS_PER_MONTH_AVG = 365.25 / 12;

export const textToString: TextConverter = (s) => s;
export const textToBool: TextConverter = (s) => s === 't' || s === 'true';
export const textToInt: TextConverter = (s) => Number(s);
export const textToBigInt: TextConverter = (s) => BigInt(s);
export const textToFloat: TextConverter = (s) => Number(s);
export const textToBytea: TextConverter = (s) => (s.startsWith('\\x') ? Buffer.from(s.slice(2), 'hex') : unescapeBytea(s));

function unescapeBytea(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') {
      if (s[i + 1] === '\\') {
        out.push(92);
        i++;
      } else {
        out.push(parseInt(s.slice(i + 1, i + 4), 8));
        i += 3;
      }
    } else out.push(s.charCodeAt(i));
  }
  return Buffer.from(out);
}

/** `YYYY-MM-DD[ BC]` → days since 1970-01-01; ±infinity → int32 max/min. */
export const textToDate: TextConverter = (s) => {
  if (s === 'infinity') return 2147483647;
  if (s === '-infinity') return -2147483648;
  const bc = s.endsWith(' BC');
  const m = /^(\d+)-(\d\d)-(\d\d)/.exec(s)!;
  let y = Number(m[1]);
  if (bc) y = 1 - y;
  return Math.round(utc(y, Number(m[2]) - 1, Number(m[3])) / MS_PER_DAY);
};

function utc(y: number, mo: number, d: number, h = 0, mi = 0, sec = 0): number {
  const t = Date.UTC(y, mo, d, h, mi, sec);
  if (y >= 0 && y < 100) {
    const dt = new Date(t);
    dt.setUTCFullYear(y);
    return dt.getTime();
  }
  return t;
}

function fractionMicros(f: string | undefined): number {
  if (!f) return 0;
  return Number((f + '000000').slice(0, 6));
}

const TS_RE = /^(\d+)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([+-])(\d\d)(?::?(\d\d))?(?::(\d\d))?)?( BC)?$/;

/** timestamp without time zone → microseconds since epoch (io.debezium.time.MicroTimestamp). */
export const textToMicroTimestamp: TextConverter = (s) => {
  if (s === 'infinity') return Number.MAX_SAFE_INTEGER;
  if (s === '-infinity') return Number.MIN_SAFE_INTEGER;
  const m = TS_RE.exec(s);
  if (!m) throw new Error(`cannot parse timestamp ${JSON.stringify(s)}`);
  let y = Number(m[1]);
  if (m[12]) y = 1 - y;
  return utc(y, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) * 1000 + fractionMicros(m[7]);
};

/** timestamptz → ISO-8601 UTC string with the fraction's trailing zeros trimmed (io.debezium.time.ZonedTimestamp). */
export const textToZonedTimestamp: TextConverter = (s) => {
  if (s === 'infinity' || s === '-infinity') return s;
  // Fast path: our sessions use TimeZone=UTC, so the text is `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
  const n = s.length;
  if (n >= 22 && s.charCodeAt(4) === 45 && s.charCodeAt(10) === 32 && s.charCodeAt(n - 3) === 43 && s.charCodeAt(n - 2) === 48 && s.charCodeAt(n - 1) === 48) {
    let end = n - 3;
    if (s.charCodeAt(19) === 46) {
      while (s.charCodeAt(end - 1) === 48) end--;
      if (end === 20) end = 19;
    }
    return s.slice(0, 10) + 'T' + s.slice(11, end) + 'Z';
  }
  const m = TS_RE.exec(s);
  if (!m) throw new Error(`cannot parse timestamptz ${JSON.stringify(s)}`);
  let y = Number(m[1]);
  if (m[12]) y = 1 - y;
  let ms = utc(y, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  if (m[8]) {
    const off = (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) * 1000;
    ms += m[8] === '+' ? -off : off;
  }
  return isoUtc(ms, fractionMicros(m[7]));
};

function p2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

export function isoUtc(ms: number, micros: number): string {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const ys = y >= 0 && y <= 9999 ? String(y).padStart(4, '0') : (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(6, '0');
  const p = p2;
  let frac = '';
  if (micros) frac = '.' + String(micros).padStart(6, '0').replace(/0+$/, '');
  return `${ys}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${frac}Z`;
}

/** time → microseconds since midnight (io.debezium.time.MicroTime). */
export const textToMicroTime: TextConverter = (s) => {
  const m = /^(\d\d):(\d\d):(\d\d)(?:\.(\d+))?/.exec(s)!;
  return (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1_000_000 + fractionMicros(m[4]);
};

/** timetz → `HH:MM:SS[.f]Z` in UTC (io.debezium.time.ZonedTime). */
export const textToZonedTime: TextConverter = (s) => {
  const m = /^(\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d)(?::?(\d\d))?(?::(\d\d))?$/.exec(s)!;
  let secs = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
  const off = Number(m[6]) * 3600 + Number(m[7] ?? 0) * 60 + Number(m[8] ?? 0);
  secs += m[5] === '+' ? -off : off;
  secs = ((secs % 86400) + 86400) % 86400;
  const p = p2;
  const micros = fractionMicros(m[4]);
  const frac = micros ? '.' + String(micros).padStart(6, '0').replace(/0+$/, '') : '';
  return `${p(Math.floor(secs / 3600))}:${p(Math.floor(secs / 60) % 60)}:${p(secs % 60)}${frac}Z`;
};

/** interval (IntervalStyle postgres) → microseconds, months as 30.4375 days (io.debezium.time.MicroDuration). */
export const textToMicroDuration: TextConverter = (s) => {
  let years = 0,
    months = 0,
    days = 0,
    micros = 0;
  const re = /(-?\d+) (year|mon|day)s?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const n = Number(m[1]);
    if (m[2] === 'year') years += n;
    else if (m[2] === 'mon') months += n;
    else days += n;
  }
  const t = /(-)?(\d+):(\d\d):(\d\d)(?:\.(\d+))?/.exec(s);
  if (t) {
    const v = (Number(t[2]) * 3600 + Number(t[3]) * 60 + Number(t[4])) * 1_000_000 + fractionMicros(t[5]);
    micros += t[1] ? -v : v;
  }
  const totalDays = years * 365.25 + months * DAYS_PER_MONTH_AVG + days;
  return Math.round(totalDays * 86_400_000_000) + micros;
};

/** bit(n)/varbit text ('0101') → bytes, most significant bit first, left-padded to whole bytes. */
export const textToBits: TextConverter = (s) => {
  const nbytes = Math.ceil(s.length / 8);
  const out = Buffer.alloc(nbytes);
  const padded = s.padStart(nbytes * 8, '0');
  for (let i = 0; i < nbytes; i++) out[i] = parseInt(padded.slice(i * 8, i * 8 + 8), 2);
  return out;
};

export const textToBit1: TextConverter = (s) => s === '1';

/** Parses a PostgreSQL array literal (`{1,2,NULL}`, `{{a,b},{c,d}}`, `{"x,y","q\"z"}`) with `elem` for elements. */
export function parseArray(s: string, elem: TextConverter, delim = ','): Value[] {
  let i = s[0] === '[' ? s.indexOf('=') + 1 : 0; // explicit bounds: [0:2]={...}
  if (s[i] !== '{') throw new Error(`bad array literal ${JSON.stringify(s)}`);
  const stack: Value[][] = [];
  let cur: Value[] = [];
  i++;
  for (;;) {
    const ch = s[i];
    if (ch === '{') {
      stack.push(cur);
      cur = [];
      i++;
      continue;
    }
    if (ch === '}') {
      i++;
      const done = cur;
      if (stack.length === 0) return done;
      cur = stack.pop()!;
      cur.push(done);
    } else if (ch === '"') {
      i++;
      let v = '';
      while (s[i] !== '"') {
        if (s[i] === '\\') i++;
        v += s[i++];
      }
      i++;
      cur.push(elem(v));
    } else {
      let j = i;
      while (s[j] !== delim && s[j] !== '}') j++;
      const raw = s.slice(i, j).trim();
      i = j;
      cur.push(raw === 'NULL' ? null : elem(raw));
    }
    if (s[i] === delim) i++;
    else if (s[i] !== '}') throw new Error(`bad array literal ${JSON.stringify(s)}`);
  }
}

// ---- binary (pgoutput `binary 'true'`) ----

const PG_EPOCH_MS = 946_684_800_000;
export const binBool: BinaryConverter = (b) => b[0] === 1;
export const binInt2: BinaryConverter = (b) => b.readInt16BE(0);
export const binInt4: BinaryConverter = (b) => b.readInt32BE(0);
export const binUInt4: BinaryConverter = (b) => b.readUInt32BE(0);
export const binInt8: BinaryConverter = (b) => b.readBigInt64BE(0);
export const binFloat4: BinaryConverter = (b) => b.readFloatBE(0);
export const binFloat8: BinaryConverter = (b) => b.readDoubleBE(0);
export const binText: BinaryConverter = (b) => b.toString('utf8');
export const binBytea: BinaryConverter = (b) => Buffer.from(b);
export const binJsonb: BinaryConverter = (b) => b.toString('utf8', 1);
export const binUuid: BinaryConverter = (b) => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
export const binDate: BinaryConverter = (b) => {
  const d = b.readInt32BE(0);
  if (d === 0x7fffffff) return 2147483647;
  if (d === -0x80000000) return -2147483648;
  return d + PG_EPOCH_MS / MS_PER_DAY;
};
export const binMicroTimestamp: BinaryConverter = (b) => Number(b.readBigInt64BE(0)) + PG_EPOCH_MS * 1000;
export const binZonedTimestamp: BinaryConverter = (b) => {
  const us = b.readBigInt64BE(0) + BigInt(PG_EPOCH_MS) * 1000n;
  let secs = us / 1_000_000n;
  if (us < 0n && secs * 1_000_000n !== us) secs -= 1n;
  return isoUtc(Number(secs) * 1000, Number(us - secs * 1_000_000n));
};
export const binMicroTime: BinaryConverter = (b) => Number(b.readBigInt64BE(0));

/** Binary numeric: ndigits, weight, sign, dscale, base-10000 digits → exact decimal string. */
export const binNumeric: BinaryConverter = (b) => {
  const ndigits = b.readInt16BE(0);
  const weight = b.readInt16BE(2);
  const sign = b.readUInt16BE(4);
  const dscale = b.readInt16BE(6);
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(b.readInt16BE(8 + i * 2));
  let intPart = '';
  for (let i = 0; i <= weight; i++) intPart += i === 0 ? String(digits[i] ?? 0) : String(digits[i] ?? 0).padStart(4, '0');
  if (intPart === '') intPart = '0';
  let frac = '';
  for (let i = weight + 1; i < ndigits; i++) frac += (i < 0 ? '0000' : String(digits[i]).padStart(4, '0'));
  frac = (frac + '0'.repeat(dscale)).slice(0, dscale);
  const s = dscale > 0 ? `${intPart}.${frac}` : intPart;
  return sign === 0x4000 ? '-' + s : s;
};
