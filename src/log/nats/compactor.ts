/**
 * Compaction of the NATS log's compacted topics, with Kafka's semantics: the latest committed
 * record of each key stays, older records of the key are deleted, and a tombstone (a null value)
 * that is its key's latest record is deleted once it was stored more than the topic's
 * `tombstoneRetentionMs` ago. Records without a key are kept (as the embedded log keeps them).
 *
 * Only committed records are ever looked at: a partition is scanned up to its committed end (the
 * end readers see, which stops at the first offset of a commit in flight), and records of aborted
 * commits are skipped, as readers skip them. So a record is deleted only when a later committed
 * record of its key was seen, and a key's latest committed value stays while a newer record of it
 * is in flight, and after that commit is aborted. (JetStream's own per-subject limit would drop it
 * the moment the newer record is stored.) Deletion is JetStream's per-message delete, so a deleted
 * record leaves a gap at its offset, which readers step over; the other records keep their offsets.
 *
 * A partition's first message is never deleted: that would move the partition's start, and a
 * reader (a sink resuming from its committed offset) would be told its records went to retention.
 * The first message of a partition may thus be a record a later one replaces; retention removes it.
 *
 * Incremental, bounded in memory: per partition stream, the handle remembers how far it has
 * scanned and, for at most `maxKeys` keys, the sequence of each key's latest record (keys longer
 * than 24 bytes by a 144-bit SHA-256 digest). A run scans only what was committed since the last
 * one, deletes what those records replace, and deletes tombstones that have aged. Past `maxKeys`
 * the key whose latest record is the oldest is forgotten: its later records then leave its older
 * ones in place (never the other way round), so compaction degrades, safely, for partitions with
 * more keys than that. A new handle (a restarted writer) scans each compacted partition from its
 * start once. A failed request drops the partition's memory, so the next run scans it again.
 *
 * A writer killed mid-run leaves a consistent partition: every delete removes one message that a
 * later committed record of its key replaces, and a record whose value took several messages is
 * deleted from its last chunk (the record's offset) first, so it is there whole or not at all;
 * chunks a crash left behind are gaps to readers, and a later full scan deletes them.
 */
import { createHash } from 'node:crypto';
import type { StoredMsg } from 'nats';
import { logError } from '../errors.ts';
import type { NatsClient } from './client.ts';
import { decodeMessage, type InMessage } from './codec.ts';
import { fetchBatch } from './cursor.ts';

/** Per partition stream: what the cleaner remembers between runs. */
interface PartMemory {
  /** Every sequence up to this one has been scanned (0: none). */
  scanned: number;
  /** Key → sequence of the key's latest record, least recently written first (the order to forget in). */
  latest: Map<string, number>;
  /** Latest records that are tombstones: sequence → key and when it was stored. */
  tombstones: Map<number, { key: string; stored: number }>;
  /** Latest records whose value took several messages: last chunk's sequence → the other chunks'. */
  chunks: Map<number, number[]>;
}

export interface CompactorOptions {
  /** Keys remembered per partition (default 200,000, some 25 MB). */
  maxKeys?: number;
  /** Whether records of this commit are to be skipped (it was aborted). */
  isAborted(producerKey: string, epoch: number, commit: number): boolean;
}

const BATCH = 512;
const DELETE_WINDOW = 64;
const NANOS_PER_MS = 1_000_000;
const IDLE_NANOS = 60_000 * NANOS_PER_MS;

function keyId(key: Buffer): string {
  if (key.length <= 24) return 'k' + key.toString('latin1');
  return 'h' + createHash('sha256').update(key).digest().subarray(0, 18).toString('base64');
}

export class Compactor {
  private readonly parts = new Map<string, PartMemory>();
  private readonly maxKeys: number;

  constructor(
    private readonly client: NatsClient,
    private readonly o: CompactorOptions,
  ) {
    this.maxKeys = o.maxKeys ?? 200_000;
  }

  /** @internal For tests: how far a partition was scanned, and how many keys are remembered. */
  memory(stream: string): { scanned: number; keys: number } | null {
    const m = this.parts.get(stream);
    return m ? { scanned: m.scanned, keys: m.latest.size } : null;
  }

  /**
   * Compacts one partition stream whose committed records are sequences 1..`end` (its first
   * message `firstSeq`). Returns the number of records (and orphaned chunks) it deleted.
   */
  async clean(stream: string, part: { end: number; firstSeq: number }, tombstoneMs: number, now: number, stop: () => boolean): Promise<number> {
    let mem = this.parts.get(stream);
    if (!mem) {
      mem = { scanned: 0, latest: new Map(), tombstones: new Map(), chunks: new Map() };
      this.parts.set(stream, mem);
    }
    try {
      return await this.run(stream, mem, part, tombstoneMs, now, stop);
    } catch (e) {
      // Whatever it had planned to delete and did not is forgotten: scan again next time.
      this.parts.delete(stream);
      throw e;
    }
  }

  private async run(stream: string, mem: PartMemory, part: { end: number; firstSeq: number }, tombstoneMs: number, now: number, stop: () => boolean): Promise<number> {
    const { end, firstSeq } = part;
    let deleted = 0;
    // Records to delete, each as its sequences, the record's own (its last chunk) first.
    let doomed: number[][] = [];
    const flush = async () => {
      const list = doomed;
      doomed = [];
      for (let i = 0; i < list.length; i += DELETE_WINDOW) {
        await Promise.all(
          list.slice(i, i + DELETE_WINDOW).map(async (seqs) => {
            // The partition's first message stays (see above), and with it the whole record.
            if (seqs.includes(firstSeq)) return;
            for (const s of seqs) if (await this.client.deleteMessage(stream, s)) deleted++;
          }),
        );
      }
    };
    const forget = (seq: number): number[] => {
      mem.tombstones.delete(seq);
      const others = mem.chunks.get(seq) ?? [];
      mem.chunks.delete(seq);
      return [seq, ...others];
    };

    const from = Math.max(mem.scanned + 1, firstSeq, 1);
    if (from <= end && !stop()) {
      // Chunks of a split value seen so far, by commit and record: they come before its last chunk.
      const pending = new Map<string, number[]>();
      let sawEnd = false;
      let stopped = false;
      for await (const batch of this.scan(stream, from, end)) {
        for (const m of batch) {
          if (m.seq === end) sawEnd = true;
          mem.scanned = m.seq;
          // Records of aborted commits are not records (readers skip them; they are deleted apart).
          if (m.txn && this.o.isAborted(m.txn.producerKey, m.txn.epoch, m.txn.commit)) continue;
          let seqs = [m.seq];
          if (m.part) {
            const id = `${m.txn?.producerKey} ${m.txn?.epoch} ${m.txn?.commit} ${m.part.record}`;
            if (m.part.index < m.part.count - 1) {
              (pending.get(id) ?? pending.set(id, []).get(id)!).push(m.seq);
              continue;
            }
            seqs = [m.seq, ...(pending.get(id) ?? [])];
            pending.delete(id);
          }
          if (m.key === null) continue;
          const key = keyId(m.key);
          const prev = mem.latest.get(key);
          if (prev !== undefined) {
            mem.latest.delete(key);
            doomed.push(forget(prev));
          }
          mem.latest.set(key, m.seq);
          if (seqs.length > 1) mem.chunks.set(m.seq, seqs.slice(1));
          if (m.value === null) mem.tombstones.set(m.seq, { key, stored: m.stored });
          if (mem.latest.size > this.maxKeys) {
            const [oldKey, oldSeq] = mem.latest.entries().next().value as [string, number];
            mem.latest.delete(oldKey);
            forget(oldSeq);
          }
        }
        if (doomed.length >= BATCH) await flush();
        if (stop()) {
          stopped = true;
          break;
        }
      }
      // Everything up to the committed end was delivered: chunks whose record never came are
      // left over (a run killed while deleting a record, or retention), never a record still to
      // come (a commit's chunks all lie below the end once it is committed).
      if (sawEnd) for (const seqs of pending.values()) doomed.push(seqs);
      // What the consumer did not deliver up to the end was deleted already.
      if (!stopped) mem.scanned = end;
    }
    // Tombstones that are their key's latest record, stored long enough ago.
    for (const [seq, t] of [...mem.tombstones]) {
      if (t.stored >= now - tombstoneMs || seq === firstSeq) continue;
      mem.latest.delete(t.key);
      doomed.push(forget(seq));
    }
    await flush();
    return deleted;
  }

  /**
   * The messages of `stream` from `from` to `end`, in batches, from an ephemeral consumer (removed
   * after); a batch that stalls (cursor.ts, fetchBatch) goes on with a new consumer after it.
   */
  private async *scan(stream: string, from: number, end: number): AsyncGenerator<InMessage[]> {
    const { client } = this;
    const what = `compacting ${stream}`;
    const open = (at: number) =>
      client.call(what, () => client.jsm.consumers.add(stream, { ack_policy: 'none' as never, deliver_policy: 'by_start_sequence' as never, opt_start_seq: at, inactive_threshold: IDLE_NANOS, mem_storage: true, num_replicas: 1 }));
    const drop = (name: string) => client.call(what, () => client.jsm.consumers.delete(stream, name)).catch(() => {});
    let consumer = (await open(from)).name;
    let next = from;
    let stalls = 0;
    try {
      for (;;) {
        const { msgs, stalled } = await fetchBatch(client, stream, consumer, BATCH);
        const out: InMessage[] = [];
        let past = false;
        for (const m of msgs) {
          if (m.seq > end) {
            past = true;
            break;
          }
          out.push(decodeMessage({ seq: m.seq, subject: m.subject, header: m.headers!, data: m.data, time: new Date(Math.floor(m.info.timestampNanos / NANOS_PER_MS)) } as unknown as StoredMsg));
          next = m.seq + 1;
        }
        if (out.length) yield out;
        if (past || next > end) return;
        if (stalled) {
          if (!msgs.length && ++stalls >= 3) throw logError('LOG_NATS_TIMEOUT', `${what}: the NATS server at ${client.servers} delivered nothing from sequence ${next} in 3 attempts`);
          await drop(consumer);
          consumer = (await open(next)).name;
          continue;
        }
        stalls = 0;
        if (!msgs.length) return;
      }
    } finally {
      await drop(consumer);
    }
  }
}
