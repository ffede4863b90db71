/**
 * Time helpers for the expression language's timestamp functions, all in UTC: ISO-8601 parsing to
 * epoch milliseconds (a string without a zone is UTC, never the machine's local time), and the
 * calendar fields and truncation of date_part/date_trunc.
 */

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/** Epoch ms of a UTC calendar time; years below 100 are taken as written (not 19xx). */
function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  const t = new Date(0);
  t.setUTCFullYear(y, mo, d);
  t.setUTCHours(h, mi, s, ms);
  return t.getTime();
}

/** Epoch ms of an ISO-8601 date or date-time ('2024-03-01', '2024-03-01T10:00:00.123+02:00'); undefined if it is not one. */
export function parseIsoMs(s: string): number | undefined {
  const m = ISO.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const t = utc(y, mo - 1, d, h, mi, sec, ms);
  if (new Date(t).getUTCDate() !== d) return undefined; // 2023-02-30
  const zone = m[8];
  if (!zone || zone === 'Z' || zone === 'z') return t;
  const digits = zone.replace(':', '');
  const off = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || '0');
  return t - (zone[0] === '-' ? -off : off) * 60_000;
}

export const PART_UNITS = ['year', 'month', 'day', 'hour', 'minute', 'second', 'dow'] as const;
export const TRUNC_UNITS = ['year', 'month', 'day', 'hour', 'minute', 'second'] as const;

/** A calendar field of an epoch-ms time in UTC (month 1-12, dow 0 = Sunday); undefined outside the Date range. */
export function datePart(unit: string, ms: number): number | undefined {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return undefined;
  switch (unit) {
    case 'year':
      return d.getUTCFullYear();
    case 'month':
      return d.getUTCMonth() + 1;
    case 'day':
      return d.getUTCDate();
    case 'hour':
      return d.getUTCHours();
    case 'minute':
      return d.getUTCMinutes();
    case 'second':
      return d.getUTCSeconds();
    case 'dow':
      return d.getUTCDay();
  }
  return undefined;
}

const SIZES: Record<string, number> = { day: 86_400_000, hour: 3_600_000, minute: 60_000, second: 1000 };

/** An epoch-ms time truncated to the start of its UTC year/month/day/hour/minute/second. */
export function dateTrunc(unit: string, ms: number): number | undefined {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return undefined;
  if (unit === 'year') return utc(d.getUTCFullYear(), 0, 1);
  if (unit === 'month') return utc(d.getUTCFullYear(), d.getUTCMonth(), 1);
  return Object.hasOwn(SIZES, unit) ? Math.floor(ms / SIZES[unit]) * SIZES[unit] : undefined;
}
