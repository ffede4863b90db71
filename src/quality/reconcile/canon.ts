/**
 * One spelling per value, whatever database printed it, and the order-independent checksum built
 * from it. Both sides of a comparison read every column as text (each engine's own cast); the
 * source column's type family decides how that text is normalized, so `1.50` (PostgreSQL numeric)
 * and `1.5` (DuckDB DECIMAL), `t` and `1`, `2024-01-01 10:00:00+00` and `2024-01-01 10:00:00.000000`
 * hash alike, and nothing that differs in value does.
 */

/** How a column's text is normalized; `other` columns (intervals, arrays, ranges, …) are not compared. */
export type Family = 'int' | 'decimal' | 'float4' | 'float8' | 'bool' | 'text' | 'char' | 'uuid' | 'bytes' | 'date' | 'time' | 'timestamp' | 'timestamptz' | 'json' | 'other';

/** The family of a PostgreSQL type (`format_type` text, domains resolved to their base type). */
export function pgFamily(type: string, typtype = 'b'): Family {
  if (typtype === 'e') return 'text';
  const t = type.toLowerCase();
  if (t.endsWith('[]')) return 'other';
  if (/^(smallint|integer|bigint|int[248]?|oid)$/.test(t)) return 'int';
  if (/^(numeric|decimal)\b/.test(t)) return 'decimal';
  if (t === 'real' || t === 'float4') return 'float4';
  if (t === 'double precision' || t === 'float8') return 'float8';
  if (t === 'boolean') return 'bool';
  if (/^(text|character varying|varchar|name|citext)\b/.test(t)) return 'text';
  if (/^(character|char|bpchar)\b/.test(t)) return 'char';
  if (t === 'uuid') return 'uuid';
  if (t === 'bytea') return 'bytes';
  if (t === 'date') return 'date';
  if (/^time\b(?!.*with time zone)/.test(t)) return 'time';
  if (/^timestamp\b.*with time zone/.test(t)) return 'timestamptz';
  if (/^timestamp\b/.test(t)) return 'timestamp';
  if (t === 'json' || t === 'jsonb') return 'json';
  return 'other';
}

/** The family of a MySQL/MariaDB column type (information_schema COLUMN_TYPE). */
export function mysqlFamily(type: string): Family {
  const t = type.toLowerCase();
  if (/^tinyint\(1\)/.test(t)) return 'bool';
  if (/^(tinyint|smallint|mediumint|int|integer|bigint|year)\b/.test(t)) return 'int';
  if (/^(decimal|numeric)\b/.test(t)) return 'decimal';
  if (/^float\b/.test(t)) return 'float4';
  if (/^(double|real)\b/.test(t)) return 'float8';
  if (/^(char)\b/.test(t)) return 'char';
  if (/^(varchar|text|tinytext|mediumtext|longtext|enum|set)\b/.test(t)) return 'text';
  if (/^(binary|varbinary|blob|tinyblob|mediumblob|longblob)\b/.test(t)) return 'bytes';
  if (t === 'date') return 'date';
  if (/^time\b/.test(t)) return 'time';
  if (/^(datetime)\b/.test(t)) return 'timestamp';
  if (/^timestamp\b/.test(t)) return 'timestamptz';
  if (t === 'json' || t === 'longtext json') return 'json';
  return 'other';
}

const NULL = '\u2205';

/** Drops a fraction's trailing zeros (and a bare point). */
const trimFraction = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

/** `YYYY-MM-DD[ T]hh:mm:ss[.ffffff][Z|±hh[:mm[:ss]]]` → microseconds since the epoch, UTC, as text. */
function timestampMicros(s: string, zoned: boolean): string {
  // Fast path: UTC as every session here prints it (`+00`, or nothing).
  const f = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?(\+00(?::?00)?|Z)?$/.exec(s);
  if (f && (zoned || !f[4])) return `${f[1]} ${f[2]}${f[3] ? trimFraction(f[3]) : ''}`;
  const m = /^(-?\d{4,})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?\s*(Z|[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?(?:\s*BC)?$/.exec(s.trim());
  if (!m) return s.trim(); // infinity, or a spelling kept as it is
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  let us = BigInt(ms) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0').slice(0, 6) || '0');
  if (zoned && m[8] && m[8] !== 'Z') {
    const sign = m[8][0] === '-' ? -1n : 1n;
    const [h, mi = '0', se = '0'] = m[8].slice(1).split(/:|(?<=^\d\d)(?=\d)/);
    us -= sign * (BigInt(h) * 3600n + BigInt(mi) * 60n + BigInt(se)) * 1_000_000n;
  }
  const sec = us / 1_000_000n - (us % 1_000_000n < 0n ? 1n : 0n);
  const frac = us - sec * 1_000_000n;
  const iso = new Date(Number(sec) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? trimFraction('.' + frac.toString().padStart(6, '0')) : ''}`;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/** The canonical text of a value read as text (or as the driver gave it) for a column of family `f`. */
export function canon(f: Family, v: unknown): string {
  if (v === null || v === undefined) return NULL;
  let s = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('hex') : v instanceof Date ? v.toISOString() : String(v);
  switch (f) {
    case 'int':
      // A value no integer column can hold (a hand-made document's) is kept as it is: it differs.
      return /^(-?[1-9]\d*|0)$/.test(s) ? s : /^\s*[+-]?\d+\s*$/.test(s) ? BigInt(s.trim()).toString() : s;
    case 'decimal': {
      s = s.trim().replace(/^\+/, '');
      if (/e/i.test(s) || /nan|inf/i.test(s)) return s.toLowerCase();
      const neg = s.startsWith('-');
      if (neg) s = s.slice(1);
      s = trimFraction(s).replace(/^0+(?=\d)/, '');
      return s === '0' || s === '' ? '0' : (neg ? '-' : '') + s;
    }
    case 'float4':
      return String(Math.fround(Number(s)));
    case 'float8':
      return String(Number(s));
    case 'bool':
      return /^(t|true|1|yes|on)$/i.test(s.trim()) ? 'true' : 'false';
    case 'char':
      return s.replace(/ +$/, '');
    case 'uuid':
    case 'bytes':
      return s.toLowerCase().replace(/^\\x/, '');
    case 'time':
      return trimFraction(s.trim());
    case 'timestamp':
      return timestampMicros(s, false);
    case 'timestamptz':
      return timestampMicros(s, true);
    case 'json':
      try {
        return JSON.stringify(sortKeys(JSON.parse(s)));
      } catch {
        return s;
      }
    default:
      return s;
  }
}

/** murmur3's 32-bit finalizer: every input bit moves every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A row's 53-bit hash of its canonical values (in column order): two FNV-1a lanes with murmur's
 * finalizer, in JavaScript (several times faster than a crypto hash per row, and reconcile is not
 * defending against forged rows: it looks for accidental drift).
 */
export function rowHash(values: readonly string[]): number {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let v = 0; v < values.length; v++) {
    const s = values[v];
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 16777619);
      b = Math.imul(b ^ c, 0x01000193 ^ 0x2f);
    }
    a = Math.imul(a ^ 1, 16777619);
    b = Math.imul(b ^ 0xff, 0x01000193 ^ 0x2f);
  }
  return fmix(a) * 2 ** 21 + (fmix(b) >>> 11);
}

/** An order-independent sum of row hashes, exact (two lanes of 26 and 27 bits each summed apart). */
export class HashSum {
  hi = 0;
  lo = 0;
  add(h: number): void {
    const lo = h % 2 ** 26;
    this.lo += lo;
    this.hi += (h - lo) / 2 ** 26;
  }
  equals(o: HashSum): boolean {
    return this.hi === o.hi && this.lo === o.lo;
  }
}
