/**
 * Java's Avro reader (scripts/avro-reader.sh `framed`) over records in the Confluent wire format,
 * and the JSON form it prints a value in, for tests that compare what Java decodes with events.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AvroSchema } from '../../src/core/avro/index.ts';

const SCRIPT = new URL('../../scripts/avro-reader.sh', import.meta.url).pathname;

/** Decodes framed records with Java (header stripped, body read with `schemaText`): each record's schema id and value. */
export function javaDecodeFramed(dir: string, name: string, schemaText: string, framed: Buffer[]): { id: number; value: unknown }[] {
  const schemaFile = join(dir, `${name}.avsc`);
  const hexFile = join(dir, `${name}.hex`);
  writeFileSync(schemaFile, schemaText);
  writeFileSync(hexFile, framed.map((b) => b.toString('hex')).join('\n') + '\n');
  const r = spawnSync('bash', [SCRIPT, 'framed', schemaFile, hexFile], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `scripts/avro-reader.sh framed failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { records: { id: number; value: unknown }[] }).records;
}

/** A value in the JSON form AvroRead.java prints (longs as strings, bytes as hex, decimals as plain text), by the schema. */
export function toJavaJson(s: AvroSchema, v: unknown): unknown {
  switch (s.type) {
    case 'union':
      if (v === null || v === undefined) return null;
      return toJavaJson(s.branches.find((b) => b.type !== 'null')!, v);
    case 'record':
      return Object.fromEntries(s.fields.map((f) => [f.name, toJavaJson(f.type, (v as Record<string, unknown>)[f.name] ?? null)]));
    case 'array':
      return (v as unknown[]).map((x) => toJavaJson(s.items, x));
    case 'long':
      return String(v);
    case 'bytes':
      return s.logical?.name === 'decimal' ? v : Buffer.from(v as string, 'base64').toString('hex');
    default:
      return v;
  }
}
