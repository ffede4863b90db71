/**
 * Helpers to run a pipeline against a test database and read what it wrote to the log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before } from 'node:test';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/index.ts';
import type { LogConfig, PipelineConfig } from '../../src/config/types.ts';
import { embeddedLogAt, openLog } from '../../src/log/open.ts';
import { freshDatabase, PG_HOST, PG_PORT, PG_USER } from './pg.ts';

export function tempDir(prefix = 'sluice-test-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A pipeline config for database `db`, logging into `dir`. `extra` is YAML merged into `source:`. */
export function pipelineYaml(name: string, db: string, dir: string, sourceExtra = '', topExtra = ''): string {
  return `name: ${name}
source:
  type: postgres
  connection:
    host: ${PG_HOST}
    port: ${PG_PORT}
    user: ${PG_USER}
    database: ${db}
  heartbeatIntervalMs: 500
  statusIntervalMs: 500
${/^skippedOperations:/m.test(sourceExtra) ? '' : '  skippedOperations: []  # truncates too (Debezium skips them by default)\n'}${/^slot:/m.test(sourceExtra) ? '' : `  slot: ${name.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${db.slice(-8)}\n`}${sourceExtra.split('\n').filter(Boolean).map((l) => '  ' + l).join('\n')}
state:
  dir: ${join(dir, 'state')}
log:
  dir: ${join(dir, 'log')}
  partitions: 3
logging:
  level: warn
${topExtra}
`;
}

export function pipelineConfig(name: string, db: string, dir: string, sourceExtra = '', topExtra = ''): PipelineConfig {
  return parseConfig(pipelineYaml(name, db, dir, sourceExtra, topExtra), 'test.yaml', process.env);
}

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: number;
  key: any;
  value: any;
  /** The record's headers (readAll always sets them). */
  headers?: Record<string, string>;
}

/** A key or value as JSON, or its text when it is not JSON (a dead letter's key). */
const jsonOrText = (b: Buffer | null): any => {
  if (!b) return null;
  const s = b.toString();
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
};

/** The directory of a pipeline's embedded log (a test that means the embedded log says so here). */
export function logDirOf(cfg: { log: LogConfig }): string {
  if (cfg.log.backend !== 'embedded') throw new Error(`the test expects an embedded log, the config has ${cfg.log.backend}`);
  return cfg.log.dir;
}

/** A log to read: an embedded log's directory, or any backend's config. */
export type LogRef = string | LogConfig;
const logConfigOf = (ref: LogRef): LogConfig => (typeof ref === 'string' ? embeddedLogAt(ref) : ref);

/** Reads every committed record of the topics whose name starts with `prefix`, per partition in order. */
export async function readAll(logRef: LogRef, prefix: string): Promise<ReadRecord[]> {
  const log = await openLog(logConfigOf(logRef), { readOnly: true });
  try {
    const out: ReadRecord[] = [];
    for (const t of await log.listTopics()) {
      if (!t.name.startsWith(prefix) || t.name.endsWith('.__schemas')) continue;
      for (const p of await log.offsets(t.name)) {
        let off = p.start;
        while (off < p.end) {
          const { records, next } = await log.read(t.name, p.partition, off, 4 << 20);
          for (const r of records) {
            out.push({ topic: t.name, partition: r.partition, offset: r.offset, key: jsonOrText(r.key), value: r.value ? JSON.parse(r.value.toString()) : null, headers: r.headers ?? {} });
          }
          off = next;
        }
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/** The schema records of a log's `<prefix>.__schemas` topic, by id, in the order the source wrote them. */
export async function readSchemas(logRef: LogRef, prefix: string): Promise<Map<string, any>> {
  const log = await openLog(logConfigOf(logRef), { readOnly: true });
  try {
    const out = new Map<string, any>();
    const topic = `${prefix}.__schemas`;
    if (!(await log.topicInfo(topic))) return out;
    for (const p of await log.offsets(topic)) {
      let off = p.start;
      while (off < p.end) {
        const { records, next } = await log.read(topic, p.partition, off, 4 << 20);
        for (const r of records) if (r.value) out.set(r.key!.toString(), JSON.parse(r.value.toString()));
        off = next;
      }
    }
    return out;
  } finally {
    await log.close();
  }
}

/** Records committed to `topic` (all partitions); 0 when the topic does not exist yet. */
export async function countRecords(logRef: LogRef, topic: string): Promise<number> {
  const log = await openLog(logConfigOf(logRef), { readOnly: true });
  try {
    if (!(await log.topicInfo(topic))) return 0;
    const parts = await log.offsets(topic);
    if (log.capabilities.denseOffsets) return parts.reduce((s, p) => s + p.end - p.start, 0);
    // Offsets with gaps (Kafka's transaction markers): count the records.
    let n = 0;
    for (const p of parts) {
      for (let off = p.start; off < p.end; ) {
        const r = await log.read(topic, p.partition, off, 4 << 20);
        n += r.records.length;
        off = r.next;
      }
    }
    return n;
  } finally {
    await log.close();
  }
}

export async function waitUntil(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
      last = null;
    } catch (e) {
      // Not there yet (e.g. the log is still being created); keep the error for the message.
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

export interface SuiteFixture {
  db: Awaited<ReturnType<typeof freshDatabase>>;
  tmp: ReturnType<typeof tempDir>;
}

/**
 * Registers before/after hooks that give the enclosing suite a fresh database (set up with
 * `setupSql`) and a temp directory, both removed afterwards. Read the fields inside tests.
 */
export function useDatabase(setupSql = ''): SuiteFixture {
  const f = {} as SuiteFixture;
  before(async () => {
    f.db = await freshDatabase();
    f.tmp = tempDir();
    if (setupSql) await f.db.client.query(setupSql);
  });
  after(async () => {
    await f.db?.drop();
    f.tmp?.remove();
  });
  return f;
}

/** A TCP port nobody listens on right now (for servers a test configures with a fixed port). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
