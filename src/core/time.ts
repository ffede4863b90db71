/**
 * Calendar arithmetic both sources share, exact for every year a database holds (PostgreSQL's
 * 4713 BC … 5874897 AD included) and without Date objects, which stop at ±275760 and mistake the
 * years 0–99: proleptic Gregorian dates as days since 1970-01-01 and back, and instants as
 * microseconds since the epoch, a number while that is exact (within 2^53) and a bigint beyond.
 * Years are astronomical: year 0 is 1 BC, -1 is 2 BC.
 */

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1–12). */
export function daysFromCivil(y: number, m: number, d: number): number {
  // Shift the year to start in March so the leap day is the year's last day.
  if (m <= 2) y -= 1;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = m > 2 ? m - 3 : m + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The date of a day number (inverse of daysFromCivil): [year, month 1–12, day]. */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** Whole seconds below which `seconds × 10^6 + micros` is still an exact number. */
const SAFE_SECONDS = Math.floor(Number.MAX_SAFE_INTEGER / 1e6) - 1;

/** Microseconds of `seconds` and `micros` (0–999999): a number while exact, else a bigint. */
export function microsOf(seconds: number, micros: number): number | bigint {
  if (seconds < SAFE_SECONDS && seconds > -SAFE_SECONDS) return seconds * 1e6 + micros;
  return BigInt(seconds) * 1_000_000n + BigInt(micros);
}

export const INT64_MAX = 9223372036854775807n;
export const INT64_MIN = -9223372036854775808n;
