/** Bytes written into one buffer that grows (doubling) as needed: what encoders write into. */
export class ByteSink {
  buf: Buffer;
  len = 0;

  constructor(size = 1 << 20) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const nb = Buffer.allocUnsafe(size);
    this.buf.copy(nb, 0, 0, this.len);
    this.buf = nb;
  }

  byte(b: number): void {
    if (this.len === this.buf.length) this.ensure(1);
    this.buf[this.len++] = b;
  }

  ascii(s: string): void {
    this.ensure(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  text(s: string): void {
    this.ensure(s.length * 3);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  bytes(src: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.len + n > this.buf.length) this.ensure(n);
    if (n > 48) {
      this.len += src.copy(this.buf, this.len, start, end);
      return;
    }
    // Short runs (most values): a loop beats the native copy's call.
    const b = this.buf;
    let o = this.len;
    for (let i = start; i < end; i++) b[o++] = src[i];
    this.len = o;
  }

  /** The bytes written so far (a view: valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
