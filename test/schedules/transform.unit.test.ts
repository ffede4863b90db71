/** A schedule's transform: expressions (filter, base, fields, drop), a user module, and the key. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { loadTransformer } from '../../src/schedules/transform.ts';

const dir = mkdtempSync(join(tmpdir(), 'sluice-sched-tf-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function transformer(s: Record<string, unknown>) {
  const cfg = parseConfig(`name: t\nlog:\n  dir: /tmp/sluice-never-opened\nschedules: ${JSON.stringify([{ name: 'x', cron: '@hourly', request: { url: 'http://127.0.0.1:1/' }, topic: 'out', ...s }])}\n`, join(dir, 'p.yaml'), {});
  return loadTransformer(cfg.schedules[0], { pipeline: 't', logger: createLogger({ level: 'error' }) });
}
const run = { runId: 'x@2026-12-03T06:00:00.000Z', fireTime: Date.parse('2026-12-03T06:00:00Z') };
const records = [
  { symbol: 'AAPL', last: '190.25', prev: '188', volume: 1200, internal: 'a' },
  { symbol: 'TSLA', last: '250', prev: '260', volume: 0, internal: 'b' },
];

describe('schedule transforms', () => {
  it('filters and projects with expressions, keyed by a field', async () => {
    const t = await transformer({ transform: { filter: 'volume > 0', base: '$value', drop: ['internal'], fields: { price: 'number(last)', at: '$timestamp', id: "concat(lower(symbol), '_', $timestamp)" } }, key: 'id' });
    const out = await t(records, run);
    assert.deepEqual(out, [{ key: '"aapl_1796277600000"', value: JSON.stringify({ symbol: 'AAPL', last: '190.25', prev: '188', volume: 1200, price: 190.25, at: 1796277600000, id: 'aapl_1796277600000' }) }]);
  });

  it('writes records as they are without a transform; a record without its key fails the run', async () => {
    const t = await transformer({ key: 'symbol' });
    assert.deepEqual((await t(records, run)).map((r) => r.key), ['"AAPL"', '"TSLA"']);
    const k = await transformer({ key: 'meta.id' });
    await assert.rejects(k(records, run), (e: any) => e.code === 'SCHEDULE_TRANSFORM' && /record 0 of the run has no meta.id \(key\)/.test(e.message));
    const bad = await transformer({ transform: { fields: { n: 'number(symbol)' } } });
    await assert.rejects(bad(records, run), (e: any) => e.code === 'SCHEDULE_TRANSFORM' && /record 0 of the run: transform.fields.n \(number\(symbol\)\) failed/.test(e.message));
  });

  it('calls a module per record: one, many or none back; its error fails the run', async () => {
    writeFileSync(
      join(dir, 'quotes.mjs'),
      `export function shape(r, ctx) {
  if (r.volume === 0) return null;
  if (r.symbol === 'BOOM') throw new Error('bad quote');
  return [{ id: r.symbol + '_' + ctx.fireTime, run: ctx.runId, by: ctx.options.by, schedule: ctx.schedule }, { id: r.symbol + '_copy' }];
}
`,
    );
    const t = await transformer({ transform: { module: './quotes.mjs', export: 'shape', options: { by: 'test' } }, key: 'id' });
    const out = await t(records, run);
    assert.deepEqual(out.map((o) => JSON.parse(o.value)), [{ id: 'AAPL_1796277600000', run: run.runId, by: 'test', schedule: 'x' }, { id: 'AAPL_copy' }]);
    await assert.rejects(t([{ symbol: 'BOOM', volume: 1 }], run), (e: any) => e.code === 'SCHEDULE_TRANSFORM' && /its module's shape\(\) threw: bad quote/.test(e.message));
    await assert.rejects(transformer({ transform: { module: './quotes.mjs' } }), (e: any) => e.code === 'SCHEDULE_MODULE' && /exports no function `default` \(its functions: shape\)/.test(e.message));
  });
});
