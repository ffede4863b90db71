/** The `schedules:` config: defaults, and problems reported at their line by the loader. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';

const base = `name: ext
log:
  dir: /tmp/sluice-never-opened
schedules:
`;

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(base + yaml, 'p.yaml', env);
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

describe('schedules config', () => {
  it('fills in the defaults; a pipeline may have only schedules', () => {
    const cfg = parseConfig(
      base +
        `  - name: weather
    cron: "0 */6 * * *"
    request:
      url: https://api.example.com/weather
      headers: { Authorization: "Bearer \${TOKEN}" }
    topic: topic_external_data
`,
      'p.yaml',
      { TOKEN: 't' },
    );
    const s = cfg.schedules[0];
    assert.equal(s.timezone, 'UTC');
    assert.equal(s.onMissed, 'runOnce');
    assert.equal(s.maxRecords, 100_000);
    assert.deepEqual(s.retries, { attempts: 3, backoffMs: 1000, maxBackoffMs: 30_000 });
    assert.equal(s.request!.method, 'GET');
    assert.equal(s.request!.timeoutMs, 30_000);
    assert.deepEqual(s.request!.pagination, { type: 'none', start: 1, maxPages: 100 });
    assert.deepEqual(s.request!.headers, { Authorization: 'Bearer t' });
    assert.equal(s.transform, undefined);
    assert.throws(() => parseConfig(base.replace('schedules:\n', ''), 'p.yaml', {}), /neither a source nor processors or sinks/, 'without schedules (or anything else) it is still an error');
  });

  it('checks steps that run after others: names, cron or after, cycles', () => {
    const pull = (name: string, when: string) => `  - { name: ${name}, ${when}, request: { url: "http://127.0.0.1:1/${name}" }, topic: t_${name} }\n`;
    assert.equal(problems(pull('a', 'cron: "@daily"') + pull('b', 'after: [a]') + pull('c', 'after: [a, b]')), '', 'a graph of steps is fine');
    const cfg = parseConfig(base + pull('a', 'cron: "@daily"') + pull('b', 'after: [a]'), 'p.yaml', {});
    assert.deepEqual(cfg.schedules[1].after, ['a']);
    assert.equal(cfg.schedules[1].cron, undefined);
    assert.match(problems(pull('a', 'timezone: UTC')), /p\.yaml:5:\d+: schedules\.0: schedule a has no `cron` \(when it runs\) and no `after`/);
    assert.match(problems(pull('a', 'cron: "@daily"') + pull('b', 'cron: "@daily", after: [a]')), /schedules\.1\.after: schedule b has both `cron` and `after`/);
    assert.match(problems(pull('a', 'cron: "@daily"') + pull('b', 'after: [nope]')), /p\.yaml:6:\d+: schedules\.1\.after\.0: no schedule is named "nope" \(schedules: a, b\)/);
    assert.match(problems(pull('a', 'after: [a]')), /schedules\.0\.after\.0: schedule a cannot run after itself/);
    assert.match(problems(pull('root', 'cron: "@daily"') + pull('a', 'after: [c]') + pull('b', 'after: [a]') + pull('c', 'after: [b, root]')), /schedules\.1\.after: the schedules' `after` steps make a cycle \(a → b → c → a\), so none of them would ever run/);
  });

  it('checks snapshot steps against the source', () => {
    const src = (extra: string) => `name: ext\nsource:\n  type: postgres\n  connection: postgres://u@127.0.0.1/db\n${extra}log:\n  dir: /tmp/sluice-never-opened\nschedules:\n`;
    const step = `  - { name: snap, cron: "@daily", snapshot: { tables: [public.orders] } }\n`;
    const cfg = parseConfig(src('  signalTable: public.sluice_signal\n') + step, 'p.yaml', {});
    assert.deepEqual(cfg.schedules[0].snapshot, { tables: ['public.orders'], waitMs: 3_600_000 });
    assert.throws(() => parseConfig(src('') + step, 'p.yaml', {}), /schedules\.0\.snapshot: .*`source\.signalTable` is not set: set it/);
    assert.match(problems(step), /schedules\.0\.snapshot: an incremental snapshot is the source's, but the pipeline has no `source`/);
    assert.throws(() => parseConfig(src('  signalTable: public.s\n') + `  - { name: snap, cron: "@daily", snapshot: { tables: [orders] } }\n`, 'p.yaml', {}), /schedules\.0\.snapshot\.tables\.0: .*schema\.table/);
  });

  it('reports bad crons, zones, pagination, expressions and names at their lines', () => {
    const msg = problems(`  - name: a
    cron: "61 * * * *"
    timezone: Mars/Base
    request:
      url: http://127.0.0.1:1/x
      body: { q: 1 }
      pagination: { type: cursor }
    transform:
      filter: "temp +"
      fields: { t: "nope(1)" }
    topic: t
  - name: a
    cron: "@reboot"
    request: { url: "http://127.0.0.1:1/y", pagination: { type: page } }
    transform: { module: ./missing.ts, base: "$value" }
    topic: t
`);
    assert.match(msg, /p\.yaml:6:\d+: schedules\.0\.cron: "61 \* \* \* \*": minute: 61 is outside 0–59/);
    assert.match(msg, /p\.yaml:7:\d+: schedules\.0\.timezone: unknown time zone "Mars\/Base"/);
    assert.match(msg, /schedules\.0\.request\.body: a GET request has no body: set `method: POST`/);
    assert.match(msg, /schedules\.0\.request\.pagination: cursor pagination needs `param`/);
    assert.match(msg, /schedules\.0\.request\.pagination: cursor pagination needs `path`/);
    assert.match(msg, /schedules\.0\.transform\.filter: /);
    assert.match(msg, /schedules\.0\.transform\.fields\.t: .*nope/);
    assert.match(msg, /p\.yaml:16:\d+: schedules\.1\.name: another schedule is already named "a"/);
    assert.match(msg, /schedules\.1\.cron: "@reboot": unknown macro @reboot/);
    assert.match(msg, /schedules\.1\.request\.pagination: page pagination needs `param`/);
    assert.match(msg, /schedules\.1\.transform: give either `module` or expressions/);
    assert.match(msg, /schedules\.1\.transform\.module: .*missing\.ts does not exist/);
    assert.match(problems(`  - { name: h, cron: "@daily", request: { url: "http://x/" }, topic: ext.schedules }\n`), /schedules\.0\.topic: ext\.schedules is the pipeline's own topic/);
    const withSource = `source:\n  type: postgres\n  connection: postgres://u@127.0.0.1/db\n  topicPrefix: shop\n${base.replace('name: ext\n', '')}`;
    assert.throws(() => parseConfig(`name: ext\n${withSource}  - { name: s, cron: "@daily", request: { url: "http://x/" }, topic: shop.weather }\n`, 'p.yaml', {}), /schedules\.0\.topic: shop\.weather would be taken for one of the source's change topics \(shop\.<schema>\.<table>\)/);
    assert.match(problems(`  - { name: b, cron: "* * * * *", request: { url: "ftp://x" }, topic: t }\n`), /schedules\.0\.request\.url: "ftp:\/\/x" is not allowed here \(an http:\/\/ or https:\/\/ URL\)/);
  });
});
