/**
 * Per-key rate limits: a token bucket per key (a credential or a client address), refilled at
 * `perSecond` up to `burst`. Buckets of quiet keys are dropped, so the map stays as large as the
 * set of keys active within the time a bucket takes to refill.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = 0;
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes `n` tokens for `key`: 0 when granted, else the seconds until they would be there. */
  take(key: string, n: number, now = Date.now()): number {
    this.sweep(now);
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = { tokens: this.burst, at: now }));
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens >= n) {
      b.tokens -= n;
      return 0;
    }
    // A batch larger than the bucket can never pass whole: say when the bucket is full again.
    const missing = Math.min(n, this.burst) - b.tokens;
    return Math.max(1, Math.ceil(missing / this.perSecond));
  }

  private sweep(now: number): void {
    const full = (this.burst / this.perSecond) * 1000;
    if (now - this.lastSweep < Math.max(1000, full)) return;
    this.lastSweep = now;
    for (const [k, b] of this.buckets) if (now - b.at > full) this.buckets.delete(k);
  }
}
