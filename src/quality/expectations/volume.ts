/**
 * The volume check: records per window of processing time (wall clock, windows aligned to the
 * epoch) within [min, max]. One verdict per window: a window that passes `max` fails at the record
 * that passes it (so `stop` stops there); any other window is judged when it ends (fails below
 * `min`). Windows that end with no record at all (the processor idle, or stalled upstream) are
 * judged too. The window the processor starts in is partial: it fails when it passes `max`, but is
 * not judged against `min`. Counts live in memory: a restart starts a new partial window.
 */
import { fmtDuration } from './checks.ts';

export interface Verdict {
  pass: boolean;
  /** How many windows this verdict stands for (empty windows in a row are judged at once). */
  times: number;
  reason?: string;
}

/** A window bound: the time of day in UTC, with the date for windows of a day or more. */
const at = (ms: number, long: boolean) => (long ? new Date(ms).toISOString().slice(0, 19).replace('T', ' ') : new Date(ms).toISOString().slice(11, 19));

export class VolumeCheck {
  private start: number;
  private count = 0;
  /** The window's verdict is given (it passed max). */
  private judged = false;
  /** The window the processor started in: not judged against min. */
  private partial = true;

  private readonly v: { window: number; min?: number; max?: number };

  /** `window` is optional in the shared grammar (a scheduled validation counts a whole table); the processor's config check requires it. */
  constructor(v: { window?: number; min?: number; max?: number }, now: number) {
    if (!v.window) throw new Error('bug: a volume expectation of a stream without a window passed validation');
    this.v = { ...v, window: v.window };
    this.start = this.windowOf(now);
  }

  private windowOf(t: number): number {
    return Math.floor(t / this.v.window) * this.v.window;
  }

  private span(start: number): string {
    const long = this.v.window >= 86_400_000;
    return `${at(start, long)}–${at(start + this.v.window, long)} UTC (${fmtDuration(this.v.window)})`;
  }

  /** One record at `now`: the verdicts of windows that ended before it, and of its own window when it passes max. */
  record(now: number): Verdict[] {
    const out = this.roll(now);
    this.count++;
    if (!this.judged && this.v.max !== undefined && this.count > this.v.max) {
      this.judged = true;
      out.push({ pass: false, times: 1, reason: `${this.count} records in the window ${this.span(this.start)} so far, above max ${this.v.max}` });
    }
    return out;
  }

  /** The verdicts of windows that ended by `now`. */
  tick(now: number): Verdict[] {
    return this.roll(now);
  }

  private roll(now: number): Verdict[] {
    const at = this.windowOf(now);
    if (at <= this.start) return [];
    const out: Verdict[] = [];
    const min = this.v.min ?? 0;
    if (!this.judged && !this.partial) {
      out.push(this.count < min ? { pass: false, times: 1, reason: `${this.count} records in the window ${this.span(this.start)}, below min ${min}` } : { pass: true, times: 1 });
    }
    const empty = Math.round((at - this.start) / this.v.window) - 1;
    if (empty > 0) {
      const first = this.start + this.v.window;
      out.push(min > 0 ? { pass: false, times: empty, reason: `0 records in ${empty > 1 ? `${empty} windows from ${this.span(first)} on` : `the window ${this.span(first)}`}, below min ${min}` } : { pass: true, times: empty });
    }
    this.start = at;
    this.count = 0;
    this.judged = false;
    this.partial = false;
    return out;
  }
}
