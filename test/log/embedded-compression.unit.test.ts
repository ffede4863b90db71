/**
 * Compressed batches in the embedded log (log.compression): every codec returns exactly what was
 * appended, a log whose setting changed reads all its batches, data that does not shrink is kept
 * as it is, and damage inside compressed data is reported as LOG_CORRUPT, never returned.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32 } from '../../src/core/crc32.ts';
import { openEmbeddedLog, type EmbeddedLog } from '../../src/log/embedded/index.ts';
import { BATCH_HEADER, CODECS, type Codec } from '../../src/log/embedded/format.ts';
import { lz4DecodeInto } from '../../src/log/embedded/lz4.ts';
import { createRequire } from 'node:module';
import type { AppendRecord, StoredRecord } from '../../src/log/types.ts';

const MAGIC_TEXT: Record<Codec, string> = { none: 'SLB1', lz4: 'SLB4', brotli: 'SLBB' };

function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-log-z-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Records like the ones a source writes (Debezium JSON with a repeated source block), and odd ones. */
function records(n: number, from = 0): AppendRecord[] {
  const out: AppendRecord[] = [];
  for (let i = from; i < from + n; i++) {
    const value = JSON.stringify({ before: null, after: { id: i, name: `name-${i}`, note: 'é ✓ 𝄞'.repeat(i % 3) }, source: { connector: 'postgresql', db: 'shop', schema: 'public', table: 'orders', lsn: 1000 + i }, op: 'c', ts_ms: 1700000000000 + i });
    const r: AppendRecord = { key: JSON.stringify({ id: i }), value, timestamp: 1700000000000 + i, headers: { s: 'abc' } };
    if (i % 17 === 0) r.value = null; // a tombstone
    if (i % 23 === 0) r.key = null;
    if (i % 29 === 0) r.value = Buffer.from([0, 255, 1, 254, i & 255]);
    if (i % 31 === 0) delete r.headers;
    out.push(r);
  }
  return out;
}

const text = (v: Buffer | string | null | undefined) => (v === null || v === undefined ? null : Buffer.from(v as string).toString('hex'));

function assertSame(got: StoredRecord[], want: AppendRecord[], what: string): void {
  assert.equal(got.length, want.length, `${what}: record count`);
  for (let i = 0; i < want.length; i++) {
    assert.equal(got[i].offset, i, `${what}: offset of record ${i}`);
    assert.equal(text(got[i].key), text(want[i].key), `${what}: key of record ${i}`);
    assert.equal(text(got[i].value), text(want[i].value), `${what}: value of record ${i}`);
    assert.equal(got[i].timestamp, want[i].timestamp, `${what}: timestamp of record ${i}`);
    assert.deepEqual(got[i].headers, want[i].headers, `${what}: headers of record ${i}`);
  }
}

async function readAll(log: EmbeddedLog, topic: string, maxBytes = 64 * 1024): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (let off = 0; ; ) {
    const r = await log.read(topic, 0, off, maxBytes);
    if (!r.records.length) break;
    out.push(...r.records);
    off = r.next;
  }
  return out;
}

/** The batches of the partition's segment files: magic, stored length and where each starts. */
function batchesOn(dir: string, topic: string): { file: string; pos: number; magic: string; stored: number; count: number }[] {
  const pdir = join(dir, 'topics', topic, '0');
  const out: { file: string; pos: number; magic: string; stored: number; count: number }[] = [];
  for (const f of readdirSync(pdir).filter((x) => x.endsWith('.seg')).sort()) {
    const b = readFileSync(join(pdir, f));
    for (let pos = 0; pos + BATCH_HEADER <= b.length; pos += BATCH_HEADER + b.readUInt32BE(pos + 4)) {
      out.push({ file: join(pdir, f), pos, magic: b.toString('latin1', pos, pos + 4), stored: b.readUInt32BE(pos + 4), count: b.readUInt32BE(pos + 20) });
    }
  }
  return out;
}

/** Bytes the records take uncompressed in the batch format (what `none` stores). */
async function rawBytes(want: AppendRecord[]): Promise<number> {
  const t = tempDir();
  const log = await openEmbeddedLog({ dir: t.dir, compression: 'none' });
  await log.createTopic('t', { partitions: 1 });
  const { producer } = await log.openProducer('p');
  for (const r of want) producer.append('t', r, 0);
  await producer.commit('c');
  await log.close();
  const n = batchesOn(t.dir, 't').reduce((a, b) => a + b.stored, 0);
  t.remove();
  return n;
}

describe('embedded log: compressed batches', () => {
  for (const codec of CODECS) {
    it(`${codec}: records read back exactly as appended, from a writer, a reader and after reopening; batches say their codec`, async () => {
      const t = tempDir();
      const want = records(5000);
      const log = await openEmbeddedLog({ dir: t.dir, compression: codec, segmentBytes: 64 * 1024 });
      await log.createTopic('t', { partitions: 1 });
      const { producer } = await log.openProducer('p');
      for (let i = 0; i < want.length; i++) {
        producer.append('t', want[i], 0);
        if (i % 700 === 699) await producer.commit(`c${i}`);
      }
      await producer.commit('end');
      // Small reads stop inside batches and go on from there.
      assertSame(await readAll(log, 't', 3000), want, `${codec}, writer`);
      const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
      assertSame(await readAll(reader, 't'), want, `${codec}, read-only reader`);
      await reader.close();
      await log.close();
      const reopened = await openEmbeddedLog({ dir: t.dir });
      assertSame(await readAll(reopened, 't', 1 << 20), want, `${codec}, reopened`);
      await reopened.close();

      const batches = batchesOn(t.dir, 't');
      assert.ok(batches.length > 1, 'several batches');
      assert.ok(batches.every((b) => b.magic === MAGIC_TEXT[codec]), `every batch stored as ${codec}: ${[...new Set(batches.map((b) => b.magic))]}`);
      const stored = batches.reduce((a, b) => a + b.stored, 0);
      const raw = await rawBytes(want);
      if (codec === 'none') assert.equal(stored, raw);
      else assert.ok(stored * 4 < raw, `${codec} stores ${stored} bytes for ${raw} uncompressed`);
      t.remove();
    });
  }

  it('auto (the default) writes LZ4 where lz4-napi is installed, as here', async () => {
    const t = tempDir();
    const log = await openEmbeddedLog({ dir: t.dir });
    assert.equal(log.compression, 'lz4');
    await log.createTopic('t', { partitions: 1 });
    const { producer } = await log.openProducer('p');
    for (const r of records(100)) producer.append('t', r, 0);
    await producer.commit('c');
    await log.close();
    assert.deepEqual(batchesOn(t.dir, 't').map((b) => b.magic), ['SLB4']);
    t.remove();
  });

  it('a log whose compression setting changed reads every batch, old and new, in order', async () => {
    const t = tempDir();
    const want = records(3000);
    let at = 0;
    for (const codec of ['none', 'lz4', 'brotli', 'lz4'] as const) {
      const log = await openEmbeddedLog({ dir: t.dir, compression: codec });
      if (at === 0) await log.createTopic('t', { partitions: 1 });
      const { producer } = await log.openProducer('p');
      for (const r of want.slice(at, at + 750)) producer.append('t', r, 0);
      await producer.commit(`to ${at + 750}`);
      at += 750;
      await log.close();
    }
    const log = await openEmbeddedLog({ dir: t.dir, readOnly: true });
    assertSame(await readAll(log, 't'), want, 'mixed codecs');
    await log.close();
    assert.deepEqual(batchesOn(t.dir, 't').map((b) => b.magic), ['SLB1', 'SLB4', 'SLBB', 'SLB4']);
    t.remove();
  });

  it('a batch that compression would not shrink (a record of random bytes) is stored as it is, beside compressed ones', async () => {
    const t = tempDir();
    const want: AppendRecord[] = [{ key: null, value: randomBytes(2000), timestamp: 1 }, ...records(100).slice(1), { key: 'k', value: randomBytes(3000), timestamp: 2 }];
    const log = await openEmbeddedLog({ dir: t.dir, compression: 'lz4' });
    await log.createTopic('t', { partitions: 1 });
    const { producer } = await log.openProducer('p');
    producer.append('t', want[0], 0);
    await producer.commit('random');
    for (const r of want.slice(1, -1)) producer.append('t', r, 0);
    await producer.commit('json');
    producer.append('t', want.at(-1)!, 0);
    await producer.commit('random again');
    assertSame(await readAll(log, 't'), want, 'incompressible');
    await log.close();
    assert.deepEqual(batchesOn(t.dir, 't').map((b) => b.magic), ['SLB1', 'SLB4', 'SLB1']);
    t.remove();
  });

  for (const codec of ['lz4', 'brotli'] as const) {
    it(`${codec}: damage inside compressed data is LOG_CORRUPT on open and on read: a flipped byte (checksum), and bytes that pass the checksum but do not decompress`, async () => {
      const t = tempDir();
      const log = await openEmbeddedLog({ dir: t.dir, compression: codec });
      await log.createTopic('t', { partitions: 1 });
      const { producer } = await log.openProducer('p');
      for (const r of records(400)) producer.append('t', r, 0);
      await producer.commit('c');
      await log.close();
      const [b] = batchesOn(t.dir, 't');
      assert.equal(b.magic, MAGIC_TEXT[codec]);
      const original = readFileSync(b.file);
      const corrupt = async (edit: (stored: Buffer) => void, fixCrc: boolean, pattern: RegExp) => {
        const file = Buffer.from(original);
        const stored = file.subarray(b.pos + BATCH_HEADER, b.pos + BATCH_HEADER + b.stored);
        edit(stored);
        if (fixCrc) file.writeUInt32BE(crc32(stored), b.pos + 8);
        const fd = openSync(b.file, 'w');
        writeSync(fd, file);
        closeSync(fd);
        await assert.rejects(openEmbeddedLog({ dir: t.dir }), (e: Error & { code?: string }) => e.code === 'LOG_CORRUPT' && pattern.test(e.message) && /not opened for writing/.test(e.message));
        const reader = await openEmbeddedLog({ dir: t.dir, readOnly: true });
        await assert.rejects(reader.read('t', 0, 0), (e: Error & { code?: string }) => e.code === 'LOG_CORRUPT' && pattern.test(e.message) && /from offset 0 on cannot be read/.test(e.message));
        await reader.close();
      };
      await corrupt((s) => (s[s.length >> 1] ^= 0x5a), false, /checksum mismatch/);
      // The checksum is made to match: the codec itself must refuse the bytes.
      await corrupt((s) => s.fill(0xff, 4, Math.min(s.length, 64)), true, new RegExp(`its ${codec} data does not decompress`));
      t.remove();
    });
  }
});

/**
 * The log decodes LZ4 batches itself, into buffers its reader reuses (lz4.ts); lz4-napi, the
 * compressor that writes them, is the independent truth for what they decode to.
 */
describe('LZ4 block decoding', () => {
  const lz4 = createRequire(import.meta.url)('lz4-napi') as { compressSync(b: Buffer): Buffer };
  /** Inputs that reach every branch: empty, one byte, runs of literals past 15 and 270 bytes, overlapping repeats, long matches. */
  const inputs = (): [string, Buffer][] => [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['random (literals only)', randomBytes(70_000)],
    ['one byte repeated (a match overlapping itself by 1)', Buffer.alloc(100_000, 0x61)],
    ['a short pattern repeated (overlap 3)', Buffer.from('abc'.repeat(10_000))],
    ['Debezium JSON', Buffer.from(records(3000).map((r) => `${r.key}${r.value}`).join(''))],
    ['random runs between repeats', Buffer.concat(Array.from({ length: 200 }, (_, i) => Buffer.concat([randomBytes(i % 40), Buffer.from('repeat-me-'.repeat(i % 7))])))],
  ];

  it('decodes what lz4-napi encodes, byte for byte, into a buffer larger than needed', () => {
    for (const [what, raw] of inputs()) {
      const out = Buffer.alloc(raw.length + 100, 0xee);
      assert.equal(lz4DecodeInto(lz4.compressSync(raw), out), raw.length, what);
      assert.ok(out.subarray(0, raw.length).equals(raw), `${what}: the decoded bytes`);
      assert.ok(out.subarray(raw.length).every((b) => b === 0xee), `${what}: nothing written past the decoded length`);
    }
  });

  it('refuses damaged blocks with a reason, never reading or writing out of bounds', () => {
    const raw = Buffer.from(records(500).map((r) => `${r.key}${r.value}`).join(''));
    const block = lz4.compressSync(raw);
    // Cut short at every length: a reason, never an exception or a wrong length passed off as right.
    for (let n = 0; n < block.length; n++) {
      const r = lz4DecodeInto(block.subarray(0, n), Buffer.alloc(raw.length));
      assert.equal(typeof r, 'string', `cut to ${n} of ${block.length} bytes: ${r}`);
    }
    // A length prefix larger or smaller than what the block holds.
    const longer = Buffer.from(block);
    longer.writeUInt32LE(raw.length + 1, 0);
    assert.match(String(lz4DecodeInto(longer, Buffer.alloc(raw.length + 1))), /decodes to \d+ bytes, not the announced/);
    const shorter = Buffer.from(block);
    shorter.writeUInt32LE(raw.length - 1, 0);
    assert.match(String(lz4DecodeInto(shorter, Buffer.alloc(raw.length))), /runs past the announced/);
    // A match reaching back before the start of the output.
    const back = Buffer.from([5, 0, 0, 0, 0x10, 0x41, 0x09, 0x00]);
    assert.match(String(lz4DecodeInto(back, Buffer.alloc(5))), /refers 9 bytes back from byte 1/);
    // Random damage: whatever the result, the output buffer's neighbours are untouched.
    for (let i = 0; i < 2000; i++) {
      const bad = Buffer.from(block);
      for (let k = 0; k < 1 + (i % 4); k++) bad[4 + ((i * 7919 + k * 104729) % (bad.length - 4))] ^= 1 + (i % 255);
      const arena = Buffer.alloc(raw.length + 64, 0xee);
      const r = lz4DecodeInto(bad, arena.subarray(32, 32 + raw.length));
      assert.ok(typeof r === 'string' || r === raw.length, `damage ${i}: ${r}`);
      assert.ok(arena.subarray(0, 32).every((b) => b === 0xee) && arena.subarray(32 + raw.length).every((b) => b === 0xee), `damage ${i}: nothing written outside the output`);
    }
  });
});

