/**
 * The embedded log: round trips, atomic commits, torn-tail recovery, a real kill -9 of a writer,
 * consumer groups, retention, read-only readers, locking.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, openSync, readdirSync, statSync, ftruncateSync, closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/embedded/index.ts';
import { partitionFor } from '../../src/log/partitioner.ts';
import type { StoredRecord } from '../../src/log/types.ts';
import { tempDir } from '../helpers/pipeline.ts';

const rec = (key: string | null, value: string | null, headers?: Record<string, string>) => ({ key: key === null ? null : Buffer.from(key), value: value === null ? null : Buffer.from(value), timestamp: 1700000000000, headers });

async function readAllOf(log: Awaited<ReturnType<typeof openEmbeddedLog>>, topic: string): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (const p of await log.offsets(topic)) {
    let off = p.start;
    while (off < p.end) {
      const { records: r } = await log.read(topic, p.partition, off, 64 * 1024);
      out.push(...r);
      off = r[r.length - 1].offset + 1;
    }
  }
  return out;
}

describe('embedded log', () => {
  it('round-trips records across segments, keeps key order per partition, and replays from any offset', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir, segmentBytes: 4096 });
    await log.createTopic('t', { partitions: 4 });
    const { producer, checkpoint } = await log.openProducer('p');
    assert.equal(checkpoint, null);
    const big = 'v'.repeat(1 << 20);
    producer.append('t', rec(null, null));
    producer.append('t', rec('k', big, { h: '1' }));
    for (let i = 0; i < 2000; i++) producer.append('t', rec(`key${i % 10}`, `value${i}`));
    await producer.commit('c1');
    const all = await readAllOf(log, 't');
    assert.equal(all.length, 2002);
    const withBig = all.find((r) => r.key?.toString() === 'k')!;
    assert.equal(withBig.value!.length, 1 << 20);
    assert.deepEqual(withBig.headers, { h: '1' });
    const nulls = all.find((r) => r.key === null)!;
    assert.equal(nulls.value, null);
    assert.equal(nulls.partition, 0);
    for (let k = 0; k < 10; k++) {
      const mine = all.filter((r) => r.key?.toString() === `key${k}`);
      assert.equal(new Set(mine.map((r) => r.partition)).size, 1, 'one partition per key');
      assert.equal(mine[0].partition, partitionFor(Buffer.from(`key${k}`), 4));
      assert.deepEqual(mine.map((r) => Number(r.value!.toString().slice(5))), mine.map((_, j) => k + 10 * j), 'append order per key');
    }
    const p = all.find((r) => r.key?.toString() === 'key3')!.partition;
    assert.ok(readdirSync(join(t.dir, 'topics', 't', String(p))).filter((f) => f.endsWith('.seg')).length > 3, 'several segments');
    const { records: from } = await log.read('t', p, 123, 100);
    assert.equal(from[0].offset, 123);
    await log.close();
    t.remove();
  });

  it('makes a commit visible atomically, and drops uncommitted records on reopen', async () => {
    const t = tempDir();
    let log = await openEmbeddedLog({ dir: t.dir });
    await log.createTopic('a', { partitions: 2 });
    await log.createTopic('b', { partitions: 1 });
    let { producer } = await log.openProducer('p');
    producer.append('a', rec('1', 'one'));
    producer.append('b', rec('2', 'two'));
    await producer.commit('ckpt-1');
    producer.append('a', rec('3', 'three'));
    producer.append('b', rec('4', 'four'));
    assert.equal((await readAllOf(log, 'a')).length + (await readAllOf(log, 'b')).length, 2, 'uncommitted records are invisible');
    // Simulate a crash: the process goes away without commit (records already flushed to disk).
    log.simulateCrash();
    log = await openEmbeddedLog({ dir: t.dir });
    ({ producer } = await log.openProducer('p').then((x) => ({ producer: x.producer, c: x.checkpoint })));
    assert.equal((await log.openProducer('q')).checkpoint, null);
    assert.deepEqual((await readAllOf(log, 'a')).map((r) => r.value!.toString()), ['one']);
    assert.deepEqual((await readAllOf(log, 'b')).map((r) => r.value!.toString()), ['two']);
    producer.append('b', rec('5', 'five'));
    await producer.commit('ckpt-2');
    assert.deepEqual((await readAllOf(log, 'b')).map((r) => [r.offset, r.value!.toString()]), [[0, 'two'], [1, 'five']]);
    await log.close();
    const again = await openEmbeddedLog({ dir: t.dir });
    assert.equal((await again.openProducer('p')).checkpoint, 'ckpt-2');
    await again.close();
    t.remove();
  });

  it('keeps appending while a commit is in flight: the next commit holds exactly the later records', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir });
    await log.createTopic('t', { partitions: 2 });
    const { producer } = await log.openProducer('p');
    producer.append('t', rec('a', 'first'), 0);
    const inflight = producer.commit('one');
    producer.append('t', rec('a', 'second'), 0);
    producer.append('t', rec('b', 'third'), 1);
    assert.equal(producer.pendingRecords, 2);
    await inflight;
    assert.deepEqual((await readAllOf(log, 't')).map((r) => r.value!.toString()), ['first']);
    await producer.commit('two');
    assert.deepEqual((await readAllOf(log, 't')).map((r) => r.value!.toString()).sort(), ['first', 'second', 'third']);
    await log.close();
    const again = await openEmbeddedLog({ dir: t.dir });
    assert.equal((await again.openProducer('p')).checkpoint, 'two');
    assert.equal((await readAllOf(again, 't')).length, 3);
    await again.close();
    t.remove();
  });

  it('recovers from a torn segment tail and a torn journal record', async () => {
    const t = tempDir();
    let log = await openEmbeddedLog({ dir: t.dir });
    await log.createTopic('t', { partitions: 1 });
    const { producer } = await log.openProducer('p');
    for (let i = 0; i < 10; i++) producer.append('t', rec(null, `r${i}`));
    await producer.commit('ten');
    await log.close();
    const seg = join(t.dir, 'topics', 't', '0', readdirSync(join(t.dir, 'topics', 't', '0'))[0]);
    const good = statSync(seg).size;
    appendFileSync(seg, Buffer.from('SLB1garbage-half-written-batch'));
    appendFileSync(join(t.dir, 'commits.journal'), Buffer.from([0, 0, 1, 0, 1, 2, 3]));
    log = await openEmbeddedLog({ dir: t.dir });
    assert.equal(statSync(seg).size, good, 'torn tail truncated');
    assert.equal((await log.openProducer('p')).checkpoint, 'ten');
    assert.deepEqual((await readAllOf(log, 't')).map((r) => r.value!.toString()), Array.from({ length: 10 }, (_, i) => `r${i}`));
    await log.close();
    // A corrupt byte inside committed data is reported, not returned.
    const fd = openSync(seg, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, 40);
    closeSync(fd);
    log = await openEmbeddedLog({ dir: t.dir });
    await assert.rejects(log.read('t', 0, 0), /checksum mismatch/);
    await log.close();
    // Truncated below the committed end: the journal says more was committed than is there.
    const fd2 = openSync(seg, 'r+');
    ftruncateSync(fd2, 100);
    closeSync(fd2);
    await assert.rejects(openEmbeddedLog({ dir: t.dir }), (e: Error & { code?: string }) => e.code === 'LOG_CORRUPT' && /journal says \d+ were committed/.test(e.message));
    t.remove();
  });

  it(`kill -9 of a writer at random points loses no committed record and leaves no duplicate`, async () => {
    const t = tempDir();
    let lastPrinted = 0;
    for (let cycle = 0; cycle < 10; cycle++) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/log/fixtures/writer.ts', t.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      await new Promise((r) => setTimeout(r, 400 + Math.random() * 600));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const printed = out.trim().split('\n').filter(Boolean).map(Number);
      if (printed.length) lastPrinted = printed[printed.length - 1];
      const log = await openEmbeddedLog({ dir: t.dir });
      const ckpt = Number((await log.openProducer('writer')).checkpoint ?? 0);
      assert.ok(ckpt >= lastPrinted, `cycle ${cycle}: checkpoint ${ckpt} behind a commit the writer reported durable (${lastPrinted})`);
      const ns = (await readAllOf(log, 'numbers')).map((r) => JSON.parse(r.value!.toString()).n).sort((a, b) => a - b);
      assert.equal(ns.length, ckpt, `cycle ${cycle}: ${ns.length} records for checkpoint ${ckpt}`);
      for (let i = 0; i < ns.length; i++) assert.equal(ns[i], i, `cycle ${cycle}: record ${i} missing or duplicated`);
      await log.close();
    }
    assert.ok(lastPrinted > 0);
    t.remove();
  });

  it('keeps consumer group offsets, applies retention, and refuses a second writer', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir, segmentBytes: 1024, retentionCheckMs: 0 });
    await log.createTopic('r', { partitions: 1, retentionBytes: 4096 });
    const { producer } = await log.openProducer('p');
    for (let i = 0; i < 200; i++) producer.append('r', rec(null, `value-${i}-${'x'.repeat(50)}`));
    await producer.commit('x');
    await log.commitOffsets('g1', [{ topic: 'r', partition: 0, offset: 150 }]);
    await log.enforceRetention();
    const [o] = await log.offsets('r');
    assert.ok(o.start > 0, 'old segments removed');
    assert.equal(o.end, 200);
    await assert.rejects(log.read('r', 0, 0), (e: Error & { code?: string }) => e.code === 'LOG_OFFSET_OUT_OF_RANGE' && e.message.includes(`earliest available offset is ${o.start}`));
    assert.equal((await log.read('r', 0, 199)).records[0].value!.toString().startsWith('value-199'), true);
    await assert.rejects(openEmbeddedLog({ dir: t.dir }), /open for writing by process/);
    const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
    assert.equal((await reader.committedOffsets('g1', 'r')).get(0), 150);
    // A reader in "another process" sees new commits, never uncommitted records.
    producer.append('r', rec(null, 'late'));
    assert.equal((await reader.offsets('r'))[0].end, 200);
    const waiting = reader.waitFor('r', 0, 200, 5000);
    await producer.commit('y');
    await waiting;
    assert.equal((await reader.offsets('r'))[0].end, 201);
    await reader.close();
    await log.close();
    t.remove();
  });
});
