/**
 * CouchDB → embedded log, end to end: a real PouchDB Server (in memory, started here on port 15984)
 * and real pipelines run by the CLI. The initial pass of existing documents, live creates, updates
 * and deletes, kill -9 of the pipeline in the middle of a stream of writes and restarts (every
 * change exactly once per update sequence, the log's final state equal to the server's own
 * `_all_docs`), a conflict reported in the event and the status, and the errors a user meets: a
 * wrong password, an unreachable server (neither message holding the password), a bad config line.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { parseConfig } from '../../../src/config/index.ts';
import { createLogger } from '../../../src/core/logger.ts';
import { runPipeline } from '../../../src/engine/runner.ts';
import { killRepeatedly, startPipelineProcess, stopProcess } from '../../helpers/child.ts';
import { countRecords, freePort, readAll, tempDir, waitUntil, type ReadRecord } from '../../helpers/pipeline.ts';

const PORT = 15984;
const BASE = `http://127.0.0.1:${PORT}`;
const ADMIN = 'admin';
const PASSWORD = 'Pw-q7Zk93x';
const AUTH = 'Basic ' + Buffer.from(`${ADMIN}:${PASSWORD}`).toString('base64');

let server: ChildProcess | null = null;
const tmp = tempDir('sluice-couchdb-');

async function couch(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(BASE + path, { method, headers: { authorization: AUTH, 'content-type': 'application/json', accept: 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Starts PouchDB Server in memory on PORT, with an admin (so credentials are checked); fails loudly when it cannot. */
async function startServer(): Promise<void> {
  const require = createRequire(import.meta.url);
  let bin: string;
  try {
    bin = join(require.resolve('pouchdb-server/package.json'), '..', 'bin', 'pouchdb-server');
  } catch (e) {
    throw new Error('the devDependency pouchdb-server is not installed: run npm install', { cause: e });
  }
  // It writes config.json and log.txt into its working directory.
  const cwd = join(tmp.dir, 'server');
  mkdirSync(cwd, { recursive: true });
  // Another process on the port would answer in its place: refuse to go on with it.
  const taken = await fetch(BASE + '/').then(
    () => true,
    () => false,
  );
  if (taken) throw new Error(`port ${PORT} is already in use by another process: the test starts its own pouchdb-server there. Stop that process`);
  const child = spawn(process.execPath, [bin, '--in-memory', '--port', String(PORT), '--host', '127.0.0.1'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  server = child;
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let exited = false;
  child.once('exit', () => (exited = true));
  const end = Date.now() + 20_000;
  // Up when it says so (its own line, not another server's answer) and answers.
  while (!/has started on/.test(out)) {
    if (exited) throw new Error(`pouchdb-server exited at start:\n${out.slice(-2000)}`);
    if (Date.now() > end) throw new Error(`pouchdb-server did not start on port ${PORT} within 20 s:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const info = await (await fetch(BASE + '/')).json();
  if (!String(info['express-pouchdb'] ?? '').includes('Welcome')) throw new Error(`port ${PORT} answers, but not as pouchdb-server: ${JSON.stringify(info)}`);
  const res = await fetch(`${BASE}/_config/admins/${ADMIN}`, { method: 'PUT', body: JSON.stringify(PASSWORD), headers: { 'content-type': 'application/json' } });
  if (!res.ok) throw new Error(`pouchdb-server refused to create its admin: HTTP ${res.status} ${await res.text()}`);
}

before(startServer);
after(async () => {
  if (server) await stopProcess(server, 'SIGKILL');
  tmp.remove();
});

function yaml(name: string, o: { url?: string; dbs: string[]; extra?: string }): string {
  const dir = join(tmp.dir, name);
  return `name: ${name}
source:
  type: couchdb
  connection: ${o.url ?? `http://${ADMIN}:${PASSWORD}@127.0.0.1:${PORT}`}
  databases: [${o.dbs.join(', ')}]
  heartbeatIntervalMs: 1000
  limit: 50
${o.extra ?? ''}state:
  dir: ${join(dir, 'state')}
log:
  dir: ${join(dir, 'log')}
  partitions: 3
logging:
  level: info
`;
}

function writeConfig(name: string, text: string): string {
  const p = join(tmp.dir, `${name}.yaml`);
  writeFileSync(p, text);
  return p;
}

/** Change events (no tombstones) of a topic. */
const events = (recs: ReadRecord[], topic: string) => recs.filter((r) => r.topic === topic && r.value !== null);

/** The server's own view: every document's latest change since 0 (with tombstones), and `_all_docs`. */
async function serverTruth(db: string) {
  const changes = await couch('GET', `/${db}/_changes?since=0&style=all_docs&include_docs=true`);
  const all = await couch('GET', `/${db}/_all_docs?include_docs=true`);
  return { latest: new Map<string, any>(changes.results.map((r: any) => [r.id, r])), live: new Map<string, any>(all.rows.map((r: any) => [r.id, r.doc])), updateSeq: (await couch('GET', `/${db}`)).update_seq };
}

const body = (doc: Record<string, unknown>) => Object.fromEntries(Object.entries(doc).filter(([k]) => !['_id', '_rev', '_conflicts', '_deleted'].includes(k)));

describe('couchdb source → embedded log', () => {
  it('reads every document, streams creates/updates/deletes, survives kill -9 with each change once, reports a conflict', async () => {
    const DB = 'orders';
    const DB2 = 'shop-eu';
    await couch('PUT', `/${DB}`);
    await couch('PUT', `/${DB2}`);
    await couch('POST', `/${DB}/_bulk_docs`, { docs: Array.from({ length: 200 }, (_, i) => ({ _id: `o${String(i).padStart(4, '0')}`, n: i, items: [{ sku: `s${i}`, qty: i % 5 }], note: i % 7 === 0 ? 'ünïcödé "quoted"' : null })) });
    await couch('POST', `/${DB2}/_bulk_docs`, { docs: Array.from({ length: 20 }, (_, i) => ({ _id: `c${i}`, name: `customer ${i}` })) });
    // Before the pipeline starts: updated, deleted and design documents.
    const first = (await couch('GET', `/${DB}/_all_docs?limit=5`)).rows;
    await couch('POST', `/${DB}/_bulk_docs`, { docs: first.map((r: any) => ({ _id: r.id, _rev: r.value.rev, _deleted: true })) });
    const u = await couch('GET', `/${DB}/o0010`);
    await couch('PUT', `/${DB}/o0010`, { ...u, n: 'updated before start' });
    await couch('PUT', `/${DB}/_design/v`, { views: { all: { map: 'function (doc) { emit(doc._id) }' } } });

    const name = 'cdb';
    const cfgPath = writeConfig(name, yaml(name, { dbs: [DB, DB2] }));
    const logDir = join(tmp.dir, name, 'log');
    const T1 = `${name}.${DB}`;
    const T2 = `${name}.shop-2deu`;
    const start = () => startPipelineProcess(cfgPath);
    let child = start();
    try {
      // The initial pass: 195 live orders (not the 5 deleted, not the design document) and 20 customers.
      await waitUntil('the initial pass', async () => (await countRecords(logDir, T1)) >= 195 && (await countRecords(logDir, T2)) >= 20, 20_000);
      let recs = await readAll(logDir, `${name}.`);
      const snap = events(recs, T1);
      assert.equal(snap.length, 195, 'every live document once, tombstones and design documents left out');
      assert.ok(snap.every((r) => r.value.op === 'r' && r.value.source.snapshot === 'true'));
      assert.equal(events(recs, T2).length, 20, 'the second database, on its own escaped topic');
      const o7 = snap.find((r) => r.key._id === 'o0007')!;
      assert.deepEqual(o7.value.after._conflicts, null);
      assert.deepEqual(JSON.parse(o7.value.after.doc), { n: 7, items: [{ sku: 's7', qty: 2 }], note: 'ünïcödé "quoted"' });
      assert.match(o7.value.after._rev, /^1-/);
      const src = o7.value.source;
      assert.deepEqual(Object.keys(src), ['version', 'connector', 'name', 'ts_ms', 'snapshot', 'db', 'sequence', 'ts_us', 'ts_ns', 'seq', 'rev']);
      assert.equal(src.connector, 'couchdb');
      assert.equal(src.db, DB);
      assert.equal(src.rev, o7.value.after._rev);
      assert.equal(snap.find((r) => r.key._id === 'o0010')!.value.after.doc.includes('updated before start'), true);

      // Live writes while the pipeline is killed (-9) and started again, twice.
      let writes = 0;
      let writing = true;
      const revs = new Map<string, string>();
      for (const r of (await couch('GET', `/${DB}/_all_docs`)).rows) revs.set(r.id, r.value.rev);
      const writer = (async () => {
        // Until the kills are done (bounded: 5000 writes, 40 s).
        const until = Date.now() + 40_000;
        for (let i = 0; writing && i < 5000 && Date.now() < until; i++) {
          const id = `o${String(20 + (i % 120)).padStart(4, '0')}`;
          const rev = revs.get(id);
          if (i % 3 === 0) {
            revs.set(`new${i}`, (await couch('PUT', `/${DB}/new${i}`, { n: i, created: true })).rev);
          } else if (!rev) {
            continue;
          } else if (i % 40 === 38) {
            await couch('DELETE', `/${DB}/${id}?rev=${rev}`);
            revs.delete(id);
          } else {
            revs.set(id, (await couch('PUT', `/${DB}/${id}`, { _rev: rev, n: i, items: [] })).rev);
          }
          writes++;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const streamed = async () => (await countRecords(logDir, T1)) - 195;
      const k = await killRepeatedly(child, start, { kills: 2, progress: streamed, what: 'streamed changes' });
      child = k.child;
      writing = false;
      await writer;
      assert.ok(writes > 50, `the writer made ${writes} changes`);

      // A conflict: a second revision 1-… of an existing document, written as replication does.
      const c = await couch('GET', `/${DB}/o0150`);
      await couch('POST', `/${DB}/_bulk_docs`, { new_edits: false, docs: [{ _id: 'o0150', _rev: '1-ffffffffffffffffffffffffffffffff', n: 'conflicting' }] });
      const resolved = await couch('GET', `/${DB}/o0150?conflicts=true`);
      assert.ok(resolved._conflicts?.length === 1, 'the server holds a conflict');

      const truth = await serverTruth(DB);
      const truthSeq = Number(truth.updateSeq);
      await waitUntil('the log caught up with the server', async () => {
        const last = events(await readAll(logDir, `${name}.`), T1).map((r) => Number(r.value.source.seq));
        return Math.max(...last) >= truthSeq;
      }, 15_000);
      await waitUntil('the conflict in the status', async () => {
        const st = JSON.parse(readFileSync(join(tmp.dir, name, 'state', 'status.json'), 'utf8'));
        return st.source?.databases?.[DB]?.conflicts >= 1;
      }, 5000);
      const status = JSON.parse(readFileSync(join(tmp.dir, name, 'state', 'status.json'), 'utf8'));
      assert.equal(status.source.phase, 'stream');
      assert.ok(!JSON.stringify(status).includes(PASSWORD), 'no password in the status');
      recs = await readAll(logDir, `${name}.`);
      const evs = events(recs, T1);

      // Exactly once: no update sequence twice in the log.
      const seqs = evs.map((r) => r.value.source.seq);
      const dup = seqs.filter((s, i) => seqs.indexOf(s) !== i);
      assert.deepEqual(dup, [], 'no change appears twice');
      // Nothing lost: each document's latest change on the server is in the log, and the last event
      // of each key is the server's document (or its deletion).
      const lastByKey = new Map<string, any>();
      for (const r of [...evs].sort((a, b) => Number(a.value.source.seq) - Number(b.value.source.seq))) lastByKey.set(r.key._id, r.value);
      for (const [id, ch] of truth.latest) {
        if (id.startsWith('_design/')) {
          assert.ok(!lastByKey.has(id), 'design documents are not captured');
          continue;
        }
        const ev = lastByKey.get(id);
        if (ch.deleted) {
          if (ev) assert.equal(ev.op, 'd', `${id} deleted on the server, deleted in the log`);
          else assert.ok(/^o000[0-4]$/.test(id), `${id}: a deletion that is not in the log must be one from before the start`);
          continue;
        }
        assert.ok(ev, `${id} is in the log`);
        assert.equal(ev.source.seq, String(ch.seq), `${id}: its latest change is in the log`);
        const live = truth.live.get(id);
        assert.equal(ev.after._rev, live._rev, `${id}: the log's revision is the server's`);
        assert.deepEqual(JSON.parse(ev.after.doc), body(live), `${id}: the log's document is the server's`);
      }
      assert.equal([...lastByKey.values()].filter((v) => v.op !== 'd').length, truth.live.size - 1, 'as many live documents as _all_docs lists (less the design document)');
      // Operations: creates are 1-…, updates later revisions, deletes have no after.
      assert.ok(evs.some((r) => r.value.op === 'c' && r.key._id.startsWith('new') && r.value.after._rev.startsWith('1-')));
      assert.ok(evs.some((r) => r.value.op === 'u' && !r.value.after._rev.startsWith('1-')));
      const del = evs.filter((r) => r.value.op === 'd');
      assert.ok(del.length > 0 && del.every((r) => r.value.after === null && r.value.before === null));
      assert.ok(recs.some((r) => r.topic === T1 && r.value === null && r.key._id === del[0].key._id), 'a tombstone follows a delete');
      // The conflict: the losing revision in `_conflicts`.
      const conflict = lastByKey.get('o0150');
      assert.deepEqual(conflict.after._conflicts, resolved._conflicts);
      assert.notEqual(c._rev, undefined);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- pipeline stderr ---\n${child.stderrText().slice(-3000)}`, { cause: e });
    } finally {
      await stopProcess(child);
    }
    assert.ok(!child.stderrText().includes(PASSWORD), 'no password in the pipeline log');
  });

  it('a wrong password, a missing database and an unreachable server give clear errors without the password; a bad line is pointed at', async () => {
    await couch('PUT', '/authdb');
    const wrong = 'Wr0ng-secret-771';
    const port = await freePort();
    /** Runs a pipeline in this process until it fails or `until` holds for its log output; returns the error and the output. */
    const runIn = async (name: string, url: string, dbs: string[], until?: (out: string) => boolean) => {
      let out = '';
      const stream = new Writable({ write: (chunk, _enc, cb) => ((out += chunk), cb()) });
      const ac = new AbortController();
      const cfg = parseConfig(yaml(name, { url, dbs }), `${name}.yaml`, process.env);
      const run = runPipeline(cfg, { signal: ac.signal, logger: createLogger({ level: 'info', stream }) }).then(() => null, (e: Error) => e);
      if (until) {
        await waitUntil(`${name}: the expected log line`, async () => until(out), 10_000).finally(() => ac.abort());
      }
      const err = await run;
      return { err: err as (Error & { code?: string }) | null, out };
    };
    const [auth, miss, down] = await Promise.all([
      runIn('badauth', `http://${ADMIN}:${wrong}@127.0.0.1:${PORT}`, ['authdb']),
      runIn('missing', `http://${ADMIN}:${PASSWORD}@127.0.0.1:${PORT}`, ['nosuchdb']),
      runIn('down', `http://${ADMIN}:${wrong}@127.0.0.1:${port}`, ['authdb'], (out) => /COUCHDB_CONNECT/.test(out)),
    ]);
    assert.equal(auth.err?.code, 'COUCHDB_AUTH');
    assert.match(auth.err!.message, new RegExp(`CouchDB at http://${ADMIN}@127\\.0\\.0\\.1:${PORT} refused the credentials of source.connection \\(HTTP 401`));
    assert.ok(!auth.err!.message.includes(wrong) && !auth.out.includes(wrong), `no password in: ${auth.err!.message}`);

    assert.equal(miss.err?.code, 'COUCHDB_DATABASE_MISSING');
    assert.match(miss.err!.message, /database nosuchdb does not exist on CouchDB at http:\/\/admin@127\.0\.0\.1/);
    assert.ok(!miss.err!.message.includes(PASSWORD));

    // Unreachable: retried (the pipeline keeps going), each attempt's error logged without the password.
    assert.equal(down.err, null, 'a server that is down is retried, not given up on');
    assert.match(down.out, new RegExp(`cannot reach CouchDB at http://${ADMIN}@127\\.0\\.0\\.1:${port} \\(database authdb\\): ECONNREFUSED; retrying`));
    assert.ok(!down.out.includes(wrong));

    // A database name CouchDB does not allow, on line 5 of the file.
    assert.throws(
      () => parseConfig(yaml('badline', { dbs: ['Not_Valid'] }), 'badline.yaml', process.env),
      (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /badline\.yaml:5:\d+: source\.databases\.0/.test(e.message) && !e.message.includes(PASSWORD),
    );
    // No database at all.
    assert.throws(
      () => parseConfig(yaml('nodb', { dbs: [] }), 'nodb.yaml', process.env),
      (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /nodb\.yaml:5:\d+: .*no database to capture/.test(e.message),
    );
  });
});
