/**
 * A log record as a JetStream message: the payload is the record's value, as is (so any NATS
 * client reads the values), and headers carry the rest.
 *
 *   Sluice-Txn     <producer key> <epoch> <commit>: the commit the record belongs to (state.ts)
 *   Sluice-Ts      the record's timestamp (ms since the epoch)
 *   Sluice-Key     `b` + the key in base64; absent for a null key
 *   Sluice-Null    present when the value is null (an empty payload is an empty value)
 *   Sluice-H       the record's headers, JSON in base64 (header names may be any text)
 *   Sluice-Part    `<record index in its commit> <chunk index> <chunks>` on a value split in chunks
 *
 * A value larger than one message (the server's max_payload, 1 MiB by default) is split into
 * chunks published one after the other, the record's headers on the last: the record's offset is
 * its last chunk's, so the offsets before it that hold its other chunks are gaps a read steps over
 * on its way to the record (never a gap after the last record of a partition), and a read of the
 * record joins the chunks before it.
 */
import type { MsgHdrs, StoredMsg } from 'nats';
import type { NatsModule } from './client.ts';
import { parseTxn, TXN_HEADER } from './state.ts';

export interface OutRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers?: Record<string, string>;
}

export interface OutMessage {
  headers: MsgHdrs;
  data: Uint8Array;
}

/** Headroom left in a message for headers. */
const HEADER_ROOM = 64 * 1024;

/** The messages of one record: one, or its chunks. */
export function encodeRecord(nats: NatsModule, r: OutRecord, txn: string, index: number, maxPayload: number): OutMessage[] {
  const h = nats.headers();
  h.set(TXN_HEADER, txn);
  h.set('Sluice-Ts', String(r.timestamp));
  if (r.key !== null) h.set('Sluice-Key', 'b' + r.key.toString('base64'));
  if (r.value === null) h.set('Sluice-Null', '1');
  if (r.headers && Object.keys(r.headers).length) h.set('Sluice-H', Buffer.from(JSON.stringify(r.headers), 'utf8').toString('base64'));
  const value = r.value ?? EMPTY;
  const chunk = Math.max(64 * 1024, maxPayload - HEADER_ROOM);
  if (value.length <= chunk) return [{ headers: h, data: value }];
  const n = Math.ceil(value.length / chunk);
  const out: OutMessage[] = [];
  for (let i = 0; i < n - 1; i++) {
    const ch = nats.headers();
    ch.set(TXN_HEADER, txn);
    ch.set('Sluice-Part', `${index} ${i} ${n}`);
    out.push({ headers: ch, data: value.subarray(i * chunk, (i + 1) * chunk) });
  }
  h.set('Sluice-Part', `${index} ${n - 1} ${n}`);
  out.push({ headers: h, data: value.subarray((n - 1) * chunk) });
  return out;
}

const EMPTY = Buffer.alloc(0);

export interface InMessage {
  seq: number;
  txn: { producerKey: string; epoch: number; commit: number } | null;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  /** When the server stored the message (ms since the epoch). */
  stored: number;
  headers?: Record<string, string>;
  /** For a chunked value: which record of its commit, which chunk, of how many (the record's headers are on the last). */
  part?: { record: number; index: number; count: number };
}

export function decodeMessage(m: StoredMsg): InMessage {
  const h = m.header;
  const get = (k: string): string | undefined => (h?.has(k) ? h.get(k) : undefined);
  const key = get('Sluice-Key');
  const hs = get('Sluice-H');
  const partText = get('Sluice-Part');
  let part: InMessage['part'];
  if (partText) {
    const [record, index, count] = partText.split(' ').map(Number);
    part = { record, index, count };
  }
  const ts = get('Sluice-Ts');
  const out: InMessage = {
    seq: m.seq,
    txn: parseTxn(get(TXN_HEADER)),
    key: key === undefined ? null : Buffer.from(key.slice(1), 'base64'),
    value: get('Sluice-Null') !== undefined ? null : Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
    timestamp: ts === undefined ? m.time.getTime() : Number(ts),
    stored: m.time.getTime(),
    part,
  };
  if (hs) out.headers = JSON.parse(Buffer.from(hs, 'base64').toString('utf8')) as Record<string, string>;
  return out;
}
