/**
 * State on disk (`state.store: disk`): the window, dedupe and global-window transforms over an
 * LMDB store that caches only a handful of entries, committed through a real embedded log's
 * changelog every few records and restarted (a new store restored from the changelog) part way,
 * with the records since the last commit read again, as after a kill. Each result is compared
 * with the brute-force references of the operators' own tests, and the cache is checked to have
 * stayed at its bound while the state outgrew it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { DiskStateStore } from '../../src/engine/state-disk.ts';
import { changelogConfig, StateStore } from '../../src/engine/state-store.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { dedupeTransform } from '../../src/processors/dedupe/dedupe.ts';
import { windowProcessor, type WindowProcessorConfig } from '../../src/processors/window/spec.ts';
import { globalTransform } from '../../src/processors/window/global.ts';
import { windowTransform } from '../../src/processors/window/window.ts';
import type { RecordTransform, TransformInput, TransformOutput } from '../../src/registry/spec.ts';
import { dedupeConfig, dedupeEvents, dedupeReference } from '../helpers/dedupe-reference.ts';
import { AGGS, byKey, close, config, inOneThread, parsed, rec, reference, sessionWorkload, workload } from '../helpers/window-reference.ts';

const root = mkdtempSync(join(tmpdir(), 'sluice-state-disk-'));
after(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;

const MEMORY_KEYS = 3;

/**
 * Runs a transform over `inputs` on a disk store, committing every `every` records; at `crashAt`
 * the run stops without committing, a new store is restored from the changelog, and the records
 * from the last commit on are read again. Returns the committed output and the largest state and
 * cache seen after a commit.
 */
async function runOnDisk(make: () => RecordTransform, inputs: TransformInput[], o: { every: number; crashAt: number }) {
  const dir = join(root, `run${++runs}`);
  const log: Log = await openLog(embeddedLogAt(join(dir, 'log')), {});
  const topic = 't.state.p';
  await log.ensureTopic(topic, changelogConfig({ partitions: 1 }, log.capabilities.compaction));
  const open = async () => {
    const store = await DiskStateStore.open({ dir: join(dir, 'state'), pipeline: 't', processor: 'p', maxKeys: 1_000_000, memoryKeys: MEMORY_KEYS });
    await store.restore(log, topic);
    const t = make();
    t.open!(store);
    return { store, t };
  };
  const { producer } = await log.openProducer('p');
  let { store, t } = await open();
  const committed: TransformOutput[] = [];
  let pending: TransformOutput[] = [];
  let done = 0;
  let biggest = 0;
  let cachedMax = 0;
  let crashed = false;
  for (let i = 0; i < inputs.length; i++) {
    if (i === o.crashAt && !crashed) {
      crashed = true;
      await producer.abort();
      await store.close();
      ({ store, t } = await open());
      pending = [];
      i = done - 1;
      continue;
    }
    pending.push(...(await t.apply(inputs[i])));
    pending.push(...t.tick!(0));
    if ((i + 1) % o.every === 0 || i === inputs.length - 1) {
      store.flush(producer, topic);
      await producer.commit(String(i + 1));
      store.committed();
      committed.push(...pending);
      pending = [];
      done = i + 1;
      biggest = Math.max(biggest, store.size);
      cachedMax = Math.max(cachedMax, store.cached);
    }
  }
  assert.ok(crashed, 'the run restarted part way');
  await store.close();
  assert.equal(existsSync(join(dir, 'state', 't', 'p')), false, 'closing removes the store files (the changelog is the copy)');
  await log.close();
  return { out: committed, biggest, cachedMax };
}

const inputsOf = <T>(evs: T[], recOf: (e: T, i: number) => TransformInput) => evs.map(recOf);

describe('state on disk', () => {
  it('tumbling and hopping windows: every closed window as the definitions say, through a restart, with 3 entries in memory', async () => {
    for (const [window, advance] of [
      [{ type: 'tumbling', size: '10s' }, 10_000],
      [{ type: 'hopping', size: '10s', advance: '2500ms' }, 2500],
    ] as const) {
      const evs = workload(2500, 7, 4000);
      const c = config({ window, watermark: '5s', aggregates: AGGS });
      const { out, biggest, cachedMax } = await runOnDisk(() => windowTransform(c), inputsOf(evs, rec), { every: 40, crashAt: 1234 });
      const want = reference(evs, { size: 10_000, advance, delay: 5000, lateness: 0 });
      const windows = out.filter((r) => r.topic === 'w');
      close(byKey(parsed(windows)), byKey(want.rows));
      assert.equal(out.length - windows.length, want.late.length, 'late records');
      assert.ok(biggest > 3 * MEMORY_KEYS, `the state (${biggest} entries) outgrew the memory bound`);
      assert.ok(cachedMax <= MEMORY_KEYS, `entries cached after a commit: ${cachedMax}`);
    }
  });

  it('session windows: the same sessions as with the state in memory, through a restart', async () => {
    const evs = sessionWorkload(2000, 9, 4000);
    const c = config({ window: { type: 'session', gap: '3s' }, watermark: '5s', aggregates: AGGS });
    const { out } = await runOnDisk(() => windowTransform(c), inputsOf(evs, rec), { every: 25, crashAt: 777 });
    // Sessions merge in another order on disk, so sums may differ in the last bits: compared within 1e-6.
    close(byKey(parsed(out.filter((r) => r.topic === 'w'))), byKey(inOneThread(c, evs)));
  });

  it('dedupe: passes and drops as the definition says, its ids expiring by their timers on disk', async () => {
    const evs = dedupeEvents(4000);
    const { out, cachedMax } = await runOnDisk(() => dedupeTransform(dedupeConfig()), inputsOf(evs, (e) => ({ topic: 'events', partition: 0, offset: e.n, key: null, value: Buffer.from(JSON.stringify(e)), timestamp: 0 })), { every: 30, crashAt: 2100 });
    assert.deepEqual(
      out.map((o) => JSON.parse(String(o.value)).n),
      dedupeReference(evs, 10_000),
    );
    assert.ok(cachedMax <= MEMORY_KEYS);
  });

  it('global window: each group as a GROUP BY over all the rows, from 40 groups with 3 in memory', async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({ sku: `s${(i * 7) % 40}`, qty: (i * 13) % 9 }));
    const written = { type: 'window', name: 'w', inputs: ['events'], groupBy: { sku: 'sku' }, window: { type: 'global' }, aggregates: { n: 'count()', units: 'sum(qty)' } };
    const c = { ...(windowProcessor.config.resolve(written, { root: { processors: [written] }, path: ['processors', '0'], fileName: 't.yaml' }) as WindowProcessorConfig), pipeline: 't' };
    const { out } = await runOnDisk(() => globalTransform(c as never), inputsOf(rows, (r, i) => ({ topic: 'events', partition: 0, offset: i, key: null, value: Buffer.from(JSON.stringify(r)), timestamp: 0 })), { every: 50, crashAt: 1525 });
    const last = new Map<string, { n: number; units: number }>();
    for (const o of out) {
      const v = JSON.parse(String(o.value));
      last.set(v.sku, { n: v.n, units: v.units });
    }
    const want = new Map<string, { n: number; units: number }>();
    for (const r of rows) {
      const w = want.get(r.sku) ?? { n: 0, units: 0 };
      want.set(r.sku, { n: w.n + 1, units: w.units + r.qty });
    }
    assert.deepEqual(new Map([...last].sort()), new Map([...want].sort()));
  });

  it('first and last over merged sessions follow the sessions\' starts, the same in memory and on disk', async () => {
    const evs = [0, 15_000, 9000, 200_000].map((ts, i) => ({ user: 'a', amount: [1, 2, 3, 4][i], merchant: 'm', ts }));
    const c = config({ window: { type: 'session', gap: '10s' }, watermark: '30s', aggregates: { f: 'first(amount)', l: 'last(amount)', n: 'count()' } });
    const { out } = await runOnDisk(() => windowTransform(c), inputsOf(evs, rec), { every: 1, crashAt: 3 });
    const mem = windowTransform(c);
    mem.open!(new StateStore());
    const want: TransformOutput[] = [];
    evs.forEach((e, i) => want.push(...(mem.apply(rec(e, i)) as TransformOutput[]), ...mem.tick!(0)));
    // [0,10) holds 1, [15,25) holds 2, then 3 at 9 s bridges them: by start, first is 1 and last is 2.
    const rows = (xs: TransformOutput[]) => parsed(xs.filter((r) => r.topic === 'w')).map((r) => [r.window_start, r.f, r.l, r.n]);
    assert.deepEqual(rows(out), [[new Date(0).toISOString(), 1, 2, 3]]);
    assert.deepEqual(rows(want), rows(out));
  });

  it('a state key longer than the store takes (a 3,000-character dedupe id) is kept, found again and restored', async () => {
    const long = (n: number) => `id-${n}-`.padEnd(3000, 'x');
    const evs = Array.from({ length: 60 }, (_, n) => ({ n, id: long(n % 20), ts: 1_000_000 + n * 10 }));
    const { out } = await runOnDisk(() => dedupeTransform(dedupeConfig()), inputsOf(evs, (e) => ({ topic: 'events', partition: 0, offset: e.n, key: null, value: Buffer.from(JSON.stringify(e)), timestamp: 0 })), { every: 7, crashAt: 40 });
    assert.deepEqual(
      out.map((o) => JSON.parse(String(o.value)).n),
      Array.from({ length: 20 }, (_, i) => i),
      'the first of each id passes, every repeat (also after the restart) is dropped',
    );
  });

  it('entries changed again after a flush are listed once', async () => {
    const dir = join(root, 'entries');
    const log = await openLog(embeddedLogAt(join(dir, 'log')), {});
    await log.ensureTopic('t.state.p', changelogConfig({ partitions: 1 }, log.capabilities.compaction));
    const { producer } = await log.openProducer('p');
    const store = await DiskStateStore.open({ dir: join(dir, 'state'), pipeline: 't', processor: 'p', maxKeys: 10, memoryKeys: 1 });
    store.put('a', 1);
    store.put('b'.repeat(2000), 1);
    store.flush(producer, 't.state.p');
    store.put('a', 2);
    assert.deepEqual([...store.entries()].sort(), [['a', 2], ['b'.repeat(2000), 1]]);
    await producer.commit('c');
    store.committed();
    store.put('c', 3);
    assert.deepEqual([...store.entries()].sort(), [['a', 2], ['b'.repeat(2000), 1], ['c', 3]]);
    assert.equal(store.size, 3);
    await store.close();
    await log.close();
  });

  it('windows ending together close over several bounded ticks, and none is lost', async () => {
    const store = await DiskStateStore.open({ dir: join(root, 'ticks'), pipeline: 't', processor: 'p', maxKeys: 1_000_000, memoryKeys: 100 });
    const t = windowTransform(config({ window: { type: 'tumbling', size: '10s' }, watermark: '0s', aggregates: { n: 'count()' } }));
    t.open!(store);
    const users = 25_000;
    for (let i = 0; i < users; i++) t.apply(rec({ user: `u${i}`, amount: 1, merchant: 'm', ts: 1000 }, i));
    t.apply(rec({ user: 'late-clock', amount: 1, merchant: 'm', ts: 60_000 }, users));
    const sizes: number[] = [];
    const seen = new Set<string>();
    do {
      const out = t.tick!(0);
      sizes.push(out.length);
      for (const r of parsed(out)) seen.add(r.user);
    } while (t.behind!());
    assert.deepEqual(sizes, [10_000, 10_000, 5000], 'ticks of at most 10,000 windows, the last one not behind');
    assert.equal(seen.size, users);
    await store.close();

    // The memory store's timers give the same bounded, ordered batches.
    const mem = new StateStore();
    for (const [at, k] of [[5, 'b'], [5, 'a'], [3, 'z'], [9, 'c'], [5, 'c']] as const) mem.timer(at, k);
    assert.deepEqual(mem.due(5, 2), ['z', 'a']);
    assert.deepEqual(mem.due(5, 2), ['b', 'c']);
    assert.deepEqual(mem.due(10), ['c']);
    assert.deepEqual(mem.due(10), []);
  });

  it('a pipeline or processor named . or .. is refused before anything is emptied', async () => {
    const dir = join(root, 'dots', 'x');
    mkdirSync(join(dir, 'keep'), { recursive: true });
    for (const [pipeline, processor] of [['t', '..'], ['..', 'p'], ['t', '.']]) {
      await assert.rejects(DiskStateStore.open({ dir, pipeline, processor, maxKeys: 10, memoryKeys: 1 }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'STATE_STORE');
        assert.match(e.message, /named "\.{1,2}" cannot name a directory of on-disk state .*: rename the (pipeline|processor), or keep its state in memory/);
        return true;
      });
    }
    assert.ok(existsSync(join(dir, 'keep')), 'nothing around it was removed');
  });

  it('config: state.store disk with its cache bound and directory; the interval join refuses it at its line', () => {
    const yaml = (p: string) => `name: t\nlog: {dir: ${root}/cfg}\nprocessors:\n${p}`;
    const cfg = parseConfig(yaml(`  - name: w\n    type: window\n    inputs: [topic:e]\n    groupBy: {k: k}\n    window: {type: tumbling, size: 1m}\n    aggregates: {n: count()}\n    state: {store: disk, memoryKeys: 5000, dir: /var/tmp/x}\n`), 'p.yaml', {});
    assert.deepEqual((cfg.processors[0] as WindowProcessorConfig).state, { maxKeys: 1_000_000, commitInterval: 1000, store: 'disk', memoryKeys: 5000, dir: '/var/tmp/x' });
    assert.throws(
      () => parseConfig(yaml(`  - name: j\n    type: interval-join\n    inputs: [topic:e]\n    right: [r]\n    on: k\n    rightOn: k\n    between: {lower: 0, upper: 1m}\n    as: r\n    state:\n      store: disk\n`), 'p.yaml', {}),
      /p\.yaml:13:14: processors\.0\.state\.store: the interval join keeps its buffered records in memory/s,
    );
  });
});
