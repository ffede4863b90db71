/**
 * Read-ahead for sequential readers (a consumer, a sink): an ephemeral JetStream consumer per
 * partition stream being read, which hands over a batch of messages per request, where getting
 * messages by sequence costs a request each. A read that continues where the last one stopped takes
 * the cursor (and the messages it fetched past that point); any other read gets messages by
 * sequence. A cursor only ever holds committed messages: a batch reaching past the committed end
 * retires the cursor, since the consumer has moved past records that are not visible yet.
 *
 * Consumers are ephemeral, in memory, without acknowledgements, removed by the server after a
 * minute unused (inactive_threshold) and by this handle when it closes or moves on.
 */
import type { JsMsg, StoredMsg } from 'nats';
import type { NatsClient } from './client.ts';
import { decodeMessage, type InMessage } from './codec.ts';

/** Reads of fewer messages than this get them one by one. */
export const CURSOR_MIN = 16;
const IDLE_NANOS = 60_000 * 1_000_000;

export interface Cursor {
  stream: string;
  name: string;
  /** The sequence the consumer delivers next (-1: retired). */
  next: number;
  /** Fetched messages from `expect` on. */
  buffer: Map<number, InMessage | null>;
  /** The sequence the read that may take this cursor starts at. */
  expect: number;
}

export class Cursors {
  private readonly idle = new Map<string, Cursor>();

  constructor(private readonly client: NatsClient) {}

  /** The cursor waiting for a read of `stream` from `seq`. */
  take(stream: string, seq: number): Cursor | undefined {
    const c = this.idle.get(stream);
    if (!c || c.expect !== seq) return undefined;
    this.idle.delete(stream);
    return c;
  }

  /** A new cursor delivering `stream` from sequence `from`. */
  async open(stream: string, from: number): Promise<Cursor> {
    const old = this.idle.get(stream);
    if (old) {
      this.idle.delete(stream);
      this.drop(old);
    }
    const info = await this.client.call(`reading ${stream}`, () =>
      this.client.jsm.consumers.add(stream, { ack_policy: 'none' as never, deliver_policy: 'by_start_sequence' as never, opt_start_seq: from, inactive_threshold: IDLE_NANOS, mem_storage: true, num_replicas: 1 }),
    );
    return { stream, name: info.name, next: from, buffer: new Map(), expect: from };
  }

  /** Fetches up to `n` messages into `fetched`; sequences it delivered past are gaps (null). */
  async fill(c: Cursor, fetched: Map<number, InMessage | null>, n: number, end: number): Promise<void> {
    const js = this.client.nc.jetstream({ timeout: this.client.o.requestTimeoutMs });
    const msgs: JsMsg[] = [];
    try {
      await this.client.call(`reading ${c.stream}`, async () => {
        for await (const m of js.fetch(c.stream, c.name, { batch: n, no_wait: true })) msgs.push(m);
      });
    } catch {
      c.next = -1;
      return;
    }
    for (const m of msgs) {
      if (m.seq > end) {
        // Past the committed end: the consumer is ahead of what may be read now.
        c.next = -1;
        return;
      }
      for (let s = c.next; s < m.seq; s++) fetched.set(s, null);
      fetched.set(m.seq, decodeMessage({ seq: m.seq, subject: m.subject, header: m.headers!, data: m.data, time: new Date(Math.floor(m.info.timestampNanos / 1_000_000)) } as unknown as StoredMsg));
      c.next = m.seq + 1;
    }
  }

  /** Parks a cursor for the read that continues at `expect`, with what it fetched from there on. */
  put(stream: string, c: Cursor, expect: number, fetched: Map<number, InMessage | null>): void {
    if (c.next < 0) return this.drop(c);
    const buffer = new Map<number, InMessage | null>();
    for (const [s, m] of fetched) if (s >= expect) buffer.set(s, m);
    c.buffer = buffer;
    c.expect = expect;
    const other = this.idle.get(stream);
    if (other && other !== c) this.drop(other);
    this.idle.set(stream, c);
  }

  private drop(c: Cursor): void {
    c.next = -1;
    void this.client.call(`removing a reader of ${c.stream}`, () => this.client.jsm.consumers.delete(c.stream, c.name)).catch(() => {});
  }

  async close(): Promise<void> {
    const all = [...this.idle.values()];
    this.idle.clear();
    await Promise.all(all.map((c) => this.client.call(`removing a reader of ${c.stream}`, () => this.client.jsm.consumers.delete(c.stream, c.name)).catch(() => {})));
  }
}
