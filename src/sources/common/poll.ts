/**
 * A check a source runs now and then beside its work (the WAL its slot retains, the binlog files it
 * needs): at once, then every `intervalMs`, one at a time, on a timer that does not keep the
 * process alive. A failing check is the check's to report; it never stops the source.
 */
export class Poller {
  private timer: NodeJS.Timeout | null = null;
  /** The check running now, if any. */
  private current: Promise<void> | null = null;
  constructor(
    private readonly intervalMs: number,
    private readonly check: () => Promise<void>,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    if (this.current) return;
    this.current = this.check()
      .catch(() => {}) // the check records its own failure
      .finally(() => (this.current = null));
  }

  /**
   * Stops the timer; resolves once a check still running has ended (its connection closed), or
   * after 2 s at most: a server that does not answer must not hold up a stop.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.current) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.current, new Promise<void>((r) => (t = setTimeout(r, 2000)))]);
    clearTimeout(t);
  }
}
