/**
 * The MongoDB source against mongo-java-server with its oplog (scripts/mongo-server.sh, port
 * 27018): the initial snapshot and the change streams in Debezium's MongoDB shape, every BSON type
 * written without loss, resume after kill -9 with every change exactly once, `shape: row` into a
 * DuckDB table equal to the collection, and the errors a user meets. The server's own documents,
 * and the workload's record of what it wrote, are the truth the log is compared with.
 *
 * What mongo-java-server lacks (docs/connectors/mongodb.md): database-level streams, `ns` and
 * `updateDescription` in events, pre-images, replace events (reported as updates), transactions.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Binary, BSON, Decimal128, Double, Int32, Long, MaxKey, MinKey, MongoClient, ObjectId, Timestamp, BSONRegExp } from 'mongodb';
import { DuckDBInstance } from '@duckdb/node-api';
import { readAll, tempDir, waitUntil, type ReadRecord } from '../../helpers/pipeline.ts';
import { killRepeatedly, runSluice, startPipelineProcess, stopProcess } from '../../helpers/child.ts';
import { freezableProxy, silentServer } from '../../robustness/tcp.ts';

const PORT = 27018;
const URL = `mongodb://127.0.0.1:${PORT}`;
let client: MongoClient;
const tmp = tempDir('sluice-mongo-');

before(async () => {
  // The oplog server the source needs; the document sink's server (27017) keeps none.
  execFileSync('bash', ['scripts/mongo-server.sh', 'start'], { env: { ...process.env, MONGO_PORT: String(PORT), MONGO_OPLOG: '1' }, stdio: 'inherit' });
  client = new MongoClient(`${URL}/?directConnection=true`, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
});
after(async () => {
  await client?.close();
  tmp.remove();
});

function pipeline(name: string, db: string, source: string, extra = ''): { cfg: string; log: string } {
  const dir = join(tmp.dir, name);
  const cfg = join(tmp.dir, `${name}.yaml`);
  writeFileSync(
    cfg,
    `name: ${name}
source:
  type: mongodb
  connection: ${URL}/${db}?directConnection=true
${source
  .split('\n')
  .filter(Boolean)
  .map((l) => '  ' + l)
  .join('\n')}
state:
  dir: ${dir}/state
log:
  dir: ${dir}/log
  partitions: 2
logging:
  level: warn
${extra}
`,
  );
  return { cfg, log: join(dir, 'log') };
}

const events = async (log: string, topic: string): Promise<ReadRecord[]> => (await readAll(log, topic)).filter((r) => r.topic.startsWith(topic) && r.value !== null);

describe('MongoDB source (mongo-java-server with an oplog)', () => {
  it('snapshots, then streams inserts, updates and deletes in Debezium MongoDB shape, every BSON type without loss', async () => {
    const db = client.db('m_shape');
    await db.dropDatabase();
    const orders = db.collection<any>('orders');
    const oid = new ObjectId('65a1b2c3d4e5f60718293a4b');
    // Every BSON type a document can hold, with a literal of the text each must become.
    await orders.insertOne({
      _id: oid,
      s: 'café "q"',
      i32: new Int32(-7),
      i64: Long.fromString('9007199254740993'),
      small64: Long.fromNumber(5),
      dbl: new Double(2),
      frac: new Double(0.1),
      nan: new Double(NaN),
      dec: Decimal128.fromString('12345678901234567890.0123'),
      t: new Date('2024-02-29T12:34:56.789Z'),
      old: new Date(-62135596800001),
      bin: new Binary(Buffer.from([0, 1, 255]), 0),
      uuid: new Binary(Buffer.from('0123456789abcdef0123456789abcdef', 'hex'), 4),
      ts: new Timestamp({ t: 1700000000, i: 3 }),
      re: new BSONRegExp('^a.c$', 'i'),
      no: null,
      yes: true,
      min: new MinKey(),
      max: new MaxKey(),
      nested: { a: [1, [2, { b: new Int32(3) }]], o: oid },
    });
    await orders.insertOne({ _id: 'text-id', n: new Int32(1) });
    await orders.insertOne({ _id: new Int32(42), n: new Int32(1) });
    const p = pipeline('mshape', 'm_shape', 'collections: [m_shape.orders]\nsnapshotFetchSize: 2');
    const topic = 'mshape.m_shape.orders';
    const child = startPipelineProcess(p.cfg);
    try {
      await waitUntil('the snapshot in the log', async () => (await events(p.log, topic)).length >= 3, 30_000);
      await orders.insertOne({ _id: 'live', n: new Int32(1) });
      await orders.updateOne({ _id: 'text-id' }, { $set: { n: new Int32(2), added: 'x' } });
      await orders.replaceOne({ _id: new Int32(42) }, { whole: 'new' });
      await orders.deleteOne({ _id: 'live' });
      await waitUntil('the streamed changes in the log', async () => (await events(p.log, topic)).length >= 7, 30_000);
      // A dropped collection: its stream continues with the collection created again.
      await orders.drop();
      await orders.insertOne({ _id: 'reborn', n: new Int32(9) });
      await waitUntil('the insert into the re-created collection', async () => (await events(p.log, topic)).some((r) => r.key.id === 'reborn'), 30_000);
    } finally {
      await stopProcess(child);
    }
    assert.equal(child.exitCode, 0, child.stderrText());
    const recs = await events(p.log, topic);
    const snap = recs.filter((r) => r.value.op === 'r');
    assert.equal(snap.length, 3, 'three documents snapshotted');
    assert.deepEqual(
      snap.map((r) => r.value.source.snapshot),
      ['first', 'true', 'last'],
    );
    const typed = snap.find((r) => r.key.id === '{"$oid":"65a1b2c3d4e5f60718293a4b"}');
    assert.ok(typed, `the ObjectId key as Extended JSON; keys: ${snap.map((r) => r.key.id).join(' ')}`);
    assert.equal(
      typed!.value.after,
      '{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"s":"café \\"q\\"","i32":-7,"i64":{"$numberLong":"9007199254740993"},"small64":5,"dbl":2.0,"frac":0.1,"nan":{"$numberDouble":"NaN"},' +
        '"dec":{"$numberDecimal":"12345678901234567890.0123"},"t":{"$date":"2024-02-29T12:34:56.789Z"},"old":{"$date":{"$numberLong":"-62135596800001"}},' +
        '"bin":{"$binary":{"base64":"AAH/","subType":"00"}},"uuid":{"$binary":{"base64":"ASNFZ4mrze8BI0VniavN7w==","subType":"04"}},' +
        '"ts":{"$timestamp":{"t":1700000000,"i":3}},"re":{"$regularExpression":{"pattern":"^a.c$","options":"i"}},"no":null,"yes":true,' +
        '"min":{"$minKey":1},"max":{"$maxKey":1},"nested":{"a":[1,[2,{"b":3}]],"o":{"$oid":"65a1b2c3d4e5f60718293a4b"}}}',
    );
    // The bson library's own Extended JSON reader reads every value back to its type.
    const back = BSON.EJSON.parse(typed!.value.after, { relaxed: false }) as Record<string, any>;
    assert.equal(back.i64._bsontype, 'Long');
    assert.equal(back.i64.toString(), '9007199254740993');
    assert.equal(back.dec.toString(), '12345678901234567890.0123');
    assert.equal(back.t.toISOString(), '2024-02-29T12:34:56.789Z');
    assert.equal(back.uuid.sub_type, 4);
    assert.equal(typed!.value.source.connector, 'mongodb');
    assert.equal(typed!.value.source.db, 'm_shape');
    assert.equal(typed!.value.source.collection, 'orders');
    assert.ok(snap.some((r) => r.key.id === 'text-id') && snap.some((r) => r.key.id === '42'), 'a string id is its text, a number its digits');

    const streamed = recs.filter((r) => r.value.op !== 'r');
    const ops = streamed.map((r) => `${r.value.op} ${r.key.id}`);
    assert.deepEqual(ops.slice(0, 4).sort(), ['c live', 'd live', 'u 42', 'u text-id'].sort(), ops.join(', '));
    const upd = streamed.find((r) => r.key.id === 'text-id')!;
    assert.deepEqual(JSON.parse(upd.value.after), { _id: 'text-id', n: 2, added: 'x' }, 'updateLookup: the whole document after the update');
    const del = streamed.find((r) => r.value.op === 'd')!;
    assert.equal(del.value.after, null);
    assert.ok(typeof del.value.source.ord === 'number' && del.value.source.ts_ms > 1.7e12, 'cluster time in source.ts_ms/ord');
    assert.ok(streamed.some((r) => r.key.id === 'reborn' && r.value.op === 'c'), 'the stream continued after the drop');
    // Each delete is followed by its tombstone, as Debezium writes it.
    const all = (await readAll(p.log, topic)).filter((r) => r.topic === topic && r.partition === del.partition);
    const at = all.findIndex((r) => r.offset === del.offset);
    assert.equal(all[at + 1]?.value, null);
  });

  it('resumes after kill -9 with every change in the log exactly once, none lost', async () => {
    const db = client.db('m_kill');
    await db.dropDatabase();
    const a = db.collection<any>('a');
    const b = db.collection<any>('b');
    await a.insertMany(Array.from({ length: 200 }, (_, n) => ({ _id: n, v: new Int32(0) })));
    const p = pipeline('mkill', 'm_kill', 'collections: [m_kill.a, m_kill.b]');
    const start = () => startPipelineProcess(p.cfg);
    const streamedCount = async () => (await events(p.log, 'mkill.m_kill.')).filter((r) => r.value.op !== 'r').length;
    const first = start();
    await waitUntil('the snapshot in the log', async () => (await events(p.log, 'mkill.m_kill.')).length >= 200, 30_000);
    // The workload's own record: every write it made, in order (started after the snapshot, so
    // that each of its writes is a streamed change).
    const written: string[] = [];
    let stop = false;
    let seq = 0;
    const workload = (async () => {
      while (!stop) {
        const n = seq++;
        const id = n % 300;
        if (n % 3 === 0) {
          await b.insertOne({ _id: n, v: new Int32(n) });
          written.push(`b c ${n} ${n}`);
        } else if (id < 200) {
          await a.updateOne({ _id: id }, { $set: { v: new Int32(n) } });
          written.push(`a u ${id} ${n}`);
        } else if (n % 3 === 1) {
          const r = await b.deleteOne({ _id: n - 1 });
          if (r.deletedCount === 1) written.push(`b d ${n - 1}`);
        }
        if (n % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const { child, kills } = await killRepeatedly(first, start, { kills: 3, progress: streamedCount, what: 'streamed changes' });
    stop = true;
    await workload;
    const expected = written.length;
    try {
      await waitUntil(`all ${expected} changes in the log`, async () => (await streamedCount()) >= expected, 60_000).catch(async (e) => {
        const recs = await events(p.log, 'mkill.m_kill.');
        const got = new Set(recs.filter((r) => r.value.op !== 'r').map((r) => `${r.value.source.collection} ${r.value.op} ${r.key.id}`));
        const missing = written.filter((w) => !got.has(w.split(' ').slice(0, 3).join(' ')));
        throw new Error(`${(e as Error).message}: ${missing.length} of the workload's changes missing, first ${JSON.stringify(missing.slice(0, 5))}`);
      });
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await stopProcess(child);
    }
    assert.equal(kills, 3);
    const recs = await events(p.log, 'mkill.m_kill.');
    assert.equal(recs.filter((r) => r.value.op === 'r').length, 200, 'the snapshot, once');
    // Per collection and key, the streamed changes are the workload's, in its order, each once.
    const got = recs
      .filter((r) => r.value.op !== 'r')
      .map((r) => {
        const coll = r.value.source.collection;
        const doc = r.value.after ? JSON.parse(r.value.after) : null;
        return r.value.op === 'd' ? `${coll} d ${r.key.id}` : `${coll} ${r.value.op} ${r.key.id} ${doc.v}`;
      });
    const perKey = (xs: string[]) => {
      const m = new Map<string, string[]>();
      for (const x of xs) {
        const [c, , id] = x.split(' ');
        const k = `${c}/${id}`;
        if (!m.has(k)) m.set(k, []);
        m.get(k)!.push(x);
      }
      return m;
    };
    const want = perKey(written);
    const have = perKey(got);
    assert.equal(got.length, written.length, `every change once: ${got.length} in the log, ${written.length} written`);
    for (const [k, xs] of want) {
      // An update's event carries the document as looked up when it is read: a later write of the
      // same key may already be in it, so an update is matched on key, the others exactly.
      const h = have.get(k) ?? [];
      assert.equal(h.length, xs.length, `${k}: ${h.join(' | ')} vs ${xs.join(' | ')}`);
      xs.forEach((x, n) => {
        if (x.split(' ')[1] !== 'u') assert.equal(h[n], x, k);
      });
    }
  });

  it('shape: row puts each field in a typed column: DuckDB holds the collection', async () => {
    const db = client.db('m_row');
    await db.dropDatabase();
    const items = db.collection('items');
    await items.insertMany(Array.from({ length: 50 }, (_, n) => ({ _id: new ObjectId(), sku: `s${n}`, qty: new Int32(n), price: Decimal128.fromString(`${n}.25`), at: new Date(1_700_000_000_000 + n), tags: ['a', n] })));
    const duck = join(tmp.dir, 'row.duckdb');
    const p = pipeline('mrow', 'm_row', 'collections: [m_row.items]\nshape: row', `sinks:\n  - name: dw\n    type: duckdb\n    path: ${duck}\n    schemaEvolution: add_columns\n`);
    const child = startPipelineProcess(p.cfg);
    try {
      await waitUntil('the snapshot in the log', async () => (await events(p.log, 'mrow.m_row.items')).length >= 50, 30_000);
      const first = await items.findOne({ sku: 's0' });
      await items.updateOne({ _id: first!._id }, { $set: { qty: new Int32(1000), note: 'new field' } });
      await items.deleteOne({ sku: 's1' });
      // A field removed from a document is null in its row, not its old value.
      await items.updateOne({ sku: 's2' }, { $unset: { tags: '' } });
      await items.insertOne({ _id: new ObjectId(), sku: 'late', qty: new Int32(5), price: Decimal128.fromString('0.01'), at: new Date(0), tags: [] });
      await waitUntil('the changes in the log', async () => (await events(p.log, 'mrow.m_row.items')).length >= 54, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await stopProcess(child);
    }
    assert.equal(child.exitCode, 0, child.stderrText());
    const inst = await DuckDBInstance.create(duck);
    const conn = await inst.connect();
    try {
      const rows = (await (await conn.runAndReadAll('SELECT _id, sku, qty, price, "at", tags, note FROM items ORDER BY sku')).getRowObjectsJson()) as Record<string, any>[];
      const docs = await items.find({}).sort({ sku: 1 }).toArray();
      assert.equal(rows.length, docs.length, 'one row per document');
      docs.forEach((d, n) => {
        const r = rows[n];
        assert.equal(r._id, d._id.toHexString());
        assert.equal(r.sku, d.sku);
        assert.equal(Number(r.qty), d.qty);
        assert.equal(r.price, d.price.toString());
        assert.equal(new Date(String(r.at).replace(' ', 'T') + (String(r.at).endsWith('Z') ? '' : 'Z')).getTime(), d.at.getTime(), `${d.sku}: ${r.at}`);
        if (d.tags === undefined) assert.equal(r.tags, null, `${d.sku}: tags removed`);
        else assert.deepEqual(JSON.parse(r.tags), d.tags);
        assert.equal(r.note ?? undefined, d.note);
      });
    } finally {
      conn.closeSync();
      inst.closeSync();
    }
  });

  it('says what is wrong: an unreachable server (without its password), shape row without whole documents, a broken stream config', async () => {
    const bad = join(tmp.dir, 'bad.yaml');
    writeFileSync(bad, `name: mbad\nsource:\n  type: mongodb\n  connection: mongodb://u:s3cretPw@127.0.0.1:1/x\n  connectTimeoutMs: 500ms\nstate:\n  dir: ${tmp.dir}/bad/state\nlog:\n  dir: ${tmp.dir}/bad/log\n`);
    const child = startPipelineProcess(bad);
    try {
      await waitUntil('the connect error', async () => child.stderrText().includes('MONGODB_CONNECT'), 20_000);
    } finally {
      await stopProcess(child, 'SIGKILL');
    }
    const err = child.stderrText();
    assert.match(err, /cannot connect to the MongoDB server 127\.0\.0\.1:1/);
    assert.ok(!err.includes('s3cretPw'), 'the password never appears');

    const shape = join(tmp.dir, 'shape.yaml');
    writeFileSync(shape, `name: mshape2\nsource:\n  type: mongodb\n  connection: ${URL}/x\n  shape: row\n  fullDocument: default\n`);
    const v = await runSluice(['validate', shape]);
    assert.notEqual(v.status, 0);
    assert.match(v.stderr + v.stdout, /shape\.yaml:6:\d+.*shape: row` needs whole documents/s);

    const coll = join(tmp.dir, 'coll.yaml');
    writeFileSync(coll, `name: mcoll\nsource:\n  type: mongodb\n  connection: ${URL}/x\n  collections: [nodot]\n`);
    const c = await runSluice(['validate', coll]);
    assert.notEqual(c.status, 0);
    assert.match(c.stderr + c.stdout, /coll\.yaml:5:/);

    // Nothing to capture: no collections and no database in the URL, said at the line.
    const nodb = join(tmp.dir, 'nodb.yaml');
    writeFileSync(nodb, `name: mnodb\nsource:\n  type: mongodb\n  connection: ${URL}/?directConnection=true\n`);
    const n = await runSluice(['validate', nodb]);
    assert.notEqual(n.status, 0);
    assert.match(n.stderr + n.stdout, /nodb\.yaml:4:\d+.*no collection to capture/s);

    // A server that accepts connections and never answers: the connect error, within connectTimeoutMs.
    const silent = await silentServer();
    const hung = join(tmp.dir, 'hung.yaml');
    writeFileSync(hung, `name: mhung\nsource:\n  type: mongodb\n  connection: mongodb://u:s3cretPw@127.0.0.1:${silent.port}/x?directConnection=true\n  connectTimeoutMs: 1s\nstate:\n  dir: ${tmp.dir}/hung/state\nlog:\n  dir: ${tmp.dir}/hung/log\n`);
    const h = startPipelineProcess(hung);
    try {
      await waitUntil('the connect error from a server that never answers', async () => h.stderrText().includes('MONGODB_CONNECT'), 20_000);
    } finally {
      await stopProcess(h, 'SIGKILL');
      await silent.close();
    }
    assert.match(h.stderrText(), new RegExp(`cannot connect to the MongoDB server 127\\.0\\.0\\.1:${silent.port}`));
    assert.ok(!h.stderrText().includes('s3cretPw'), 'the password never appears');
  });

  it('a server that hangs mid-stream: MONGODB_TIMEOUT within socketTimeoutMs, then every change once when it answers again', async () => {
    const db = client.db('sluice_mhang');
    await db.dropDatabase();
    await db.collection('c').insertOne({ _id: 1 as never, n: 1 });
    const proxy = await freezableProxy('127.0.0.1', PORT);
    const p = pipeline('mhang', 'sluice_mhang', 'collections: [sluice_mhang.c]\nsocketTimeoutMs: 2s\nconnectTimeoutMs: 2s');
    writeFileSync(p.cfg, readFileSync(p.cfg, 'utf8').replace(`127.0.0.1:${PORT}`, `127.0.0.1:${proxy.port}`));
    const child = startPipelineProcess(p.cfg);
    try {
      const ids = async () => (await events(p.log, 'mhang.sluice_mhang.c')).map((r) => JSON.parse(r.key.id));
      await waitUntil('the snapshot', async () => (await ids()).length === 1, 30_000);
      await db.collection('c').insertOne({ _id: 2 as never, n: 2 });
      await waitUntil('the streamed insert', async () => (await ids()).length === 2, 30_000);
      proxy.freeze();
      const frozenAt = Date.now();
      await db.collection('c').insertOne({ _id: 3 as never, n: 3 });
      await waitUntil('the timeout error', async () => child.stderrText().includes('MONGODB_TIMEOUT'), 30_000);
      const after = (Date.now() - frozenAt) / 1000;
      assert.ok(after < 15, `noticed within socketTimeoutMs and a retry (${after.toFixed(1)} s)`);
      assert.match(child.stderrText(), /did not answer within (socketTimeoutMs \(2000 ms\)|connectTimeoutMs)/);
      proxy.thaw();
      await db.collection('c').insertOne({ _id: 4 as never, n: 4 });
      await waitUntil('the changes made while it hung', async () => (await ids()).length >= 4, 60_000);
      assert.deepEqual((await ids()).sort(), [1, 2, 3, 4], 'each change once');
    } finally {
      await stopProcess(child, 'SIGKILL');
      await proxy.close();
      await db.dropDatabase();
    }
  });
});
