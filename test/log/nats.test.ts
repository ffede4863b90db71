/**
 * The nats log's own tests (the conformance suite is nats.conformance.test.ts), against the NATS
 * server scripts/setup.sh starts: a writer killed with SIGKILL in the middle of publishing a commit
 * (readers never see part of it, later commits of other producers in its partitions wait behind
 * it, reopening the producer aborts it, and writing the records again leaves each once); a fenced
 * producer that goes on publishing (none of it is ever visible); a dead writer's commit aborted by
 * another writer after log.commitTimeout; compaction (never the latest committed value of a key
 * while a newer commit of it is in flight or after it is aborted, a writer killed while compacting,
 * tombstones); errors for servers that are not there or do not answer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { LogConfig } from '../../src/config/types.ts';
import * as nats from 'nats';
import { openNatsLog } from '../../src/log/nats/index.ts';
import { Names } from '../../src/log/nats/names.ts';
import { openLog } from '../../src/log/open.ts';
import type { Log, StoredRecord } from '../../src/log/types.ts';
import { Child } from './conformance.ts';
import { natsAdmin, natsConfig, removeNamespace, requireNats, uniqueNamespace } from './nats-helpers.ts';

const CHILD = fileURLToPath(new URL('./nats-child.ts', import.meta.url));
const BASE = 30;
const BIG = 30_000;
const SIZE = 1000;

before(requireNats);

/** Every committed record of a partition, following `next` from its start to its end. */
async function readPartition(log: Log, topic: string, partition: number): Promise<StoredRecord[]> {
  const o = (await log.offsets(topic))[partition];
  const out: StoredRecord[] = [];
  for (let pos = o.start; pos < o.end; ) {
    const r = await log.read(topic, partition, pos);
    assert.ok(r.next > pos);
    out.push(...r.records);
    pos = r.next;
  }
  return out;
}

const valuesOf = async (log: Log, topic: string, partition: number) => (await readPartition(log, topic, partition)).map((r) => r.value!.toString().split(':')[0]);

/** Messages the partition streams of a topic (`t`, 3 partitions) hold, committed or not, as JetStream counts them. */
async function rawMessages(ns: string, topic = 't', partitions = 3): Promise<number> {
  const a = await natsAdmin();
  try {
    const names = new Names(ns);
    let n = 0;
    for (let p = 0; p < partitions; p++) n += (await a.jsm.streams.info(names.stream(topic, p))).state.messages;
    return n;
  } finally {
    await a.close();
  }
}

/** Until `cond` holds (checked every 10 ms), at most `ms`. */
async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    assert.ok(Date.now() < deadline, `${what} within ${ms} ms`);
    await sleep(10);
  }
}

/** Starts test/log/nats-child.ts on `cfg` and kills it (SIGKILL) while its big commit is being published. */
async function killMidCommit(ns: string, cfg: LogConfig, compact = false): Promise<number> {
  const child = new Child(spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(cfg), JSON.stringify({ base: BASE, big: BIG, size: SIZE, compact })], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const base = compact ? 2 * BASE : BASE;
  try {
    await child.line(/^committing$/, 60_000);
    await until(async () => (await rawMessages(ns)) > base + 300, 30_000, 'the big commit started publishing');
  } finally {
    await child.kill('SIGKILL');
  }
  assert.ok(!child.lines.includes('committed'), 'the commit completed before the kill: make it bigger');
  const raw = await rawMessages(ns);
  assert.ok(raw > base && raw < base + BIG, `the streams hold part of the commit (${raw} messages)`);
  return raw;
}

const sorted = (xs: string[]) => [...xs].sort();
const baseOf = (p: number) => Array.from({ length: BASE }, (_, i) => i).filter((i) => i % 3 === p).map((i) => `base-${i}`);

describe('nats log', () => {
  const namespaces: string[] = [];
  const logs: Log[] = [];
  const fresh = (tag: string, extra: Record<string, unknown> = {}) => {
    const ns = uniqueNamespace(tag);
    namespaces.push(ns);
    return { ns, cfg: natsConfig({ namespace: ns, ...extra }) };
  };
  const open = async (cfg: LogConfig, readOnly = false) => {
    const l = await openLog(cfg, { readOnly });
    logs.push(l);
    return l;
  };
  after(async () => {
    for (const l of logs) await l.close().catch(() => {});
    for (const ns of namespaces) await removeNamespace(ns);
  });

  it('a writer killed (SIGKILL) mid-commit: no reader sees part of it, later commits in its partitions wait behind it, reopening aborts it, writing it again leaves each record once', async () => {
    const { ns, cfg } = fresh('kill');
    await killMidCommit(ns, cfg);
    const reader = await open(cfg, true);
    assert.deepEqual((await reader.offsets('t')).map((o) => o.end), [10, 10, 10], 'the committed ends are those of the first commit');
    for (let p = 0; p < 3; p++) assert.deepEqual(await valuesOf(reader, 't', p), baseOf(p), `t/${p} shows the first commit only`);

    // Another producer commits into a partition of the dead commit: its record is stored after
    // the dead commit's, so it waits until that commit is decided (never reordered before it).
    const writer = await open(cfg);
    const q = (await writer.openProducer('q')).producer;
    q.append('t', { key: null, value: 'from-q', timestamp: Date.now() }, 0);
    await q.commit('q1');
    assert.deepEqual((await reader.offsets('t')).map((o) => o.end), [10, 10, 10], 'nothing after the dead commit is visible yet');

    // Opening the producer again aborts its unfinished commit: its records are deleted.
    const { producer, checkpoint } = await writer.openProducer('w');
    assert.equal(checkpoint, 'base');
    assert.deepEqual(await valuesOf(reader, 't', 0), [...baseOf(0), 'from-q'], 'the dead commit\'s records are skipped at once');
    await until(async () => (await rawMessages(ns)) === BASE + 1, 60_000, 'the dead commit\'s records deleted');
    assert.deepEqual(await valuesOf(reader, 't', 1), baseOf(1));

    // The writer resumes from its checkpoint and writes the same records again: each is there once.
    const pad = 'x'.repeat(SIZE);
    for (let i = 0; i < BIG; i++) producer.append('t', { key: null, value: `big-${i}:${pad}`, timestamp: Date.now() }, i % 3);
    await producer.commit('big');
    const all = [...(await valuesOf(reader, 't', 0)), ...(await valuesOf(reader, 't', 1)), ...(await valuesOf(reader, 't', 2))];
    assert.deepEqual(sorted(all), sorted([...baseOf(0), ...baseOf(1), ...baseOf(2), 'from-q', ...Array.from({ length: BIG }, (_, i) => `big-${i}`)]));
    assert.equal(await rawMessages(ns), BASE + 1 + BIG);
  });

  it('a fenced producer that goes on publishing: none of its commit is ever visible, also what it published after the fence', async () => {
    const { ns, cfg } = fresh('zombie');
    // The zombie is another process, so that it goes on publishing while this one takes it over.
    const zombie = new Child(spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(cfg), JSON.stringify({ base: BASE, big: 2 * BIG, size: SIZE })], { stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      await zombie.line(/^committing$/, 60_000);
      await until(async () => (await rawMessages(ns)) > BASE + 300, 30_000, 'the zombie started publishing');
      const b = await open(cfg);
      const { producer, checkpoint } = await b.openProducer('w');
      const atFence = await rawMessages(ns);
      assert.equal(checkpoint, 'base', 'the zombie\'s commit did not complete');
      assert.match((await zombie.line(/^(failed .*|committed)$/, 60_000))[0], /^failed LOG_PRODUCER_FENCED$/, 'the fenced producer\'s commit fails');
      const after = await rawMessages(ns);
      producer.append('t', { key: null, value: 'from-b', timestamp: Date.now() }, 0);
      await producer.commit('b1');
      const reader = await open(cfg, true);
      const seen = [...(await valuesOf(reader, 't', 0)), ...(await valuesOf(reader, 't', 1)), ...(await valuesOf(reader, 't', 2))];
      assert.deepEqual(sorted(seen), sorted([...baseOf(0), ...baseOf(1), ...baseOf(2), 'from-b']), `only committed records are visible (the zombie had ${atFence - BASE} messages stored at the takeover, ${after - BASE} when its commit failed)`);
    } finally {
      await zombie.kill();
    }
  });

  it('a dead writer\'s commit is aborted by another writer after log.commitTimeout, so its partitions go on', async () => {
    const { ns, cfg } = fresh('timeout', { commitTimeout: 1000 });
    await killMidCommit(ns, cfg);
    const writer = await open(cfg);
    const q = (await writer.openProducer('q')).producer;
    q.append('t', { key: null, value: 'from-q', timestamp: Date.now() }, 1);
    await q.commit('q1');
    const reader = await open(cfg, true);
    assert.deepEqual((await reader.offsets('t')).map((o) => o.end), [10, 10, 10]);
    await sleep(1200);
    await writer.enforceRetention();
    assert.deepEqual(await valuesOf(reader, 't', 1), [...baseOf(1), 'from-q']);
    await until(async () => (await rawMessages(ns)) === BASE + 1, 60_000, 'the dead commit\'s records deleted');
    assert.equal((await writer.openProducer('w')).checkpoint, 'base');
  });

  describe('compaction', () => {
    it('never removes the latest committed value of a key while a newer commit of it is in flight, nor after that commit is aborted', async () => {
      const { ns, cfg } = fresh('cflight');
      // The child commits old-<i>, then base-<i> for keys key-<i>, then dies publishing a commit
      // with a newer value of every key: its intent stands, its records are stored.
      const raw = await killMidCommit(ns, cfg, true);
      const writer = await open(cfg);
      const reader = await open(cfg, true);
      // Each partition's first message (old-0, old-1, old-2) stays, though base-<p> replaces it.
      const expected = (p: number) => [`old-${p}`, ...baseOf(p)];
      await writer.enforceRetention();
      for (let p = 0; p < 3; p++) assert.deepEqual(await valuesOf(reader, 't', p), expected(p), `t/${p} after compaction with the commit in flight`);
      assert.equal(await rawMessages(ns), raw - (BASE - 3), 'the replaced old values are deleted, nothing at or after the committed end');
      assert.deepEqual((await reader.offsets('t')).map((o) => o.start), [0, 0, 0]);

      // The commit is aborted (the producer reopened): its values never replace the committed ones.
      const { producer, checkpoint } = await writer.openProducer('w');
      assert.equal(checkpoint, 'base');
      await writer.enforceRetention();
      for (let p = 0; p < 3; p++) assert.deepEqual(await valuesOf(reader, 't', p), expected(p), `t/${p} after compaction right after the abort`);
      await until(async () => (await rawMessages(ns)) === BASE + 3, 60_000, 'the aborted commit\'s records deleted');
      await writer.enforceRetention();
      for (let p = 0; p < 3; p++) assert.deepEqual(await valuesOf(reader, 't', p), expected(p), `t/${p} once the aborted records are gone`);

      // A committed newer value does replace it.
      producer.append('t', { key: 'key-3', value: 'new-3', timestamp: Date.now() }, 0);
      await producer.commit('new');
      await writer.enforceRetention();
      assert.deepEqual(await valuesOf(reader, 't', 0), [...expected(0).filter((v) => v !== 'base-3'), 'new-3']);
      assert.deepEqual((await reader.offsets('t')).map((o) => o.start), [0, 0, 0], 'compaction never moves a partition\'s start');
    });

    it('a writer killed (SIGKILL) while compacting leaves a consistent topic: every key\'s latest value, older ones in order, split values whole; the next run finishes the job', async () => {
      const { ns, cfg } = fresh('cclean');
      const keys = 3000;
      const rounds = 4;
      const bigValue = (round: number) => `r${round}-big:` + 'b'.repeat(2_500_000);
      const w = await open(cfg);
      await w.ensureTopic('c', { partitions: 1, compaction: true });
      const { producer } = await w.openProducer('c');
      producer.append('c', { key: null, value: 'hello', timestamp: Date.now() }, 0);
      for (let round = 0; round < rounds; round++) {
        // A value of 2.5 MB is stored as 3 messages (chunks).
        producer.append('c', { key: 'big', value: bigValue(round), timestamp: Date.now() }, 0);
        for (let k = 0; k < keys; k++) producer.append('c', { key: `key-${k}`, value: `r${round}-key-${k}`, timestamp: Date.now() }, 0);
        await producer.commit(`r${round}`);
      }
      const reader = await open(cfg, true);
      const before = await readPartition(reader, 'c', 0);
      const written = new Map(before.map((r) => [r.offset, r.value!.toString()]));
      const total = await rawMessages(ns, 'c', 1);
      assert.equal(total, 1 + rounds * (3 + keys));
      const ends = await reader.offsets('c');

      const child = new Child(spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(cfg), JSON.stringify({ clean: true })], { stdio: ['ignore', 'pipe', 'pipe'] }));
      try {
        await child.line(/^cleaning$/, 60_000);
        await until(async () => (await rawMessages(ns, 'c', 1)) < total - 300, 60_000, 'the child started deleting');
      } finally {
        await child.kill('SIGKILL');
      }
      assert.ok(!child.lines.includes('cleaned'), 'the compaction completed before the kill: make the topic bigger');
      const left = await rawMessages(ns, 'c', 1);
      assert.ok(left > 1 + 3 + keys, `the kill left part of the work (${left} messages)`);

      const check = async () => {
        assert.deepEqual(await reader.offsets('c'), ends, 'start and end are where they were');
        const after = await readPartition(reader, 'c', 0);
        const lastRound = new Map<string, number>();
        for (const r of after) {
          const v = r.value!.toString();
          assert.equal(written.get(r.offset), v, `offset ${r.offset} holds what was written there`);
          if (r.key === null) continue;
          const round = Number(/^r(\d+)-/.exec(v)![1]);
          const k = r.key.toString();
          assert.ok((lastRound.get(k) ?? -1) < round, `${k}: values in the order written`);
          lastRound.set(k, round);
        }
        assert.equal(after[0].value!.toString(), 'hello', 'records without a key are kept');
        assert.equal(lastRound.size, keys + 1);
        for (const [k, round] of lastRound) assert.equal(round, rounds - 1, `${k} keeps its latest value`);
        return after;
      };
      await check();
      // A new writer's run (a full scan) finishes: each key once, chunks of split values included.
      await w.enforceRetention();
      const after = await check();
      assert.equal(after.length, 1 + 1 + keys);
      assert.equal(await rawMessages(ns, 'c', 1), 1 + 3 + keys, 'nothing left of replaced records (nor of their chunks)');
      assert.equal(after[1].value!.toString(), bigValue(rounds - 1));
    });

    it('tombstones stay readable for tombstoneRetentionMs, then go; records without a key stay; runs are incremental', async () => {
      const { ns, cfg } = fresh('ctomb');
      const w = await open(cfg);
      await w.createTopic('s', { partitions: 1, compaction: true, tombstoneRetentionMs: 1500 });
      assert.deepEqual(await w.topicInfo('s'), { name: 's', partitions: 1, compaction: true, tombstoneRetentionMs: 1500 });
      await assert.rejects(w.createTopic('bad', { partitions: 1, compaction: true, tombstoneRetentionMs: -1 }), (e: { code?: string }) => e.code === 'LOG_TOPIC_CONFIG');
      const { producer } = await w.openProducer('p');
      const put = (key: string | null, value: string | null) => producer.append('s', { key, value, timestamp: Date.now() }, 0);
      put('first', 'first');
      put('a', 'a1');
      put('b', 'b1');
      put(null, 'keyless');
      put('a', null);
      await producer.commit('1');
      const reader = await open(cfg, true);
      const view = async () => (await readPartition(reader, 's', 0)).map((r) => `${r.key?.toString() ?? '-'}=${r.value?.toString() ?? 'null'}`);
      await w.enforceRetention();
      assert.deepEqual(await view(), ['first=first', 'b=b1', '-=keyless', 'a=null'], 'a1 replaced by its tombstone, which stays for now');
      const end = (await reader.offsets('s'))[0].end;
      assert.deepEqual((w as unknown as { compactionMemory(t: string, p: number): unknown }).compactionMemory('s', 0), { scanned: end, keys: 3 });
      put('b', 'b2');
      await producer.commit('2');
      await w.enforceRetention();
      assert.deepEqual(await view(), ['first=first', '-=keyless', 'a=null', 'b=b2']);
      await sleep(1600);
      await w.enforceRetention();
      assert.deepEqual(await view(), ['first=first', '-=keyless', 'b=b2'], 'the aged tombstone is gone');
      assert.equal(await rawMessages(ns, 's', 1), 3);
      // Another writer (nothing remembered: a full scan) agrees, and a tombstone that is a
      // partition's first message stays (deleting it would move the start).
      const w2 = await open(cfg);
      await w2.enforceRetention();
      assert.deepEqual(await view(), ['first=first', '-=keyless', 'b=b2']);
      put('first', null);
      await producer.commit('3');
      await sleep(1600);
      await w2.enforceRetention();
      assert.deepEqual(await view(), ['first=first', '-=keyless', 'b=b2'], 'the tombstone went once aged; the first message stays');
      assert.equal((await reader.offsets('s'))[0].start, 0);
    });

    it('remembers at most compactionMaxKeys keys per partition: a forgotten key keeps its older records, never loses its latest', async () => {
      const { ns, cfg } = fresh('ckeys');
      const o = cfg as unknown as { servers: string[]; namespace: string };
      const w = await openNatsLog(nats, { servers: o.servers, namespace: o.namespace, replicas: 1, defaultPartitions: 1, maxCommitBytes: 8 << 20, commitTimeoutMs: 120_000, connectTimeoutMs: 5000, requestTimeoutMs: 10_000, retentionCheckMs: 0, compactionMaxKeys: 10 });
      logs.push(w);
      await w.createTopic('k', { partitions: 1, compaction: true });
      const { producer } = await w.openProducer('p');
      producer.append('k', { key: null, value: 'first', timestamp: Date.now() }, 0);
      // 30 keys written once, then again: the 10 remembered after the first round are forgotten
      // while the second round goes through the first 20, so nothing is deleted, safely.
      for (const round of [1, 2]) for (let k = 0; k < 30; k++) producer.append('k', { key: `key-${k}`, value: `r${round}-${k}`, timestamp: Date.now() }, 0);
      // Then keys written twice in a row: remembered, so their first value goes.
      for (let k = 0; k < 5; k++) for (const round of [1, 2]) producer.append('k', { key: `pair-${k}`, value: `r${round}-pair-${k}`, timestamp: Date.now() }, 0);
      await producer.commit('1');
      await w.enforceRetention();
      assert.equal(w.compactionMemory('k', 0)!.keys, 10);
      const values = (await readPartition(w, 'k', 0)).map((r) => r.value!.toString());
      assert.deepEqual(values, ['first', ...[1, 2].flatMap((r) => Array.from({ length: 30 }, (_, k) => `r${r}-${k}`)), ...Array.from({ length: 5 }, (_, k) => `r2-pair-${k}`)]);
      assert.equal(await rawMessages(ns, 'k', 1), 1 + 60 + 5);
    });
  });

  describe('servers that are not there', () => {
    let hung: Server;
    let hungPort: number;
    const sockets = new Set<Socket>();
    before(async () => {
      // Accepts connections and never says a word (a hung server, or something else on the port).
      hung = createServer((s) => sockets.add(s));
      await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
      hungPort = (hung.address() as { port: number }).port;
    });
    after(async () => {
      const open = sockets.size;
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hung.close(() => r()));
      assert.equal([...sockets].filter((s) => !s.destroyed).length, 0, `${open} connections to the hung server`);
    });

    const unreachable = (server: RegExp) => (e: unknown) => {
      const err = e as { code?: string; message: string; retriable?: boolean };
      assert.equal(err.code, 'LOG_NATS_UNREACHABLE', String(e));
      assert.equal(err.retriable, true);
      assert.match(err.message, server);
      return true;
    };

    it('a refused connection is LOG_NATS_UNREACHABLE naming the servers, retriable, with passwords masked', async () => {
      const t = Date.now();
      await assert.rejects(openLog(natsConfig({ namespace: 'nowhere', servers: ['nats://127.0.0.1:1'], connectTimeout: 2000 })), unreachable(/nats:\/\/127\.0\.0\.1:1\b/));
      await assert.rejects(openLog(natsConfig({ namespace: 'nowhere', servers: ['nats://alice:s3cret@127.0.0.1:1'], connectTimeout: 2000 })), (e: unknown) => {
        unreachable(/alice:\*\*\*@127\.0\.0\.1:1/)(e);
        assert.doesNotMatch((e as Error).message, /s3cret/);
        return true;
      });
      assert.ok(Date.now() - t < 15_000, `took ${Date.now() - t} ms`);
    });

    it('an unknown host and a server that never answers are LOG_NATS_UNREACHABLE within the connect timeout', async () => {
      await assert.rejects(openLog(natsConfig({ namespace: 'nowhere', servers: ['nats://no-such-host.invalid:4222'], connectTimeout: 2000 })), unreachable(/no-such-host\.invalid/));
      const t = Date.now();
      await assert.rejects(openLog(natsConfig({ namespace: 'nowhere', servers: [`nats://127.0.0.1:${hungPort}`], connectTimeout: 1000 })), unreachable(new RegExp(`127\\.0\\.0\\.1:${hungPort}`)));
      assert.ok(Date.now() - t < 10_000, `a hung server held the open for ${Date.now() - t} ms`);
    });

    it('a read-only open of a namespace nobody wrote is LOG_MISSING', async () => {
      const { cfg } = fresh('missing');
      await assert.rejects(openLog(cfg, { readOnly: true }), (e: { code?: string; message: string }) => e.code === 'LOG_MISSING' && /namespace/.test(e.message));
    });
  });
});
