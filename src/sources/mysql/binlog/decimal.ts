/**
 * MySQL's binary DECIMAL format (rows events and JSON opaque values), decoded to exact text: never
 * through a float.
 */
const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** Bytes a DECIMAL(precision, scale) takes in the binary format (9 digits per 4 bytes, leftovers packed). */
export function decimalSize(precision: number, scale: number): number {
  const intg = precision - scale;
  return ((intg / 9) | 0) * 4 + DIG2BYTES[intg % 9] + ((scale / 9) | 0) * 4 + DIG2BYTES[scale % 9];
}

/**
 * A binary DECIMAL as exact text with exactly `scale` fraction digits (`-0.01`, `0.0000`). The
 * format stores digit groups big-endian with the sign in the top bit of the first byte (set when
 * non-negative); a negative value has every byte inverted.
 */
export function readDecimal(b: Uint8Array, pos: number, precision: number, scale: number): string {
  const intg = precision - scale;
  const intg0 = (intg / 9) | 0;
  const intg0x = intg - intg0 * 9;
  const frac0 = (scale / 9) | 0;
  const frac0x = scale - frac0 * 9;
  const mask = b[pos] & 0x80 ? 0 : 0xff;
  let flip = 0x80; // the first byte read carries the sign bit
  let p = pos;
  let nonzero = false;
  let ip = '';
  let v: number;
  if (intg0x > 0) {
    v = 0;
    for (let k = DIG2BYTES[intg0x]; k > 0; k--) {
      v = v * 256 + (b[p++] ^ mask ^ flip);
      flip = 0;
    }
    if (v !== 0) {
      ip = String(v);
      nonzero = true;
    }
  }
  for (let g = 0; g < intg0; g++) {
    v = (b[p] ^ mask ^ flip) * 0x1000000 + (((b[p + 1] ^ mask) << 16) | ((b[p + 2] ^ mask) << 8) | (b[p + 3] ^ mask));
    flip = 0;
    p += 4;
    if (ip !== '') ip += String(v).padStart(9, '0');
    else if (v !== 0) ip = String(v);
    if (v !== 0) nonzero = true;
  }
  if (ip === '') ip = '0';
  if (scale === 0) return mask && nonzero ? '-' + ip : ip;
  let fp = '';
  for (let g = 0; g < frac0; g++) {
    v = (b[p] ^ mask ^ flip) * 0x1000000 + (((b[p + 1] ^ mask) << 16) | ((b[p + 2] ^ mask) << 8) | (b[p + 3] ^ mask));
    flip = 0;
    p += 4;
    if (v !== 0) nonzero = true;
    fp += String(v).padStart(9, '0');
  }
  if (frac0x > 0) {
    v = 0;
    for (let k = DIG2BYTES[frac0x]; k > 0; k--) {
      v = v * 256 + (b[p++] ^ mask ^ flip);
      flip = 0;
    }
    if (v !== 0) nonzero = true;
    fp += String(v).padStart(frac0x, '0');
  }
  return (mask && nonzero ? '-' : '') + ip + '.' + fp;
}
