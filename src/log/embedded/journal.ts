/**
 * The commit journal: an append-only file of commit records, each framed as
 * length u32 | crc32 u32 | JSON. A record names the producer, its checkpoint, and the new committed
 * end (offset, segment, byte position) of every partition the commit touched. Folding the records
 * gives the committed state; a torn or corrupt tail record is ignored (that commit never
 * completed). When the file grows large it is rewritten as one `full` record (tmp + rename).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync, ftruncateSync } from 'node:fs';
import { crc32 } from '../../core/crc32.ts';

export type PartEnd = [topic: string, partition: number, end: number, segment: number, position: number];

export interface JournalRecord {
  full?: 1;
  /** producer id → checkpoint (full records) */
  producers?: Record<string, string>;
  p?: string;
  c?: string;
  parts: PartEnd[];
}

export interface JournalState {
  producers: Map<string, string>;
  parts: Map<string, PartEnd>;
}

export const partKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export function applyRecord(state: JournalState, r: JournalRecord): void {
  if (r.full) {
    state.producers.clear();
    state.parts.clear();
    for (const [k, v] of Object.entries(r.producers ?? {})) state.producers.set(k, v);
  } else if (r.p !== undefined && r.c !== undefined) state.producers.set(r.p, r.c);
  for (const pe of r.parts) state.parts.set(partKey(pe[0], pe[1]), pe);
}

export function encodeRecord(r: JournalRecord): Buffer {
  const body = Buffer.from(JSON.stringify(r));
  const b = Buffer.allocUnsafe(8 + body.length);
  b.writeUInt32BE(body.length, 0);
  b.writeUInt32BE(crc32(body), 4);
  body.copy(b, 8);
  return b;
}

/** Reads records from `from`; returns the state updates and the end of the last valid record. */
export function readJournal(path: string, state: JournalState, from = 0): { validEnd: number; size: number; ino: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { validEnd: 0, size: 0, ino: 0 };
  }
  try {
    const st = fstatSync(fd);
    const size = st.size;
    const buf = Buffer.allocUnsafe(Math.max(0, size - from));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    let p = 0;
    while (p + 8 <= got) {
      const len = buf.readUInt32BE(p);
      if (p + 8 + len > got) break;
      if (crc32(buf, p + 8, p + 8 + len) !== buf.readUInt32BE(p + 4)) break;
      let rec: JournalRecord;
      try {
        rec = JSON.parse(buf.toString('utf8', p + 8, p + 8 + len));
      } catch {
        break;
      }
      applyRecord(state, rec);
      p += 8 + len;
    }
    return { validEnd: from + p, size, ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

export class JournalWriter {
  private fd: number;
  size: number;
  constructor(private readonly path: string, validEnd: number) {
    this.fd = openSync(path, 'a+');
    // Drop a torn tail so new records follow the last valid one.
    if (fstatSync(this.fd).size !== validEnd) {
      ftruncateSync(this.fd, validEnd);
      fsyncSync(this.fd);
    }
    this.size = validEnd;
  }

  append(r: JournalRecord): number {
    const b = encodeRecord(r);
    writeSync(this.fd, b);
    this.size += b.length;
    return this.fd;
  }

  get handle(): number {
    return this.fd;
  }

  /** Rewrites the journal as a single full-state record. */
  compact(state: JournalState, dirFsync: () => void): void {
    const tmp = this.path + '.tmp';
    const fd = openSync(tmp, 'w');
    const b = encodeRecord({ full: 1, producers: Object.fromEntries(state.producers), parts: [...state.parts.values()] });
    writeSync(fd, b);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.path);
    dirFsync();
    closeSync(this.fd);
    this.fd = openSync(this.path, 'a+');
    this.size = b.length;
  }

  close(): void {
    closeSync(this.fd);
  }
}
