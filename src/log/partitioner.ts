/** Kafka-compatible default partitioner: murmur2(key) & 0x7fffffff mod partitions. */

/** Kafka's murmur2 of the first `length` bytes of `data` (all of them by default). */
export function murmur2(data: Uint8Array, length = data.length): number {
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4] & 0xff) + ((data[i4 + 1] & 0xff) << 8) + ((data[i4 + 2] & 0xff) << 16) + ((data[i4 + 3] & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rem = length & 3;
  const base = length & ~3;
  if (rem === 3) h ^= (data[base + 2] & 0xff) << 16;
  if (rem >= 2) h ^= (data[base + 1] & 0xff) << 8;
  if (rem >= 1) {
    h ^= data[base] & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** A key's UTF-8 bytes are written here to be hashed, rather than into a new buffer per key. */
const scratch = Buffer.allocUnsafe(1024);

/** The partition of `key` (a string counts as its UTF-8 bytes) among `partitions`, as Kafka's default partitioner picks it. */
export function partitionFor(key: Uint8Array | string | null, partitions: number): number {
  if (partitions <= 1 || key === null) return 0;
  if (typeof key !== 'string') return (murmur2(key) & 0x7fffffff) % partitions;
  // A write that stops for want of room leaves fewer than 4 bytes (one UTF-8 character) free.
  const n = scratch.write(key, 0, 'utf8');
  const h = n <= scratch.length - 4 ? murmur2(scratch, n) : murmur2(Buffer.from(key));
  return (h & 0x7fffffff) % partitions;
}
