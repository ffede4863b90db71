/**
 * A damaged committed record under a running pipeline. What a sink does: its batches before the
 * damage are applied; the batch that reaches it is not, and the sink stops with LOG_CORRUPT (in the
 * log, status.json and /status), never applying anything past it, while the source goes on
 * capturing into the log. Damage in the
 * active segment stops `sluice run` at once, before anything is appended after it.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runPipeline } from '../../src/engine/runner.ts';
import { startPipelineProcess, stopProcess } from '../helpers/child.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, readAll, useDatabase, waitUntil } from '../helpers/pipeline.ts';
import { parseConfig } from '../../src/config/index.ts';

const flip = (path: string, at: number) => {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] ^= 0x20;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
};

describe('a damaged committed record under sluice run', () => {
  const f = useDatabase(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('v', 20) || g FROM generate_series(1, 300) g`);

  it('a sink applies its batches before the damage and stops with LOG_CORRUPT at the one that reaches it; the source goes on; damage in the active segment stops the run at once', async () => {
    const logDir = join(f.tmp.dir, 'log');
    // One partition, small segments: the table spans several.
    const yaml = (sinks = '') => pipelineYaml('dmg', f.db.name, f.tmp.dir, '', sinks).replace(/log:\n {2}dir: (.*)\n {2}partitions: 3\n/, 'log:\n  dir: $1\n  partitions: 1\n  segmentBytes: 4096\n');
    // 1. Snapshot the table into the log.
    const cfg = parseConfig(yaml(), 'dmg.yaml', process.env);
    const ac = new AbortController();
    const run = runPipeline(cfg, { logger: quietLogger(), signal: ac.signal });
    await waitUntil('the snapshot in the log', async () => (await readAll(logDir, 'dmg.')).filter((r) => r.value).length === 300);
    ac.abort();
    await run;
    const events = (await readAll(logDir, 'dmg.')).filter((r) => r.value);
    const pdir = join(logDir, 'topics', 'dmg.public.t', '0');
    const segs = readdirSync(pdir).filter((x) => x.endsWith('.seg')).sort();
    assert.ok(segs.length >= 4, `${segs.length} segments`);
    // 2. Damage a closed segment in the middle, inside a record.
    const damagedAt = Number(segs[2].slice(0, -4));
    flip(join(pdir, segs[2]), 60);
    const before = events.filter((e) => e.offset < damagedAt).map((e) => e.value.after.id).sort((a, b) => a - b);
    // 3. Run with a sink into an empty target.
    const target = await freshDatabase();
    const yamlPath = join(f.tmp.dir, 'dmg.yaml');
    writeFileSync(yamlPath, yaml(`sinks:\n  - name: w\n    type: postgres\n    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }\n    batch: { maxRecords: 5 }\n`));
    const child = startPipelineProcess(yamlPath);
    const status = () => JSON.parse(readFileSync(join(f.tmp.dir, 'state', 'status.json'), 'utf8'));
    try {
      await waitUntil('the sink to stop', async () => {
        if (child.exitCode !== null) throw new Error(child.stderrText());
        return status().sinks[0].state === 'failed';
      });
      const sink = status().sinks[0];
      assert.equal(sink.error.code, 'LOG_CORRUPT');
      assert.match(sink.error.message, new RegExp(`log segment .*${segs[2]} is damaged at byte 0 \\(checksum mismatch\\): the records of dmg\\.public\\.t/0 from offset ${damagedAt} on cannot be read`));
      assert.match(sink.error.message, /Restore the log directory from a backup .* or start over/);
      // Batches of 5: those before the damage are applied; the one that meets it is not, and
      // nothing after it is. The target holds exactly the log's records before its stored offset.
      const stored = sink.offsets['dmg.public.t/0'];
      assert.ok(stored <= damagedAt && stored > damagedAt - 5, `the sink stopped at offset ${stored}, the damage is at ${damagedAt}`);
      const applied = (await target.client.query('SELECT id FROM t ORDER BY id')).rows.map((r) => r.id);
      assert.deepEqual(applied, events.filter((e) => e.offset < stored).map((e) => e.value.after.id).sort((a, b) => a - b), 'the target holds exactly the records before the offset it stopped at');
      assert.ok(applied.length >= before.length - 5);
      // The source goes on: a new change reaches the log.
      await f.db.client.query(`INSERT INTO t VALUES (1000, 'new')`);
      await waitUntil('the new change in the log', async () => {
        const r = await readAll(logDir, 'dmg.').catch(() => null);
        return r === null ? (await tailOf(logDir)) : false;
      });
      await stopProcess(child);
      assert.equal(child.exitCode, 0, child.stderrText().slice(-2000));
      assert.equal((await target.client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, applied.length, 'still nothing past the damage');
    } finally {
      await stopProcess(child, 'SIGKILL');
      await target.drop();
    }
    // 4. Damage in the active segment: the run stops at once, appending nothing.
    const active = readdirSync(pdir).filter((x) => x.endsWith('.seg')).sort().at(-1)!;
    flip(join(pdir, active), 60);
    const again = startPipelineProcess(yamlPath);
    const code = await new Promise<number | null>((r) => again.once('exit', (c) => r(c)));
    assert.equal(code, 1);
    assert.match(again.stderrText(), new RegExp(`error \\[LOG_CORRUPT\\]: log segment .*${active} is damaged at byte \\d+ \\(checksum mismatch\\).*the log is not opened for writing, so nothing is appended after the damage`));
  });
});

/** Whether the last record of the table topic is the new row (read past the damage from its end). */
async function tailOf(logDir: string): Promise<boolean> {
  const { embeddedLogAt, openLog } = await import('../../src/log/open.ts');
  const log = await openLog(embeddedLogAt(logDir), { readOnly: true });
  try {
    const [o] = await log.offsets('dmg.public.t');
    if (o.end === 0) return false;
    const r = await log.read('dmg.public.t', 0, o.end - 1);
    return r.records.some((x) => x.value && JSON.parse(x.value.toString()).after?.id === 1000);
  } finally {
    await log.close();
  }
}
