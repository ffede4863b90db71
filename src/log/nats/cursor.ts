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

/** A batch that delivers nothing for this long has stalled (see `fetchBatch`). */
const STALL_MS = 2000;

/**
 * Up to `n` messages from a pull consumer (no_wait). nats.js ends such a batch at the message that
 * says nothing is pending; when messages are stored while the batch is delivered (a writer
 * publishing, the server still taking a killed writer's publishes), the last one delivered may say
 * some are, and the batch would wait for ones the server never sends. So a batch with no message
 * for STALL_MS ends there, `stalled`: messages the server may still send for it are lost to this
 * caller, so the consumer must not be used again (start another one after the last message).
 */
export async function fetchBatch(client: NatsClient, stream: string, consumer: string, n: number): Promise<{ msgs: JsMsg[]; stalled: boolean }> {
  const js = client.nc.jetstream({ timeout: client.o.requestTimeoutMs });
  const msgs: JsMsg[] = [];
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  await client.call(`reading ${stream}`, async () => {
    const it = js.fetch(stream, consumer, { batch: n, no_wait: true });
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        it.stop();
      }, STALL_MS);
    };
    arm();
    try {
      for await (const m of it) {
        msgs.push(m);
        arm();
      }
    } finally {
      clearTimeout(timer);
    }
  });
  return { msgs, stalled };
}

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
    let msgs: JsMsg[];
    let stalled: boolean;
    try {
      ({ msgs, stalled } = await fetchBatch(this.client, c.stream, c.name, n));
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
    // What the consumer delivers after a stall is not seen here: it must not go on.
    if (stalled) c.next = -1;
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
