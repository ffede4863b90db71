/**
 * What only the embedded log has: segment files, torn tails (also as a real kill -9 leaves them),
 * the commit journal, checksums, the LOCK file and file handles. What every backend must do is the
 * conformance suite's (test/log/conformance.ts, run for this backend by embedded.conformance.unit.test.ts).
 */
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { LogConfig } from '../../src/config/types.ts';
import { openEmbeddedLog, type EmbeddedLog } from '../../src/log/embedded/index.ts';
import { BATCH_HEADER, readBatchHeader } from '../../src/log/embedded/format.ts';
import { readJournal, type JournalState } from '../../src/log/embedded/journal.ts';
import { embeddedLogAt } from '../../src/log/open.ts';
import type { StoredRecord } from '../../src/log/types.ts';
import { startLogChild } from './conformance.ts';

const rec = (value: string) => ({ key: null, value, timestamp: 1700000000000 });

function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-log-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function readAllOf(log: EmbeddedLog, topic: string): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (const p of await log.offsets(topic)) {
    for (let off = p.start; off < p.end; ) {
      const r = await log.read(topic, p.partition, off, 64 * 1024);
      out.push(...r.records);
      off = r.next;
    }
  }
  return out;
}

const segments = (dir: string, topic: string, partition: number) =>
  readdirSync(join(dir, 'topics', topic, String(partition)))
    .filter((f) => f.endsWith('.seg'))
    .sort()
    .map((f) => join(dir, 'topics', topic, String(partition), f));

/** The batches of a segment file, checked to be whole: their base offsets and counts, and where the last ends. */
function batchesOf(path: string): { baseOffset: number; count: number }[] {
  const b = readFileSync(path);
  const out: { baseOffset: number; count: number }[] = [];
  let pos = 0;
  while (pos < b.length) {
    const h = readBatchHeader(b, pos);
    assert.ok(h, `${path}: no batch header at byte ${pos} of ${b.length}`);
    pos += BATCH_HEADER + h.payloadLength;
    assert.ok(pos <= b.length, `${path}: a batch runs past the end of the file`);
    out.push({ baseOffset: h.baseOffset, count: h.count });
  }
  return out;
}

/** Paths of files under `dir` this process holds open. */
const openFilesUnder = (dir: string) =>
  readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((p) => p.startsWith(dir));

describe('embedded log: files on disk', () => {
  it('rolls segment files at segmentBytes, each named by the offset of its first record', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir, segmentBytes: 4096, compression: 'none' });
    await log.createTopic('t', { partitions: 1 });
    const { producer } = await log.openProducer('p');
    for (let i = 0; i < 2000; i++) producer.append('t', rec(`value${i}`));
    await producer.commit('c1');
    const files = segments(t.dir, 't', 0);
    assert.ok(files.length > 3, `${files.length} segments`);
    let next = 0;
    for (const [i, f] of files.entries()) {
      assert.match(f, /\/\d{20}\.seg$/);
      const batches = batchesOf(f);
      assert.equal(Number(f.slice(-24, -4)), batches[0].baseOffset, `${f} is named by its first offset`);
      for (const b of batches) {
        assert.equal(b.baseOffset, next, 'batches follow each other');
        next += b.count;
      }
      if (i < files.length - 1) assert.ok(statSync(f).size >= 4096, `${f} rolled before segmentBytes`);
    }
    assert.equal(next, 2000);
    assert.equal((await readAllOf(log, 't')).length, 2000);
    await log.close();
    t.remove();
  });

  it('a writer killed with kill -9 leaves batches past the committed end; reopening cuts exactly those off', async () => {
    const t = tempDir();
    // Uncompressed, so the bytes written out are the bytes appended.
    const config = { ...embeddedLogAt(t.dir), segmentBytes: 16 * 1024, compression: 'none' } as LogConfig;
    const child = startLogChild(config, 'hang', { committed: 30, uncommittedBytes: 256 * 1024 });
    try {
      await child.line(/^appended \d+$/);
      const bytes = () => ['a/0', 'a/1', 'a/2', 'b/0'].map((tp) => segments(t.dir, tp.split('/')[0], Number(tp.split('/')[1])).reduce((n, f) => n + statSync(f).size, 0));
      const written = bytes();
      assert.ok(written.every((n) => n > 64 * 1024 - 4096), `the uncommitted records were written out: ${written}`);
      await child.kill('SIGKILL');
      const log = await openEmbeddedLog({ dir: t.dir });
      const left = bytes();
      for (const [i, n] of left.entries()) assert.ok(n < 4096, `partition ${i}: ${n} bytes left of ${written[i]}`);
      for (const topic of ['a', 'b']) {
        for (const o of await log.offsets(topic)) {
          const batches = segments(t.dir, topic, o.partition).flatMap(batchesOf);
          assert.equal(batches.reduce((n, b) => n + b.count, 0), o.end, `${topic}/${o.partition}: whole batches up to the committed end, nothing after`);
        }
      }
      assert.equal((await readAllOf(log, 'a')).length + (await readAllOf(log, 'b')).length, 30);
      await log.close();
    } finally {
      await child.kill();
      t.remove();
    }
  });

  it('recovers from a torn segment tail and a torn journal record; reports checksum damage and data missing below a commit', async () => {
    const t = tempDir();
    let log = await openEmbeddedLog({ dir: t.dir });
    await log.createTopic('t', { partitions: 1 });
    const { producer } = await log.openProducer('p');
    for (let i = 0; i < 10; i++) producer.append('t', rec(`r${i}`));
    await producer.commit('ten');
    await log.close();
    const [seg] = segments(t.dir, 't', 0);
    const good = statSync(seg).size;
    appendFileSync(seg, Buffer.from('SLB1garbage-half-written-batch'));
    appendFileSync(join(t.dir, 'commits.journal'), Buffer.from([0, 0, 1, 0, 1, 2, 3]));
    log = await openEmbeddedLog({ dir: t.dir });
    assert.equal(statSync(seg).size, good, 'torn tail truncated');
    assert.equal((await log.openProducer('p')).checkpoint, 'ten');
    assert.deepEqual((await readAllOf(log, 't')).map((r) => r.value!.toString()), Array.from({ length: 10 }, (_, i) => `r${i}`));
    await log.close();
    // A corrupt byte inside committed data is reported, not returned: when the log is opened for
    // writing (its active segment is checked) and when it is read.
    const fd = openSync(seg, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, 40);
    closeSync(fd);
    await assert.rejects(openEmbeddedLog({ dir: t.dir }), (e: Error & { code?: string }) => e.code === 'LOG_CORRUPT' && /checksum mismatch/.test(e.message));
    log = await openEmbeddedLog({ dir: t.dir, readOnly: true });
    await assert.rejects(log.read('t', 0, 0), (e: Error & { code?: string }) => e.code === 'LOG_CORRUPT' && /checksum mismatch/.test(e.message));
    await log.close();
    // Truncated below the committed end: the journal says more was committed than is there.
    const fd2 = openSync(seg, 'r+');
    ftruncateSync(fd2, 100);
    closeSync(fd2);
    await assert.rejects(openEmbeddedLog({ dir: t.dir }), (e: Error & { code?: string }) => e.code === 'LOG_CORRUPT' && /journal says \d+ were committed/.test(e.message));
    t.remove();
  });

  it('the journal: one record per commit (producer, checkpoint, partition ends), rewritten as one full record past 8 MiB, followed by readers', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir });
    await log.createTopic('t', { partitions: 2 });
    const { producer } = await log.openProducer('p');
    producer.append('t', rec('a'), 0);
    producer.append('t', rec('b'), 1);
    producer.append('t', rec('c'), 1);
    await producer.commit('first');
    const journal = join(t.dir, 'commits.journal');
    const state: JournalState = { producers: new Map(), parts: new Map() };
    const r = readJournal(journal, state);
    assert.equal(r.validEnd, statSync(journal).size);
    assert.deepEqual([...state.producers], [['p', 'first']]);
    assert.deepEqual([...state.parts.values()].map((pe) => [pe[0], pe[1], pe[2]]).sort(), [['t', 0, 1], ['t', 1, 2]]);

    // Checkpoints of 1 MiB fill the journal past 8 MiB quickly: it is rewritten as one record.
    const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
    assert.equal((await reader.offsets('t'))[1].end, 2);
    const ino = statSync(journal).ino;
    for (let i = 0; i < 10; i++) {
      producer.append('t', rec(`big-${i}`), 0);
      await producer.commit(`${i}`.padEnd(1 << 20, '.'));
    }
    assert.notEqual(statSync(journal).ino, ino, 'the journal was rewritten');
    assert.ok(statSync(journal).size < 4 << 20, `journal of ${statSync(journal).size} bytes after 10 MiB of checkpoints`);
    assert.equal((await reader.offsets('t'))[0].end, 11, 'a reader follows the rewritten journal');
    await reader.close();
    await log.close();
    const again = await openEmbeddedLog({ dir: t.dir });
    assert.equal((await again.openProducer('p')).checkpoint, '9'.padEnd(1 << 20, '.'));
    assert.equal((await readAllOf(again, 't')).length, 13);
    await again.close();
    t.remove();
  });

  it('LOCK: one writer per directory (this process or another live one), taken over from a dead one; readers need none', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir });
    await assert.rejects(openEmbeddedLog({ dir: t.dir }), (e: Error & { code?: string }) => e.code === 'LOG_LOCKED' && /\(this one\)/.test(e.message));
    await log.close();
    await assert.rejects(openEmbeddedLog({ dir: join(t.dir, 'nope'), readOnly: true }), (e: Error & { code?: string }) => e.code === 'LOG_MISSING');
    const child = startLogChild(embeddedLogAt(t.dir), 'hang', { committed: 3, uncommittedBytes: 1 });
    try {
      await child.line(/^appended \d+$/);
      assert.equal(readFileSync(join(t.dir, 'LOCK'), 'utf8').trim(), String(child.proc.pid));
      await assert.rejects(openEmbeddedLog({ dir: t.dir }), (e: Error & { code?: string }) => e.code === 'LOG_LOCKED' && e.message.includes(`process ${child.proc.pid}`));
      const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
      assert.equal((await readAllOf(reader, 'a')).length + (await readAllOf(reader, 'b')).length, 3);
      await reader.close();
      await child.kill('SIGKILL');
      const after = await openEmbeddedLog({ dir: t.dir });
      assert.equal(readFileSync(join(t.dir, 'LOCK'), 'utf8').trim(), String(process.pid), 'the stale LOCK of a dead writer is taken over');
      await after.close();
    } finally {
      await child.kill();
      t.remove();
    }
  });

  it('retention closes the files it removes, in the writer and in readers, so their space is freed', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir, segmentBytes: 1024, retentionCheckMs: 0, compression: 'none' });
    await log.createTopic('r', { partitions: 1, retentionBytes: 2048 });
    const { producer } = await log.openProducer('p');
    for (let i = 0; i < 200; i++) producer.append('r', rec(`value-${i}-${'x'.repeat(50)}`));
    await producer.commit('x');
    const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
    assert.equal((await readAllOf(reader, 'r')).length, 200);
    assert.equal((await readAllOf(log, 'r')).length, 200);
    assert.ok(openFilesUnder(t.dir).filter((p) => p.endsWith('.seg')).length > 10, 'both hold segments open');
    await log.enforceRetention();
    assert.ok((await reader.offsets('r'))[0].start > 0);
    const deleted = openFilesUnder(t.dir).filter((p) => p.endsWith('(deleted)'));
    assert.deepEqual(deleted, [], 'removed segments still held open');
    await reader.close();
    await log.close();
    t.remove();
  });
});

describe('embedded log: compaction', () => {
  const kv = (k: string, v: string | null) => ({ key: k, value: v, timestamp: 1700000000000 });

  it('keeps the latest record of each key at its offset, removes what later records replace and old tombstones, in the writer, a reader and after reopening', async () => {
    const t = tempDir();
    let log = await openEmbeddedLog({ dir: t.dir, segmentBytes: 1024, retentionCheckMs: 0 });
    await log.createTopic('state', { partitions: 1, compaction: true, tombstoneRetentionMs: 60_000 });
    const { producer } = await log.openProducer('p');
    // The truth, kept by the test: every record written, and the latest offset of each key.
    const written: { offset: number; key: string; value: string | null }[] = [];
    let offset = 0;
    const put = (k: string, v: string | null) => {
      producer.append('state', kv(k, v));
      written.push({ offset: offset++, key: k, value: v });
    };
    for (let round = 0; round < 30; round++) {
      for (let k = 0; k < 8; k++) put(`k${k}`, `k${k}=${round}:${'s'.repeat(60)}`);
      if (round === 5) put('gone', 'soon deleted');
      if (round === 6) put('gone', null);
      await producer.commit(`r${round}`);
    }
    const latest = new Map(written.map((w) => [w.key, w]));
    const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
    assert.equal((await readAllOf(reader, 'state')).length, written.length, 'all records before compaction');
    const bytesBefore = segments(t.dir, 'state', 0).reduce((n, f) => n + statSync(f).size, 0);
    await log.enforceRetention();
    const bytesAfter = segments(t.dir, 'state', 0).reduce((n, f) => n + statSync(f).size, 0);
    assert.ok(bytesAfter < bytesBefore / 2, `compaction shrank the segments (${bytesBefore} → ${bytesAfter} bytes)`);

    const check = async (l: EmbeddedLog, what: string, tombstone: boolean) => {
      const got = await readAllOf(l, 'state');
      for (let i = 1; i < got.length; i++) assert.ok(got[i].offset > got[i - 1].offset, `${what}: offsets increase`);
      const byOffset = new Map(written.map((w) => [w.offset, w]));
      for (const r of got) {
        const w = byOffset.get(r.offset);
        assert.ok(w && w.key === r.key?.toString() && w.value === (r.value === null ? null : r.value.toString()), `${what}: record at ${r.offset} is the one written there`);
      }
      for (const [k, w] of latest) {
        const found = got.find((r) => r.offset === w.offset);
        if (k === 'gone' && !tombstone) assert.equal(found, undefined, `${what}: the old tombstone is removed`);
        else assert.ok(found, `${what}: the latest record of ${k} (offset ${w.offset}) is there`);
      }
      assert.ok(got.length < written.length / 2, `${what}: replaced records are gone (${got.length} of ${written.length} remain)`);
      assert.equal(got.filter((r) => r.key?.toString() === 'gone' && r.value !== null).length, 0, `${what}: the deleted key's value is gone`);
      // A consumer steps over the gaps from any offset, also one compaction removed.
      const c = l.openConsumer();
      c.assign('state', 0, 1);
      const polled: StoredRecord[] = [];
      for (let i = 0; i < 100 && c.position('state', 0) < (await l.offsets('state'))[0].end; i++) polled.push(...(await c.poll({ maxWaitMs: 10 })));
      assert.deepEqual(polled.map((r) => r.offset), got.filter((r) => r.offset >= 1).map((r) => r.offset), `${what}: a consumer from offset 1 reads the survivors`);
      await c.close();
    };
    // The tombstone is younger than its retention: it stays, so readers see the delete.
    await check(log, 'writer', true);
    await check(reader, 'reader', true);
    // Once its segment is older than tombstoneRetentionMs, the tombstone goes too.
    await (log as unknown as { compact(p: unknown, ms: number, now: number): Promise<boolean> }).compact((log as any).part('state', 0), 60_000, Date.now() + 3_600_000);
    await check(log, 'writer, tombstones expired', false);
    // More commits after compaction continue at the committed end; reopening verifies and reads it all.
    for (let k = 0; k < 8; k++) put(`k${k}`, `k${k}=final`);
    await producer.commit('final');
    for (const w of written.slice(-8)) latest.set(w.key, w);
    await log.close();
    log = await openEmbeddedLog({ dir: t.dir, segmentBytes: 1024, retentionCheckMs: 0 });
    await check(log, 'reopened', false);
    assert.equal((await log.offsets('state'))[0].end, offset, 'the end is where the writes ended');
    await reader.close();
    await log.close();
    t.remove();
  });
});
