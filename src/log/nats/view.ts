/**
 * A log handle's copy of the KV bucket's topics and producers, kept current by a watch (an
 * ordered JetStream consumer the server pushes every update to). Readers decide what is committed
 * from it: a partition's committed end stops at the first offset any producer's open intent
 * reserves (state.ts), and records of aborted commits are skipped.
 *
 * `sync()` makes the copy at least as new as the bucket was when it was called: it asks the
 * bucket's stream for its last sequence and waits for the watch to deliver it. A reader that first
 * looks at a partition's last offset and then syncs sees every intent covering records up to that
 * offset (a producer stores its intent before it publishes), which is what makes ends safe.
 */
import type { KV, KvEntry, QueuedIterator } from 'nats';
import type { NatsClient } from './client.ts';
import { logError } from '../errors.ts';
import { parseProducer, type ProducerEntry, type TopicEntry } from './state.ts';

export class LogView {
  readonly topics = new Map<string, { entry: TopicEntry; rev: number }>();
  readonly producers = new Map<string, { entry: ProducerEntry; rev: number }>();
  /** Keys of consumer groups' offsets (`g.…`). */
  readonly groupKeys = new Set<string>();
  /** Aborted commits (`a.…` keys) as `<producer key> <epoch> <commit>`. */
  private readonly aborted = new Set<string>();
  /** The highest bucket revision the watch delivered. */
  private rev = 0;
  private watch: QueuedIterator<KvEntry> | null = null;
  private failed: Error | null = null;
  private readonly waiters = new Set<() => void>();
  private pendingSync: Promise<void> | null = null;
  private closed = false;

  /** Per producer key: the intent last seen and when this handle first saw it (its own clock, so writers' clocks do not matter). */
  private readonly intentSeen = new Map<string, { epoch: number; commit: number; since: number }>();

  constructor(
    private readonly client: NatsClient,
    private readonly kv: KV,
    readonly bucket: string,
  ) {}

  async start(): Promise<void> {
    this.watch = await this.client.call(`watching KV bucket ${this.bucket}`, () => this.kv.watch({ key: '>' }));
    const it = this.watch;
    void (async () => {
      try {
        for await (const e of it) this.deliver(e);
        if (!this.closed) this.failed = new Error('the watch of the KV bucket ended');
      } catch (e) {
        this.failed = e as Error;
      }
      this.wake();
    })();
    await this.sync();
  }

  private deliver(e: KvEntry): void {
    if (e.revision > this.rev) this.rev = e.revision;
    this.apply(e.key, e.operation === 'PUT' ? e.value : null, e.revision);
    this.wake();
  }

  /** Applies an entry (from the watch, or a write of this handle) unless a newer one is known. */
  apply(key: string, value: Uint8Array | null, rev: number): void {
    if (key.startsWith('t.')) {
      const cur = this.topics.get(key);
      if (cur && cur.rev >= rev) return;
      if (value === null) this.topics.delete(key);
      else this.topics.set(key, { entry: JSON.parse(Buffer.from(value).toString('utf8')) as TopicEntry, rev });
    } else if (key.startsWith('a.')) {
      const m = /^a\.(x[A-Za-z0-9_-]*)\.(\d+)\.(\d+)$/.exec(key);
      if (m) {
        const id = `p.${m[1]} ${m[2]} ${m[3]}`;
        if (value === null) this.aborted.delete(id);
        else this.aborted.add(id);
      }
    } else if (key.startsWith('g.')) {
      if (value === null) this.groupKeys.delete(key);
      else this.groupKeys.add(key);
    } else if (key.startsWith('p.')) {
      const cur = this.producers.get(key);
      if (cur && cur.rev >= rev) return;
      if (value === null) this.producers.delete(key);
      else {
        const entry = parseProducer(value);
        this.producers.set(key, { entry, rev });
        const i = entry.intent;
        const seen = this.intentSeen.get(key);
        if (!i) this.intentSeen.delete(key);
        else if (!seen || seen.epoch !== i.epoch || seen.commit !== i.commit) this.intentSeen.set(key, { epoch: i.epoch, commit: i.commit, since: performance.now() });
      }
    }
  }

  /** Intents this handle has seen stand, unchanged, for longer than `ms`. */
  staleIntents(ms: number): { key: string; epoch: number; commit: number }[] {
    const now = performance.now();
    return [...this.intentSeen].filter(([, s]) => now - s.since > ms).map(([key, s]) => ({ key, epoch: s.epoch, commit: s.commit }));
  }

  /** Waits until the copy holds every update stored before this call. Calls in one tick share a round trip. */
  sync(): Promise<void> {
    if (this.pendingSync) return this.pendingSync;
    const p = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      // From here on, later callers start a new round trip: they may need updates made after it.
      this.pendingSync = null;
      const info = await this.client.streamInfo(`KV_${this.bucket}`);
      await this.until(info.state.last_seq);
    });
    this.pendingSync = p;
    return p;
  }

  private async until(seq: number): Promise<void> {
    const deadline = Date.now() + this.client.o.requestTimeoutMs;
    while (this.rev < seq) {
      if (this.failed) throw this.client.error(this.failed, 'following the log\'s KV bucket');
      if (this.closed) throw logError('LOG_NATS_UNREACHABLE', 'the log handle is closed');
      const left = deadline - Date.now();
      if (left <= 0) throw logError('LOG_NATS_TIMEOUT', `the watch of KV bucket ${this.bucket} did not deliver revision ${seq} within ${this.client.o.requestTimeoutMs} ms (log.requestTimeout)`);
      await this.changed(Math.min(left, 200));
    }
  }

  /** Resolves on the next update delivered, or after `ms`. */
  changed(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The first offset of `stream` an open intent reserves, or Infinity. */
  intentStart(stream: string): number {
    let min = Infinity;
    for (const { entry } of this.producers.values()) {
      const s = entry.intent?.parts[stream];
      if (s !== undefined && s < min) min = s;
    }
    return min;
  }

  /**
   * Where `last` (a stream's last sequence as a stream info reported it) falls inside the last
   * completed commit of some producer, that commit's start: the info was taken half way through its
   * publish. Otherwise Infinity.
   */
  halfCommitStart(stream: string, last: number): number {
    let min = Infinity;
    for (const { entry } of this.producers.values()) {
      const r = entry.done?.parts[stream];
      if (r && r[0] < last && last < r[1] && r[0] < min) min = r[0];
    }
    return min;
  }

  /** The last sequence of `stream` that some producer's last completed commit wrote (0: none). */
  doneEnd(stream: string): number {
    let max = 0;
    for (const { entry } of this.producers.values()) {
      const r = entry.done?.parts[stream];
      if (r && r[1] > max) max = r[1];
    }
    return max;
  }

  /** Whether records of this commit are to be skipped (it was aborted). */
  isAborted(producerKey: string, epoch: number, commit: number): boolean {
    return this.aborted.has(`${producerKey} ${epoch} ${commit}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watch?.stop();
    this.wake();
  }
}
