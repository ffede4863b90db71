/**
 * Decodes one pgoutput message (the payload of an XLogData message). The hot path: tuples are
 * decoded into per-column byte slices without copying; text conversion happens per column in
 * types.ts.
 */
import { SluiceError } from '../../../core/errors.ts';
import type { PgOutputMessage, RelationColumn, TupleData } from './messages.ts';
import { pgError } from '../errors.ts';

class Reader {
  pos = 0;
  constructor(readonly b: Buffer) {}
  u8(): number {
    return this.b[this.pos++];
  }
  i16(): number {
    const v = this.b.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.b.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.b.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    const v = this.b.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  cstr(): string {
    const end = this.b.indexOf(0, this.pos);
    if (end < 0) throw corrupt('unterminated string');
    const s = this.b.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  tuple(): TupleData {
    const n = this.i16();
    const cols = new Int32Array(n * 3);
    const b = this.b;
    let pos = this.pos;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const k = b[pos++];
      cols[j] = k;
      if (k === 0x74 /* t */ || k === 0x62 /* b */) {
        const len = b.readInt32BE(pos);
        pos += 4;
        cols[j + 1] = pos;
        cols[j + 2] = len;
        pos += len;
      }
    }
    this.pos = pos;
    return { buf: b, n, cols };
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
  const tag = r.u8();
  switch (tag) {
    case 0x42: // B
      return { type: 'begin', finalLsn: r.u64(), commitTime: r.i64(), xid: r.u32() };
    case 0x43: // C
      return { type: 'commit', flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTime: r.i64() };
    case 0x4f: // O
      return { type: 'origin', lsn: r.u64(), name: r.cstr() };
    case 0x52: {
      // R
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      const namespace = r.cstr();
      const name = r.cstr();
      const replicaIdentity = String.fromCharCode(r.u8());
      const n = r.i16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) {
        const flags = r.u8();
        columns.push({ key: (flags & 1) === 1, name: r.cstr(), typeOid: r.u32(), typeModifier: r.i32() });
      }
      return { type: 'relation', xid, relationId, namespace: namespace === '' ? 'pg_catalog' : namespace, name, replicaIdentity, columns };
    }
    case 0x59: {
      // Y
      const xid = inStream ? r.u32() : undefined;
      return { type: 'type', xid, typeOid: r.u32(), namespace: r.cstr(), name: r.cstr() };
    }
    case 0x49: {
      // I
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      if (r.u8() !== 0x4e) throw corrupt('insert without N tuple');
      return { type: 'insert', xid, relationId, newTuple: r.tuple() };
    }
    case 0x55: {
      // U
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      let k = r.u8();
      let oldKind: 'K' | 'O' | null = null;
      let oldTuple: TupleData | null = null;
      if (k === 0x4b || k === 0x4f) {
        oldKind = k === 0x4b ? 'K' : 'O';
        oldTuple = r.tuple();
        k = r.u8();
      }
      if (k !== 0x4e) throw corrupt('update without N tuple');
      return { type: 'update', xid, relationId, oldKind, oldTuple, newTuple: r.tuple() };
    }
    case 0x44: {
      // D
      const xid = inStream ? r.u32() : undefined;
      const relationId = r.u32();
      const k = r.u8();
      if (k !== 0x4b && k !== 0x4f) throw corrupt('delete without K/O tuple');
      return { type: 'delete', xid, relationId, oldKind: k === 0x4b ? 'K' : 'O', oldTuple: r.tuple() };
    }
    case 0x54: {
      // T
      const xid = inStream ? r.u32() : undefined;
      const n = r.u32();
      const opts = r.u8();
      const relationIds: number[] = [];
      for (let i = 0; i < n; i++) relationIds.push(r.u32());
      return { type: 'truncate', xid, cascade: (opts & 1) !== 0, restartIdentity: (opts & 2) !== 0, relationIds };
    }
    case 0x4d: {
      // M
      const xid = inStream ? r.u32() : undefined;
      const flags = r.u8();
      const lsn = r.u64();
      const prefix = r.cstr();
      const len = r.u32();
      const content = buf.subarray(r.pos, r.pos + len);
      return { type: 'message', xid, transactional: (flags & 1) === 1, lsn, prefix, content };
    }
    case 0x53: // S
      return { type: 'stream_start', xid: r.u32(), firstSegment: r.u8() === 1 };
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
