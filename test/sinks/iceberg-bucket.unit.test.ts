/**
 * Iceberg's bucket transform against the table spec's own test vectors (its appendix on 32-bit
 * hash requirements): the hash of each value as the spec lays out its bytes, and the bucket the
 * DuckDB functions the sink registers give for them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { bucketOf, hashLong, hashString, murmur3, registerBucketFunctions } from '../../src/sinks/iceberg/bucket.ts';

describe('Iceberg bucket transform', () => {
  it("hashes the spec's test values to the spec's hashes", () => {
    assert.equal(hashLong(34n), 2017239379, 'int 34 and long 34');
    assert.equal(hashLong(17486n), -653330422, 'date 2017-11-16');
    assert.equal(hashLong(81068000000n), -662762989, 'time 22:31:08');
    assert.equal(hashLong(1510871468000000n), -2047944441, 'timestamp 2017-11-16T22:31:08');
    assert.equal(hashString('iceberg'), 1210000089, 'string iceberg');
    assert.equal(murmur3(Uint8Array.from([0, 1, 2, 3])), -188683207, 'binary 00 01 02 03');
    assert.equal(bucketOf(-188683207, 16), (-188683207 & 0x7fffffff) % 16);
  });

  it('gives the same buckets inside DuckDB, null for null', async () => {
    const c = await (await DuckDBInstance.create(':memory:')).connect();
    await registerBucketFunctions(c);
    const rows = (await c.runAndReadAll(`SELECT sluice_bucket_long(34, 16), sluice_bucket_long((DATE '2017-11-16' - DATE '1970-01-01')::BIGINT, 100), sluice_bucket_long(epoch_us(TIMESTAMP '2017-11-16 22:31:08'), 7), sluice_bucket_text('iceberg', 16), sluice_bucket_blob('\\x00\\x01\\x02\\x03'::BLOB, 16), sluice_bucket_long(NULL, 16), sluice_bucket_text('é', 1000)`)).getRows()[0];
    assert.deepEqual(rows, [bucketOf(2017239379, 16), bucketOf(-653330422, 100), bucketOf(-2047944441, 7), bucketOf(1210000089, 16), bucketOf(-188683207, 16), null, bucketOf(murmur3(Buffer.from('é')), 1000)]);
    c.closeSync();
  });
});
