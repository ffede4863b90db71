/**
 * The avro processor end to end: a PostgreSQL table's change events → `type: avro` → its output
 * topic, with Sluice's built-in registry (on an embedded log of its own in a temp dir) as the
 * registry. Every output record is in the Confluent wire format, its id resolves in the registry to
 * the schema of the subject `<output topic>-value`/`-key`, and Apache Avro's Java library
 * (scripts/avro-reader.sh framed) decodes it into the JSON change event of the input topic (whose
 * `after` images are checked against SQL over the source table). ALTER TABLE ADD COLUMN (nullable)
 * registers a second version and the records go on; a change the registry refuses under BACKWARD
 * (a nullable text column retyped to int) stops the processor with REGISTRY_INCOMPATIBLE naming the
 * table and the subject, before any record of the new schema is written.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseSchema } from '../../src/core/avro/index.ts';
import { parseConfig } from '../../src/config/index.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import type { LogConfig } from '../../src/config/types.ts';
import type { Log } from '../../src/log/types.ts';
import { startRegistryServer, type RegistryServer } from '../../src/schema-registry/server.ts';
import { RegistryStore } from '../../src/schema-registry/store.ts';
import { unframe } from '../../src/schema-registry/wire.ts';
import { javaDecodeFramed, toJavaJson } from '../helpers/avro-java.ts';
import { quietLogger } from '../helpers/mysql.ts';
import { countRecords, freePort, pipelineYaml, readAll, tempDir, useDatabase, waitUntil } from '../helpers/pipeline.ts';

const OUT = 'av.avt.public.items';

/** The raw records of a topic (binary keys and values), all partitions. */
async function readRaw(logCfg: LogConfig, topic: string): Promise<{ key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[]> {
  const log = await openLog(logCfg, { readOnly: true });
  try {
    if (!(await log.topicInfo(topic))) return [];
    const out: { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
    for (const p of await log.offsets(topic)) {
      for (let off = p.start; off < p.end; ) {
        const { records, next } = await log.read(topic, p.partition, off, 4 << 20);
        for (const r of records) out.push({ key: r.key ? Buffer.from(r.key) : null, value: r.value ? Buffer.from(r.value) : null, headers: r.headers ?? {} });
        off = next;
      }
    }
    return out;
  } finally {
    await log.close();
  }
}


describe('avro processor', () => {
  const f = useDatabase(`
    CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), qty bigint, note text, tags text[]);
    INSERT INTO items VALUES (1, 'héllo 日本', 12.50, 9007199254740000, 'a', '{x,y}'), (2, 'b', NULL, NULL, NULL, NULL), (3, 'c', -0.01, -5, 'c', '{}');
  `);
  const reg = { tmp: tempDir('sluice-avro-registry-') } as { tmp: ReturnType<typeof tempDir>; log: Log; store: RegistryStore; server: RegistryServer };
  before(async () => {
    reg.log = await openLog(embeddedLogAt(join(reg.tmp.dir, 'log')));
    reg.store = await RegistryStore.open(reg.log);
    reg.server = await startRegistryServer(reg.store);
  });
  after(async () => {
    await reg.server?.close();
    await reg.store?.close();
    await reg.log?.close();
    reg.tmp.remove();
  });
  const api = async (path: string): Promise<any> => {
    const res = await fetch(reg.server.url + path);
    assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
    return res.json();
  };

  it('writes framed records the registry and Java Avro read as the change events; evolves, and stops on a refused change', async () => {
    const yaml = pipelineYaml(
      'avt',
      f.db.name,
      f.tmp.dir,
      '',
      `batch:
  maxDelayMs: 5
processors:
  - name: av
    type: avro
    inputs: [avt.public.items]
    registry: {url: "${reg.server.url}"}
`,
    );
    const cfg = parseConfig(yaml, join(f.tmp.dir, 'avt.yaml'), {});
    assert.equal(cfg.processors[0].output, 'av.{topic}');
    const sql = f.db.client;
    const statusOf = () => {
      const p = join(f.tmp.dir, 'state', 'status.json');
      return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
    };
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    let stopped: any;
    try {
      await waitUntil('the snapshot serialized', async () => (await readRaw(cfg.log, OUT)).length >= 3, 30_000);
      await sql.query(`INSERT INTO items VALUES (4, 'd', 4.00, 4, NULL, '{null,z}')`);
      await sql.query(`UPDATE items SET name = 'b2', price = 2.5 WHERE id = 2`);
      await sql.query(`DELETE FROM items WHERE id = 3`);
      await waitUntil('the changes serialized', async () => (await readRaw(cfg.log, OUT)).length >= 6, 30_000);
      // A compatible change: a second version, and the records go on.
      await sql.query(`ALTER TABLE items ADD COLUMN email text`);
      await sql.query(`INSERT INTO items VALUES (5, 'e', 5, 5, NULL, NULL, 'e@x')`);
      await sql.query(`UPDATE items SET email = 'a@x' WHERE id = 1`);
      await waitUntil('the rows after ADD COLUMN serialized', async () => (await readRaw(cfg.log, OUT)).length >= 8, 30_000);
      // A change BACKWARD refuses: text → int (a new reader cannot read the old strings).
      await sql.query(`ALTER TABLE items ALTER COLUMN note TYPE int USING NULL`);
      await sql.query(`INSERT INTO items VALUES (6, 'f', 6, 6, 6, NULL, NULL)`);
      await waitUntil('the processor stopped', async () => {
        stopped = (statusOf()?.processors ?? []).find((p: any) => p.name === 'av' && p.state === 'failed');
        return !!stopped;
      }, 30_000);
    } finally {
      ac.abort();
      await run;
    }
    const subject = `${OUT}-value`;
    assert.equal(stopped.error.code, 'REGISTRY_INCOMPATIBLE');
    assert.match(stopped.error.message, new RegExp(`the columns of table public\\.items changed in a way subject ${subject.replace(/\./g, '\\.')} does not allow \\(.*note.*\\)`));
    assert.match(stopped.error.message, /Make the change compatible/);

    // The registry: two value versions (the refused one not among them), one key version.
    const versions: number[] = await api(`/subjects/${subject}/versions`);
    assert.deepEqual(versions, [1, 2]);
    assert.deepEqual(await api(`/subjects/${OUT}-key/versions`), [1]);
    const subjectSchemas = new Map<number, string>();
    for (const v of versions) {
      const sv = await api(`/subjects/${subject}/versions/${v}`);
      subjectSchemas.set(sv.id, sv.schema);
    }
    const keyVersion = await api(`/subjects/${OUT}-key/versions/1`);
    assert.equal(JSON.parse(subjectSchemas.get((await api(`/subjects/${subject}/versions/1`)).id)!).name, 'Envelope');
    assert.equal(JSON.parse(subjectSchemas.get((await api(`/subjects/${subject}/versions/1`)).id)!).namespace, 'avt.public.items');

    // Every output record framed, its ids resolving to the subjects' schemas.
    const out = await readRaw(cfg.log, OUT);
    const input = (await readAll(cfg.log, 'avt.public.items')).filter((r) => r.topic === 'avt.public.items');
    // 3 snapshot reads, an insert, an update, a delete and its tombstone, an insert and an update after ADD COLUMN
    assert.equal(out.length, 9, 'nothing of the refused schema was written');
    assert.equal(input.length, 10, 'the input holds the refused schema\'s insert too');
    const tombstones = out.filter((r) => r.value === null);
    assert.equal(tombstones.length, 1, 'the delete\'s tombstone stays a null value');
    assert.equal(input.filter((r) => r.value === null).length, 1);
    const byId = new Map<number, Buffer[]>();
    const keysById = new Map<number, Buffer[]>();
    for (const r of out) {
      const k = unframe(r.key!);
      assert.equal(k.id, keyVersion.id);
      assert.equal((await api(`/schemas/ids/${k.id}`)).schema, keyVersion.schema);
      keysById.set(k.id, [...(keysById.get(k.id) ?? []), r.key!]);
      assert.equal(r.headers.s, undefined, 'the JSON schema header is not carried over');
      if (r.value === null) continue;
      assert.equal(r.value[0], 0, 'magic byte 0');
      const { id } = unframe(r.value!);
      assert.ok(subjectSchemas.has(id), `value id ${id} is one of ${subject}'s`);
      assert.equal((await api(`/schemas/ids/${id}`)).schema, subjectSchemas.get(id));
      byId.set(id, [...(byId.get(id) ?? []), r.value!]);
    }
    assert.equal(byId.size, 2, 'both versions in use');

    // Java decodes them into the input topic's JSON events (as a multiset: output partitions follow the Avro keys).
    const java = (schema: string, recs: Buffer[], name: string): unknown[] => javaDecodeFramed(f.tmp.dir, name, schema, recs).map((x) => x.value);
    // What the processor took before it stopped: all but the insert of the refused schema.
    const written = input.filter((e) => e.value?.after?.id !== 6);
    const decoded: any[] = [];
    const expected: string[] = [];
    for (const [id, recs] of byId) {
      const parsed = parseSchema(JSON.parse(subjectSchemas.get(id)!));
      decoded.push(...java(subjectSchemas.get(id)!, recs, `v${id}`));
      // The input events of this version's schema: those whose after/before have its columns.
      const cols = JSON.parse(subjectSchemas.get(id)!).fields[0].type[1].fields.map((x: any) => x.name).join();
      for (const e of written) if (e.value && Object.keys((e.value.after ?? e.value.before) as object).join() === cols) expected.push(JSON.stringify(toJavaJson(parsed, e.value)));
    }
    assert.deepEqual(decoded.map((d) => JSON.stringify(d)).sort(), expected.sort());
    assert.equal(expected.length, 8);
    const keySchema = parseSchema(JSON.parse(keyVersion.schema));
    assert.deepEqual(java(keyVersion.schema, keysById.get(keyVersion.id)!, 'key').map((k) => JSON.stringify(k)).sort(), written.map((e) => JSON.stringify(toJavaJson(keySchema, e.key))).sort());

    // The source's truth: the last decoded `after` of each row is the row in SQL.
    const last = new Map<number, any>();
    for (const d of decoded.sort((a, b) => Number(a.source.lsn ?? 0) - Number(b.source.lsn ?? 0) || Number(a.ts_us ?? 0) - Number(b.ts_us ?? 0))) {
      if (d.op === 'd') last.delete(d.before.id);
      else last.set(d.after.id, d.after);
    }
    const rows = (await sql.query(`SELECT id, name, price::text AS price, qty::text AS qty, email, tags FROM items WHERE id < 6 ORDER BY id`)).rows;
    assert.deepEqual([...last.keys()].sort(), rows.map((r: any) => r.id));
    for (const r of rows) {
      const a = last.get(r.id);
      assert.deepEqual({ id: a.id, name: a.name, price: a.price, qty: a.qty, email: a.email ?? null, tags: a.tags }, r, `row ${r.id}`);
    }
  });

  it('retries while the registry does not answer, dead-lettering nothing', async () => {
    const dir = join(f.tmp.dir, 'down');
    const url = `http://127.0.0.1:${await freePort()}`;
    const cfg = parseConfig(pipelineYaml('avu', f.db.name, dir, '', `processors:\n  - {name: av, type: avro, inputs: [avu.public.items], registry: {url: "${url}"}}\n`), join(dir, 'avu.yaml'), {});
    const ac = new AbortController();
    const run = runPipeline(cfg, { signal: ac.signal, logger: quietLogger() });
    let p: any;
    try {
      await waitUntil('the processor retrying', async () => {
        const path = join(dir, 'state', 'status.json');
        p = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')).processors ?? []).find((x: any) => x.name === 'av') : undefined;
        return p?.state === 'retrying';
      }, 30_000);
    } finally {
      ac.abort();
      await run;
    }
    assert.equal(p.error.code, 'REGISTRY_UNREACHABLE');
    assert.match(p.error.message, new RegExp(`the schema registry at ${url.replace(/\./g, '\\.')} did not answer`));
    assert.equal(await countRecords(cfg.log, 'avu.dlq'), 0, 'nothing dead-lettered');
    assert.equal(await countRecords(cfg.log, 'av.avu.public.items'), 0);
  });
});
