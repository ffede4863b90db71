/**
 * Spill storage for transactions PostgreSQL streams while they are still in progress (protocol v2
 * with streaming). Their messages are kept, per top-level transaction, in a small memory buffer
 * that overflows to a file, until Stream Commit (replay them as one transaction) or Stream Abort
 * (throw them away, or only a subtransaction's). Memory stays bounded whatever the size.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const MEM_LIMIT = 1 << 20;

class SpilledTxn {
  private chunks: Buffer[] = [];
  private memBytes = 0;
  private fd: number | null = null;
  readonly abortedSubxacts = new Set<number>();
  messages = 0;
  constructor(private readonly path: string) {}

  add(subxid: number, payload: Buffer): void {
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32BE(payload.length, 0);
    head.writeUInt32BE(subxid >>> 0, 4);
    this.chunks.push(head, Buffer.from(payload));
    this.memBytes += payload.length + 8;
    this.messages++;
    if (this.memBytes >= MEM_LIMIT) this.flushToFile();
  }

  private flushToFile(): void {
    if (this.fd === null) this.fd = openSync(this.path, 'w+');
    const buf = Buffer.concat(this.chunks);
    writeSync(this.fd, buf);
    this.chunks = [];
    this.memBytes = 0;
  }

  /** Yields the messages in order, skipping those of aborted subtransactions. */
  *replay(): Generator<Buffer> {
    if (this.fd !== null) {
      this.flushToFile();
      const fd = this.fd;
      let pos = 0;
      let carry = Buffer.alloc(0);
      const block = Buffer.allocUnsafe(1 << 20);
      for (;;) {
        const n = readSync(fd, block, 0, block.length, pos);
        if (n === 0) break;
        pos += n;
        const buf = carry.length ? Buffer.concat([carry, block.subarray(0, n)]) : block.subarray(0, n);
        let off = 0;
        while (off + 8 <= buf.length) {
          const len = buf.readUInt32BE(off);
          if (off + 8 + len > buf.length) break;
          const sub = buf.readUInt32BE(off + 4);
          if (!this.abortedSubxacts.has(sub)) yield Buffer.from(buf.subarray(off + 8, off + 8 + len));
          off += 8 + len;
        }
        carry = Buffer.from(buf.subarray(off));
      }
    } else {
      for (let i = 0; i < this.chunks.length; i += 2) {
        const sub = this.chunks[i].readUInt32BE(4);
        if (!this.abortedSubxacts.has(sub)) yield this.chunks[i + 1];
      }
    }
  }

  discard(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      rmSync(this.path, { force: true });
      this.fd = null;
    }
    this.chunks = [];
  }
}

export class SpillStore {
  private readonly txns = new Map<number, SpilledTxn>();
  constructor(private readonly dir: string) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  add(xid: number, subxid: number, payload: Buffer): void {
    let t = this.txns.get(xid);
    if (!t) {
      t = new SpilledTxn(join(this.dir, `${xid}.spill`));
      this.txns.set(xid, t);
    }
    t.add(subxid, payload);
  }

  abort(xid: number, subxid: number): void {
    const t = this.txns.get(xid);
    if (!t) return;
    if (subxid === xid || subxid === 0) {
      t.discard();
      this.txns.delete(xid);
    } else t.abortedSubxacts.add(subxid);
  }

  /** Removes and returns the transaction's messages for replay; discard() after use. */
  take(xid: number): { replay(): Generator<Buffer>; discard(): void; messages: number } | null {
    const t = this.txns.get(xid);
    if (!t) return null;
    this.txns.delete(xid);
    return t;
  }

  get open(): number {
    return this.txns.size;
  }

  close(): void {
    for (const t of this.txns.values()) t.discard();
    this.txns.clear();
  }
}
