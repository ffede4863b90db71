/**
 * Value converters: PostgreSQL text (and binary) output → Sluice values, following Debezium's
 * PostgreSQL mapping with decimal.handling.mode=string and time.precision.mode=adaptive.
 * Sessions must use DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres (see replication.ts).
 */
import type { Value } from '../../../core/event.ts';
import { civilFromDays, daysFromCivil, INT64_MAX, INT64_MIN, microsOf } from '../../../core/time.ts';

export type TextConverter = (text: string) => Value;
export type BinaryConverter = (b: Buffer) => Value;

const MS_PER_DAY = 86_400_000;

/**
 * `timestamp 'infinity'` / `'-infinity'` as io.debezium.time.MicroTimestamp: int64's extremes, which
 * no finite timestamp takes (those from 294247 AD on are beyond an int64 of microseconds since
 * 1970 and stop the pipeline instead, see `finiteMicros`).
 */
export const TIMESTAMP_INFINITY = INT64_MAX;
export const TIMESTAMP_MINUS_INFINITY = INT64_MIN;

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

/**
 * `YYYY-MM-DD[ BC]` → days since 1970-01-01, exact for every date PostgreSQL holds (4713 BC …
 * 5874897 AD); ±infinity → int32 max/min, which no date takes.
 */
export const textToDate: TextConverter = (s) => {
  if (s.length === 10 && s.charCodeAt(4) === 45) return daysFromCivil(digits(s, 0, 4), digits(s, 5, 7), digits(s, 8, 10));
  if (s === 'infinity') return 2147483647;
  if (s === '-infinity') return -2147483648;
  const bc = s.endsWith(' BC');
  const m = /^(\d+)-(\d\d)-(\d\d)/.exec(s)!;
  let y = Number(m[1]);
  if (bc) y = 1 - y;
  return daysFromCivil(y, Number(m[2]), Number(m[3]));
};

/** The number written by the decimal digits s[a..b). */
function digits(s: string, a: number, b: number): number {
  let v = 0;
  for (let i = a; i < b; i++) v = v * 10 + (s.charCodeAt(i) - 48);
  return v;
}

/** Milliseconds since the epoch (whole seconds) of a UTC date-time, month 0-based; any year. */
function utc(y: number, mo: number, d: number, h = 0, mi = 0, sec = 0): number {
  return (daysFromCivil(y, mo + 1, d) * 86_400 + h * 3600 + mi * 60 + sec) * 1000;
}

/** Whole seconds since the epoch of a UTC date-time, month 1-based; any year. */
function utcSeconds(y: number, mo: number, d: number, h: number, mi: number, sec: number): number {
  return daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
}

/** Microseconds that an int64 holds, or an error naming the value (the caller adds the column). */
function finiteMicros(us: number | bigint, text: string): number | bigint {
  if (typeof us === 'bigint' && (us >= INT64_MAX || us <= INT64_MIN)) {
    throw new Error(`${JSON.stringify(text)} is beyond what an int64 of microseconds since 1970 holds (up to 294247-01-10)`);
  }
  return us;
}

function fractionMicros(f: string | undefined): number {
  if (!f) return 0;
  return Number((f + '000000').slice(0, 6));
}

const TS_RE = /^(\d+)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([+-])(\d\d)(?::?(\d\d))?(?::(\d\d))?)?( BC)?$/;

/**
 * timestamp without time zone → microseconds since epoch (io.debezium.time.MicroTimestamp): a
 * number while exact, a bigint beyond 2^53 (from 2255-06-05 on); ±infinity → int64 max/min.
 */
export const textToMicroTimestamp: TextConverter = (s) => {
  // Fast path, the common shape: `YYYY-MM-DD HH:MM:SS[.f…]`, years 1000–9999 (exact as a number).
  const n = s.length;
  if (n >= 19 && n <= 26 && s.charCodeAt(4) === 45 && s.charCodeAt(10) === 32 && s.charCodeAt(13) === 58 && (n === 19 || s.charCodeAt(19) === 46) && s.charCodeAt(0) !== 48 && s.charCodeAt(n - 1) <= 57) {
    const y = digits(s, 0, 4);
    let us = 0;
    for (let i = 20; i < 26; i++) us = us * 10 + (i < n ? s.charCodeAt(i) - 48 : 0);
    const secs = daysFromCivil(y, digits(s, 5, 7), digits(s, 8, 10)) * 86_400 + digits(s, 11, 13) * 3600 + digits(s, 14, 16) * 60 + digits(s, 17, 19);
    if (y < 2255) return secs * 1e6 + us;
    return microsOf(secs, us);
  }
  if (s === 'infinity') return TIMESTAMP_INFINITY;
  if (s === '-infinity') return TIMESTAMP_MINUS_INFINITY;
  const m = TS_RE.exec(s);
  if (!m) throw new Error(`cannot parse timestamp ${JSON.stringify(s)}`);
  let y = Number(m[1]);
  if (m[12]) y = 1 - y;
  return finiteMicros(microsOf(utcSeconds(y, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])), fractionMicros(m[7])), s);
};

/** timestamptz → ISO-8601 UTC string with six fraction digits, as Debezium writes it (io.debezium.time.ZonedTimestamp). */
export const textToZonedTimestamp: TextConverter = (s) => {
  if (s === 'infinity' || s === '-infinity') return s;
  // Fast path: our sessions use TimeZone=UTC, so the text is `YYYY-MM-DD HH:MM:SS[.ffffff]+00`.
  const n = s.length;
  if (n >= 22 && n <= 29 && s.charCodeAt(4) === 45 && s.charCodeAt(10) === 32 && s.charCodeAt(n - 3) === 43 && s.charCodeAt(n - 2) === 48 && s.charCodeAt(n - 1) === 48) {
    // PostgreSQL trims the fraction's trailing zeros (and a zero fraction); Debezium writes six digits.
    return s.slice(0, 10) + 'T' + s.slice(11, 19) + (n === 22 ? '.000000' : s.slice(19, n - 3) + '000000'.slice(n - 23)) + 'Z';
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
  // Calendar arithmetic rather than a Date: exact for every year PostgreSQL holds.
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86_400);
  const sod = secs - days * 86_400;
  const [y, mo, d] = civilFromDays(days);
  const ys = y >= 0 && y <= 9999 ? String(y).padStart(4, '0') : (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(6, '0');
  const p = p2;
  // Six fraction digits, as Debezium's ZonedTimestamp (`2024-01-02T03:04:05.100000Z`, `….000000Z`).
  const frac = '.' + String(micros).padStart(6, '0');
  return `${ys}-${p(mo)}-${p(d)}T${p(Math.floor(sod / 3600))}:${p(Math.floor(sod / 60) % 60)}:${p(sod % 60)}${frac}Z`;
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

/** An interval's fields as PostgreSQL prints them (IntervalStyle postgres): `1 year 2 mons -3 days -04:05:06.5`. */
interface IntervalParts {
  years: string;
  months: string;
  days: string;
  /** The time part: sign, hours (any number of digits), minutes, seconds, fraction digits. */
  neg: boolean;
  hours: string;
  minutes: string;
  seconds: string;
  fraction: string;
}

function intervalParts(s: string): IntervalParts {
  const p: IntervalParts = { years: '0', months: '0', days: '0', neg: false, hours: '0', minutes: '0', seconds: '0', fraction: '' };
  const re = /([-+]?\d+) (year|mon|day)s?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    const n = String(BigInt(m[1]));
    if (m[2] === 'year') p.years = n;
    else if (m[2] === 'mon') p.months = n;
    else p.days = n;
  }
  const t = /([-+])?(\d+):(\d\d):(\d\d)(?:\.(\d+))?/.exec(s);
  if (t) {
    p.neg = t[1] === '-';
    p.hours = String(BigInt(t[2]));
    p.minutes = String(Number(t[3]));
    p.seconds = String(Number(t[4]));
    p.fraction = (t[5] ?? '').replace(/0+$/, '');
  }
  return p;
}

/**
 * interval (IntervalStyle postgres) → ISO 8601 `P1Y2M3DT4H5M6.5S` (io.debezium.time.Interval, as
 * Debezium's `interval.handling.mode=string`): years, months, days and time kept apart, exactly as
 * PostgreSQL holds them, whatever their size. Every field is written; the time's sign goes on each
 * of its non-zero fields (`PT-4H-5M-6.5S`).
 */
export const textToIsoInterval: TextConverter = (s) => {
  const p = intervalParts(s);
  const sign = (v: string) => (p.neg && v !== '0' ? '-' + v : v);
  const secs = p.fraction ? `${p.seconds}.${p.fraction}` : p.seconds;
  return `P${p.years}Y${p.months}M${p.days}DT${sign(p.hours)}H${sign(p.minutes)}M${p.neg && secs !== '0' ? '-' + secs : secs}S`;
};

/**
 * interval → microseconds (io.debezium.time.MicroDuration, `intervalHandling: numeric`): a month
 * counted as 30.4375 days and a day as 24 hours, as Debezium does, computed exactly; a number
 * while exact, a bigint beyond 2^53; beyond int64 an error naming the value.
 */
export const textToMicroDuration: TextConverter = (s) => {
  const p = intervalParts(s);
  const months = BigInt(p.years) * 12n + BigInt(p.months);
  const time = (BigInt(p.hours) * 3600n + BigInt(p.minutes) * 60n + BigInt(p.seconds)) * 1_000_000n + BigInt(fractionMicros(p.fraction));
  const us = (months * 2_629_800n + BigInt(p.days) * 86_400n) * 1_000_000n + (p.neg ? -time : time);
  if (us > INT64_MAX || us < INT64_MIN) throw new Error(`interval ${JSON.stringify(s)} is beyond what an int64 of microseconds holds; set source.intervalHandling: string`);
  return us >= -BigInt(Number.MAX_SAFE_INTEGER) && us <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(us) : us;
};

/** bit(n) text ('0101') → bytes, most significant bit first, left-padded to whole bytes. */
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
/** As textToMicroTimestamp: exact (a bigint beyond 2^53), ±infinity (PostgreSQL's own int64 extremes) → int64 max/min. */
export const binMicroTimestamp: BinaryConverter = (b) => {
  const hi = b.readInt32BE(0);
  // Within ±2^52.8 µs of 2000-01-01 the sum stays below 2^53: plain numbers.
  if (hi > -0x1c0000 && hi < 0x1c0000) return hi * 4_294_967_296 + b.readUInt32BE(4) + PG_EPOCH_MS * 1000;
  const v = b.readBigInt64BE(0);
  if (v === INT64_MAX || v === INT64_MIN) return v;
  const us = v + BigInt(PG_EPOCH_MS) * 1000n;
  if (us >= INT64_MAX) throw new Error(`timestamp ${us} µs since 1970 is beyond what an int64 holds (up to 294247-01-10)`);
  return us;
};
export const binZonedTimestamp: BinaryConverter = (b) => {
  const raw = b.readBigInt64BE(0);
  if (raw === INT64_MAX) return 'infinity';
  if (raw === INT64_MIN) return '-infinity';
  const us = raw + BigInt(PG_EPOCH_MS) * 1000n;
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
