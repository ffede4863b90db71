/**
 * The partitioner hashes a string key's UTF-8 bytes without making a buffer per key: for every kind
 * of string (ASCII, multibyte, 4-byte characters, lone surrogates, lengths around its scratch
 * buffer's size) the partition must be the one of the key's bytes, which Kafka's vectors pin down
 * in the log conformance suite.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur2, partitionFor } from '../../src/log/partitioner.ts';

const pieces = ['a', 'Z', '0', '"', '{', 'é', 'ß', '✓', '漢', '𝄞', '\uD800', '\uDFFF', '\u0000', '\u007f', '\u0080'];

function randomKey(len: number): string {
  let s = '';
  while (s.length < len) s += pieces[Math.floor(Math.random() * pieces.length)];
  return s;
}

describe('partitioner', () => {
  it('a string key goes where its UTF-8 bytes go, at every length around the scratch buffer', () => {
    const lengths = [0, 1, 2, 3, 4, 5, 17, 100, 255, 256, 339, 340, 341, 510, 511, 512, 1019, 1020, 1021, 1022, 1023, 1024, 1025, 4000];
    for (const len of lengths) {
      for (let i = 0; i < 40; i++) {
        const key = i % 2 === 0 ? randomKey(len) : 'k'.repeat(len);
        const bytes = Buffer.from(key);
        for (const n of [2, 7, 16, 1000]) assert.equal(partitionFor(key, n), (murmur2(bytes) & 0x7fffffff) % n, `key of ${len} units (${bytes.length} bytes), ${n} partitions`);
      }
    }
  });

  it("Kafka's murmur2 vectors, over a prefix of a longer buffer too", () => {
    for (const [key, hash] of [['21', -973932308], ['foobar', -790332482], ['abc', 479470107]] as const) {
      assert.equal(murmur2(Buffer.from(key)), hash);
      assert.equal(murmur2(Buffer.from(`${key}trailing bytes`), Buffer.byteLength(key)), hash);
    }
  });
});
