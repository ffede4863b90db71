/**
 * A Consumer built on a backend's `read` and `waitFor`: what a backend without a native fetch
 * session uses. Partitions are read in turn from their positions, each position moving to the
 * `next` the read returned, so gaps in the offsets are stepped over.
 */
import type { Consumer, Log, StoredRecord } from './types.ts';

interface Assigned {
  topic: string;
  partition: number;
  position: number;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export class ReadConsumer implements Consumer {
  private readonly parts = new Map<string, Assigned>();
  /** Where the next poll starts, so every partition gets its turn. */
  private turn = 0;

  constructor(private readonly log: Pick<Log, 'read' | 'waitFor'>) {}

  assign(topic: string, partition: number, offset: number): void {
    const k = `${topic}\u0000${partition}`;
    const a = this.parts.get(k);
    if (a) a.position = offset;
    else this.parts.set(k, { topic, partition, position: offset });
  }

  position(topic: string, partition: number): number {
    const a = this.parts.get(`${topic}\u0000${partition}`);
    if (!a) throw new Error(`bug: ${topic}/${partition} is not assigned`);
    return a.position;
  }

  get assignment(): { topic: string; partition: number }[] {
    return [...this.parts.values()].map(({ topic, partition }) => ({ topic, partition }));
  }

  async poll(opts: { maxBytes?: number; maxWaitMs: number; signal?: AbortSignal }): Promise<StoredRecord[]> {
    const maxBytes = opts.maxBytes ?? 1 << 20;
    const deadline = Date.now() + opts.maxWaitMs;
    for (;;) {
      const out: StoredRecord[] = [];
      let bytes = 0;
      const list = [...this.parts.values()];
      for (let i = 0; i < list.length && bytes < maxBytes; i++) {
        const a = list[(this.turn + i) % list.length];
        const r = await this.log.read(a.topic, a.partition, a.position, maxBytes - bytes);
        a.position = r.next;
        for (const rec of r.records) {
          out.push(rec);
          bytes += (rec.value?.length ?? 0) + (rec.key?.length ?? 0);
        }
      }
      this.turn = list.length ? (this.turn + 1) % list.length : 0;
      const left = deadline - Date.now();
      if (out.length || left <= 0 || opts.signal?.aborted) return out;
      // Nothing assigned yet: wait out the poll (a caller looping on poll must not spin).
      if (list.length === 0) {
        await sleep(left, opts.signal);
        return out;
      }
      await this.waitAny(list, Math.min(left, 250), opts.signal);
    }
  }

  private async waitAny(list: Assigned[], ms: number, signal?: AbortSignal): Promise<void> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((r) => signal?.addEventListener('abort', (onAbort = () => r()), { once: true }));
    await Promise.race([...list.map((a) => this.log.waitFor(a.topic, a.partition, a.position, ms)), aborted]);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }

  async close(): Promise<void> {
    this.parts.clear();
  }
}
