/**
 * What a user sees for a stateful processor's config mistakes: each problem at its line, saying
 * what to write instead (the checks of window, interval-join and dedupe, and the expression
 * checks inside aggregations).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';

const pipeline = (processors: string) => `name: p\nlog: {dir: /tmp/sluice-unused}\nprocessors:\n${processors}`;

function problems(processors: string): string {
  try {
    parseConfig(pipeline(processors), 'p.yaml', {});
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('the config was accepted');
}

const lineOf = (processors: string, text: string) => pipeline(processors).split('\n').findIndex((l) => l.includes(text)) + 1;

describe('stateful processors: config errors', () => {
  it('windows: a session without gap, an advance that does not divide the size, tumbling with advance', () => {
    const y = `  - name: s
    type: window
    inputs: [topic:t]
    window: {type: session, size: 1m}
    aggregates: {n: count()}
  - name: h
    type: window
    inputs: [topic:t]
    window: {type: hopping, size: 10m, advance: 3m}
    aggregates: {n: count()}
  - name: u
    type: window
    inputs: [topic:t]
    window: {type: tumbling, size: 1m, advance: 30s}
    aggregates: {n: count()}
`;
    const m = problems(y);
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'type: session')}:\\d+: processors\\.0\\.window: session windows need \`gap\``));
    assert.match(m, /session windows take only `gap`/);
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'advance: 3m')}:\\d+: processors\\.1\\.window: advance \\(180000 ms\\) must divide size \\(600000 ms\\)`));
    assert.match(m, /tumbling windows take no `advance`: use type: hopping/);
  });

  it('parallel windows: not over global windows, not with the state on disk, at most 64 threads', () => {
    const y = `  - name: g
    type: window
    inputs: [topic:t]
    window: {type: global}
    aggregates: {n: count()}
    parallelism: 2
  - name: d
    type: window
    inputs: [topic:t]
    window: {type: tumbling, size: 1m}
    aggregates: {n: count()}
    state: {store: disk}
    parallelism: 4
`;
    const m = problems(y);
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'parallelism: 2')}:\\d+: processors\\.0\\.parallelism: global windows run in one thread`));
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'parallelism: 4')}:\\d+: processors\\.1\\.parallelism: parallel windows keep their state in memory: use state\\.store: memory`));
    const big = `  - name: big
    type: window
    inputs: [topic:t]
    window: {type: tumbling, size: 1m}
    aggregates: {n: count()}
    parallelism: 100
`;
    assert.match(problems(big), new RegExp(`p\\.yaml:${lineOf(big, 'parallelism: 100')}:\\d+: processors\\.0\\.parallelism: must be <= 64`));
  });

  it('aggregations: unknown functions, bad expressions, names that clash, a fraction out of range', () => {
    const y = `  - name: w
    type: window
    inputs: [topic:t]
    groupBy: {customer: after.customer}
    window: {type: tumbling, size: 1m}
    aggregates:
      m: median(after.x)
      s: sum(after.amount +)
      customer: count()
      p: percentile(after.x, 1.5)
`;
    const m = problems(y);
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'median')}:\\d+: processors\\.0\\.aggregates\\.m: unknown aggregation median: use one of count, sum, avg, min, max, count_distinct, first, last, percentile`));
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'sum(after.amount +)')}:\\d+: processors\\.0\\.aggregates\\.s: `));
    assert.match(m, /processors\.0\.aggregates\.customer: customer is already an output field/);
    assert.match(m, /processors\.0\.aggregates\.p: write percentile\(expression, fraction\) with a fraction from 0 to 1/);
  });

  it('interval joins and dedupe: bounds that cannot pair, a timestamp with processing time', () => {
    const y = `  - name: j
    type: interval-join
    inputs: [topic:a]
    right: [topic:b]
    on: after.id
    rightOn: after.a_id
    between: {lower: 10m, upper: -5m}
    as: b
  - name: d
    type: dedupe
    inputs: [topic:a]
    id: after.change_id
    time: processing
    timestamp: after.ts
`;
    const m = problems(y);
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'between:')}:\\d+: processors\\.0\\.between: lower \\(600000 ms\\) is after upper \\(-300000 ms\\): no record could pair`));
    assert.match(m, new RegExp(`p\\.yaml:${lineOf(y, 'timestamp: after.ts')}:\\d+: processors\\.1\\.timestamp: processing time uses the wall clock`));
  });
});
