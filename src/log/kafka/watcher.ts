/**
 * `waitFor` of the kafka log: waiters for partitions whose committed end (last stable offset)
 * should move past an offset, served by one polling loop that asks the partition leaders for the
 * ends of every waited partition in one ListOffsets request per broker, every `intervalMs` while
 * anyone waits. A commit through this log wakes the loop at once (`kick`).
 *
 * Why not a long-polling Fetch per waiter: kafkajs sends every Fetch to a broker over one
 * connection, and a broker answers one request of a connection at a time, so a Fetch waiting 20 s
 * for data would hold up every read of the log behind it.
 */
export interface WaitedPartition {
  kname: string;
  partition: number;
}

interface Waiter extends WaitedPartition {
  offset: number;
  done: () => void;
}

export const partKey = (kname: string, partition: number): string => `${kname}\u0000${partition}`;

export class EndWatcher {
  private waiters = new Set<Waiter>();
  private running = false;
  private wake: (() => void) | null = null;
  /** Kicked while a look was under way: look again without waiting. */
  private kicked = false;
  private closed = false;

  constructor(
    /** The committed ends of the given partitions, keyed by `partKey`. */
    private readonly ends: (parts: WaitedPartition[]) => Promise<Map<string, number>>,
    private readonly intervalMs = 50,
  ) {}

  /** Resolves once the end of `kname`/`partition` is past `offset`, or after `timeoutMs`. */
  wait(kname: string, partition: number, offset: number, timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      // Not unref'd: a process awaiting only this wait must not exit with it pending.
      const timer = setTimeout(() => w.done(), Math.max(0, timeoutMs));
      const w: Waiter = {
        kname,
        partition,
        offset,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve();
        },
      };
      this.waiters.add(w);
      this.kick();
    });
  }

  /** Looks at the ends now (a commit just became visible, or a new waiter came). */
  kick(): void {
    if (this.wake) this.wake();
    else if (this.running) this.kicked = true;
    else if (this.waiters.size) void this.loop();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.waiters.size && !this.closed) {
        this.kicked = false;
        const parts = new Map<string, WaitedPartition>();
        for (const w of this.waiters) parts.set(partKey(w.kname, w.partition), { kname: w.kname, partition: w.partition });
        // A failed look (a broker restarting, a topic deleted) is tried again; waiters time out.
        const ends = await this.ends([...parts.values()]).catch(() => null);
        if (ends) {
          for (const w of [...this.waiters]) if ((ends.get(partKey(w.kname, w.partition)) ?? -1) > w.offset) w.done();
        }
        if (!this.waiters.size || this.closed) break;
        if (this.kicked) continue;
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            this.wake = null;
            r();
          }, this.intervalMs);
          this.wake = () => {
            clearTimeout(t);
            this.wake = null;
            r();
          };
        });
      }
    } finally {
      this.running = false;
    }
  }

  /** Resolves every waiter (the log is closing). */
  close(): void {
    this.closed = true;
    for (const w of [...this.waiters]) w.done();
    this.wake?.();
  }
}
