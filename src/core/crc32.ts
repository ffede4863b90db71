/**
 * CRC-32 (IEEE). Native zlib.crc32 where Node has it (20.15+, several times faster); otherwise
 * table-driven slice-by-8 in JS. Both give the same value.
 */
import * as zlib from 'node:zlib';

const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

const T = new Int32Array(2048);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n];
  for (let k = 1; k < 8; k++) {
    c = T[c & 0xff] ^ (c >>> 8);
    T[k * 256 + n] = c;
  }
}

export function crc32(b: Uint8Array, start = 0, end = b.length): number {
  if (native) return native(start === 0 && end === b.length ? b : b.subarray(start, end));
  return crc32js(b, start, end);
}

export function crc32js(b: Uint8Array, start = 0, end = b.length): number {
  let c = ~0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^= b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    const hi = b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24);
    c =
      T[1792 + (c & 0xff)] ^
      T[1536 + ((c >>> 8) & 0xff)] ^
      T[1280 + ((c >>> 16) & 0xff)] ^
      T[1024 + (c >>> 24)] ^
      T[768 + (hi & 0xff)] ^
      T[512 + ((hi >>> 8) & 0xff)] ^
      T[256 + ((hi >>> 16) & 0xff)] ^
      T[hi >>> 24];
  }
  for (; i < end; i++) c = T[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
