/**
 * The scratch file the DuckDB sink loads a table's changes from: one JSON line per change, read by
 * DuckDB's JSON reader (`read_ndjson`) with the column types the sink gives it,
 *
 *   {"p":<partition>,"at":<offset>,"u":<fate>,"k":<key>,"v":<envelope>}
 *
 * the envelope as its own bytes (never decoded or re-encoded here). `u` is the change's fate in the
 * batch: 1 the key's last change, an upsert (or any change of a table without a key); 2 the key's
 * last change, a delete (`k` then holds the key); 0 superseded by a later change of its key (it
 * only goes to the change table).
 */
import type { FileHandle } from 'node:fs/promises';
import { open as openFile } from 'node:fs/promises';
import type { SinkRecord, TableBatch } from '../types.ts';

/** What the sink needs to know of a written file. */
export interface ChangesFile {
  path: string;
  /** The longest line in bytes (the JSON reader's object size limit must exceed it). */
  longest: number;
  /** Per partition, the lowest and the highest change id in the file. */
  lowest: Map<number, number>;
  highest: Map<number, number>;
}

/** A change's id in the change table: its position in the log, partition × 2^40 + offset. */
export function changeId(r: SinkRecord): number {
  return r.partition * 2 ** 40 + r.offset;
}

/** Lines are gathered in a buffer of this size between writes. */
const CHUNK = 4 << 20;

/** Lines into a file through one reused buffer. */
class LineWriter {
  buf = Buffer.allocUnsafe(CHUNK);
  at = 0;
  constructor(private readonly fh: FileHandle) {}

  /** Makes room for `n` more bytes: writes out what the buffer holds, or takes a bigger one. */
  async room(n: number): Promise<void> {
    await this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  async flush(): Promise<void> {
    if (this.at) await this.fh.write(this.buf, 0, this.at);
    this.at = 0;
  }

  ascii(s: string): void {
    const b = this.buf;
    let at = this.at;
    for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i);
    this.at = at;
  }

  utf8(s: string): void {
    this.at += this.buf.write(s, this.at, 'utf8');
  }

  bytes(src: Buffer): void {
    this.at += src.copy(this.buf, this.at);
  }
}

/**
 * Writes the changes of `t` to `path`. With `share`, gives the event loop a turn every thousand
 * changes (the batch before may be applying meanwhile, and its statements' answers wait on it).
 */
export async function writeChanges(path: string, t: TableBatch, share = false): Promise<ChangesFile> {
  const fate = new Map<SinkRecord, number>();
  for (const r of t.upserts) fate.set(r, 1);
  for (const r of t.deletes) fate.set(r, 2);
  for (const r of t.keyless) fate.set(r, 1);
  const lowest: number[] = [];
  const highest: number[] = [];
  let longest = 0;
  const fh = await openFile(path, 'w');
  try {
    const w = new LineWriter(fh);
    for (let n = 0; n < t.changes.length; n++) {
      const r = t.changes[n];
      const id = changeId(r);
      const p = r.partition;
      if (!(id >= lowest[p])) lowest[p] = id;
      if (!(id <= highest[p])) highest[p] = id;
      const u = fate.get(r) ?? 0;
      const key = u === 2 ? r.key : null;
      // The envelope's bytes when the log reader kept them (it then never decodes `value`).
      const env = r.bytes ?? Buffer.from(r.value);
      // At most: the framing (numbers of up to 16 digits), the key's UTF-8 (3 bytes per UTF-16
      // unit), the envelope.
      const most = 96 + 3 * (key?.length ?? 4) + env.length;
      if (w.at + most > w.buf.length) await w.room(most);
      const start = w.at;
      w.ascii(`{"p":${p},"at":${r.offset},"u":${u},"k":`);
      if (key === null) w.ascii('null');
      else w.utf8(key);
      w.ascii(',"v":');
      w.bytes(env);
      w.ascii('}\n');
      if (w.at - start > longest) longest = w.at - start;
      if (share && (n & 1023) === 1023) await new Promise((resolve) => setImmediate(resolve));
    }
    await w.flush();
  } finally {
    await fh.close();
  }
  const byPartition = (ids: number[]) => new Map(ids.flatMap((id, p) => (id === undefined ? [] : [[p, id] as [number, number]])));
  return { path, longest, lowest: byPartition(lowest), highest: byPartition(highest) };
}
