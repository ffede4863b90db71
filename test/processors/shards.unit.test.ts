/**
 * Parallel windows (`parallelism` > 1): the window transform spread over worker threads by
 * group-by key (src/engine/shards.ts), committing through a real embedded log's changelog every
 * few records and restarted part way (new threads restoring their partitions), with the records
 * since the last commit read again, as after a kill. The results are compared with the
 * brute-force reference of the window's own tests, or, for sessions, with the transform run in
 * one thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.ts';
import { ShardedRunner } from '../../src/engine/shards.ts';
import { StateStore } from '../../src/engine/state-store.ts';
import { Failure, InlineRunner, type RecordResult } from '../../src/engine/transform-runner.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { windowTransform } from '../../src/processors/window/window.ts';
import type { TransformInput, TransformOutput } from '../../src/registry/spec.ts';
import { AGGS, byKey, close, config, inOneThread, parsed, rec, reference, sessionWorkload, workload } from '../helpers/window-reference.ts';

const root = mkdtempSync(join(tmpdir(), 'sluice-shards-'));
after(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;
const logger = createLogger({ level: 'warn' });
const TOPIC = 't.state.w';

/** Every runner made, closed at the end whatever happened (their threads would keep the test process alive). */
const made: ShardedRunner[] = [];
after(() => Promise.all(made.map((r) => r.close())));

function sharded(c: ReturnType<typeof config>, shards: number, maxKeys = 1_000_000): ShardedRunner {
  return made[made.push(new ShardedRunner({ type: 'window', cfg: c, pipeline: 't', processor: 'w', shards, maxKeys, topicDefaults: { partitions: 1 }, logger }, windowTransform(c))) - 1];
}

const outputs = (results: RecordResult[]): TransformOutput[] =>
  results.flatMap((r) => {
    if (r instanceof Failure) throw r.error;
    return r;
  });

/**
 * Runs the window over `inputs` in `shards` threads, in batches of `batch` records, committing
 * every `every` batches; at batch `crashAt` it stops without committing, new threads restore the
 * state from the changelog, and the records from the last commit on are read again. Returns the
 * committed output.
 */
async function runSharded(c: ReturnType<typeof config>, inputs: TransformInput[], o: { shards: number; batch: number; every: number; crashAt: number }) {
  const log: Log = await openLog(embeddedLogAt(join(root, `run${++runs}`)), {});
  const { producer } = await log.openProducer('w');
  let runner = sharded(c, o.shards);
  await runner.open(log, TOPIC);
  const committed: TransformOutput[] = [];
  let pending: TransformOutput[] = [];
  let done = 0;
  let crashed = false;
  for (let b = 0, at = 0; at < inputs.length; b++) {
    if (b === o.crashAt && !crashed) {
      crashed = true;
      await producer.abort();
      await runner.close();
      runner = sharded(c, o.shards);
      assert.ok((await runner.open(log, TOPIC)) > 0, 'the new threads restored state');
      pending = [];
      at = done;
      continue;
    }
    const recs = inputs.slice(at, at + o.batch);
    at += recs.length;
    pending.push(...outputs(await runner.apply(recs)), ...(await runner.tick(0)));
    if ((b + 1) % o.every === 0 || at === inputs.length) {
      await runner.flush(producer, TOPIC);
      await producer.commit(String(at));
      committed.push(...pending);
      pending = [];
      done = at;
    }
  }
  assert.ok(crashed, 'the run restarted part way');
  const parts = await log.offsets(TOPIC);
  assert.equal(parts.length, o.shards, 'one changelog partition per thread');
  assert.ok(
    parts.every((p) => p.end > p.start),
    'every thread held state',
  );
  await runner.close();
  await log.close();
  return committed;
}

describe('parallel windows', () => {
  it('tumbling and hopping windows over 3 threads: every closed window and late record as the definitions say, through a restart', async () => {
    for (const [window, advance] of [
      [{ type: 'tumbling', size: '10s' }, 10_000],
      [{ type: 'hopping', size: '10s', advance: '2500ms' }, 2500],
    ] as const) {
      const evs = workload(3000, 11, 4000);
      const c = config({ window, watermark: '5s', aggregates: AGGS });
      const out = await runSharded(c, evs.map(rec), { shards: 3, batch: 37, every: 4, crashAt: 41 });
      const want = reference(evs, { size: 10_000, advance, delay: 5000, lateness: 0 });
      const windows = out.filter((r) => r.topic === 'w');
      assert.ok(want.rows.length > 100 && want.late.length > 10, 'the workload closes windows and has late records');
      close(byKey(parsed(windows)), byKey(want.rows));
      // Late records come back from the threads as they were read, bytes and all.
      const late = out.filter((r) => r.topic !== 'w');
      assert.deepEqual(
        late.map((r) => JSON.parse(String(r.value))),
        want.late,
      );
      assert.ok(
        late.every((r) => Buffer.isBuffer(r.value) && Buffer.isBuffer(r.key)),
        'late records keep Buffer keys and values',
      );
    }
  });

  it('session windows over 2 threads: the same sessions as in one thread', async () => {
    const evs = sessionWorkload(2000, 9, 4000);
    const c = config({ window: { type: 'session', gap: '3s' }, watermark: '5s', aggregates: AGGS });
    const out = await runSharded(c, evs.map(rec), { shards: 2, batch: 25, every: 3, crashAt: 31 });
    close(byKey(parsed(out.filter((r) => r.topic === 'w'))), byKey(inOneThread(c, evs)));
  });

  it('a record a thread cannot take comes back as its failure, in its place, and the others go on', async () => {
    const log = await openLog(embeddedLogAt(join(root, 'failures')), {});
    const c = config({ window: { type: 'tumbling', size: '10s' }, watermark: '0s', aggregates: { total: 'sum(amount)' } });
    const runner = sharded(c, 2);
    await runner.open(log, TOPIC);
    const inputs: TransformInput[] = [
      rec({ user: 'a', amount: 1, merchant: 'm', ts: 1000 }, 0),
      { ...rec({ user: 'b', amount: 1, merchant: 'm', ts: 1000 }, 1), value: Buffer.from('{"user": "b", "amount": ') },
      rec({ user: 'c', amount: 'lots' as never, merchant: 'm', ts: 1000 }, 2),
      rec({ user: 'd', amount: 4, merchant: 'm', ts: 30_000 }, 3),
    ];
    const results = await runner.apply(inputs);
    assert.ok(!(results[0] instanceof Failure) && !(results[3] instanceof Failure));
    assert.ok(results[1] instanceof Failure && /JSON/.test(String((results[1].error as Error).message)), 'bad JSON');
    const bad = results[2] as Failure;
    assert.ok(bad instanceof Failure && /total.*is not a number/.test((bad.error as Error).message), `text for sum: ${(bad.error as Error)?.message}`);
    // The watermark moved past a's window on d's time: a's window closes with only a's record in it.
    const closed = parsed((await runner.tick(0)).filter((r) => r.topic === 'w'));
    assert.deepEqual(
      closed.map((r) => [r.user, r.total]),
      [['a', 1]],
    );
    await runner.close();
    await log.close();
  });

  it('an error in a thread (its part of state.maxKeys reached) comes back with its code for the records it hit', async () => {
    const log = await openLog(embeddedLogAt(join(root, 'limit')), {});
    const c = config({ window: { type: 'tumbling', size: '10s' }, watermark: '0s', aggregates: { n: 'count()' } });
    // state.maxKeys 4 over 2 threads: 2 windows each, and 20 users in their own windows.
    const runner = sharded(c, 2, 4);
    await runner.open(log, TOPIC);
    const results = await runner.apply(Array.from({ length: 20 }, (_, i) => rec({ user: `u${i}`, amount: 1, merchant: 'm', ts: 1000 }, i)));
    const failed = results.filter((r) => r instanceof Failure);
    assert.equal(failed.length, 20 - 4, 'each thread took two users');
    for (const f of failed) assert.equal((f.error as { code?: string }).code, 'STATE_LIMIT');
    assert.match(((failed[0] as Failure).error as Error).message, /processor w \(shard [01]\) holds 2 state entries, its limit \(state\.maxKeys\)/);
    await runner.close();
    await log.close();
  });

  it('state written with another parallelism is refused with what to do', async () => {
    const log = await openLog(embeddedLogAt(join(root, 'reshard')), {});
    const c = config({ window: { type: 'tumbling', size: '10s' }, watermark: '0s', aggregates: { n: 'count()' } });
    const { producer } = await log.openProducer('w');
    const runner = sharded(c, 3);
    await runner.open(log, TOPIC);
    await runner.apply([rec({ user: 'a', amount: 1, merchant: 'm', ts: 1000 }, 0)]);
    await runner.flush(producer, TOPIC);
    await producer.commit('1');
    await runner.close();
    const two = sharded(c, 2);
    await assert.rejects(two.open(log, TOPIC), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'STATE_SHARDS');
      assert.match(e.message, /split in 3 parts, written with parallelism: 3, and its config now asks for parallelism: 2\. Set parallelism: 3 again/);
      return true;
    });
    const inline = new InlineRunner(windowTransform(c), new StateStore(), { partitions: 1 }, 'w');
    await assert.rejects(inline.open(log, TOPIC), /parallelism: 3, and its config now asks for parallelism: 1/);
    await log.close();
  });
});
