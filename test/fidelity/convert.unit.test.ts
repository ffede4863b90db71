/**
 * PostgreSQL's value converters at the edges, in both text and binary form (the fidelity suite runs
 * the text form through real servers; binary mode takes fewer types, so its edges are here):
 * exact microseconds past 2^53, ±infinity as int64's extremes, any year, intervals exactly, and an
 * error naming the value where a change event cannot hold it. Expected values are computed
 * independently (BigInt arithmetic from Date.UTC within its range).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as c from '../../src/sources/postgres/pgoutput/convert.ts';

const PG_EPOCH_US = 946_684_800_000_000n;
const int8 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(v);
  return b;
};
/** Microseconds since 1970 of a UTC date-time within Date's range, with a microsecond fraction. */
const us = (iso: string, micros = 0) => BigInt(Date.parse(iso)) * 1000n + BigInt(micros);

describe('timestamp converters', () => {
  it('give every digit past 2^53, as the text and the binary form alike', () => {
    const cases: [string, bigint][] = [
      ['9999-12-31 23:59:59.999999', us('9999-12-31T23:59:59Z', 999_999)],
      ['2262-04-11 23:47:16.854775', us('2262-04-11T23:47:16Z', 854_775)],
      ['2255-06-05 23:47:34.740993', us('2255-06-05T23:47:34Z', 740_993)],
      ['1969-12-31 23:59:59.999999', -1n],
      ['0100-03-01 00:00:00 BC', us('-000099-03-01T00:00:00Z')],
      ['0001-01-01 00:00:00', us('0001-01-01T00:00:00Z')],
    ];
    for (const [text, want] of cases) {
      const t = c.textToMicroTimestamp(text);
      const b = c.binMicroTimestamp(int8(want - PG_EPOCH_US));
      for (const [how, got] of [['text', t], ['binary', b]] as const) {
        assert.equal(BigInt(got as bigint), want, `${how} ${text}`);
        // A number only while it is exact.
        assert.equal(typeof got === 'number', want >= -(2n ** 53n) && want <= 2n ** 53n, `${how} ${text}: ${typeof got}`);
      }
    }
  });

  it('years past Date’s range: 294246 AD is exact; 294276 AD, beyond int64, is an error naming it', () => {
    // 294246-12-31 is 2246-12-31 plus 730 Gregorian cycles of 400 years (146097 days each).
    const days = BigInt(Date.UTC(2246, 11, 31) / 86_400_000) + 730n * 146_097n;
    assert.equal(BigInt(c.textToMicroTimestamp('294246-12-31 23:59:59.999999') as bigint), days * 86_400_000_000n + 86_399_999_999n);
    assert.throws(() => c.textToMicroTimestamp('294276-12-31 23:59:59'), /"294276-12-31 23:59:59" is beyond what an int64 of microseconds since 1970 holds/);
  });

  it('±infinity are int64’s extremes, text and binary; timestamptz gives the words', () => {
    assert.equal(c.textToMicroTimestamp('infinity'), 9223372036854775807n);
    assert.equal(c.textToMicroTimestamp('-infinity'), -9223372036854775808n);
    assert.equal(c.binMicroTimestamp(int8(9223372036854775807n)), 9223372036854775807n);
    assert.equal(c.binMicroTimestamp(int8(-9223372036854775808n)), -9223372036854775808n);
    assert.equal(c.binZonedTimestamp(int8(9223372036854775807n)), 'infinity');
    assert.equal(c.binZonedTimestamp(int8(-9223372036854775808n)), '-infinity');
  });

  it('timestamptz past 9999 and before 1 in ISO’s expanded years', () => {
    assert.match(String(c.textToZonedTimestamp('10000-01-01 00:00:00+00')), /^\+010000-01-01T00:00:00(\.0+)?Z$/);
    assert.match(String(c.textToZonedTimestamp('0100-01-01 00:00:00+00 BC')), /^-000099-01-01T00:00:00(\.0+)?Z$/);
    assert.match(String(c.textToZonedTimestamp('294276-12-31 23:59:59+00')), /^\+294276-12-31T23:59:59(\.0+)?Z$/);
    assert.match(String(c.binZonedTimestamp(int8(us('+010000-01-01T00:00:00Z') - PG_EPOCH_US))), /^\+010000-01-01T00:00:00(\.0+)?Z$/);
  });
});

describe('date converters', () => {
  it('every date PostgreSQL holds, and ±infinity as int32’s extremes', () => {
    assert.equal(c.textToDate('1970-01-01'), 0);
    assert.equal(c.textToDate('0044-03-15 BC'), Date.UTC(-43, 2, 15) / 86_400_000);
    assert.equal(c.textToDate('0001-01-01'), (Date.UTC(2001, 0, 1) / 86_400_000) - 146_097 * 5);
    // 5874897-12-31: past Date's range; counted back from 5874897-12-31 by whole 400-year cycles to 2097-12-31.
    assert.equal(c.textToDate('5874897-12-31'), Date.UTC(2097, 11, 31) / 86_400_000 + 146_097 * ((5874897 - 2097) / 400));
    assert.equal(c.textToDate('infinity'), 2147483647);
    assert.equal(c.textToDate('-infinity'), -2147483648);
  });
});

describe('interval converters', () => {
  it('ISO 8601 keeps years, months, days and time apart, whatever their size', () => {
    assert.equal(c.textToIsoInterval('1 year 2 mons 3 days 04:05:06.5'), 'P1Y2M3DT4H5M6.5S');
    assert.equal(c.textToIsoInterval('-178000000 years'), 'P-178000000Y0M0DT0H0M0S');
    assert.equal(c.textToIsoInterval('2562047788:00:54.775807'), 'P0Y0M0DT2562047788H0M54.775807S');
    assert.equal(c.textToIsoInterval('-1 years -2 mons +3 days -04:05:06.5'), 'P-1Y-2M3DT-4H-5M-6.5S');
    assert.equal(c.textToIsoInterval('-00:00:00.000001'), 'P0Y0M0DT0H0M-0.000001S');
    assert.equal(c.textToIsoInterval('00:00:00'), 'P0Y0M0DT0H0M0S');
  });

  it('microseconds (numeric) are exact, a bigint past 2^53, an error past int64', () => {
    assert.equal(c.textToMicroDuration('1 mon'), 2_629_800_000_000);
    assert.equal(c.textToMicroDuration('1 year 2 mons 3 days 04:05:06.5'), (31_557_600 + 2 * 2_629_800 + 3 * 86_400 + 4 * 3600 + 5 * 60) * 1e6 + 6_500_000);
    assert.equal(c.textToMicroDuration('2562047788:00:54.775807'), 9223372036854775807n);
    assert.equal(c.textToMicroDuration('-2562047788:00:54.775808'), -9223372036854775808n);
    assert.equal(c.textToMicroDuration('1000 years'), 1000n * 31_557_600_000_000n);
    assert.throws(() => c.textToMicroDuration('-178000000 years'), /interval "-178000000 years" is beyond what an int64 of microseconds holds; set source\.intervalHandling: string/);
  });
});

describe('timestamp text forms', () => {
  it('the short path and the general one agree: fractions of every length, BC after a fraction, years 1000–9999', () => {
    for (const [text, want] of [
      ['2024-02-29 13:14:15', us('2024-02-29T13:14:15Z')],
      ['2024-02-29 13:14:15.1', us('2024-02-29T13:14:15Z', 100_000)],
      ['2024-02-29 13:14:15.123456', us('2024-02-29T13:14:15Z', 123_456)],
      ['1000-01-01 00:00:00.5 BC', us('-000999-01-01T00:00:00Z', 500_000)],
      ['1000-01-01 00:00:00 BC', us('-000999-01-01T00:00:00Z')],
      ['0999-12-31 23:59:59.999999', us('0999-12-31T23:59:59Z', 999_999)],
    ] as const) assert.equal(BigInt(c.textToMicroTimestamp(text) as number), want, text);
  });
});
