/**
 * Decoding of the LZ4 batches the embedded log stores (written by lz4-napi's `compressSync`: the
 * decoded length as 4 bytes little-endian, then one LZ4 block) into a buffer the caller gives.
 * Native decoders allocate their output, and a reader that drains a log at full speed then holds
 * tens of MiB of decoded batches waiting for V8 to collect them; decoding into buffers the reader
 * recycles keeps its memory to the few batches it is working on. It also reads LZ4 logs where
 * lz4-napi does not load (format.ts uses the native decoder for new buffers, where it is about twice
 * as fast as this one, whose speed needs the output's pages already in use). Written from the LZ4 block
 * format: sequences of a token (literal length, match length), literals, and a 2-byte offset back
 * into what was decoded; the last sequence holds literals only.
 *
 * Damaged input never reads or writes out of bounds: every length and offset is checked, and the
 * result is a string saying what is wrong.
 */

/** The decoded length a stored LZ4 batch announces, or -1 when it is too short to say. */
export function lz4DecodedLength(src: Buffer): number {
  return src.length < 4 ? -1 : src.readUInt32LE(0);
}

/** Below this many bytes a copy is a loop; above it, a native copy pays for its call. */
const SHORT = 16;

/**
 * Decodes `src` (length prefix, then the block) into `dst` from byte 0; `dst` must hold at least
 * the announced length. Returns the decoded length, or a string saying why the bytes are not a
 * valid block of that length.
 */
export function lz4DecodeInto(src: Buffer, dst: Buffer): number | string {
  const size = lz4DecodedLength(src);
  if (size < 0) return 'it is shorter than its 4-byte length prefix';
  if (dst.length < size) throw new RangeError(`lz4DecodeInto: the output buffer holds ${dst.length} bytes, the block decodes to ${size}`);
  const end = src.length;
  let ip = 4;
  let op = 0;
  if (size === 0) return ip === end || (end === 5 && src[4] === 0) ? 0 : 'it holds data past an empty block';
  for (;;) {
    if (ip >= end) return `it ends inside a sequence (at byte ${ip})`;
    const token = src[ip++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) return `it ends inside a literal length (at byte ${ip})`;
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (lit > 0) {
      if (ip + lit > end) return `a literal run of ${lit} bytes runs past its end (at byte ${ip})`;
      if (op + lit > size) return `a literal run of ${lit} bytes runs past the announced ${size} bytes`;
      if (lit < SHORT) {
        for (let i = 0; i < lit; i++) dst[op + i] = src[ip + i];
      } else src.copy(dst, op, ip, ip + lit);
      ip += lit;
      op += lit;
    }
    if (ip === end) break; // the last sequence: literals only
    if (ip + 2 > end) return `it ends inside a match offset (at byte ${ip})`;
    const off = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (off === 0 || off > op) return `a match refers ${off} bytes back from byte ${op} of the output`;
    let len = (token & 15) + 4;
    if (len === 19) {
      let b: number;
      do {
        if (ip >= end) return `it ends inside a match length (at byte ${ip})`;
        b = src[ip++];
        len += b;
      } while (b === 255);
    }
    if (op + len > size) return `a match of ${len} bytes runs past the announced ${size} bytes`;
    let from = op - off;
    if (off >= len && len >= SHORT) {
      dst.copyWithin(op, from, from + len);
      op += len;
    } else {
      // Short, or overlapping what it writes (a repeat of the last `off` bytes): byte by byte.
      const stop = op + len;
      while (op < stop) dst[op++] = dst[from++];
    }
  }
  return op === size ? size : `it decodes to ${op} bytes, not the announced ${size}`;
}
