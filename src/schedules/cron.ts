/**
 * Cron expressions and their fire times, in a time zone.
 *
 * Five fields (`minute hour day-of-month month day-of-week`), or six with seconds first
 * (`second minute hour day-of-month month day-of-week`, for short periods and tests). Each field
 * is `*`, a value, a range `a-b`, a step `*\/n`, `a-b/n` or `a/n`, or a list of these joined by
 * commas; months and weekdays also by name (`JAN`…`DEC`, `SUN`…`SAT`; 0 and 7 are Sunday). As in
 * Vixie cron, when both day-of-month and day-of-week are restricted (neither starts with `*` or
 * `?`), a day matching either fires. Macros: `@yearly` (`@annually`), `@monthly`, `@weekly`,
 * `@daily` (`@midnight`), `@hourly`.
 *
 * Fire times are wall-clock times of the schedule's time zone (IANA name, default UTC). Around
 * daylight-saving changes: a wall time that does not exist (the hour skipped in spring) does not
 * fire; one that occurs twice (the hour repeated in autumn) fires once, at its first occurrence.
 */
import { scheduleError } from './errors.ts';

export interface Cron {
  /** The expression as written. */
  readonly source: string;
  /** Whether it has a seconds field (6 fields). */
  readonly withSeconds: boolean;
  readonly seconds: ReadonlySet<number>;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly days: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** 0 = Sunday … 6 = Saturday. */
  readonly weekdays: ReadonlySet<number>;
  readonly daysRestricted: boolean;
  readonly weekdaysRestricted: boolean;
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const WEEKDAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldDef {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** The first name's value (months: 1, weekdays: 0). */
  nameBase?: number;
}

const SECOND: FieldDef = { name: 'second', min: 0, max: 59 };
const MINUTE: FieldDef = { name: 'minute', min: 0, max: 59 };
const HOUR: FieldDef = { name: 'hour', min: 0, max: 23 };
const DAY: FieldDef = { name: 'day of month', min: 1, max: 31 };
const MONTH: FieldDef = { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 };
// 7 is Sunday too; folded to 0 below.
const WEEKDAY: FieldDef = { name: 'day of week', min: 0, max: 7, names: WEEKDAYS, nameBase: 0 };

class CronSyntax extends Error {}

function value(text: string, f: FieldDef): number {
  const upper = text.toUpperCase();
  const named = f.names?.indexOf(upper) ?? -1;
  if (named >= 0) return named + (f.nameBase ?? 0);
  if (!/^\d+$/.test(text)) throw new CronSyntax(`${f.name}: ${JSON.stringify(text)} is not a number${f.names ? ` or a name (${f.names[0]}…${f.names[f.names.length - 1]})` : ''}`);
  const n = Number(text);
  if (n < f.min || n > f.max) throw new CronSyntax(`${f.name}: ${n} is outside ${f.min}–${f.max}`);
  return n;
}

function field(text: string, f: FieldDef): { set: Set<number>; restricted: boolean } {
  const set = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') throw new CronSyntax(`${f.name}: an empty item in the list ${JSON.stringify(text)}`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw new CronSyntax(`${f.name}: ${JSON.stringify(part)} has two steps`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) throw new CronSyntax(`${f.name}: the step in ${JSON.stringify(part)} must be a whole number above 0`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*' || range === '?') {
      if (range === '?' && f !== DAY && f !== WEEKDAY) throw new CronSyntax(`${f.name}: ? is only allowed for the day of month or day of week`);
      lo = f.min;
      hi = f === WEEKDAY ? 6 : f.max;
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined || a === '' || b === '') throw new CronSyntax(`${f.name}: ${JSON.stringify(range)} is not a range a-b`);
      lo = value(a, f);
      hi = value(b, f);
      if (lo > hi) throw new CronSyntax(`${f.name}: the range ${JSON.stringify(range)} runs backwards; write ${hi}-${lo}, or a list of two ranges`);
    } else {
      lo = value(range, f);
      hi = stepText !== undefined ? (f === WEEKDAY ? 6 : f.max) : lo;
    }
    for (let v = lo; v <= hi; v += step) set.add(f === WEEKDAY && v === 7 ? 0 : v);
  }
  return { set, restricted: !(text.startsWith('*') || text.startsWith('?')) };
}

/** Reads a cron expression; throws SCHEDULE_CRON saying what is wrong. */
export function parseCron(source: string): Cron {
  const problem = cronSyntax(source);
  if (typeof problem === 'string') throw scheduleError('SCHEDULE_CRON', `cron ${JSON.stringify(source)}: ${problem}`);
  return problem;
}

function cronSyntax(source: string): Cron | string {
  const text = source.trim();
  const expanded = text.startsWith('@') ? MACROS[text.toLowerCase()] : text;
  if (expanded === undefined) return `unknown macro ${text}; known: ${Object.keys(MACROS).join(', ')}`;
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) return `has ${parts.length} field${parts.length === 1 ? '' : 's'}; write 5 (minute hour day-of-month month day-of-week, e.g. "*/15 * * * *") or 6 with seconds first ("*/10 * * * * *")`;
  const withSeconds = parts.length === 6;
  const [s, mi, h, d, mo, w] = withSeconds ? parts : ['0', ...parts];
  try {
    const days = field(d, DAY);
    const weekdays = field(w, WEEKDAY);
    return {
      source,
      withSeconds,
      seconds: field(s, SECOND).set,
      minutes: field(mi, MINUTE).set,
      hours: field(h, HOUR).set,
      days: days.set,
      months: field(mo, MONTH).set,
      weekdays: weekdays.set,
      daysRestricted: days.restricted,
      weekdaysRestricted: weekdays.restricted,
    };
  } catch (e) {
    if (e instanceof CronSyntax) return e.message;
    throw e;
  }
}

/** What is wrong with a cron expression in a time zone (syntax, an unknown zone, no fire time ever), or undefined. */
export function cronProblem(source: string, timezone = 'UTC'): string | undefined {
  const c = cronSyntax(source);
  if (typeof c === 'string') return c;
  if (!isTimeZone(timezone)) return `unknown time zone ${JSON.stringify(timezone)}; use an IANA name such as UTC or Europe/Berlin`;
  if (nextFire(c, Date.UTC(2000, 0, 1), timezone) === null) return 'it never fires (no such date, e.g. 30 February)';
  return undefined;
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

// ---------- wall time ----------

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time of instant `ms` in `tz`, as the UTC instant with those fields (whole seconds). */
function wallOf(ms: number, tz: string): number {
  const sec = Math.floor(ms / 1000) * 1000;
  if (tz === 'UTC') return sec;
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short' });
    formatters.set(tz, f);
  }
  const p: Record<string, string> = {};
  for (const x of f.formatToParts(sec)) p[x.type] = x.value;
  const year = p.era === 'BC' || p.era === 'B' ? 1 - Number(p.year) : Number(p.year);
  const d = new Date(0);
  d.setUTCFullYear(year, Number(p.month) - 1, Number(p.day));
  d.setUTCHours(Number(p.hour) % 24, Number(p.minute), Number(p.second), 0);
  return d.getTime();
}

/** The instants whose wall time in `tz` is `wall`, earliest first: none in a skipped hour, two in a repeated one. */
function instantsOf(wall: number, tz: string): number[] {
  if (tz === 'UTC') return [wall];
  const out = new Set<number>();
  // Offsets change at most a few times a year: those half a day either side cover both readings.
  for (const probe of [wall - 43_200_000, wall + 43_200_000]) {
    const offset = wallOf(probe, tz) - Math.floor(probe / 1000) * 1000;
    const t = wall - offset;
    if (wallOf(t, tz) === wall) out.add(t);
  }
  return [...out].sort((a, b) => a - b);
}

/** The first wall time after `wall` (exclusive) the expression matches, or null within `years`. */
function nextWall(c: Cron, wall: number, years: number): number | null {
  let t = Math.floor(wall / 1000) * 1000 + 1000;
  if (!c.withSeconds) t = Math.ceil(t / 60_000) * 60_000;
  const limit = new Date(t).getUTCFullYear() + years;
  for (;;) {
    const d = new Date(t);
    const y = d.getUTCFullYear();
    if (y > limit) return null;
    const mo = d.getUTCMonth();
    const day = d.getUTCDate();
    const h = d.getUTCHours();
    const mi = d.getUTCMinutes();
    if (!c.months.has(mo + 1)) {
      t = Date.UTC(y, mo + 1, 1);
      continue;
    }
    if (!dayMatches(c, day, d.getUTCDay())) {
      t = Date.UTC(y, mo, day + 1);
      continue;
    }
    if (!c.hours.has(h)) {
      t = Date.UTC(y, mo, day, h + 1);
      continue;
    }
    if (!c.minutes.has(mi)) {
      t = Date.UTC(y, mo, day, h, mi + 1);
      continue;
    }
    if (!c.seconds.has(d.getUTCSeconds())) {
      t += 1000;
      continue;
    }
    return t;
  }
}

function dayMatches(c: Cron, day: number, weekday: number): boolean {
  if (c.daysRestricted && c.weekdaysRestricted) return c.days.has(day) || c.weekdays.has(weekday);
  if (c.daysRestricted) return c.days.has(day);
  if (c.weekdaysRestricted) return c.weekdays.has(weekday);
  return true;
}

/** The first fire time strictly after `after` (ms since the epoch), or null when none comes within 8 years. */
export function nextFire(c: Cron, after: number, timezone = 'UTC'): number | null {
  let wall = wallOf(after, timezone);
  for (let guard = 0; guard < 10_000; guard++) {
    const w = nextWall(c, wall, 8);
    if (w === null) return null;
    const at = instantsOf(w, timezone).find((t) => t > after);
    // Only the first reading of a repeated wall time fires: a later one is the same fire time.
    const first = instantsOf(w, timezone)[0];
    if (at !== undefined && at === first) return at;
    wall = w;
  }
  return null;
}

/**
 * The fire times in (`after`, `until`]: how many (counted exactly up to 1000; `more` past that) and
 * the last one; null when there are none. Used for the runs missed while a pipeline was stopped.
 */
export function missedFires(c: Cron, after: number, until: number, timezone = 'UTC'): { count: number; more: boolean; last: number } | null {
  const first = nextFire(c, after, timezone);
  if (first === null || first > until) return null;
  let count = 1;
  let last = first;
  for (let t = nextFire(c, first, timezone); t !== null && t <= until; t = nextFire(c, t, timezone)) {
    count++;
    last = t;
    if (count < 1000) continue;
    // Many fires (a seconds schedule stopped for days): find the last one from `until` backwards.
    for (let span = 1000; ; span *= 2) {
      const from = Math.max(until - span, last);
      let at = nextFire(c, from, timezone);
      if (at === null || at > until) {
        if (from === last) return { count, more: true, last };
        continue;
      }
      for (let n = nextFire(c, at, timezone); n !== null && n <= until; n = nextFire(c, n, timezone)) at = n;
      return { count, more: true, last: at };
    }
  }
  return { count, more: false, last };
}
