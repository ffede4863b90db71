/**
 * The commit journal: an append-only file of commit records, each framed as
 * length u32 | crc32 u32 | JSON. A record names the producer, its checkpoint, and the new committed
 * end (offset, segment, byte position) of every partition the commit touched. Folding the records
 * gives the committed state; a torn or corrupt tail record is ignored (that commit never
 * completed). When the file grows large it is rewritten as one `full` record (tmp + rename).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync, ftruncateSync } from 'node:fs';
import { crc32 } from '../../core/crc32.ts';
import { logError } from '../errors.ts';

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
    while (p < got) {
      const len = p + 8 <= got ? buf.readUInt32BE(p) : Infinity;
      let rec: JournalRecord | null = null;
      if (p + 8 + len <= got && crc32(buf, p + 8, p + 8 + len) === buf.readUInt32BE(p + 4)) {
        try {
          rec = JSON.parse(buf.toString('utf8', p + 8, p + 8 + len));
        } catch {
          rec = null;
        }
      }
      if (!rec) {
        // A bad last record is a commit that never completed (cut off on open). A bad record
        // followed by a good one is damage: cutting it off would drop the commits after it.
        if (!validRecordAfter(buf, p + 1, got)) break;
        throw logError(
          'LOG_CORRUPT',
          `the commit journal ${path} is damaged at byte ${from + p} (a record fails its checksum, and later commits follow it): the log cannot tell what was committed. Restore the log directory from a backup, or start over: stop the pipeline, move the log directory away, empty the sinks' targets (their stored offsets refer to this log) and run again, which takes a new snapshot`,
        );
      }
      applyRecord(state, rec);
      p += 8 + len;
    }
    return { validEnd: from + p, size, ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether a whole record with a good checksum starts anywhere at or after `from` (records are
 * JSON objects, so only places whose body starts with `{` are checked): then a bad record before
 * it is damage, not the torn end of a commit that never completed.
 */
function validRecordAfter(buf: Buffer, from: number, end: number): boolean {
  for (let q = from; q + 9 <= end; q++) {
    if (buf[q + 8] !== 0x7b) continue;
    const len = buf.readUInt32BE(q);
    if (len < 2 || q + 8 + len > end || crc32(buf, q + 8, q + 8 + len) !== buf.readUInt32BE(q + 4)) continue;
    try {
      JSON.parse(buf.toString('utf8', q + 8, q + 8 + len));
      return true;
    } catch {
      // not a record after all
    }
  }
  return false;
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
