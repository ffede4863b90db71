/**
 * Fuzzing the binlog decoder with real events: MariaDB's own binlog (read with the binlog client's
 * nextRaw) for a table of many types: table maps, writes, updates, deletes, a DDL query, GTID and
 * XID events, the FORMAT_DESCRIPTION and ROTATE the dump starts with. Each event is mutated byte by
 * byte, truncated at every length and extended.
 *
 * - As the server sent them (CRC32 checksums): every variant is refused, MYSQL_BINLOG_CORRUPT (or
 *   MYSQL_CONNECTION_LOST when the length no longer matches the event-size field, which a
 *   reconnect reads again); nothing changed is ever decoded into a row.
 * - Without checksums (the events rewritten as a server with binlog_checksum=NONE writes them,
 *   where a changed byte inside a value can only give another value of its column): the decoder
 *   raises coded MYSQL_* errors, never a TypeError/RangeError, never hangs, and what it returns is
 *   well-formed: every row has every column, each value null or of the column's JavaScript type,
 *   numbers finite, decimals within their precision, temporal values within their ranges.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from '../../src/core/crc32.ts';
import { SluiceError } from '../../src/core/errors.ts';
import { BinlogClient } from '../../src/sources/mysql/binlog/client.ts';
import { BinlogDecoder } from '../../src/sources/mysql/binlog/decoder.ts';
import type { BinlogEvent } from '../../src/sources/mysql/binlog/types.ts';
import { mysqlAdmin, useMysqlDatabase } from '../helpers/mysql.ts';
import { MYSQL_HOST, MYSQL_PORT, MYSQL_USER } from '../helpers/targets.ts';

const TABLE = `CREATE TABLE t (
  id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, bi BIGINT, bu BIGINT UNSIGNED,
  fl FLOAT, db DOUBLE, de DECIMAL(15,2), dz DECIMAL(30,10),
  d DATE, dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME(2), y YEAR,
  c CHAR(5), vc VARCHAR(300), l1 VARCHAR(10) CHARACTER SET latin1, bn BINARY(4), vb VARBINARY(8), tx TEXT, bl BLOB,
  en ENUM('a','b','c'), st SET('x','y','z'), bt BIT(12), js JSON, g POINT
) CHARACTER SET utf8mb4`;

type Raw = { bytes: Buffer; kind: string };
const HEADER = 19;

function errorOf(f: () => unknown): SluiceError | null {
  try {
    f();
    return null;
  } catch (e) {
    if (e instanceof SluiceError && /^MYSQL_/.test(e.code)) return e;
    throw e;
  }
}

/** The event as a server with binlog_checksum=NONE writes it: no trailing CRC (the FORMAT_DESCRIPTION keeps its own, with algorithm 0). */
function withoutChecksum(b: Buffer): Buffer {
  if (b[4] === 15) {
    const out = Buffer.from(b);
    out[out.length - 5] = 0;
    out.writeUInt32LE(crc32(out, 0, out.length - 4) >>> 0, out.length - 4);
    return out;
  }
  const out = Buffer.from(b.subarray(0, b.length - 4));
  out.writeUInt32LE(out.length, 9);
  return out;
}

/** Checks a decoded event against the undamaged one: rows well-formed, values of their columns' types. */
function checkWellFormed(ev: BinlogEvent | null, orig: BinlogEvent | null, what: string): void {
  if (!ev || ev.type !== 'rows') return;
  assert.ok(orig && orig.type === 'rows', `${what}: a rows event decoded from a non-rows event`);
  const n = ev.map.columns.length;
  const kinds = new Map<number, Set<string>>();
  // A DATETIME(6) past 2255 is a bigint where an earlier one is a number: both are numbers here.
  const kindOf = (v: unknown) => (v === null ? 'null' : Buffer.isBuffer(v) ? 'buffer' : typeof v === 'bigint' ? 'number' : typeof v);
  for (const r of orig.rows) for (const img of [r.before, r.after]) img?.forEach((v, i) => (kinds.get(i) ?? kinds.set(i, new Set()).get(i)!).add(kindOf(v)));
  for (const r of ev.rows) {
    for (const img of [r.before, r.after]) {
      if (!img) continue;
      assert.equal(img.length, n, `${what}: a row image of ${img.length} values for ${n} columns`);
      img.forEach((v, i) => {
        const col = ev.map.columns[i];
        assert.notEqual(v, undefined, `${what}: column ${col.name} undefined`);
        if (v === null) return;
        const k = kindOf(v);
        const seen = kinds.get(i);
        if (seen && !seen.has(k) && !(seen.size === 1 && seen.has('null'))) assert.fail(`${what}: column ${col.name} is a ${k}, it was ${[...seen].join('/')}`);
        if (typeof v === 'number') assert.ok(Number.isFinite(v), `${what}: column ${col.name} = ${v}`);
        if (col.name === 'de') assert.match(String(v), /^-?\d{1,13}\.\d{2}$/, `${what}: de = ${v}`);
        if (col.name === 'dz') assert.match(String(v), /^-?\d{1,20}\.\d{10}$/, `${what}: dz = ${v}`);
        if (col.name === 'ts') assert.match(String(v), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${what}: ts = ${v}`);
        if (col.name === 'tm') assert.ok(Math.abs(Number(v)) <= 838 * 3600e6 + 59 * 60e6 + 59e6 + 999999, `${what}: tm = ${v}`);
        if (col.name === 'en') assert.ok(['', 'a', 'b', 'c'].includes(String(v)), `${what}: en = ${v}`);
        if (col.name === 'st') assert.match(String(v), /^(x|y|z)?(,(y|z))?(,z)?$/, `${what}: st = ${v}`);
      });
    }
  }
}

describe('binlog decoder fuzzing', () => {
  const m = useMysqlDatabase(TABLE);

  async function capture(): Promise<{ events: Raw[]; file: string }> {
    const admin = await mysqlAdmin();
    const [[status]] = (await admin.query('SHOW MASTER STATUS')) as unknown as [{ File: string; Position: number }[]];
    await m.q(`INSERT INTO t VALUES
      (1, -128, 255, -32768, 8388607, -9223372036854775808, 18446744073709551615, 3.5, -2.25e-300, -1234567890123.45, 12345678901234567890.0123456789,
       '2024-02-29', '9999-12-31 23:59:59', '2000-01-01 00:00:00.000001', '2038-01-19 03:14:07.999', '-838:59:59.99', 2155,
       'ab', REPEAT('é', 300), 'Ü', 'x', 'yz', 'text ✓', 'blob', 'b', 'x,z', b'101010101010', '{"a": [1, 2.5, "s", null, true]}', POINT(1, 2)),
      (2, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, '0000-00-00', '0000-00-00 00:00:00', NULL, NULL, '00:00:00', 0, '', '', '', '', '', '', '', 'a', '', b'0', 'null', NULL)`);
    await m.q(`UPDATE t SET vc = 'short', de = 0.01, en = 'c', st = 'y' WHERE id = 1`);
    await m.q(`DELETE FROM t WHERE id = 2`);
    await m.q(`ALTER TABLE t ADD COLUMN extra INT`);
    await m.q(`INSERT INTO t (id, extra) VALUES (3, 7)`);
    const [[end]] = (await admin.query('SHOW MASTER STATUS')) as unknown as [{ File: string; Position: number }[]];
    await admin.end();
    const client = await BinlogClient.connect({ host: MYSQL_HOST, port: MYSQL_PORT, user: MYSQL_USER, serverId: 200_000 + Math.floor(Math.random() * 1e6), start: { file: status.File, pos: status.Position } });
    const events: Raw[] = [];
    const probe = new BinlogDecoder({ checksum: true });
    try {
      let mine = false;
      for (;;) {
        const b = await client.nextRaw();
        if (!b) break;
        const ev = probe.decode(Buffer.from(b));
        const nextPos = b.readUInt32LE(13);
        // Our database's table maps and rows (other tests write to the same binlog), our DDL,
        // and the events every stream has.
        if (ev?.type === 'tablemap') mine = ev.map.database === m.name;
        const kind = ev?.type === 'rows' ? `rows/${ev.kind}` : (ev?.type ?? `type${b[4]}`);
        if (ev?.type === 'format' || ev?.type === 'rotate' || (mine && (ev?.type === 'tablemap' || ev?.type === 'rows')) || (ev?.type === 'query' && ev.database === m.name) || ev?.type === 'gtid' || ev?.type === 'xid') events.push({ bytes: Buffer.from(b), kind });
        if (probe.file === end.File && nextPos >= end.Position) break;
      }
    } finally {
      await client.close();
    }
    return { events, file: status.File };
  }

  it('with checksums every damaged event is refused; without, every variant is a coded error or well-formed rows', { timeout: 600_000 }, async () => {
    const { events, file } = await capture();
    const kinds = new Set(events.map((e) => e.kind));
    for (const k of ['format', 'rotate', 'tablemap', 'rows/write', 'rows/update', 'rows/delete', 'query', 'gtid', 'xid']) assert.ok(kinds.has(k), `no ${k} event captured: ${[...kinds]}`);
    const format = events.find((e) => e.kind === 'format')!.bytes;
    // Each sample with the table map its rows need (the last one before it).
    const samples: { ev: Raw; map: Buffer | null }[] = [];
    const perKind = new Map<string, number>();
    let map: Buffer | null = null;
    for (const e of events) {
      if (e.kind === 'tablemap') map = e.bytes;
      const n = perKind.get(e.kind) ?? 0;
      perKind.set(e.kind, n + 1);
      if (n < 4) samples.push({ ev: e, map: e.kind.startsWith('rows') ? map : null });
    }
    let refused = 0;
    let decoded = 0;
    for (const checksums of [true, false]) {
      const fmt = checksums ? format : withoutChecksum(format);
      const prepared = (s: { map: Buffer | null }) => {
        const d = new BinlogDecoder({ checksum: checksums, mariadb: true, file });
        d.decode(fmt);
        if (s.map) d.decode(checksums ? s.map : withoutChecksum(s.map));
        return d;
      };
      for (const s of samples) {
        const b = checksums ? s.ev.bytes : withoutChecksum(s.ev.bytes);
        const orig = prepared(s).decode(b);
        const variants: [string, Buffer][] = [];
        for (let i = 0; i < b.length; i++) {
          for (const v of [b[i] ^ 0x01, b[i] ^ 0x80, 0x00, 0xff]) {
            if (v === b[i]) continue;
            const x = Buffer.from(b);
            x[i] = v;
            variants.push([`byte ${i} of ${b.length} set to ${v}`, x]);
          }
        }
        for (let n = 0; n < b.length; n++) variants.push([`cut to ${n} bytes`, b.subarray(0, n)]);
        for (const extra of [Buffer.from([0]), Buffer.alloc(9), b]) {
          const x = Buffer.concat([b, extra]);
          variants.push([`extended by ${extra.length} bytes`, x]);
          // Extended with the size field saying so (and, with checksums, a matching CRC at the new end).
          const y = Buffer.from(x);
          y.writeUInt32LE(y.length, 9);
          if (checksums) y.writeUInt32LE(crc32(y, 0, y.length - 4) >>> 0, y.length - 4);
          variants.push([`extended by ${extra.length} bytes, its size and checksum rewritten`, y]);
        }
        for (const [how, x] of variants) {
          const what = `${s.ev.kind} ${checksums ? 'with' : 'without'} checksums: ${how}`;
          let ev: BinlogEvent | null = null;
          const err = errorOf(() => (ev = prepared(s).decode(x)));
          if (err) {
            refused++;
            if (checksums && !/rewritten/.test(how)) {
              const sizeField = how.startsWith('byte ') && [9, 10, 11, 12].includes(Number(/byte (\d+)/.exec(how)![1]));
              const resized = how.startsWith('cut') || how.startsWith('extended');
              assert.equal(err.code, sizeField || (resized && x.length >= HEADER) ? 'MYSQL_CONNECTION_LOST' : 'MYSQL_BINLOG_CORRUPT', `${what}: ${err.code} ${err.message}`);
            }
            continue;
          }
          decoded++;
          if (checksums && !/rewritten/.test(how)) assert.fail(`${what}: a damaged event was accepted as ${JSON.stringify(ev, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 300)}`);
          checkWellFormed(ev, orig, what);
        }
      }
    }
    assert.ok(refused > 10_000, `${refused} refused, ${decoded} decoded`);
    assert.ok(decoded > 100, `${refused} refused, ${decoded} decoded: the checks without checksums reached the decoder`);
  });
});
