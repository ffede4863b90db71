/** Cron expressions: parsing (fields, ranges, steps, lists, names, macros, errors) and fire times, in UTC and in time zones across DST. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cronProblem, missedFires, nextFire, parseCron } from '../../src/schedules/cron.ts';

const at = (iso: string) => Date.parse(iso);
const next = (expr: string, from: string, tz = 'UTC') => {
  const t = nextFire(parseCron(expr), at(from), tz);
  return t === null ? null : new Date(t).toISOString();
};
/** The first n fire times after `from`. */
const fires = (expr: string, from: string, n: number, tz = 'UTC') => {
  const c = parseCron(expr);
  const out: string[] = [];
  for (let t = at(from); out.length < n; ) {
    const f = nextFire(c, t, tz);
    if (f === null) break;
    out.push(new Date(f).toISOString());
    t = f;
  }
  return out;
};

describe('cron parsing', () => {
  it('reads values, ranges, steps, lists and names', () => {
    const c = parseCron('*/15 9-17 1,15 JAN-mar mon-FRI');
    assert.deepEqual([...c.minutes], [0, 15, 30, 45]);
    assert.deepEqual([...c.hours], [9, 10, 11, 12, 13, 14, 15, 16, 17]);
    assert.deepEqual([...c.days], [1, 15]);
    assert.deepEqual([...c.months], [1, 2, 3]);
    assert.deepEqual([...c.weekdays], [1, 2, 3, 4, 5]);
    assert.deepEqual([...parseCron('5/20 * * * *').minutes], [5, 25, 45]);
    assert.deepEqual([...parseCron('10-30/10 * * * *').minutes], [10, 20, 30]);
    assert.deepEqual([...parseCron('0 0 * * 7').weekdays], [0], '7 is Sunday');
    assert.deepEqual([...parseCron('0 0 * * 5-7').weekdays].sort(), [0, 5, 6]);
    assert.deepEqual([...parseCron('*/10 * * * * *').seconds], [0, 10, 20, 30, 40, 50]);
    assert.equal(parseCron('*/10 * * * * *').withSeconds, true);
    assert.deepEqual([...parseCron('* * * * *').seconds], [0]);
  });

  it('knows the macros', () => {
    assert.equal(next('@hourly', '2026-12-03T06:51:05Z'), '2026-12-03T07:00:00.000Z');
    assert.equal(next('@daily', '2026-12-03T06:51:05Z'), '2026-12-04T00:00:00.000Z');
    assert.equal(next('@midnight', '2026-12-03T06:51:05Z'), '2026-12-04T00:00:00.000Z');
    assert.equal(next('@weekly', '2026-12-03T06:51:05Z'), '2026-12-06T00:00:00.000Z'); // a Sunday
    assert.equal(next('@monthly', '2026-12-03T06:51:05Z'), '2027-01-01T00:00:00.000Z');
    assert.equal(next('@yearly', '2026-12-03T06:51:05Z'), '2027-01-01T00:00:00.000Z');
    assert.equal(next('@annually', '2026-12-03T06:51:05Z'), '2027-01-01T00:00:00.000Z');
  });

  it('says what is wrong', () => {
    const bad: [string, RegExp][] = [
      ['* * * *', /has 4 fields; write 5/],
      ['* * * * * * *', /has 7 fields/],
      ['60 * * * *', /minute: 60 is outside 0–59/],
      ['* 24 * * *', /hour: 24 is outside 0–23/],
      ['* * 0 * *', /day of month: 0 is outside 1–31/],
      ['* * * 13 *', /month: 13 is outside 1–12/],
      ['* * * * 8', /day of week: 8 is outside 0–7/],
      ['*/0 * * * *', /step .* above 0/],
      ['30-10 * * * *', /runs backwards/],
      ['* * * FOO *', /not a number or a name \(JAN…DEC\)/],
      ['1,,2 * * * *', /empty item/],
      ['@reboot', /unknown macro @reboot/],
      ['? * * * *', /\? is only allowed/],
      ['0 0 30 2 *', /never fires/],
    ];
    for (const [expr, re] of bad) assert.match(cronProblem(expr) ?? 'no problem', re, expr);
    assert.throws(() => parseCron('61 * * * *'), (e: any) => e.code === 'SCHEDULE_CRON' && /minute: 61/.test(e.message));
    assert.match(cronProblem('* * * * *', 'Mars/Olympus') ?? '', /unknown time zone/);
    assert.equal(cronProblem('0 0 29 2 *'), undefined, 'leap days fire every four years');
  });
});

describe('cron fire times', () => {
  it('steps through minutes, hours, days and months in UTC', () => {
    assert.deepEqual(fires('*/15 * * * *', '2026-12-03T06:51:05Z', 3), ['2026-12-03T07:00:00.000Z', '2026-12-03T07:15:00.000Z', '2026-12-03T07:30:00.000Z']);
    assert.equal(next('* * * * *', '2026-12-03T06:51:00Z'), '2026-12-03T06:52:00.000Z', 'strictly after');
    assert.equal(next('30 2 * * *', '2026-12-31T03:00:00Z'), '2027-01-01T02:30:00.000Z');
    assert.equal(next('0 0 31 * *', '2026-04-01T00:00:00Z'), '2026-05-31T00:00:00.000Z', 'skips months without a 31st');
    assert.equal(next('0 0 29 2 *', '2026-03-01T00:00:00Z'), '2028-02-29T00:00:00.000Z');
    assert.equal(next('0 12 * * MON', '2026-12-03T00:00:00Z'), '2026-12-07T12:00:00.000Z');
    assert.deepEqual(fires('*/20 * * * * *', '2026-12-03T06:51:05.500Z', 3), ['2026-12-03T06:51:20.000Z', '2026-12-03T06:51:40.000Z', '2026-12-03T06:52:00.000Z']);
  });

  it('fires on either day when both day fields are restricted (Vixie cron)', () => {
    // The 13th, or any Friday.
    assert.deepEqual(fires('0 0 13 * FRI', '2026-11-01T00:00:00Z', 4), ['2026-11-06T00:00:00.000Z', '2026-11-13T00:00:00.000Z', '2026-11-20T00:00:00.000Z', '2026-11-27T00:00:00.000Z']);
    // A field starting with * is unrestricted: only the 1st.
    assert.deepEqual(fires('0 0 1 * */7', '2026-11-01T00:00:00Z', 1), ['2026-12-01T00:00:00.000Z']);
  });

  it('reads the fields in a time zone, across daylight-saving changes', () => {
    // Berlin is UTC+1 in winter, +2 in summer.
    assert.equal(next('0 9 * * *', '2026-12-03T00:00:00Z', 'Europe/Berlin'), '2026-12-03T08:00:00.000Z');
    assert.equal(next('0 9 * * *', '2026-07-03T00:00:00Z', 'Europe/Berlin'), '2026-07-03T07:00:00.000Z');
    // 2026-03-29: 02:00–03:00 does not exist in Berlin; 02:30 does not fire that day.
    assert.deepEqual(fires('30 2 * * *', '2026-03-28T00:00:00Z', 2, 'Europe/Berlin'), ['2026-03-28T01:30:00.000Z', '2026-03-30T00:30:00.000Z']);
    // 2026-10-25: 02:00–03:00 happens twice; 02:30 fires once, at its first occurrence (CEST).
    assert.deepEqual(fires('30 2 * * *', '2026-10-24T12:00:00Z', 2, 'Europe/Berlin'), ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    // Every 30 minutes through the repeated hour: each wall time once.
    const autumn = fires('*/30 * * * *', '2026-10-24T23:50:00Z', 5, 'Europe/Berlin');
    assert.deepEqual(autumn, ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T02:30:00.000Z', '2026-10-25T03:00:00.000Z']);
    // A zone west of UTC.
    assert.equal(next('0 0 * * *', '2026-12-03T00:00:00Z', 'America/New_York'), '2026-12-03T05:00:00.000Z');
  });

  it('counts missed fire times and finds the last one', () => {
    const c = parseCron('*/10 * * * *');
    assert.equal(missedFires(c, at('2026-12-03T06:00:00Z'), at('2026-12-03T06:09:59Z')), null);
    assert.deepEqual(missedFires(c, at('2026-12-03T06:00:00Z'), at('2026-12-03T06:35:00Z')), { count: 3, more: false, last: at('2026-12-03T06:30:00Z') });
    // A seconds schedule stopped for two days: counted up to 1000, the last one still exact.
    const s = parseCron('* * * * * *');
    const m = missedFires(s, at('2026-12-01T00:00:00Z'), at('2026-12-03T06:51:05.300Z'))!;
    assert.equal(m.more, true);
    assert.equal(m.count, 1000);
    assert.equal(new Date(m.last).toISOString(), '2026-12-03T06:51:05.000Z');
  });
});
