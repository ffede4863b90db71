/**
 * The document sinks (seed 000's operational data layer) end to end: a PostgreSQL source shaped
 * like the seed's customers/accounts, one pipeline applying it to MongoDB (mongo-java-server,
 * started by scripts/setup.sh) and to PostgreSQL JSONB with the seed's templates, a derived
 * collection from a test deriver, updates, deletes, truncates, and a replay of the whole log.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Decimal128, MongoClient } from 'mongodb';
import pg from 'pg';
import { parseConfig } from '../../src/config/index.ts';
import type { PipelineConfig } from '../../src/config/types.ts';
import { createLogger } from '../../src/core/logger.ts';
import { schemaTopicOf } from '../../src/core/schemas.ts';
import { SchemaStore } from '../../src/engine/schema-topic.ts';
import { runPipeline } from '../../src/engine/runner.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { MongoStore } from '../../src/sinks/document/mongodb.ts';
import { PgJsonStore } from '../../src/sinks/document/pgjson.ts';
import { Decimal, type Doc, type DocumentStore } from '../../src/sinks/document/types.ts';
import { sinkSpec } from '../../src/registry/index.ts';
import { BatchReader } from '../../src/engine/batch-reader.ts';
import { customerAccounts } from '../fixtures/documents/derivers.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from '../helpers/pg.ts';
import { pipelineYaml, tempDir, waitUntil } from '../helpers/pipeline.ts';

const MONGO_URL = process.env.MONGO_URL_TEST ?? 'mongodb://127.0.0.1:27017';
const DERIVERS = fileURLToPath(new URL('../fixtures/documents/derivers.ts', import.meta.url));
const quiet = createLogger({ level: (process.env.SLUICE_TEST_LOG as 'error') ?? 'error' });

const SOURCE_SQL = `
CREATE SCHEMA banking;
CREATE TYPE banking.customer_status AS ENUM ('ACTIVE', 'INACTIVE', 'SUSPENDED');
CREATE TABLE banking.customers (
  customer_id int PRIMARY KEY, first_name varchar(100) NOT NULL, last_name varchar(100) NOT NULL, email varchar(255) UNIQUE NOT NULL,
  phone varchar(20), date_of_birth date, address_line1 varchar(255), address_line2 varchar(255), city varchar(100), state varchar(50),
  postal_code varchar(20), country varchar(50), customer_status banking.customer_status,
  created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now());
CREATE TABLE banking.accounts (
  account_id int PRIMARY KEY, customer_id int NOT NULL, account_number varchar(20) UNIQUE NOT NULL, account_type varchar(10),
  balance numeric(15,2) DEFAULT 0.00, currency char(3) DEFAULT 'USD', account_status varchar(10), interest_rate numeric(5,4),
  credit_limit numeric(15,2), opened_date date NOT NULL, closed_date date,
  created_at timestamp DEFAULT now(), updated_at timestamp DEFAULT now());
-- Full before images: an account moving to another customer tells the deriver both customers.
ALTER TABLE banking.accounts REPLICA IDENTITY FULL;
ALTER TABLE banking.customers REPLICA IDENTITY FULL;
CREATE TABLE banking.branches (branch_id int PRIMARY KEY, name text, opened date, big bigint, data jsonb, photo bytea);
CREATE TABLE banking.audit (msg text, at timestamptz);
INSERT INTO banking.customers VALUES
  (1, 'John', 'Doe', 'john.doe@email.com', '+1-555-0123', '1985-06-15', '123 Main St', 'Apt 4B', 'New York', 'NY', '10001', 'USA', 'ACTIVE',
   '2024-01-15 10:30:00+00', '2024-01-15 10:30:00+00');
INSERT INTO banking.customers (customer_id, first_name, last_name, email, date_of_birth, city, state, customer_status, created_at, updated_at)
  SELECT g, 'First' || g, 'Last' || g, 'c' || g || '@example.com', DATE '1970-01-01' + g * 400, 'City' || g, 'ST',
         (ARRAY['ACTIVE', 'INACTIVE', 'SUSPENDED'])[1 + g % 3]::banking.customer_status, TIMESTAMPTZ '2024-02-01 00:00:00+00' + g * INTERVAL '1 hour', now()
  FROM generate_series(2, 20) g;
INSERT INTO banking.accounts VALUES
  (1, 1, 'ACC-2024-001234', 'CHECKING', 2500.75, 'USD', 'ACTIVE', 0.0125, NULL, '2024-01-01', NULL, '2024-01-01 09:00:00', '2024-01-15 14:22:00'),
  (2, 1, 'ACC-2024-001235', 'SAVINGS', 9999999999999.99, 'USD', 'ACTIVE', 0.0450, 15000.00, '2024-01-02', NULL, '2024-01-02 09:00:00', '2024-01-02 09:00:00');
INSERT INTO banking.accounts (account_id, customer_id, account_number, account_type, balance, account_status, interest_rate, opened_date)
  SELECT g, 1 + g % 20, 'ACC-' || lpad(g::text, 6, '0'), 'CHECKING', g * 1234.56 + 0.07, 'ACTIVE', 0.0100, DATE '2023-01-01' + g
  FROM generate_series(3, 30) g;
INSERT INTO banking.branches VALUES (1, 'Main', '2001-09-09', 9007199254740993, '{"a": [1, 2.5, "x"]}', '\\x00ff'), (2, 'East', NULL, -1, NULL, NULL);
INSERT INTO banking.audit VALUES ('opened', '2024-01-01 00:00:00+00'), ('audited', '2024-06-01 12:00:00+00');
`;

function collections(withTypo = false): string {
  return `    collections:
      - table: banking.customers
        collection: customers
        indexes: [[customer_id], [personal_info.email], [status]]
        document:
          customer_id: $customer_id
          personal_info: { first_name: $first_name, last_name: $last_name, email: ${withTypo ? '$emial' : '$email'}, phone: $phone, date_of_birth: $date_of_birth }
          address: { line1: $address_line1, line2: $address_line2, city: $city, state: $state, postal_code: $postal_code, country: $country }
          status: $customer_status
          metadata: { created_at: $created_at, updated_at: $updated_at, source_updated_at: $$source_ts, sync_timestamp: $$sync_ts }
      - table: banking.accounts
        collection: accounts
        indexes: [[customer_id], [account_details.account_number], [account_details.status]]
        document:
          account_id: $account_id
          customer_id: $customer_id
          account_details: { account_number: $account_number, account_type: $account_type, currency: $currency, status: $account_status }
          financial_info: { balance: $balance, interest_rate: $interest_rate, credit_limit: $credit_limit }
          dates: { opened_date: $opened_date, closed_date: $closed_date }
          metadata: { created_at: $created_at, updated_at: $updated_at, source_updated_at: $$source_ts, sync_timestamp: $$sync_ts }
          kind: account
          tags: [$currency, { $literal: $usd }, 7]
          op: $$op
`;
}

interface Stores {
  mongo: { data: MongoStore; derived: MongoStore };
  jsonb: { data: PgJsonStore; derived: PgJsonStore };
}

/** A copy without the fields that record when something was applied or computed. */
function timeless(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(timeless);
  if (v && typeof v === 'object' && !(v instanceof Date) && !(v instanceof Decimal) && !Buffer.isBuffer(v)) {
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'sync_timestamp' && k !== 'computed_at').map(([k, x]) => [k, timeless(x)]));
  }
  return v;
}

async function everything(s: { data: DocumentStore; derived: DocumentStore }): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const c of ['customers', 'accounts', 'branches', 'audit']) out[c] = timeless(await s.data.find(c, {}));
  out.customer_accounts = timeless(await s.derived.find('customer_accounts', {}));
  return out;
}

describe('document sinks: MongoDB and PostgreSQL JSONB', () => {
  let src: Awaited<ReturnType<typeof freshDatabase>>;
  let target: Awaited<ReturnType<typeof freshDatabase>>;
  let tmp: ReturnType<typeof tempDir>;
  let mongo: MongoClient;
  let mongoDb: string;
  let stores: Stores;
  let cfg: PipelineConfig;
  let yaml: string;
  let running: { stop(): Promise<void> } | null = null;

  const start = () => {
    const ac = new AbortController();
    const done = runPipeline(cfg, { signal: ac.signal, logger: quiet });
    done.catch(() => {});
    running = {
      async stop() {
        ac.abort();
        await done;
        running = null;
      },
    };
  };
  const both = (): [string, { data: DocumentStore; derived: DocumentStore }][] => [['mongodb', stores.mongo], ['jsonb', stores.jsonb]];

  before(async () => {
    src = await freshDatabase();
    target = await freshDatabase();
    tmp = tempDir();
    await src.client.query(SOURCE_SQL);
    mongoDb = `sluice_t_${randomBytes(4).toString('hex')}`;
    mongo = new MongoClient(MONGO_URL, { serverSelectionTimeoutMS: 5000, useBigInt64: true });
    await mongo.connect().catch((e: Error) => {
      throw new Error(`no MongoDB-compatible server at ${MONGO_URL} (${e.message}); start it with: bash scripts/mongo-server.sh start`, { cause: e });
    });
    stores = {
      mongo: { data: new MongoStore(mongo.db(mongoDb)), derived: new MongoStore(mongo.db(`${mongoDb}_analytics`)) },
      jsonb: { data: new PgJsonStore(target.client, 'odl'), derived: new PgJsonStore(target.client, 'analytics') },
    };
    const sinks = `sinks:
  - name: odl_mongo
    type: mongodb
    connection: ${MONGO_URL}/${mongoDb}
${collections()}    derive:
      database: ${mongoDb}_analytics
      module: ${DERIVERS}
  - name: odl_jsonb
    type: postgres_jsonb
    connection: { host: ${PG_HOST}, port: ${PG_PORT}, user: ${PG_USER}, database: ${target.name} }
    schema: odl
${collections()}    derive:
      schema: analytics
      module: ${DERIVERS}
`;
    yaml = pipelineYaml('docs', src.name, tmp.dir, '', sinks);
    cfg = parseConfig(yaml, join(tmp.dir, 'docs.yaml'), process.env);
    start();
  });

  after(async () => {
    await running?.stop();
    await mongo?.db(mongoDb).dropDatabase().catch(() => {});
    await mongo?.db(`${mongoDb}_analytics`).dropDatabase().catch(() => {});
    await mongo?.close();
    await target?.drop();
    await src?.drop();
    tmp?.remove();
  });

  /** Waits until every store holds what `check` expects (it throws or returns false until then). */
  async function converge(what: string, check: (name: string, s: { data: DocumentStore; derived: DocumentStore }) => Promise<boolean | void>): Promise<void> {
    for (const [name, s] of both()) {
      let last: unknown = null;
      await waitUntil(`${name}: ${what}`, async () => {
        try {
          return (await check(name, s)) !== false;
        } catch (e) {
          last = e;
          return false;
        }
      }, 60_000).catch((e: Error) => {
        throw new Error(`${e.message}${last ? `; last check: ${(last as Error).message}` : ''}`);
      });
    }
  }

  /** The derived collection equals what the source says, and a from-scratch recomputation. */
  async function derivedMatchesSource(s: { data: DocumentStore; derived: DocumentStore }): Promise<void> {
    const r = await src.client.query(`SELECT c.customer_id, c.first_name || ' ' || c.last_name AS name, count(a.account_id)::int AS n,
        COALESCE(sum(a.balance), 0)::numeric(20,2)::text AS total, COALESCE(array_agg(a.account_number ORDER BY a.account_number) FILTER (WHERE a.account_id IS NOT NULL), '{}') AS numbers
      FROM banking.customers c LEFT JOIN banking.accounts a USING (customer_id) GROUP BY c.customer_id, c.first_name, c.last_name ORDER BY c.customer_id`);
    const got = (await s.derived.find('customer_accounts', {})).sort((a, b) => Number(a._id) - Number(b._id));
    assert.deepEqual(
      got.map((d) => [d._id, d.customer_id, d.name, d.accounts, (d.total_balance as Decimal).text, d.account_numbers]),
      r.rows.map((x) => [x.customer_id, x.customer_id, x.name, x.n, x.total, x.numbers]),
    );
    const now = new Date();
    const fresh = [];
    for (const k of await customerAccounts.allKeys(s.data)) fresh.push({ ...(await customerAccounts.compute(k, s.data, now))!, _id: k });
    assert.deepEqual(timeless(got), timeless(fresh.sort((a, b) => Number(a._id) - Number(b._id))));
  }

  it('writes the snapshot as nested documents with exact values', async () => {
    await converge('snapshot applied', async (_n, s) => (await s.data.count('customers')) === 20 && (await s.data.count('accounts')) === 30 && (await s.data.count('audit')) === 2 && (await s.derived.count('customer_accounts')) === 20);
    const created = (await src.client.query(`SELECT created_at FROM banking.customers WHERE customer_id = 1`)).rows[0].created_at as Date;
    for (const [name, s] of both()) {
      const c = (await s.data.findOne('customers', { customer_id: 1 }))!;
      assert.ok(c, name);
      const meta = c.metadata as Doc;
      assert.deepEqual({ ...c, metadata: { ...meta, source_updated_at: null, sync_timestamp: null } }, {
        _id: 1,
        customer_id: 1,
        personal_info: { first_name: 'John', last_name: 'Doe', email: 'john.doe@email.com', phone: '+1-555-0123', date_of_birth: new Date('1985-06-15T00:00:00Z') },
        address: { line1: '123 Main St', line2: 'Apt 4B', city: 'New York', state: 'NY', postal_code: '10001', country: 'USA' },
        status: 'ACTIVE',
        metadata: { created_at: new Date('2024-01-15T10:30:00Z'), updated_at: new Date('2024-01-15T10:30:00Z'), source_updated_at: null, sync_timestamp: null },
      }, name);
      assert.equal(created.getTime(), new Date('2024-01-15T10:30:00Z').getTime());
      assert.ok(meta.source_updated_at instanceof Date && meta.sync_timestamp instanceof Date, `${name}: metadata times are dates`);
      assert.ok(meta.sync_timestamp.getTime() >= meta.source_updated_at.getTime() - 1000, `${name}: synced after the source commit`);
      assert.ok(Math.abs(Date.now() - meta.source_updated_at.getTime()) < 120_000, `${name}: source_updated_at is the snapshot's time`);

      const a1 = (await s.data.findOne('accounts', { 'account_details.account_number': 'ACC-2024-001234' }))!;
      assert.deepEqual({ ...a1, metadata: null }, {
        _id: 1,
        account_id: 1,
        customer_id: 1,
        account_details: { account_number: 'ACC-2024-001234', account_type: 'CHECKING', currency: 'USD', status: 'ACTIVE' },
        financial_info: { balance: new Decimal('2500.75'), interest_rate: new Decimal('0.0125'), credit_limit: null },
        dates: { opened_date: new Date('2024-01-01T00:00:00Z'), closed_date: null },
        metadata: null,
        kind: 'account',
        tags: ['USD', '$usd', 7],
        op: 'r',
      }, name);
      assert.deepEqual((a1.metadata as Doc).created_at, new Date('2024-01-01T09:00:00Z'));
      const a2 = (await s.data.findOne('accounts', { _id: 2 }))!;
      assert.deepEqual(a2.financial_info, { balance: new Decimal('9999999999999.99'), interest_rate: new Decimal('0.0450'), credit_limit: new Decimal('15000.00') }, name);
      assert.equal((await s.data.find('accounts', { customer_id: 1 })).length, 3, `${name}: find on a field`);
      assert.equal((await s.data.find('customers', { 'address.city': 'New York', status: 'ACTIVE' })).length, 1, `${name}: find on dotted fields`);

      // A table without a template: every column at the top level.
      const b1 = (await s.data.findOne('branches', { _id: 1 }))!;
      assert.deepEqual({ ...b1, photo: null }, { _id: 1, branch_id: 1, name: 'Main', opened: new Date('2001-09-09T00:00:00Z'), big: 9007199254740993n, data: { a: [1, name === 'jsonb' ? new Decimal('2.5') : 2.5, 'x'] }, photo: null }, name);
      assert.deepEqual(b1.photo, name === 'mongodb' ? Buffer.from([0, 255]) : Buffer.from([0, 255]).toString('base64'), name);
      // A table without a key: each insert's log position is its _id.
      const audit = await s.data.find('audit', {});
      assert.deepEqual(audit.map((d) => d.msg).sort(), ['audited', 'opened'], name);
      for (const d of audit) assert.match(String(d._id), /^docs\.banking\.audit\|\d+\|\d+$/, name);
    }
    // The stored types themselves: BSON Decimal128, date and int64; JSONB numbers and ISO text.
    const raw = await mongo.db(mongoDb).collection('accounts').findOne({ _id: 1 as never });
    assert.ok(raw!.financial_info.balance instanceof Decimal128 && raw!.financial_info.balance.toString() === '2500.75');
    assert.ok(raw!.dates.opened_date instanceof Date);
    const rawBranch = await mongo.db(mongoDb).collection('branches').findOne({ _id: 1 as never });
    assert.equal(rawBranch!.big, 9007199254740993n);
    const j = await target.client.query(`SELECT jsonb_typeof(doc #> '{financial_info,balance}') AS t, doc #>> '{financial_info,balance}' AS balance, doc #>> '{dates,opened_date}' AS opened FROM odl.accounts WHERE _id = '2'`);
    assert.deepEqual(j.rows[0], { t: 'number', balance: '9999999999999.99', opened: '2024-01-02T00:00:00.000Z' });
    const big = await target.client.query(`SELECT doc ->> 'big' AS big FROM odl.branches WHERE _id = '1'`);
    assert.equal(big.rows[0].big, '9007199254740993');
    // The requested indexes exist.
    const idx = (await mongo.db(mongoDb).collection('customers').indexes()).map((i) => i.name).sort();
    assert.deepEqual(idx, ['_id_', 'customer_id', 'personal_info.email', 'status']);
    const pgIdx = await target.client.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'odl' AND tablename = 'customers' ORDER BY indexname`);
    assert.ok(pgIdx.rows.some((r) => /\(\(doc #> '\{personal_info,email\}'::text\[\]\)\)/.test(r.indexdef)), JSON.stringify(pgIdx.rows));
    const plan = await target.client.query(`SET enable_seqscan = off; EXPLAIN SELECT doc FROM odl.customers WHERE (doc #> '{personal_info,email}') = '"c5@example.com"'::jsonb`);
    assert.match(JSON.stringify((plan as unknown as pg.QueryResult[])[1].rows), /Index Scan|Bitmap/);
    await target.client.query(`RESET enable_seqscan`);
    await converge('derived collection matches the source', async (_n, s) => derivedMatchesSource(s));
  });

  it('applies updates and deletes, and keeps the derived collection equal to a recomputation', async () => {
    const c = src.client;
    await c.query(`UPDATE banking.customers SET email = 'john@new.example', customer_status = 'SUSPENDED', updated_at = '2024-03-01 08:00:00+00' WHERE customer_id = 1`);
    await c.query(`UPDATE banking.accounts SET balance = 3000.10 WHERE account_id = 1`);
    await c.query(`UPDATE banking.accounts SET customer_id = 5 WHERE account_id = 3`); // moves from customer 4 to 5
    await c.query(`DELETE FROM banking.accounts WHERE account_id IN (4, 19)`);
    await c.query(`DELETE FROM banking.customers WHERE customer_id = 20`);
    await c.query(`INSERT INTO banking.customers (customer_id, first_name, last_name, email, customer_status) VALUES (21, 'Ada', 'Lovelace', 'ada@example.com', 'ACTIVE');
      INSERT INTO banking.accounts (account_id, customer_id, account_number, balance, opened_date) VALUES (31, 21, 'ACC-NEW-31', 0.01, '2024-05-05')`);
    await converge('changes applied', async (_n, s) => {
      const c1 = await s.data.findOne('customers', { _id: 1 });
      return (c1?.personal_info as Doc)?.email === 'john@new.example' && (await s.data.findOne('customers', { _id: 20 })) === null && (await s.data.findOne('accounts', { _id: 31 })) !== null && (await s.data.findOne('accounts', { _id: 4 })) === null;
    });
    for (const [name, s] of both()) {
      const c1 = (await s.data.findOne('customers', { 'personal_info.email': 'john@new.example' }))!;
      assert.equal(c1.status, 'SUSPENDED', name);
      assert.deepEqual((c1.metadata as Doc).updated_at, new Date('2024-03-01T08:00:00Z'), name);
      const a1 = (await s.data.findOne('accounts', { _id: 1 }))!;
      assert.deepEqual((a1.financial_info as Doc).balance, new Decimal('3000.10'), name);
      assert.equal(a1.op, 'u', name);
      assert.equal((await s.data.findOne('accounts', { _id: 3 }))!.customer_id, 5, name);
      assert.equal(await s.data.count('customers'), 20, name);
      assert.equal(await s.data.count('accounts'), 29, name);
      assert.equal(await s.data.findOne('customers', { 'personal_info.email': 'john.doe@email.com' }), null, name);
    }
    await converge('derived collection matches the source', async (_n, s) => derivedMatchesSource(s));
    for (const [name, s] of both()) {
      assert.equal(await s.derived.findOne('customer_accounts', { _id: 20 }), null, `${name}: a deleted customer's derived document is gone`);
      assert.equal((await s.derived.findOne('customer_accounts', { _id: 21 }))!.accounts, 1, name);
    }
  });

  it('applies truncates, and recomputes every derived key after one', async () => {
    const c = src.client;
    await c.query(`TRUNCATE banking.branches; INSERT INTO banking.branches (branch_id, name) VALUES (10, 'North'), (11, 'South')`);
    await c.query(`TRUNCATE banking.accounts; INSERT INTO banking.accounts (account_id, customer_id, account_number, balance, opened_date) VALUES (100, 1, 'ACC-100', 10.50, '2024-07-01'), (101, 2, 'ACC-101', 0.25, '2024-07-02'), (102, 2, 'ACC-102', 100, '2024-07-03')`);
    await converge('truncates applied', async (_n, s) => {
      const branches = (await s.data.find('branches', {})).map((d) => d._id);
      const accounts = (await s.data.find('accounts', {})).map((d) => d._id);
      return JSON.stringify(branches) === '[10,11]' && JSON.stringify(accounts) === '[100,101,102]';
    });
    await converge('derived collection matches the source', async (_n, s) => derivedMatchesSource(s));
    for (const [name, s] of both()) {
      const d2 = (await s.derived.findOne('customer_accounts', { _id: 2 }))!;
      assert.deepEqual([d2.accounts, d2.total_balance], [2, new Decimal('100.25')], name);
      assert.equal((await s.derived.findOne('customer_accounts', { _id: 7 }))!.accounts, 0, name);
    }
  });

  it('replaying the whole log (stored offsets dropped) leaves the same documents', async () => {
    await running!.stop();
    const beforeDocs = { mongodb: await everything(stores.mongo), jsonb: await everything(stores.jsonb) };
    const syncedBefore = ((await stores.mongo.data.findOne('customers', { _id: 1 }))!.metadata as Doc).sync_timestamp as Date;
    // Where the log ends: the replay is complete when both sinks stored these offsets again.
    const ends = new Map<string, number>();
    const log = await openLog(embeddedLogAt(join(tmp.dir, 'log')), { readOnly: true });
    try {
      for (const t of await log.listTopics()) {
        if (!t.name.startsWith('docs.banking.')) continue;
        for (const o of await log.offsets(t.name)) if (o.end > 0) ends.set(`${t.name}|${o.partition}`, o.end);
      }
    } finally {
      await log.close();
    }
    assert.ok(ends.size > 0);
    await stores.mongo.data.deleteAll('sluice_offsets');
    await stores.jsonb.data.deleteAll('sluice_offsets');
    start();
    await converge('the whole log applied again', async (_n, s) => {
      const stored = new Map((await s.data.find('sluice_offsets', {})).map((d) => [`${d.topic}|${d.partition}`, Number(d.next)]));
      return [...ends].every(([k, end]) => (stored.get(k) ?? 0) >= end);
    });
    await running!.stop();
    for (const [name, s] of both()) assert.deepEqual(await everything(s), beforeDocs[name as 'mongodb' | 'jsonb'], `${name}: the same documents after the replay`);
    const syncedAfter = ((await stores.mongo.data.findOne('customers', { _id: 1 }))!.metadata as Doc).sync_timestamp as Date;
    assert.ok(syncedAfter.getTime() > syncedBefore.getTime(), 'the replay did rewrite the documents');
  });

  it('a template naming a missing column stops the sink with the template line; bad $$ names fail at load', async () => {
    const badDb = `${mongoDb}_bad`;
    // (Replacement functions: a replacement string would read $$ as an escaped $.)
    const badYaml = yaml.replace(/sinks:[\s\S]*$/, () => `sinks:
  - name: bad
    type: mongodb
    connection: ${MONGO_URL}
    database: ${badDb}
${collections(true)}`);
    assert.ok(badYaml.includes('$$sync_ts'));
    const file = join(tmp.dir, 'bad.yaml');
    const line = badYaml.split('\n').findIndex((l) => l.includes('$emial')) + 1;
    const col = badYaml.split('\n')[line - 1].indexOf('$emial') + 1;
    const badCfg = parseConfig(badYaml, file, process.env);
    const sink = await sinkSpec(badCfg.sinks[0].type).create(badCfg.sinks[0], { pipeline: 'test', logger: quiet, id: 'docs/bad' });
    await sink.open();
    const log = await openLog(embeddedLogAt(join(tmp.dir, 'log')), { readOnly: true });
    try {
      const reader = new BatchReader(log, new SchemaStore(log, schemaTopicOf('docs')));
      reader.addTopic('docs.banking.customers', 3, undefined);
      const batch = (await reader.next({ maxRecords: 100_000, maxBytes: 1 << 30, maxDelayMs: 0 }, 0))!;
      await assert.rejects(sink.apply(batch), (e: Error & { code?: string; retriable?: boolean }) => {
        assert.equal(e.code, 'SINK_TEMPLATE_INVALID');
        assert.equal(e.retriable, false);
        assert.ok(e.message.includes(`${file}:${line}:${col}: sink bad, collection customers: document.personal_info.email: $emial is not a column of banking.customers (its columns: customer_id, first_name`), e.message);
        return true;
      });
    } finally {
      await log.close();
      await sink.close();
    }
    assert.equal(await new MongoStore(mongo.db(badDb)).count('customers'), 0, 'nothing written');
    await mongo.db(badDb).dropDatabase();

    const typo = yaml.replace('source_updated_at: $$source_ts', () => 'source_updated_at: $$source_time');
    const typoLine = typo.split('\n').findIndex((l) => l.includes('$$source_time')) + 1;
    assert.throws(() => parseConfig(typo, 'docs.yaml', process.env), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, new RegExp(`docs\\.yaml:${typoLine}:\\d+: sinks\\.0\\.collections\\.0\\.document\\.metadata\\.source_updated_at: unknown "\\$\\$source_time": the names after \\$\\$ are \\$\\$source_ts, \\$\\$sync_ts, \\$\\$op, \\$\\$table`));
      return true;
    });
    const reserved = yaml.replace('          customer_id: $customer_id\n', () => '          _id: $customer_id\n');
    assert.throws(() => parseConfig(reserved, 'docs.yaml', process.env), /document\._id: _id is set by the sink from the source row's primary key/);
  });
});
