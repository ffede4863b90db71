/**
 * Iceberg's `bucket[N]` transform: the 32-bit Murmur3 hash (x86 variant, seed 0) of a value's
 * bytes as the spec defines them (int, long, date and timestamp values as the 8 little-endian
 * bytes of a long; text as UTF-8; binary as itself), then `(hash & Integer.MAX_VALUE) % N`.
 * Registered in the sink's DuckDB as scalar functions, so partitions are computed next to the data.
 */
import type { DuckDBConnection } from '@duckdb/node-api';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** Murmur3 x86 32-bit of `b`, seed 0, as a signed 32-bit integer (Java's `int`). */
export function murmur3(b: Uint8Array): number {
  let h = 0;
  const blocks = b.length >>> 2;
  for (let i = 0; i < blocks; i++) {
    const o = i * 4;
    let k = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
    k = Math.imul(k, C1);
    k = rotl(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
    h = rotl(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  const tail = blocks * 4;
  switch (b.length & 3) {
    case 3:
      k ^= b[tail + 2] << 16;
    // falls through
    case 2:
      k ^= b[tail + 1] << 8;
    // falls through
    case 1:
      k ^= b[tail];
      k = Math.imul(k, C1);
      k = rotl(k, 15);
      k = Math.imul(k, C2);
      h ^= k;
  }
  h ^= b.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const long8 = Buffer.alloc(8);
/** The hash of a long (ints, days and microseconds are hashed as longs). */
export function hashLong(v: bigint): number {
  long8.writeBigInt64LE(BigInt.asIntN(64, v));
  return murmur3(long8);
}

export const hashString = (s: string): number => murmur3(Buffer.from(s, 'utf8'));

/** The bucket of a hash among `n`. */
export const bucketOf = (hash: number, n: number): number => (hash & 0x7fffffff) % n;

/** Registers `sluice_bucket_long(BIGINT, INTEGER)`, `sluice_bucket_text(VARCHAR, INTEGER)` and `sluice_bucket_blob(BLOB, INTEGER)` on `conn`. */
export async function registerBucketFunctions(conn: DuckDBConnection): Promise<void> {
  const { DuckDBScalarFunction, BIGINT, INTEGER, VARCHAR, BLOB } = await import('@duckdb/node-api');
  const make = (name: string, type: typeof BIGINT | typeof VARCHAR | typeof BLOB, hash: (v: never) => number) =>
    DuckDBScalarFunction.create({
      name,
      returnType: INTEGER,
      parameterTypes: [type, INTEGER],
      mainFunction: (_info, input, output) => {
        const values = input.getColumnVector(0);
        const ns = input.getColumnVector(1);
        for (let i = 0; i < input.rowCount; i++) {
          const v = values.getItem(i);
          const n = ns.getItem(i) as number | null;
          output.setItem(i, v === null || n === null ? null : bucketOf(hash((typeof v === 'object' && v !== null && 'bytes' in v ? (v as { bytes: Uint8Array }).bytes : v) as never), n));
        }
        output.flush();
      },
    });
  conn.registerScalarFunction(make('sluice_bucket_long', BIGINT, hashLong as (v: never) => number));
  conn.registerScalarFunction(make('sluice_bucket_text', VARCHAR, hashString as (v: never) => number));
  conn.registerScalarFunction(make('sluice_bucket_blob', BLOB, murmur3 as (v: never) => number));
}
