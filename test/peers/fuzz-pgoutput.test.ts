/**
 * Fuzzing the pgoutput decoder with real messages: PostgreSQL's own pgoutput output (read through
 * pg_logical_slot_peek_binary_changes for protocol 1 and 2, text and binary tuples, streamed
 * transactions with a subtransaction abort, logical messages, a truncate, a replica origin and a
 * custom type), each mutated byte by byte, truncated at every length and extended. For every
 * variant the decoder either raises PG_PROTOCOL or returns a message that, encoded again by this
 * test's own encoder (written from the protocol documentation, not from the decoder), gives back
 * exactly the bytes it was given: it never throws a TypeError/RangeError, never hangs, never reads
 * past the message and never returns a message that is not what the bytes say.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SluiceError } from '../../src/core/errors.ts';
import { decodeMessage } from '../../src/sources/postgres/pgoutput/decoder.ts';
import type { PgOutputMessage, TupleData } from '../../src/sources/postgres/pgoutput/messages.ts';
import { useDatabase } from '../helpers/pipeline.ts';

/** Encodes a decoded message back into pgoutput's wire form (Logical Replication Message Formats). */
function encode(m: PgOutputMessage, inStream: boolean): Buffer {
  const out: Buffer[] = [];
  const u8 = (v: number) => out.push(Buffer.from([v]));
  const i16 = (v: number) => {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    out.push(b);
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    out.push(b);
  };
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    out.push(b);
  };
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    out.push(b);
  };
  const i64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    out.push(b);
  };
  const str = (s: string) => out.push(Buffer.from(s, 'utf8'), Buffer.from([0]));
  const xid = (x: number | undefined) => {
    if (inStream) u32(x!);
    else assert.equal(x, undefined, 'an xid outside a stream');
  };
  const tuple = (t: TupleData) => {
    i16(t.n);
    for (let i = 0; i < t.n; i++) {
      const k = t.cols[3 * i];
      u8(k);
      if (k === 0x74 || k === 0x62) {
        i32(t.cols[3 * i + 2]);
        out.push(t.buf.subarray(t.cols[3 * i + 1], t.cols[3 * i + 1] + t.cols[3 * i + 2]));
      } else assert.ok(k === 0x6e || k === 0x75, `tuple kind ${k}`);
    }
  };
  switch (m.type) {
    case 'begin': u8(0x42); u64(m.finalLsn); i64(m.commitTime); u32(m.xid); break;
    case 'commit': u8(0x43); u8(m.flags); u64(m.commitLsn); u64(m.endLsn); i64(m.commitTime); break;
    case 'origin': u8(0x4f); u64(m.lsn); str(m.name); break;
    case 'relation':
      u8(0x52); xid(m.xid); u32(m.relationId);
      // pgoutput writes pg_catalog as the empty string.
      str(m.namespace === 'pg_catalog' ? '' : m.namespace); str(m.name); u8(m.replicaIdentity.charCodeAt(0)); i16(m.columns.length);
      for (const c of m.columns) { u8(c.key ? 1 : 0); str(c.name); u32(c.typeOid); i32(c.typeModifier); }
      break;
    case 'type': u8(0x59); xid(m.xid); u32(m.typeOid); str(m.namespace); str(m.name); break;
    case 'insert': u8(0x49); xid(m.xid); u32(m.relationId); u8(0x4e); tuple(m.newTuple); break;
    case 'update':
      u8(0x55); xid(m.xid); u32(m.relationId);
      if (m.oldKind) { u8(m.oldKind.charCodeAt(0)); tuple(m.oldTuple!); }
      u8(0x4e); tuple(m.newTuple);
      break;
    case 'delete': u8(0x44); xid(m.xid); u32(m.relationId); u8(m.oldKind.charCodeAt(0)); tuple(m.oldTuple); break;
    case 'truncate': u8(0x54); xid(m.xid); u32(m.relationIds.length); u8((m.cascade ? 1 : 0) | (m.restartIdentity ? 2 : 0)); for (const r of m.relationIds) u32(r); break;
    case 'message': u8(0x4d); xid(m.xid); u8(m.transactional ? 1 : 0); u64(m.lsn); str(m.prefix); u32(m.content.length); out.push(m.content); break;
    case 'stream_start': u8(0x53); u32(m.xid); u8(m.firstSegment ? 1 : 0); break;
    case 'stream_stop': u8(0x45); break;
    case 'stream_commit': u8(0x63); u32(m.xid); u8(m.flags); u64(m.commitLsn); u64(m.endLsn); i64(m.commitTime); break;
    case 'stream_abort': u8(0x41); u32(m.xid); u32(m.subxid); break;
  }
  return Buffer.concat(out);
}

/** The decoder's verdict on `b`: a coded error, or a faithful reading of exactly these bytes. */
function check(b: Buffer, inStream: boolean, what: string): 'ok' | 'refused' {
  let m: PgOutputMessage;
  try {
    m = decodeMessage(b, inStream);
  } catch (e) {
    if (e instanceof SluiceError && e.code === 'PG_PROTOCOL') return 'refused';
    throw new Error(`${what}: the decoder threw ${(e as Error).name}: ${(e as Error).message} (bytes ${b.toString('hex')})`, { cause: e });
  }
  const again = encode(m, inStream);
  if (!again.equals(b)) assert.fail(`${what}: decoded ${JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? String(v) : v))} from ${b.toString('hex')}, which encodes as ${again.toString('hex')}`);
  return 'ok';
}

interface Sample {
  bytes: Buffer;
  inStream: boolean;
  label: string;
}

describe('pgoutput decoder fuzzing', () => {
  const f = useDatabase(`
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE TABLE t (id int PRIMARY KEY, name text, n numeric(12,3), ts timestamptz, b bytea, m mood, arr int[], j jsonb, big text);
    CREATE TABLE nokey (a int, b text);
    ALTER TABLE nokey REPLICA IDENTITY FULL;
    CREATE PUBLICATION fz FOR ALL TABLES;
  `);

  async function samples(): Promise<Sample[]> {
    const q = (sql: string) => f.db.client.query(sql);
    await q(`SELECT pg_create_logical_replication_slot('fz_${f.db.name.slice(-6)}', 'pgoutput')`);
    await q(`INSERT INTO t VALUES (1, 'ä名', 12.5, '2024-01-02 03:04:05.678+00', '\\x00ff10', 'happy', '{1,2,NULL}', '{"a": [1, {"b": null}]}', NULL)`);
    await q(`INSERT INTO t VALUES (2, NULL, -0.001, 'infinity', '', 'sad', '{}', 'null', repeat('toast', 5000))`);
    await q(`UPDATE t SET name = 'x', n = n + 1 WHERE id = 1`);
    await q(`UPDATE t SET id = 3 WHERE id = 2`);
    await q(`UPDATE t SET name = 'only name' WHERE id = 3`);
    await q(`DELETE FROM t WHERE id = 1`);
    await q(`INSERT INTO nokey VALUES (1, 'a'), (NULL, NULL)`);
    await q(`UPDATE nokey SET b = 'z'`);
    await q(`DELETE FROM nokey WHERE a IS NULL`);
    await q(`SELECT pg_logical_emit_message(true, 'fz.tx', 'payload'), pg_logical_emit_message(false, 'fz.notx', '\\x0001ff'::bytea)`);
    await q(`TRUNCATE nokey, t RESTART IDENTITY CASCADE`);
    await q(`SELECT pg_replication_origin_create('fz_origin_${f.db.name.slice(-6)}')`);
    await q(`BEGIN; SELECT pg_replication_origin_session_setup('fz_origin_${f.db.name.slice(-6)}'); SELECT pg_replication_origin_xact_setup('0/1234', now()); INSERT INTO t (id, name) VALUES (10, 'from elsewhere'); COMMIT`);
    await q(`SELECT pg_replication_origin_session_reset()`);
    // A transaction big enough to be streamed (protocol 2), with a subtransaction rolled back.
    await q(`BEGIN; INSERT INTO t (id, name) SELECT g, repeat('s', 100) FROM generate_series(100, 2100) g; SAVEPOINT s1; INSERT INTO t (id, name) SELECT g, 'rolled back' FROM generate_series(5000, 7000) g; ROLLBACK TO s1; INSERT INTO t (id, name) VALUES (9000, 'after'); COMMIT`);
    const slot = `fz_${f.db.name.slice(-6)}`;
    const out: Sample[] = [];
    for (const [label, opts] of [
      ['proto 1 text', `'proto_version', '1', 'publication_names', 'fz', 'messages', 'true'`],
      ['proto 1 binary', `'proto_version', '1', 'publication_names', 'fz', 'messages', 'true', 'binary', 'true'`],
      ['proto 2 streaming', `'proto_version', '2', 'publication_names', 'fz', 'messages', 'true', 'streaming', 'on'`],
    ] as const) {
      await q(`SET logical_decoding_work_mem = '64kB'`);
      const r = await q(`SELECT data FROM pg_logical_slot_peek_binary_changes('${slot}', NULL, NULL, ${opts})`);
      let inStream = false;
      for (const row of r.rows as { data: Buffer }[]) {
        const b: Buffer = row.data;
        if (b[0] === 0x53) inStream = true;
        out.push({ bytes: b, inStream: inStream && b[0] !== 0x53 && b[0] !== 0x45 && b[0] !== 0x63 && b[0] !== 0x41, label });
        if (b[0] === 0x45) inStream = false;
      }
    }
    await q(`SELECT pg_drop_replication_slot('${slot}')`);
    await q(`SELECT pg_replication_origin_drop('fz_origin_${f.db.name.slice(-6)}')`);
    return out;
  }

  it('every mutated, truncated or extended message is PG_PROTOCOL or decoded exactly as its bytes say', { timeout: 300_000 }, async () => {
    const all = await samples();
    // Every kind of message, in and out of a stream; long runs of similar rows are sampled.
    const kinds = new Map<string, number>();
    const chosen: Sample[] = [];
    for (const s of all) {
      const k = `${s.label}/${String.fromCharCode(s.bytes[0])}/${s.inStream}`;
      const n = kinds.get(k) ?? 0;
      kinds.set(k, n + 1);
      if (n < 6) chosen.push(s);
    }
    const tags = new Set(chosen.map((s) => String.fromCharCode(s.bytes[0])));
    for (const t of ['B', 'C', 'R', 'Y', 'I', 'U', 'D', 'T', 'M', 'O', 'S', 'E', 'c', 'A']) assert.ok(tags.has(t), `no '${t}' message among the samples: ${[...tags].join('')}`);
    assert.ok(chosen.some((s) => s.inStream && s.bytes[0] === 0x49), 'an insert inside a stream');
    assert.ok(chosen.some((s) => s.label === 'proto 1 binary' && s.bytes.includes(0x62)), 'binary tuples');
    let refused = 0;
    let accepted = 0;
    const tally = (v: 'ok' | 'refused') => (v === 'ok' ? accepted++ : refused++);
    for (const s of chosen) {
      const b = s.bytes;
      assert.equal(check(b, s.inStream, `${s.label} original`), 'ok', 'an unchanged message decodes');
      for (let i = 0; i < b.length; i++) {
        for (const v of [b[i] ^ 0x01, b[i] ^ 0x80, 0x00, 0xff, 0x7f]) {
          if (v === b[i]) continue;
          const m = Buffer.from(b);
          m[i] = v;
          tally(check(m, s.inStream, `${s.label}: byte ${i} of ${b.length} set to ${v}`));
        }
      }
      for (let n = 0; n < b.length; n++) tally(check(b.subarray(0, n), s.inStream, `${s.label}: cut to ${n} of ${b.length} bytes`));
      for (const extra of [Buffer.from([0]), Buffer.from([0x4e]), Buffer.from('x'), b]) tally(check(Buffer.concat([b, extra]), s.inStream, `${s.label}: extended by ${extra.length} bytes`));
      // The wrong stream context: an xid where there is none, or none where there is one.
      tally(check(b, !s.inStream, `${s.label}: read ${s.inStream ? 'outside' : 'inside'} a stream`));
    }
    assert.ok(refused > 1000 && accepted > 1000, `${refused} refused, ${accepted} accepted`);
  });
});
