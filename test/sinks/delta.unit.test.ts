/**
 * The lake sinks' directory names come from source schema and table names, which may hold
 * anything a database allows: a table (or, for Iceberg, a schema giving the namespace) named `..`
 * or `a/b`, or a template with a slash, is refused with SINK_TARGET_PATH before anything is
 * written, and nothing appears outside the lake. (The Iceberg sink's cases share this file's batch.)
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.ts';
import type { SchemaRecord } from '../../src/core/schemas.ts';
import { DeltaSink } from '../../src/sinks/delta/sink.ts';
import { deltaSink, type DeltaSinkConfig } from '../../src/sinks/delta/spec.ts';
import type { SinkBatch } from '../../src/sinks/types.ts';
import { IcebergSink } from '../../src/sinks/iceberg/sink.ts';
import { icebergSink, type IcebergSinkConfig } from '../../src/sinks/iceberg/spec.ts';

const root = mkdtempSync(join(tmpdir(), 'sluice-delta-unit-'));
after(() => rmSync(root, { recursive: true, force: true }));

function sink(raw: Record<string, unknown>): DeltaSink {
  const written = { name: 'lake', type: 'delta', path: join(root, 'lake'), ...raw };
  const cfg = deltaSink.config.resolve(written, { root: { sinks: [written] }, path: ['sinks', '0'], fileName: 't.yaml' }) as Omit<DeltaSinkConfig, 'type'>;
  return new DeltaSink({ type: 'delta', ...cfg }, createLogger({ level: 'error' }), 'p/lake');
}

function batchOf(schema: string, table: string): SinkBatch {
  const s: SchemaRecord = { id: 'x', connector: 'postgresql', topic: `p.${schema}.${table}`, schema, table, keyColumns: ['id'], columns: [] };
  const value = JSON.stringify({ op: 'c', before: null, after: { id: 1 }, source: { ts_ms: 0 } });
  return {
    tables: [{ topic: s.topic, schema: s, schemas: [s], truncate: null, changes: [{ topic: s.topic, partition: 0, offset: 0, key: '{"id":1}', value, op: 'c', schema: s }], upserts: [], deletes: [], keyless: [] }],
    offsets: [{ topic: s.topic, partition: 0, next: 1 }],
    records: 1,
    bytes: value.length,
  };
}

describe('Delta sink: table directories', () => {
  for (const [what, raw, schema, table, dir] of [
    ['a source table named ..', {}, 'public', '..', '..'],
    ['a source table named a/b', {}, 'public', 'a/b', 'a/b'],
    ['a tableName template with a slash', { tableName: '{schema}/{table}' }, 'public', 'orders', 'public/orders'],
  ] as const) {
    it(`refuses ${what} with SINK_TARGET_PATH and writes nothing`, async () => {
      const s = sink(raw);
      await s.open();
      try {
        await assert.rejects(s.apply(batchOf(schema, table)), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'SINK_TARGET_PATH');
          assert.match(e.message, new RegExp(`would be the directory ${JSON.stringify(dir).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} .*not one directory name under`));
          return true;
        });
      } finally {
        await s.close();
      }
      assert.deepEqual(readdirSync(join(root, 'lake')), [], 'nothing in the lake');
      assert.equal(existsSync(join(root, '_delta_log')), false, 'nothing beside the lake');
    });
  }
});

function iceberg(raw: Record<string, unknown>): IcebergSink {
  const written = { name: 'wh', type: 'iceberg', path: join(root, 'wh'), ...raw };
  const cfg = icebergSink.config.resolve(written, { root: { sinks: [written] }, path: ['sinks', '0'], fileName: 't.yaml' }) as Omit<IcebergSinkConfig, 'type'>;
  return new IcebergSink({ type: 'iceberg', ...cfg }, createLogger({ level: 'error' }), 'p/wh');
}

describe('Iceberg sink: namespace and table directories', () => {
  for (const [what, raw, schema, table, kind] of [
    ['a source schema named .. (the namespace)', {}, '..', 'orders', 'namespace'],
    ['a source table named a/b', {}, 'public', 'a/b', 'table'],
    ['a namespace template with a slash', { namespace: '{schema}/x' }, 'public', 'orders', 'namespace'],
  ] as const) {
    it(`refuses ${what} with SINK_TARGET_PATH and writes nothing`, async () => {
      const s = iceberg(raw);
      await s.open();
      try {
        await assert.rejects(s.apply(batchOf(schema, table)), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'SINK_TARGET_PATH');
          assert.match(e.message, new RegExp(`the Iceberg ${kind} of .* is not one directory name`));
          return true;
        });
      } finally {
        await s.close();
      }
      assert.deepEqual(readdirSync(join(root, 'wh')), [], 'nothing in the warehouse');
    });
  }
});
