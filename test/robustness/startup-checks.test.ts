/**
 * What a source checks when it starts: a MySQL database that does not exist is an error, not a
 * warning followed by capturing nothing forever; captured tables without a primary key get a
 * warning (for PostgreSQL with the REPLICA IDENTITY advice, since the server refuses UPDATE and
 * DELETE on such a table once it is published).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { PipelineConfig } from '../../src/config/types.ts';
import { createLogger } from '../../src/core/logger.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { mysqlPipelineConfig, useMysqlDatabase } from '../helpers/mysql.ts';
import { pipelineConfig, useDatabase, waitUntil } from '../helpers/pipeline.ts';

/** Runs the pipeline until it streams (or fails), collecting its JSON log lines. */
async function startAndStop(cfg: PipelineConfig): Promise<{ lines: any[]; error: (Error & { code?: string }) | null }> {
  const lines: any[] = [];
  const stream = new Writable({ write: (c, _e, cb) => (c.toString().split('\n').filter(Boolean).forEach((l: string) => lines.push(JSON.parse(l))), cb()) });
  const ac = new AbortController();
  let error: (Error & { code?: string }) | null = null;
  const run = runPipeline(cfg, { logger: createLogger({ level: 'info', format: 'json', stream }), signal: ac.signal }).catch((e) => (error = e));
  try {
    await waitUntil('the source to stream or fail', async () => error !== null || lines.some((l) => /^streaming/.test(l.msg)), 60_000);
  } finally {
    ac.abort();
    await run;
  }
  return { lines, error };
}

describe('source start-up checks: MySQL/MariaDB', () => {
  const m = useMysqlDatabase('CREATE TABLE keyed (id INT PRIMARY KEY, v TEXT); CREATE TABLE loose (a INT, b TEXT); INSERT INTO loose VALUES (1, "x")');

  it('a database that does not exist: MYSQL_DATABASE_MISSING at once, naming it', async () => {
    const cfg = mysqlPipelineConfig('nodb', `${m.name}_nope`, m.tmp.dir);
    const { error, lines } = await startAndStop(cfg);
    assert.ok(error, `no error; log: ${JSON.stringify(lines)}`);
    assert.equal(error.code, 'MYSQL_DATABASE_MISSING');
    assert.match(error.message, new RegExp(`source\\.connection names database "${m.name}_nope", which the server does not have \\(or this user cannot see\\): create it, correct the name, or leave the database out`));
    assert.ok(!lines.some((l) => /^streaming/.test(l.msg)), 'it did not stream');
  });

  it('warns about a captured table without a primary key, naming it', async () => {
    const { error, lines } = await startAndStop(mysqlPipelineConfig('keyless', m.name, m.tmp.dir));
    assert.equal(error, null);
    const warns = lines.filter((l) => l.level === 'warn' && /no primary key/.test(l.msg));
    assert.deepEqual(warns.map((l) => l.table), [`${m.name}.loose`]);
    assert.match(warns[0].msg, /its change events carry no key, so table sinks can insert its rows but not apply updates or deletes \(SINK_NO_KEY\)/);
  });
});

describe('source start-up checks: PostgreSQL', () => {
  const f = useDatabase(`CREATE TABLE keyed (id int PRIMARY KEY, v text);
    CREATE TABLE loose (a int, b text);
    CREATE TABLE full_ident (a int, b text); ALTER TABLE full_ident REPLICA IDENTITY FULL;
    CREATE TABLE unique_ident (a int NOT NULL, b text); CREATE UNIQUE INDEX ON unique_ident (a); ALTER TABLE unique_ident REPLICA IDENTITY USING INDEX unique_ident_a_idx;`);

  it('warns about captured tables without a primary key: with the REPLICA IDENTITY advice where UPDATE and DELETE would fail', async () => {
    const { error, lines } = await startAndStop(pipelineConfig('pgkeyless', f.db.name, f.tmp.dir));
    assert.equal(error, null, String(error));
    const warns = lines.filter((l) => l.level === 'warn' && /no primary key/.test(l.msg));
    assert.deepEqual(warns.map((l) => l.table).sort(), ['public.full_ident', 'public.loose', 'public.unique_ident']);
    const loose = warns.find((l) => l.table === 'public.loose');
    assert.match(loose.msg, /has no primary key and no replica identity: PostgreSQL refuses UPDATE and DELETE on it while it is in publication "[a-z0-9_]+" .* Add a primary key, or run ALTER TABLE public\.loose REPLICA IDENTITY FULL/);
    for (const t of ['public.full_ident', 'public.unique_ident']) assert.match(warns.find((l) => l.table === t).msg, /its change events carry no key, so table sinks can insert its rows but not apply updates or deletes/);
    // What the warning says is what the server does.
    await assert.rejects(f.db.client.query(`UPDATE loose SET b = 'y'`), /cannot update table "loose" because it does not have a replica identity and publishes updates/);
    await f.db.client.query(`UPDATE full_ident SET b = 'y'`);
  });
});
