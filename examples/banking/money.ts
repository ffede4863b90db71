/**
 * Exact money arithmetic for the banking example: amounts become BigInt counts of 10^-scale units
 * (cents at scale 2), are added as integers and only turned back into decimal text at the end,
 * so sums of thousands of DECIMAL(15,2) values never pick up binary floating-point error.
 */
import { Decimal } from '../../src/sinks/document/types.ts';

const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * `v` as an integer number of 10^-scale units. Accepts what a document store may hand back for a
 * DECIMAL: a Decimal, its text, a number (JSONB read back natively), a bigint. Digits beyond
 * `scale` are cut toward zero — money columns here never have more than their scale. null → null.
 */
export function toScaled(v: unknown, scale = 2): bigint | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v * 10n ** BigInt(scale);
  let text: string;
  if (v instanceof Decimal) text = v.text;
  else if (typeof v === 'number') {
    if (!Number.isFinite(v)) return null;
    // toFixed(scale + 2) then cut: a JSON number like 2500.75 prints exactly as written.
    text = Math.abs(v) < 1e21 ? v.toFixed(Math.min(scale + 2, 20)) : String(v);
  } else if (typeof v === 'string') text = v.trim();
  else if (typeof v === 'object' && v !== null && 'text' in v) text = String((v as { text: unknown }).text);
  else return null;
  const m = DECIMAL_TEXT.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const frac = (m[3] ?? '').padEnd(scale, '0').slice(0, scale);
  const units = BigInt((m[2] || '0') + frac);
  return m[1] === '-' ? -units : units;
}

/** Decimal text of `units` 10^-scale units, always with `scale` fraction digits: 1234n,2 → "12.34". */
export function formatScaled(units: bigint, scale = 2): string {
  const neg = units < 0n;
  const digits = (neg ? -units : units).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return `${neg ? '-' : ''}${int}${scale > 0 ? `.${frac}` : ''}`;
}

export function decimalOf(units: bigint, scale = 2): Decimal {
  return new Decimal(formatScaled(units, scale));
}

/** Sum of money values (nulls count as zero), exact. */
export function sumScaled(values: unknown[], scale = 2): bigint {
  let s = 0n;
  for (const v of values) s += toScaled(v, scale) ?? 0n;
  return s;
}

/** n / d rounded half away from zero, for the one place where money is divided (payment normalisation). */
export function divRound(n: bigint, d: bigint): bigint {
  const neg = n < 0n !== d < 0n;
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  const q = (an * 2n + ad) / (ad * 2n);
  return neg ? -q : q;
}

/** Two money values equal as numbers ("2500.70" = 2500.7 = Decimal("2500.70")). */
export function sameMoney(a: unknown, b: unknown, scale = 6): boolean {
  const x = toScaled(a, scale);
  const y = toScaled(b, scale);
  return x !== null && y !== null && x === y;
}
