/**
 * The MySQL source's resume point: GTID sets in MariaDB's and MySQL's forms grow transaction by
 * transaction into the set the server is asked to resume after, binlog positions order across
 * files, and a checkpoint written by another source type is refused with what to do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { comparePos, decodeCheckpoint, encodeCheckpoint, GtidSet } from '../../../src/sources/mysql/position.ts';

describe('mysql positions', () => {
  it('MariaDB GTID sets keep the last GTID per replication domain', () => {
    const s = new GtidSet('0-1-41, 2-5-7');
    s.add('0-1-42');
    s.add('1-3-1');
    s.add('0-2-43'); // a failover: same domain, another server, the sequence goes on
    assert.equal(s.toString(), '0-2-43,1-3-1,2-5-7');
    assert.equal(new GtidSet('').empty, true);
  });

  it('MySQL GTID sets merge consecutive transactions into intervals per server uuid', () => {
    const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const b = '4a11fa47-71ca-11e1-9e33-c80aa9429562';
    const s = new GtidSet(`${a.toUpperCase()}:1-5:7`);
    s.add(`${a}:8`);
    s.add(`${a}:9`);
    s.add(`${a}:6`); // fills the hole: the intervals merge
    s.add(`${b}:1`);
    s.add(`${a}:3`); // already executed: no change
    assert.equal(s.toString(), `${a}:1-9,${b}:1`);
  });

  it('orders positions by file number, then offset', () => {
    assert.ok(comparePos({ file: 'mariadb-bin.000009', pos: 900 }, { file: 'mariadb-bin.000010', pos: 4 }) < 0);
    assert.ok(comparePos({ file: 'mariadb-bin.000010', pos: 500 }, { file: 'mariadb-bin.000010', pos: 400 }) > 0);
    assert.equal(comparePos({ file: 'b.000001', pos: 4 }, { file: 'b.000001', pos: 4 }), 0);
  });

  it('round-trips a checkpoint and refuses one written by a PostgreSQL source', () => {
    const c = {
      phase: 'stream' as const,
      file: 'mariadb-bin.000003',
      pos: 1234,
      gtid: '0-1-9',
      skip: 17,
      tables: {
        'b.t': { status: 'done' as const, rows: 5, ranges: [{ to: null, at: { file: 'mariadb-bin.000003', pos: 999 } }] },
        // A table read in two parts: keys (binary and a BIGINT UNSIGNED past 2^63) survive exactly.
        'b.u': {
          status: 'partial' as const,
          rows: 3,
          ranges: [{ to: { key: { k: Buffer.from([0, 255]), n: 18446744073709551615n }, raw: [Buffer.from([0, 255]), '18446744073709551615'] }, at: { file: 'mariadb-bin.000002', pos: 4 } }],
        },
      },
    };
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint(c)), c);
    // A checkpoint written before tables were read in ranges: one range at its skipBefore.
    const legacy = decodeCheckpoint(JSON.stringify({ v: 1, source: 'mysql', phase: 'stream', file: 'f.000001', pos: 4, gtid: '', skip: 0, tables: { 'b.t': { rows: 5, skipBefore: { file: 'f.000001', pos: 99 } } } }));
    assert.deepEqual(legacy.tables['b.t'], { status: 'done', rows: 5, ranges: [{ to: null, at: { file: 'f.000001', pos: 99 } }] });
    assert.throws(() => decodeCheckpoint(JSON.stringify({ v: 1, phase: 'stream', lsn: '0/16B3748' })), (e: any) => e.code === 'MYSQL_CHECKPOINT' && /written by a postgres source.*its own log\.dir/.test(e.message));
  });
});
