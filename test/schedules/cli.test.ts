/**
 * `sluice schedules list|run|history` as a user runs them, and `sluice run` of a pipeline that has
 * only schedules, killed with SIGKILL in the middle of a run: after the restart every record in
 * the topic belongs to a run the history says committed, once, and the interrupted fire time is
 * caught up (onMissed: runOnce).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { readHistory } from '../../src/schedules/history.ts';
import type { RunEntry } from '../../src/schedules/types.ts';
import { json, sleep, startApi, type ApiServer } from './api-server.ts';

const dirs: string[] = [];
const servers: ApiServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOKEN = 'tok-5ecret-value';

/** Runs the sluice command (not spawnSync: the API server lives in this process). */
function sluice(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['bin/sluice.js', ...args], { env: { ...process.env, WEATHER_TOKEN: TOKEN } });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

/**
 * Runs the command in this process (faster than a child per call; the API server answers meanwhile),
 * with what it writes to stdout and stderr captured.
 */
async function inProcess(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const w = { out: process.stdout.write, err: process.stderr.write };
  let out = '';
  let err = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true)) as typeof process.stderr.write;
  process.env.WEATHER_TOKEN = TOKEN;
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    process.stdout.write = w.out;
    process.stderr.write = w.err;
  }
}

function pipeline(dir: string, api: string, cron: string): string {
  const file = join(dir, 'pipeline.yaml');
  writeFileSync(
    file,
    `name: external
log:
  dir: ${join(dir, 'log')}
state:
  dir: ${join(dir, 'state')}
logging:
  level: debug   # every line is checked for the token
schedules:
  - name: weather
    cron: "${cron}"
    request:
      url: ${api}/weather?units=metric
      headers:
        Authorization: Bearer \${WEATHER_TOKEN}
      records: list
      timeoutMs: 5s
    transform:
      fields:
        city: name
        temp: main.temp
    topic: topic_external_data
    key: city
  - name: market
    cron: "0 */5 * * * *"
    timezone: America/New_York
    request:
      url: ${api}/broken
    retries:
      attempts: 2
      backoffMs: 10ms
    topic: topic_external_data
`,
  );
  return file;
}

describe('sluice schedules', () => {
  it('lists, runs one now and shows the history', async () => {
    let n = 0;
    const api = await startApi((req, res, a) => {
      if (req.url.pathname === '/broken') return void res.writeHead(500).end();
      assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
      n++;
      const list = [{ name: `Berlin${n}`, main: { temp: 1.5 } }, { name: `Lagos${n}`, main: { temp: 31 } }];
      json(res, a, { list }, list);
    });
    servers.push(api);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-sched-cli-'));
    dirs.push(dir);
    const file = pipeline(dir, api.url, '0 * * * *');

    const help = await sluice(['schedules', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /^usage: sluice schedules list <pipeline.yaml>/);
    assert.match(help.out, /examples:\n {2}sluice schedules list pipeline.yaml/);
    const top = await inProcess(['--help']);
    assert.match(top.out, /\n {2}schedules /);

    const list0 = await inProcess(['schedules', 'list', file]);
    assert.equal(list0.code, 0, list0.err);
    assert.match(list0.out, /^schedule +cron +next fire +topic +last run\n/);
    assert.match(list0.out, /\nweather +0 \* \* \* \* +\d{4}-\d\d-\d\dT\d\d:00:00Z +topic_external_data +never ran\n/);
    assert.match(list0.out, /\nmarket +0 \*\/5 \* \* \* \* \(America\/New_York\) +\S+ +topic_external_data +never ran\n/);

    const run = await sluice(['schedules', 'run', file, 'weather']);
    assert.equal(run.code, 0, run.err);
    assert.match(run.out, /^run weather@manual-\S+: ok, 2 record\(s\) written to topic_external_data in \d+ ms \(1 page\(s\), 1 request\(s\)\); recorded in external\.schedules\n$/);
    const bad = await inProcess(['schedules', 'run', file, 'market']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /failed after \d+ ms \(2 request\(s\)\): \[SCHEDULE_HTTP\] GET http:\/\/127\.0\.0\.1:\d+\/broken answered 500 Internal Server Error \(after 2 attempts; retries.attempts is 2\)\nnothing written to topic_external_data/);
    const unknown = await inProcess(['schedules', 'run', file, 'news']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /error \[SCHEDULE_UNKNOWN\]: the pipeline external has no schedule "news"; its schedules: weather, market/);
    const usage = await inProcess(['schedules', 'purge', file]);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /unknown action purge: use list, run or history/);

    const hist = await inProcess(['schedules', 'history', file]);
    assert.equal(hist.code, 0, hist.err);
    const lines = hist.out.trim().split('\n');
    assert.match(lines[0], /^started +schedule +trigger +status +duration +records +requests +error \/ note$/);
    assert.match(lines[1], /^\S+Z +weather +manual +ok +\d+ ms +2 +1$/);
    assert.match(lines[2], /^\S+Z +market +manual +failed +\d+ ms +0 +2 +\[SCHEDULE_HTTP\] GET .*\/broken answered 500/);
    const one = await inProcess(['schedules', 'history', file, 'weather', '--json', '--limit', '1']);
    const entries = one.out.trim().split('\n').map((l) => JSON.parse(l) as RunEntry);
    assert.equal(entries.length, 1);
    assert.equal(entries[0].schedule, 'weather');
    assert.equal(entries[0].records, 2);
    const limited = await inProcess(['schedules', 'history', file, '--limit', '1']);
    assert.match(limited.out, /\(the last 1 of 2 runs; --limit 0 shows all\)/);

    const list1 = await inProcess(['schedules', 'list', file]);
    assert.match(list1.out, /\nweather .* ok \S+Z \(2 records\)\n/);
    assert.match(list1.out, /\nmarket .* failed \S+Z \[SCHEDULE_HTTP\]\n/);
    for (const r of [help, list0, run, bad, unknown, hist, one, list1]) assert.ok(!(r.out + r.err).includes(TOKEN), 'the token is never printed');

    const log = await openLog(embeddedLogAt(join(dir, 'log')), { readOnly: true });
    try {
      const [p] = await log.offsets('topic_external_data').then((ps) => ps.filter((x) => x.end > x.start));
      assert.ok(p, 'records were written');
    } finally {
      await log.close();
    }
  });

  it('sluice run with only schedules: killed mid-run, restarted, every committed run once and the lost fire caught up', async () => {
    let hang = false;
    let n = 0;
    const api = await startApi(async (req, res, a) => {
      if (req.url.pathname === '/broken') return void res.writeHead(500).end();
      n++;
      if (hang) {
        await new Promise(() => {}); // never answers: the process is killed during this run
      }
      const list = [{ name: `City${n}a`, main: { temp: n } }, { name: `City${n}b`, main: { temp: -n } }];
      json(res, a, { list }, list);
    });
    servers.push(api);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-sched-run-'));
    dirs.push(dir);
    const file = pipeline(dir, api.url, '* * * * * *');
    const logDir = join(dir, 'log');
    const history = async (): Promise<RunEntry[]> => {
      const log = await openLog(embeddedLogAt(logDir), { readOnly: true }).catch(() => null);
      if (!log) return [];
      try {
        return await readHistory(log, 'external', 'weather');
      } finally {
        await log.close();
      }
    };
    const child = (): ChildProcess => spawn(process.execPath, ['bin/sluice.js', 'run', file], { env: { ...process.env, WEATHER_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let c: ChildProcess | null = null;
    const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms = 45_000) => {
      const t0 = Date.now();
      while (!(await cond())) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}; requests: ${api.requests.length}, history: ${JSON.stringify(await history())}, child exit: ${c?.exitCode}, stderr (end): ${err.slice(-1500)}`);
        await sleep(50);
      }
    };

    c = child();
    c.stderr!.on('data', (d) => (err += d));
    await waitFor('two ok runs', async () => (await history()).filter((e) => e.status === 'ok').length >= 2);
    hang = true;
    const hungAt = api.requests.length;
    await waitFor('the hanging request', () => api.requests.length > hungAt);
    c.kill('SIGKILL');
    await new Promise((r) => c!.once('exit', r));
    const killedFire = new Date(Math.floor(api.requests[hungAt].at / 1000) * 1000).toISOString();
    hang = false;
    const committed = (await history()).length;

    c = child();
    err = '';
    c.stderr!.on('data', (d) => (err += d));
    await waitFor('the catch-up run', async () => (await history()).some((e) => e.trigger === 'catch-up'));
    c.kill('SIGINT');
    const code = await new Promise((r) => c!.once('exit', r));
    assert.equal(code, 0, err);
    assert.ok(!err.includes(TOKEN), 'the token is never logged');

    const all = await history();
    assert.ok(all.length > committed);
    assert.ok(!all.some((e) => e.fireTime === killedFire && e.trigger === 'cron'), 'the killed run left no entry');
    const catchUp = all.find((e) => e.trigger === 'catch-up')!;
    assert.equal(catchUp.status, 'ok');
    assert.ok(Date.parse(catchUp.fireTime!) >= Date.parse(killedFire), 'the catch-up covers the killed fire time');
    assert.equal(new Set(all.map((e) => e.runId)).size, all.length, 'no run recorded twice');
    const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
    try {
      const recs: { run: string; value: any }[] = [];
      for (const p of await log.offsets('topic_external_data')) {
        for (let at = p.start; at < p.end; ) {
          const r = await log.read('topic_external_data', p.partition, at);
          for (const x of r.records) recs.push({ run: x.headers!['sluice.run'], value: JSON.parse(x.value!.toString()) });
          at = r.next;
        }
      }
      for (const e of all.filter((x) => x.status === 'ok')) assert.equal(recs.filter((r) => r.run === e.runId).length, e.records, e.runId);
      assert.equal(recs.length, all.reduce((s, e) => s + (e.status === 'ok' ? e.records : 0), 0), 'no record without its history entry');
      // The served records (the hung request served none) are the topic's, once each.
      const served = (api.served as any[]).map((x) => ({ city: x.name, temp: x.main.temp }));
      const byCity = (a: any, b: any) => a.city.localeCompare(b.city);
      assert.deepEqual(recs.map((r) => r.value).sort(byCity), served.sort(byCity));
    } finally {
      await log.close();
    }
  });
});
