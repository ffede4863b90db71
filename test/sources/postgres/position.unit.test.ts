/** The PostgreSQL source's checkpoint: exact round trips (key ranges of a resumed snapshot too), and coded refusals. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCheckpoint, encodeCheckpoint, type SourceCheckpoint } from '../../../src/sources/postgres/position.ts';

describe('postgres checkpoint', () => {
  it('round-trips, with the key ranges of a table whose snapshot was resumed', () => {
    const c: SourceCheckpoint = {
      phase: 'snapshot',
      consistentPoint: 0x16b3748n,
      lsn: 0x16b3748n,
      seq: 0,
      done: true,
      ack: 0x16b3748n,
      tables: {
        'public.a': { status: 'done', rows: 3, ranges: [{ to: null, at: 0x16b3748n }] },
        'public.b': { status: 'partial', rows: 7, ranges: [{ to: { key: { id: 9007199254740993n, t: 'é' }, raw: ['9007199254740993', 'é'] }, at: 0x16b3748n }] },
      },
    };
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint(c)), c);
    // Written before snapshots had ranges: one range at its skipBefore.
    const legacy = decodeCheckpoint(JSON.stringify({ v: 1, phase: 'stream', consistentPoint: '0/10', lsn: '0/10', seq: 0, done: true, ack: '0/10', tables: { 'public.a': { status: 'done', rows: 2, skipBefore: '0/20' } } }));
    assert.deepEqual(legacy.tables['public.a'], { status: 'done', rows: 2, ranges: [{ to: null, at: 0x20n }] });
  });

  it('refuses a checkpoint of another source, or a damaged one, with PG_CHECKPOINT', () => {
    assert.throws(() => decodeCheckpoint(JSON.stringify({ v: 1, source: 'mysql', phase: 'stream', file: 'f.000001', pos: 4 })), (e: any) => e.code === 'PG_CHECKPOINT' && /written by a mysql source.*its own log\.dir/.test(e.message));
    assert.throws(() => decodeCheckpoint('{"v":1,'), (e: any) => e.code === 'PG_CHECKPOINT' && /not JSON/.test(e.message));
    assert.throws(() => decodeCheckpoint('{"v":9}'), (e: any) => e.code === 'PG_CHECKPOINT' && /newer Sluice/.test(e.message));
  });
});
