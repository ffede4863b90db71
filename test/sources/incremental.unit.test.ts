/**
 * The parts of incremental snapshots that need no server: reading signal rows as Debezium writes
 * them, the checkpoint state's round trip, PostgreSQL snapshot visibility, and which rows of a
 * chunk a window drops.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeIncremental, encodeIncremental, IncrementalSnapshots, parseSignal, type Chunk } from '../../src/sources/common/incremental.ts';
import { snapshotVisibility } from '../../src/sources/postgres/incremental.ts';
import { createLogger } from '../../src/core/logger.ts';
import type { ChangeEvent } from '../../src/core/event.ts';
import type { EventSink } from '../../src/core/source.ts';
import type { KeyBound } from '../../src/sources/common/ranges.ts';

describe('incremental snapshots (no server)', () => {
  it('reads Debezium signal rows and says what is wrong with bad ones', () => {
    assert.deepEqual(parseSignal('execute-snapshot', '{"data-collections": ["public.orders", "items", "s.\\"Odd.Name\\""], "type": "incremental"}', 'public'), { kind: 'execute', tables: ['public.orders', 'public.items', 's."Odd.Name"'] });
    assert.deepEqual(parseSignal('stop-snapshot', '', 'public'), { kind: 'stop', tables: [] });
    assert.deepEqual(parseSignal('execute-snapshot', '{"data-collections": ["shop.`t`"]}', null, '`"'), { kind: 'execute', tables: ['shop.t'] });
    assert.match((parseSignal('log', '{}', 'public') as { error: string }).error, /unknown signal type "log"/);
    assert.match((parseSignal('execute-snapshot', '{nope', 'public') as { error: string }).error, /not JSON/);
    assert.match((parseSignal('execute-snapshot', '{"data-collections": []}', 'public') as { error: string }).error, /names no table/);
    assert.match((parseSignal('execute-snapshot', '{"data-collections": ["a"], "type": "blocking"}', 'public') as { error: string }).error, /only incremental/);
    assert.match((parseSignal('execute-snapshot', '{"data-collections": ["t"]}', null) as { error: string }).error, /write schema\.table/);
  });

  it('keeps its state through the checkpoint, bytes of binary keys included', () => {
    const s = { queue: ['public.b'], table: 'public.a', after: { key: { id: 7n, k: Buffer.from([0, 255]) }, raw: ['7', Buffer.from([0, 255])] }, rows: 12, done: [{ table: 'public.z', rows: 3, at: 'x done' }] };
    const back = decodeIncremental(JSON.parse(JSON.stringify(encodeIncremental(s))));
    assert.deepEqual(back, s);
    assert.equal(encodeIncremental({ queue: [], table: null, after: null, rows: 0, done: [] }), undefined, 'nothing to say: the checkpoint stays as before');
    assert.equal(decodeIncremental(undefined), undefined);
  });

  it('tells which transactions a PostgreSQL snapshot sees, across the 32-bit wrap', () => {
    const v = snapshotVisibility('100:105:101,103');
    assert.deepEqual([99, 100, 101, 102, 103, 104, 105, 106].map(v), [true, true, false, true, false, true, false, false]);
    // xid8 values past 2^32: pgoutput's xids are their low 32 bits.
    const w = snapshotVisibility(`${2 ** 32 + 10}:${2 ** 32 + 12}:${2 ** 32 + 11}`);
    assert.deepEqual([9, 10, 11, 12].map(w), [true, true, false, false]);
    const wrap = snapshotVisibility(`${2 ** 32 - 2}:${2 ** 32 + 1}:`);
    assert.deepEqual([2 ** 32 - 3, 2 ** 32 - 1, 0, 1, 2].map(wrap), [true, true, true, false, false]);
  });

  it('drops the chunk rows whose keys changed in the window, and reads a chunk again after a truncate or an unseen transaction', async () => {
    const appended: ChangeEvent[] = [];
    const sink = { append: (e: ChangeEvent) => appended.push(e), declareTopic: async () => {} } as unknown as EventSink;
    const row = (id: number): Chunk['rows'][number] => ({ ev: { topic: 't', key: { id }, before: null, after: { id }, op: 'r' } as unknown as ChangeEvent, bound: { key: { id }, raw: [String(id)] } });
    let reads = 0;
    let visible = (_x: number) => true;
    const reader = {
      async read(): Promise<Chunk> {
        reads++;
        return { rows: [1, 2, 3, 4, 5].map(row), last: false, compare: (a, b) => Number(a.id) - Number(b.id), estimatedRows: 10, visible: (x) => visible(x) };
      },
    };
    const state = { queue: [], table: null, after: null, rows: 0, done: [] };
    const inc = new IncrementalSnapshots(state, { reader, chunkSize: 5, sink, log: createLogger({ level: 'error' }), wake: () => {} });
    inc.request(['public.t'], 'test');
    inc.tick();
    inc.observe('public.t', { id: 2 });
    inc.observe('public.other', { id: 3 });
    inc.observe('public.t', { id: 5 });
    await new Promise((r) => setImmediate(r));
    assert.equal(inc.flush(() => false), false, 'not before the stream passed the snapshot');
    assert.equal(inc.flush(() => true), true);
    assert.deepEqual(appended.map((e) => e.key!.id), [1, 3, 4], 'keys 2 and 5 changed in the window: the stream has them');
    assert.deepEqual(state.after, { key: { id: 5 }, raw: ['5'] }, 'the range ends at the chunk\'s last key, dropped or not');
    assert.equal(state.rows, 3);

    // The next window opened at once; a truncate in it discards its chunk.
    assert.equal(reads, 2);
    inc.invalidate('public.t', 'it was truncated');
    await new Promise((r) => setImmediate(r));
    assert.equal(inc.flush(() => true), true);
    assert.equal(appended.length, 3, 'nothing appended from a discarded chunk');
    assert.equal(reads, 3, 'read again');

    // A transaction streamed just before the window that the read's snapshot does not see.
    inc.committed(42);
    await new Promise((r) => setImmediate(r));
    inc.flush(() => true); // the chunk read before 42 was streamed is fine
    assert.equal(appended.length, 8);
    visible = (x) => x !== 42;
    await new Promise((r) => setImmediate(r));
    inc.flush(() => true);
    assert.equal(appended.length, 8, 'a chunk whose snapshot misses transaction 42 is not appended');
  });

  it('reads the next chunk while one waits for the stream, appends them in key order, and drops both when the first is discarded', async () => {
    const appended: number[] = [];
    const sink = { append: (e: ChangeEvent) => appended.push(Number(e.key!.id)), declareTopic: async () => {} } as unknown as EventSink;
    const reads: (number | null)[] = [];
    const reader = {
      async read(_t: string, after: KeyBound | null): Promise<Chunk> {
        const from = after ? Number(after.key.id) : 0;
        reads.push(after ? from : null);
        const ids = [1, 2, 3].map((n) => from + n).filter((id) => id <= 8);
        return { rows: ids.map((id) => ({ ev: { topic: 't', key: { id }, op: 'r' } as unknown as ChangeEvent, bound: { key: { id }, raw: [String(id)] } })), last: ids.length < 3, compare: (a, b) => Number(a.id) - Number(b.id), estimatedRows: 8 };
      },
    };
    const state = { queue: ['public.t'], table: null, after: null, rows: 0, done: [] as { table: string; rows: number; at: string }[] };
    const inc = new IncrementalSnapshots(state, { reader, chunkSize: 3, sink, log: createLogger({ level: 'error' }), wake: () => {} });
    const settle = () => new Promise((r) => setImmediate(r));
    inc.tick();
    await settle();
    inc.tick(); // the first chunk is in: the second is read while it waits
    assert.deepEqual(reads, [null, 3]);
    inc.observe('public.t', { id: 2 }); // in both windows: dropped from the first chunk
    inc.observe('public.t', { id: 5 }); // dropped from the second
    await settle();
    assert.equal(inc.flush(() => true), true);
    assert.equal(inc.flush(() => true), true);
    assert.deepEqual(appended, [1, 3, 4, 6]);
    assert.deepEqual(state.after, { key: { id: 6 }, raw: ['6'] });
    assert.deepEqual(reads, [null, 3, 6], 'the third read opened as the second chunk went to the log');
    // A truncate while the third chunk is read: it is read again from the last key in the log.
    inc.invalidate('public.t', 'it was truncated');
    await settle();
    inc.flush(() => true);
    assert.deepEqual(reads, [null, 3, 6, 6]);
    await settle();
    inc.flush(() => true);
    assert.deepEqual(appended, [1, 3, 4, 6, 7, 8]);
    assert.equal(state.table, null);
    assert.equal(state.done.at(-1)!.table, 'public.t');
  });
});
