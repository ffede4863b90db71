/** A schedule's `validate:` config: defaults, and each problem reported at its line by the loader. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';

const base = `name: v
source: { type: postgres, connection: postgres://postgres@127.0.0.1:5432/shop }
log:
  dir: /tmp/sluice-never-opened
sinks:
  - name: warehouse
    type: postgres
    connection: postgres://postgres@127.0.0.1:5432/dw
  - name: cache
    type: redis
    connection: redis://127.0.0.1:6379
schedules:
`;

function problems(yaml: string): string {
  try {
    parseConfig(base + yaml, 'p.yaml', {});
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

describe('scheduled validation config', () => {
  it('takes the expect grammar over a table, with its defaults; a volume needs no window here', () => {
    const cfg = parseConfig(
      base +
        `  - name: nightly-quality
    cron: "0 2 * * *"
    timezone: Europe/Berlin
    validate:
      sink: warehouse
      table: public.orders
      expectations:
        - {name: id_not_null, notNull: [id]}
        - {name: has_payment, referential: {field: id, table: public.payments, key: order_id}}
        - {name: rows, volume: {min: 1}}
`,
      'p.yaml',
      {},
    );
    const s = cfg.schedules[0];
    assert.equal(s.request, undefined);
    assert.equal(s.topic, undefined);
    assert.equal(s.validate!.chunkRows, 10_000);
    assert.equal(s.validate!.examples, 10);
    assert.deepEqual(s.validate!.expectations[2], { name: 'rows', volume: { min: 1 } });
  });

  it('reports an unknown sink, a sink it cannot read, dlq, window, expressions in SQL checks and kinds mixed, at their lines', () => {
    const msg = problems(`  - name: q
    cron: "0 2 * * *"
    validate:
      sink: nope
      table: public.orders
      expectations:
        - {name: a, notNull: [id], action: dlq}
        - {name: b, volume: {min: 1, window: 1m}}
        - {name: c, referential: {field: "id + 1", table: "shop.public.*"}}
        - {name: d, freshness: {maxAge: 1h}}
        - {name: e, unique: {fields: [id], window: 1d}, when: "id > 1"}
  - name: r
    cron: "0 2 * * *"
    validate: {sink: cache, table: x, expectations: [{name: a, notNull: [id]}]}
  - name: both
    cron: "0 2 * * *"
    request: {url: "http://x/"}
    topic: ext
    validate: {sink: warehouse, table: x, expectations: [{name: a, notNull: [id]}]}
  - name: none
    cron: "0 2 * * *"
  - name: stray
    cron: "0 2 * * *"
    topic: ext
    validate: {sink: warehouse, table: x, expectations: [{name: a, notNull: [id]}]}
`);
    assert.match(msg, /p\.yaml:16:13: schedules\.0\.validate\.sink: the pipeline has no sink "nope" \(its sinks: warehouse, cache\)/);
    assert.match(msg, /p\.yaml:19:44: schedules\.0\.validate\.expectations\.0\.action: .*no record to dead-letter/);
    assert.match(msg, /p\.yaml:20:\d+: schedules\.0\.validate\.expectations\.1\.volume\.window: .*remove `window`/);
    assert.match(msg, /p\.yaml:21:\d+: schedules\.0\.validate\.expectations\.2\.referential\.field: .*give a column name, not "id \+ 1"/);
    assert.match(msg, /p\.yaml:21:\d+: schedules\.0\.validate\.expectations\.2\.referential\.table: .*another table of the same database/);
    assert.match(msg, /p\.yaml:22:\d+: schedules\.0\.validate\.expectations\.3\.freshness: .*needs `field`/);
    assert.match(msg, /p\.yaml:23:\d+: schedules\.0\.validate\.expectations\.4\.when: .*unique is checked over the whole table/);
    assert.match(msg, /p\.yaml:26:\d+: schedules\.1\.validate\.sink: sink cache is a redis sink: a scheduled validation reads postgres, mysql, duckdb tables only/);
    assert.match(msg, /schedules\.2\.validate: a schedule does one thing: give request or validate, not both/);
    assert.match(msg, /schedules\.3: schedule none does nothing: give it one of `request`, `validate`/);
    assert.match(msg, /schedules\.4\.topic: `topic` is for a schedule that pulls from an API/);
  });

  it('the expect processor still needs a volume window', () => {
    const msg = problems(`  - {name: w, cron: "@daily", request: {url: "http://x/"}, topic: ext}
processors:
  - name: q
    type: expect
    expectations:
      - {name: rows, volume: {min: 1}}
`);
    assert.match(msg, /processors\.0\.expectations\.0\.volume: expectation rows: a volume check of a stream needs `window`/);
  });
});
