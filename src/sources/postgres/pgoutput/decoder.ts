/**
 * Decodes one pgoutput message (the payload of an XLogData message). The hot path: tuples are
 * decoded into per-column byte slices without copying; text conversion happens per column in
 * types.ts.
 */
import { SluiceError } from '../../../core/errors.ts';
import type { PgOutputMessage, RelationColumn, TupleData } from './messages.ts';
import { pgError } from '../errors.ts';

/** Names are UTF-8; bytes that are not are a damaged message, not a name to guess at. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A cursor over one message. Every read is checked against the message's end, so a short or
 * damaged message is PG_PROTOCOL, never a RangeError or a value read from beyond it.
 */
class Reader {
  pos = 0;
  constructor(readonly b: Buffer) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.b.length) throw corrupt(`${what} runs past the end of the message (${this.b.length} bytes)`);
  }
  u8(what = 'a byte'): number {
    this.need(1, what);
    return this.b[this.pos++];
  }
  i16(what = 'a count'): number {
    this.need(2, what);
    const v = this.b.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(what = 'a number'): number {
    this.need(4, what);
    const v = this.b.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(what = 'a number'): number {
    this.need(4, what);
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what = 'an LSN'): bigint {
    this.need(8, what);
    const v = this.b.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(what = 'a timestamp'): bigint {
    this.need(8, what);
    const v = this.b.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  /** A flag byte that must be 0 or 1. */
  flag(what: string): boolean {
    const v = this.u8(what);
    if (v > 1) throw corrupt(`${what} is ${v}, not 0 or 1`);
    return v === 1;
  }
  cstr(what = 'a name'): string {
    const end = this.b.indexOf(0, this.pos);
    if (end < 0) throw corrupt(`${what} is not terminated`);
    let s: string;
    try {
      s = UTF8.decode(this.b.subarray(this.pos, end));
    } catch {
      throw corrupt(`${what} is not valid UTF-8`);
    }
    this.pos = end + 1;
    return s;
  }
  tuple(): TupleData {
    const n = this.i16('a tuple\'s column count');
    if (n < 0) throw corrupt(`a tuple has ${n} columns`);
    const cols = new Int32Array(n * 3);
    const b = this.b;
    const len = b.length;
    let pos = this.pos;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      if (pos >= len) throw corrupt(`a tuple of ${n} columns ends after ${i}`);
      const k = b[pos++];
      cols[j] = k;
      if (k === 0x74 /* t */ || k === 0x62 /* b */) {
        if (pos + 4 > len) throw corrupt(`the length of column ${i + 1} of a tuple runs past the end of the message`);
        const l = b.readInt32BE(pos);
        pos += 4;
        if (l < 0 || pos + l > len) throw corrupt(`column ${i + 1} of a tuple says it has ${l} bytes, ${len - pos} are left`);
        cols[j + 1] = pos;
        cols[j + 2] = l;
        pos += l;
      } else if (k !== 0x6e /* n */ && k !== 0x75 /* u */) throw corrupt(`column ${i + 1} of a tuple has kind 0x${k.toString(16)} (not n, u, t or b)`);
    }
    this.pos = pos;
    return { buf: b, n, cols };
  }
  /** The message must end where its last field does. */
  end(type: string): void {
    if (this.pos !== this.b.length) throw corrupt(`a ${type} message of ${this.b.length} bytes has ${this.b.length - this.pos} bytes after its last field`);
  }
}

function corrupt(what: string): SluiceError {
  return pgError('PG_PROTOCOL', `malformed pgoutput message: ${what}. This is a bug or a server/protocol mismatch; report it with the server version.`);
}

/**
 * `inStream`: true between Stream Start and Stream Stop (protocol 2), where data messages carry
 * the (sub)transaction id after the type byte.
 */
export function decodeMessage(buf: Buffer, inStream: boolean): PgOutputMessage {
  const r = new Reader(buf);
  const m = decode(r, buf, inStream);
  r.end(m.type);
  return m;
}

function decode(r: Reader, buf: Buffer, inStream: boolean): PgOutputMessage {
  if (buf.length === 0) throw corrupt('an empty message');
  const tag = r.u8();
  switch (tag) {
    case 0x42: // B
      return { type: 'begin', finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32() };
    case 0x43: // C
      return { type: 'commit', flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
    case 0x4f: // O
      return { type: 'origin', lsn: r.u64(), name: r.cstr('an origin name') };
    case 0x52: {
      // R
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      const namespace = r.cstr('a schema name');
      const name = r.cstr('a table name');
      const ident = r.u8('the replica identity');
      if (ident !== 0x64 && ident !== 0x6e && ident !== 0x66 && ident !== 0x69) throw corrupt(`the replica identity of ${namespace}.${name} is 0x${ident.toString(16)} (not d, n, f or i)`);
      const replicaIdentity = String.fromCharCode(ident);
      const n = r.i16('a column count');
      if (n < 0) throw corrupt(`relation ${namespace}.${name} has ${n} columns`);
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8('column flags');
        if (flags > 1) throw corrupt(`column ${i + 1} of ${namespace}.${name} has flags ${flags}`);
        columns.push({ key: flags === 1, name: r.cstr('a column name'), typeOid: r.u32('a type OID'), typeModifier: r.i32('a type modifier') });
      }
      return { type: 'relation', xid, relationId, namespace: namespace === '' ? 'pg_catalog' : namespace, name, replicaIdentity, columns };
    }
    case 0x59: {
      // Y
      const xid = inStream ? r.u32() : undefined;
      return { type: 'type', xid, typeOid: r.u32(), namespace: r.cstr('a schema name'), name: r.cstr('a type name') };
    }
    case 0x49: {
      // I
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      if (r.u8('the tuple kind') !== 0x4e) throw corrupt('insert without N tuple');
      return { type: 'insert', xid, relationId, newTuple: r.tuple() };
    }
    case 0x55: {
      // U
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      let k = r.u8('the tuple kind');
      let oldKind: 'K' | 'O' | null = null;
      let oldTuple: TupleData | null = null;
      if (k === 0x4b || k === 0x4f) {
        oldKind = k === 0x4b ? 'K' : 'O';
        oldTuple = r.tuple();
        k = r.u8('the tuple kind');
      }
      if (k !== 0x4e) throw corrupt('update without N tuple');
      return { type: 'update', xid, relationId, oldKind, oldTuple, newTuple: r.tuple() };
    }
    case 0x44: {
      // D
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      const k = r.u8('the tuple kind');
      if (k !== 0x4b && k !== 0x4f) throw corrupt('delete without K/O tuple');
      return { type: 'delete', xid, relationId, oldKind: k === 0x4b ? 'K' : 'O', oldTuple: r.tuple() };
    }
    case 0x54: {
      // T
      const xid = inStream ? r.u32() : undefined;
      const n = r.u32('a relation count');
      const opts = r.u8('truncate options');
      if (opts > 3) throw corrupt(`truncate options ${opts}`);
      r.need(n * 4, `a truncate of ${n} relations`);
      const relationIds: number[] = [];
      for (let i = 0; i < n; i++) relationIds.push(r.u32());
      return { type: 'truncate', xid, cascade: (opts & 1) !== 0, restartIdentity: (opts & 2) !== 0, relationIds };
    }
    case 0x4d: {
      // M
      const xid = inStream ? r.u32() : undefined;
      const transactional = r.flag('the transactional flag of a logical message');
      const lsn = r.u64();
      const prefix = r.cstr('a message prefix');
      const len = r.u32('a content length');
      r.need(len, `a logical message of ${len} bytes`);
      const content = buf.subarray(r.pos, r.pos + len);
      r.pos += len;
      return { type: 'message', xid, transactional, lsn, prefix, content };
    }
    case 0x53: // S
      return { type: 'stream_start', xid: r.u32(), firstSegment: r.flag('the first-segment flag of Stream Start') };
    case 0x45: // E
      return { type: 'stream_stop' };
    case 0x63: // c
      return { type: 'stream_commit', xid: r.u32(), flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
    case 0x41: {
      // A
      const xid = r.u32();
      const subxid = r.u32();
      return { type: 'stream_abort', xid, subxid };
    }
    default:
      throw corrupt(`unknown message type ${JSON.stringify(String.fromCharCode(tag))} (0x${tag.toString(16)})`);
  }
}
