/**
 * Damaged embedded-log files: every single-byte change anywhere in a committed segment (the
 * active one and closed ones: headers, offsets, lengths, counts, checksums, payloads) is reported
 * as LOG_CORRUPT with what to do, on opening for writing (the active segment) or on reading, and
 * never returns a record that differs from what was committed nor silently stops short of the
 * committed end. A damaged record in the middle of the commit journal is LOG_CORRUPT too, where
 * cutting it off (as a torn last record is) would drop the commits after it.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/embedded/index.ts';

type Rec = [number, number, string | null, string | null];
const codeOf = (e: unknown) => (e as { code?: string }).code;

async function writeLog(dir: string): Promise<Rec[]> {
  const log = await openEmbeddedLog({ dir, segmentBytes: 700, retentionCheckMs: 0 });
  await log.createTopic('t', { partitions: 2 });
  const { producer } = await log.openProducer('src');
  for (let c = 0; c < 6; c++) {
    for (let i = 0; i < 7; i++) producer.append('t', { key: `k${c}-${i}`, value: i % 5 === 4 ? null : JSON.stringify({ c, i, v: 'x'.repeat(i * 3) }), timestamp: 1700000000000 + i, headers: i % 2 ? { s: 'abc' } : undefined });
    await producer.commit(`ckpt-${c}`);
  }
  await log.close();
  return readEverything(dir);
}

/** Every committed record of topic t through a read-only handle (throws what the log throws). */
async function readEverything(dir: string): Promise<Rec[]> {
  const log = await openEmbeddedLog({ dir, readOnly: true });
  try {
    const out: Rec[] = [];
    for (const o of await log.offsets('t')) {
      for (let off = o.start; off < o.end; ) {
        const r = await log.read('t', o.partition, off, 256);
        assert.ok(r.records.length > 0, `read at ${o.partition}/${off} returned nothing before the committed end ${o.end}`);
        for (const x of r.records) out.push([x.partition, x.offset, x.key?.toString() ?? null, x.value?.toString() ?? null]);
        off = r.next;
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

const flip = (path: string, at: number, mask: number) => {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] ^= mask;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
};

describe('a damaged embedded log', () => {
  it('every single-byte change in a committed segment is LOG_CORRUPT (on opening for writing for the active segment, on reading for any), never a wrong or missing record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-damage-'));
    try {
      const truth = await writeLog(dir);
      assert.equal(truth.length, 42);
      let checked = 0;
      for (const p of ['0', '1']) {
        const pdir = join(dir, 'topics', 't', p);
        const segs = readdirSync(pdir).filter((f) => f.endsWith('.seg')).sort();
        assert.ok(segs.length >= 2, `partition ${p} has ${segs.length} segments: the test needs closed ones too`);
        for (const [si, f] of segs.entries()) {
          const path = join(pdir, f);
          const active = si === segs.length - 1;
          for (let at = 0; at < statSync(path).size; at++) {
            for (const mask of [0x01, 0x80]) {
              flip(path, at, mask);
              try {
                let opened = true;
                try {
                  const w = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
                  await w.close();
                } catch (e) {
                  opened = false;
                  assert.equal(codeOf(e), 'LOG_CORRUPT', `${f} byte ${at}: ${e}`);
                  assert.match((e as Error).message, /is damaged at byte \d+ .*Restore the log directory from a backup .* or start over/);
                }
                assert.equal(opened, !active, `${f} byte ${at} ^${mask}: opening for writing ${opened ? 'accepted' : 'refused'} it`);
                await assert.rejects(readEverything(dir), (e) => codeOf(e) === 'LOG_CORRUPT', `${f} byte ${at} ^${mask}: read everything without an error`);
                checked++;
              } finally {
                flip(path, at, mask);
              }
            }
          }
        }
      }
      assert.ok(checked > 2000, `${checked} changes checked`);
      assert.deepEqual(await readEverything(dir), truth, 'undamaged again');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reading up to a damaged batch returns what comes before it; reading at or past it fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-damage-'));
    try {
      const truth = (await writeLog(dir)).filter((r) => r[0] === 0);
      const segs = readdirSync(join(dir, 'topics', 't', '0')).filter((f) => f.endsWith('.seg')).sort();
      const second = join(dir, 'topics', 't', '0', segs[1]);
      const base = Number(segs[1].slice(0, -4));
      flip(second, 30, 0x10); // inside the first record of the segment's first batch
      const log = await openEmbeddedLog({ dir, readOnly: true });
      try {
        const before: Rec[] = [];
        for (let off = 0; off < base; ) {
          const r = await log.read('t', 0, off, 1 << 20);
          before.push(...r.records.map((x): Rec => [0, x.offset, x.key?.toString() ?? null, x.value?.toString() ?? null]));
          off = r.next;
        }
        assert.deepEqual(before, truth.slice(0, base));
        await assert.rejects(log.read('t', 0, base), (e) => codeOf(e) === 'LOG_CORRUPT' && new RegExp(`${segs[1]} is damaged at byte 0 \\(checksum mismatch\\): the records of t/0 from offset ${base} on cannot be read`).test((e as Error).message));
        await assert.rejects(log.read('t', 0, base + 1), (e) => codeOf(e) === 'LOG_CORRUPT');
      } finally {
        await log.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a damaged record inside the commit journal is LOG_CORRUPT; a damaged last record is a commit that never completed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-damage-'));
    try {
      await writeLog(dir);
      const journal = join(dir, 'commits.journal');
      const bytes = readFileSync(journal);
      // Record boundaries: length u32 | crc u32 | JSON.
      const starts: number[] = [];
      for (let p = 0; p < bytes.length; p += 8 + bytes.readUInt32BE(p)) starts.push(p);
      assert.ok(starts.length >= 6);
      for (const [i, at] of [[1, starts[1] + 12], [2, starts[2] + 1], [3, starts[3] + 5]] as const) {
        flip(journal, at, 0x04);
        try {
          await assert.rejects(openEmbeddedLog({ dir, retentionCheckMs: 0 }), (e) => codeOf(e) === 'LOG_CORRUPT' && /the commit journal .* is damaged at byte \d+ \(a record fails its checksum, and later commits follow it\)/.test((e as Error).message), `record ${i}`);
          await assert.rejects(openEmbeddedLog({ dir, readOnly: true }), (e) => codeOf(e) === 'LOG_CORRUPT', `record ${i}, read-only`);
        } finally {
          flip(journal, at, 0x04);
        }
      }
      // The last record damaged: that commit is dropped, the one before it stands.
      flip(journal, starts[starts.length - 1] + 10, 0x04);
      const log = await openEmbeddedLog({ dir, retentionCheckMs: 0 });
      assert.equal((await log.openProducer('src')).checkpoint, 'ckpt-4');
      await log.close();
      assert.equal((await readEverything(dir)).length, 35);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
