/**
 * The scheduler over the embedded log and real local HTTP servers: each run's records and history
 * entry land together, records equal what the server served, a failed run leaves only its history
 * entry, runs of a schedule never overlap (a fire time during a run is recorded as skipped), and a
 * restart after downtime applies onMissed (runOnce: one catch-up run; skip: one skipped entry).
 * Second-granularity cron (6 fields) keeps it fast.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import { Registry } from '../../src/core/metrics.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { Log } from '../../src/log/types.ts';
import { readHistory } from '../../src/schedules/history.ts';
import { Scheduler } from '../../src/schedules/scheduler.ts';
import type { ScheduleConfig } from '../../src/schedules/spec.ts';
import type { RunEntry } from '../../src/schedules/types.ts';
import { json, sleep, startApi, type ApiServer } from './api-server.ts';

const dirs: string[] = [];
const servers: ApiServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function schedules(list: Record<string, unknown>[]): ScheduleConfig[] {
  return parseConfig(`name: ext\nlog:\n  dir: /tmp/sluice-never-opened\nschedules: ${JSON.stringify(list)}\n`, 'test.yaml', {}).schedules;
}

interface Running {
  entries: RunEntry[];
  stop(): Promise<void>;
}

function start(log: Log, list: ScheduleConfig[], registry?: Registry): Running {
  const ac = new AbortController();
  const entries: RunEntry[] = [];
  const s = new Scheduler({ pipeline: 'ext', schedules: list, log, logger: createLogger({ level: 'error' }), topicDefaults: { partitions: 3 }, registry, onEntry: (e) => entries.push(e) });
  const done = s.run(ac.signal);
  return { entries, stop: () => (ac.abort(), done) };
}

async function until(cond: () => boolean, ms = 8000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await sleep(20);
  }
}

async function openTempLog(): Promise<{ dir: string; log: Log }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-sched-'));
  dirs.push(dir);
  return { dir, log: await openLog(embeddedLogAt(dir)) };
}

/** Every record of `topic`, with its run header. */
async function topicRecords(log: Log, topic: string): Promise<{ key: unknown; value: any; run: string }[]> {
  const out: { key: unknown; value: any; run: string }[] = [];
  if (!(await log.topicInfo(topic))) return out;
  for (const p of await log.offsets(topic)) {
    for (let at = p.start; at < p.end; ) {
      const r = await log.read(topic, p.partition, at);
      for (const x of r.records) out.push({ key: x.key ? JSON.parse(x.key.toString()) : null, value: JSON.parse(x.value!.toString()), run: x.headers!['sluice.run'] });
      at = r.next;
    }
  }
  return out;
}

describe('scheduler', { concurrency: true }, () => {
  it('writes each run with its history entry; a malformed answer fails its run and writes none of it', async () => {
    let n = 0;
    const api = await startApi((req, res, a) => {
      n++;
      if (n === 2) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"list": [ {"dt": 1, "main": {"temp": 280.1}');
      const list = [0, 1, 2].map((i) => ({ id: n * 10 + i, name: `city${i}`, main: { temp: 270 + n + i / 10 }, wind: { speed: i } }));
      json(res, a, { cnt: list.length, list }, list);
    });
    servers.push(api);
    const { log } = await openTempLog();
    const registry = new Registry();
    const s = start(
      log,
      schedules([
        {
          name: 'weather',
          cron: '* * * * * *',
          request: { url: `${api.url}/data/2.5/group?id=1,2,3&appid=k3y-v4lue`, records: 'list' },
          transform: { filter: 'main.temp > 0', fields: { city_id: 'id', city: 'name', temp_c: 'main.temp - 273.15', source: "'openweathermap'" } },
          topic: 'topic_external_data',
          key: 'city_id',
        },
      ]),
      registry,
    );
    await until(() => s.entries.length >= 3);
    await s.stop();
    const metrics = registry.render();
    assert.match(metrics, /sluice_events_in_total\{pipeline="ext",component="schedule",schedule="weather"\} 6\n/);
    assert.match(metrics, /sluice_events_out_total\{pipeline="ext",component="schedule",schedule="weather"\} 6\n/);
    assert.match(metrics, /sluice_errors_total\{pipeline="ext",component="schedule",schedule="weather",stage="SCHEDULE_BAD_RESPONSE"\} 1\n/);
    const history = await readHistory(log, 'ext', 'weather');
    assert.deepEqual(history.map((e) => e.status), ['ok', 'failed', 'ok']);
    const failed = history[1];
    assert.equal(failed.error?.code, 'SCHEDULE_BAD_RESPONSE');
    assert.match(failed.error!.message, /\/data\/2\.5\/group\?… answered with something that is not JSON/);
    assert.doesNotMatch(JSON.stringify(history), /k3y-v4lue/, 'the key in the query is never recorded');
    assert.equal(failed.records, 0);
    assert.equal(failed.attempts, 1);
    const recs = await topicRecords(log, 'topic_external_data');
    assert.ok(!recs.some((r) => r.run === failed.runId), 'nothing of the failed run is in the topic');
    // What the server served, transformed, is exactly what the topic holds (by run, in order).
    const expected = (api.served as any[]).map((c) => ({ city_id: c.id, city: c.name, temp_c: c.main.temp - 273.15, source: 'openweathermap' }));
    const got = recs.sort((a, b) => a.value.city_id - b.value.city_id);
    assert.deepEqual(got.map((r) => r.value), expected);
    assert.deepEqual(got.map((r) => r.key), expected.map((e) => e.city_id));
    for (const e of history.filter((x) => x.status === 'ok')) {
      assert.equal(recs.filter((r) => r.run === e.runId).length, e.records);
      assert.equal(e.runId, `weather@${e.fireTime}`);
      assert.equal(e.trigger, 'cron');
      assert.ok(e.durationMs >= 0 && e.pages === 1 && e.attempts === 1);
    }
    await log.close();
  });

  it('never overlaps runs: a fire time during a slow run is recorded as skipped', async () => {
    let n = 0;
    const api = await startApi(async (_req, res, a) => {
      if (n++ === 0) await sleep(2300);
      json(res, a, [{ n }], [{ n }]);
    });
    servers.push(api);
    const { log } = await openTempLog();
    const s = start(log, schedules([{ name: 'market', cron: '* * * * * *', request: { url: `${api.url}/quotes`, timeoutMs: '10s' }, topic: 'topic_external_data' }]));
    await until(() => s.entries.filter((e) => e.status === 'ok').length >= 2);
    await s.stop();
    assert.equal(api.maxInFlight, 1, 'never two requests of the schedule at once');
    const history = await readHistory(log, 'ext');
    const first = history.find((e) => e.status === 'ok')!;
    assert.ok(first.durationMs >= 2200, `the slow run took ${first.durationMs} ms`);
    const skipped = history.filter((e) => e.status === 'skipped');
    assert.ok(skipped.length >= 2, `${skipped.length} skipped`);
    for (const k of skipped) {
      assert.match(k.reason!, /previous run was still going/);
      assert.ok(Date.parse(k.fireTime!) > Date.parse(first.fireTime!) && Date.parse(k.fireTime!) < Date.parse(first.endedAt), 'skipped fire times fall within the slow run');
    }
    const recs = await topicRecords(log, 'topic_external_data');
    assert.deepEqual(recs.map((r) => r.value).sort((a, b) => a.n - b.n), api.served);
    await log.close();
  });

  it('a stop during a run whose server never answers ends at once and writes nothing of that run', async () => {
    let n = 0;
    const api = await startApi(async (_req, res, a) => {
      if (++n >= 2) await new Promise(() => {}); // the second request hangs for good
      json(res, a, [{ n }], [{ n }]);
    });
    servers.push(api);
    const { log } = await openTempLog();
    const s = start(log, schedules([{ name: 'news', cron: '* * * * * *', request: { url: `${api.url}/news`, timeoutMs: '60s' }, topic: 'topic_external_data' }]));
    await until(() => api.requests.length >= 2);
    const t0 = Date.now();
    await s.stop();
    assert.ok(Date.now() - t0 < 5000, `the stop took ${Date.now() - t0} ms, not the request's 60 s timeout`);
    const history = await readHistory(log, 'ext');
    assert.deepEqual(history.map((e) => e.status), ['ok'], 'only the first run, nothing of the one stopped');
    assert.deepEqual((await topicRecords(log, 'topic_external_data')).map((r) => r.value), [{ n: 1 }]);
    await log.close();
  });

  it('after downtime runs once (onMissed: runOnce) or records a skip (onMissed: skip)', async () => {
    const api = await startApi((req, res, a) => json(res, a, [{ path: req.url.pathname, at: Date.now() }], [req.url.pathname]));
    servers.push(api);
    const { dir, log } = await openTempLog();
    const list = schedules([
      { name: 'once', cron: '* * * * * *', request: { url: `${api.url}/once` }, topic: 'news', onMissed: 'runOnce' },
      { name: 'skipper', cron: '* * * * * *', request: { url: `${api.url}/skipper` }, topic: 'news', onMissed: 'skip' },
    ]);
    let s = start(log, list);
    await until(() => s.entries.filter((e) => e.schedule === 'once').length >= 1 && s.entries.filter((e) => e.schedule === 'skipper').length >= 1);
    await s.stop();
    await log.close();
    const before = api.requests.length;
    await sleep(2600); // stopped: two or three fire times pass
    const log2 = await openLog(embeddedLogAt(dir));
    const t0 = Date.now();
    s = start(log2, list);
    await until(() => s.entries.some((e) => e.trigger === 'catch-up' && e.schedule === 'once') && s.entries.some((e) => e.trigger === 'catch-up' && e.schedule === 'skipper'));
    const firstRequestAfter = api.requests[before];
    await s.stop();
    const once = s.entries.find((e) => e.schedule === 'once' && e.trigger === 'catch-up')!;
    assert.equal(once.status, 'ok');
    assert.ok(once.missed! >= 2, `missed ${once.missed}`);
    assert.ok(Date.parse(once.fireTime!) <= t0, 'the catch-up run is for the last fire time missed');
    assert.equal(firstRequestAfter.url.pathname, '/once', 'the catch-up run starts at once');
    assert.ok(firstRequestAfter.at - t0 < 900);
    const skip = s.entries.find((e) => e.schedule === 'skipper' && e.trigger === 'catch-up')!;
    assert.equal(skip.status, 'skipped');
    assert.match(skip.reason!, /fire time\(s\) passed while the pipeline was stopped \(onMissed: skip\)/);
    const history = await readHistory(log2, 'ext');
    assert.equal(history.filter((e) => e.trigger === 'catch-up').length, 2, 'one catch-up entry per schedule, durable');
    // Every request after the restart by `skipper` is a cron run's: it made none for the missed fires.
    const skipperRuns = history.filter((e) => e.schedule === 'skipper' && e.status === 'ok');
    assert.equal(skipperRuns.length, api.requests.filter((r) => r.url.pathname === '/skipper').length);
    // And the records are what was served, once each.
    const recs = await topicRecords(log2, 'news');
    assert.equal(recs.length, api.served.length);
    await log2.close();
  });

  it('runs steps after others for the same fire time, and skips the rest of the chain after a failure', async () => {
    let n = 0;
    const api = await startApi((req, res, a) => {
      if (req.url.pathname === '/root' && ++n === 2) return void res.writeHead(404).end('gone');
      json(res, a, [{ path: req.url.pathname }], [req.url.pathname]);
    });
    servers.push(api);
    const { log } = await openTempLog();
    const s = start(
      log,
      schedules([
        { name: 'root', cron: '* * * * * *', request: { url: `${api.url}/root` }, topic: 'steps', retries: { attempts: 1 } },
        { name: 'b', after: ['root'], request: { url: `${api.url}/b` }, topic: 'steps' },
        { name: 'c', after: ['root', 'b'], request: { url: `${api.url}/c` }, topic: 'steps' },
      ]),
    );
    await until(() => s.entries.filter((e) => e.schedule === 'c').length >= 3, 12_000);
    await s.stop();
    const history = await readHistory(log, 'ext');
    const of = (name: string, fire: string | null) => history.filter((e) => e.schedule === name && e.fireTime === fire);
    const roots = history.filter((e) => e.schedule === 'root');
    assert.equal(roots[1].status, 'failed', 'the second root run failed (404)');
    for (const r of roots) {
      const [b] = of('b', r.fireTime);
      const [c] = of('c', r.fireTime);
      if (!c) continue; // the stop came first
      assert.equal(of('b', r.fireTime).length, 1, 'one b entry per fire time');
      if (r.status === 'ok') {
        assert.equal(b.status, 'ok', JSON.stringify(b));
        assert.equal(b.trigger, 'after');
        assert.equal(c.status, 'ok', JSON.stringify(c));
        assert.ok(Date.parse(b.startedAt) >= Date.parse(r.endedAt) && Date.parse(c.startedAt) >= Date.parse(b.endedAt), 'each step starts after the ones it follows ended');
      } else {
        assert.equal(b.status, 'skipped');
        assert.match(b.reason!, /^root failed for this fire time \(SCHEDULE_HTTP: .*404/);
        assert.equal(c.status, 'skipped');
        assert.match(c.reason!, /^(root failed|b was skipped) for this fire time/);
      }
    }
    // The server saw one request per step that ran ok, and none for the skipped ones.
    for (const name of ['b', 'c']) assert.equal(api.requests.filter((r) => r.url.pathname === `/${name}`).length, history.filter((e) => e.schedule === name && e.status === 'ok').length, name);
    await log.close();
  });

  it('a step whose upstream ran before a crash runs once after the restart, and so do the steps after it', async () => {
    let hang = true;
    const api = await startApi(async (req, res, a) => {
      if (req.url.pathname === '/b' && hang) await new Promise(() => {}); // b never answers in the first process
      json(res, a, [{ path: req.url.pathname }], [req.url.pathname]);
    });
    servers.push(api);
    const { dir, log } = await openTempLog();
    const steps = [
      { name: 'b', after: ['root'], request: { url: `${api.url}/b`, timeoutMs: '60s' }, topic: 'steps' },
      { name: 'c', after: ['root', 'b'], request: { url: `${api.url}/c` }, topic: 'steps' },
    ];
    let s = start(log, schedules([{ name: 'root', cron: '* * * * * *', request: { url: `${api.url}/root` }, topic: 'steps' }, ...steps]));
    await until(() => api.requests.some((r) => r.url.pathname === '/b'));
    await s.stop(); // b's run is stopped: nothing of it is written
    await log.close();
    hang = false;
    const log2 = await openLog(embeddedLogAt(dir));
    const before = await readHistory(log2, 'ext');
    const fire = before.filter((e) => e.schedule === 'root' && e.status === 'ok').at(-1)!.fireTime;
    assert.equal(before.filter((e) => e.schedule !== 'root').length, 0, 'b and c recorded nothing in the first process');
    // Restarted with a root that will not fire again soon: only the catching up runs.
    s = start(log2, schedules([{ name: 'root', cron: '0 0 1 1 *', request: { url: `${api.url}/root` }, topic: 'steps', onMissed: 'skip' }, ...steps]));
    await until(() => s.entries.some((e) => e.schedule === 'c'));
    await s.stop();
    const b = s.entries.filter((e) => e.schedule === 'b');
    const c = s.entries.filter((e) => e.schedule === 'c');
    assert.deepEqual(b.map((e) => [e.status, e.trigger, e.fireTime]), [['ok', 'catch-up', fire]]);
    assert.deepEqual(c.map((e) => [e.status, e.trigger, e.fireTime]), [['ok', 'catch-up', fire]]);
    assert.equal(s.entries.filter((e) => e.schedule === 'root').length, 0, 'root did not run again');
    await log2.close();
  });
});
