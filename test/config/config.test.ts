import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';

const bad = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
  try {
    parseConfig(yaml, 'p.yaml', env);
  } catch (e) {
    return (e as Error & { code: string }).code + '\n' + (e as Error).message;
  }
  throw new Error('expected the config to be rejected');
};

describe('pipeline config', () => {
  it('fills every default from a minimal config', () => {
    const c = parseConfig('name: shop\nsource:\n  type: postgres\n  connection:\n    database: shop\n', 'p.yaml', {});
    assert.deepEqual(c.source.connection, { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'shop' });
    assert.equal(c.source.slot, 'sluice_shop');
    assert.equal(c.source.publication, 'sluice_shop');
    assert.equal(c.source.topicPrefix, 'shop');
    assert.equal(c.source.protocol, 1);
    assert.equal(c.source.snapshot, 'initial');
    assert.deepEqual(c.source.tables, []);
    assert.equal(c.log.dir, './data/shop/log');
    assert.equal(c.log.partitions, 3);
    assert.deepEqual(c.batch, { maxRecords: 5000, maxBytes: 4 << 20, maxDelayMs: 20 });
    assert.equal(c.serialization.schemas, false);
    assert.equal(c.server, undefined);
  });

  it('accepts a URL connection, env interpolation with defaults, sizes and durations', () => {
    const c = parseConfig(
      'name: a-b.c\nsource:\n  type: postgres\n  connection: postgres://u:${PW}@db.local:6543/${DB:-app}\n  heartbeatIntervalMs: 2s\nlog:\n  segmentBytes: 8MiB\n  dir: $${literal}\n',
      'p.yaml',
      { PW: 's3cr:t' },
    );
    assert.deepEqual(c.source.connection, { host: 'db.local', port: 6543, user: 'u', password: 's3cr:t', database: 'app' });
    assert.equal(c.source.heartbeatIntervalMs, 2000);
    assert.equal(c.log.segmentBytes, 8 << 20);
    assert.equal(c.log.dir, '${literal}');
    assert.equal(c.source.slot, 'sluice_a_b_c');
  });

  it('names the line, column and key of each problem, sorted by line', () => {
    const msg = bad('name: shop\nsorce: 1\nsource:\n  type: postgres\n  connection: {database: x}\n  protocol: 3\n  snapshot: sometimes\nlog:\n  partitions: "two"\n');
    assert.match(msg, /^CONFIG_INVALID\n/);
    const lines = msg.split('\n').slice(2).map((l) => l.trim());
    assert.equal(lines[0], "p.yaml:2:1: sorce: unknown key (did you mean 'source'?); allowed: name, source, log, batch, serialization, maxQueueBytes, server, logging");
    assert.equal(lines[1], 'p.yaml:6:13: source.protocol: must be one of 1, 2 (got 3)');
    assert.equal(lines[2], 'p.yaml:7:13: source.snapshot: must be one of "initial", "never", "initial_only" (got "sometimes")');
    assert.equal(lines[3], 'p.yaml:9:15: log.partitions: must be integer (got "two")');
  });

  it('reports a missing environment variable and bad units with their line', () => {
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection:\n    database: d\n    password: ${NOPE}\n'), /p\.yaml:6:15: environment variable NOPE is not set/);
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: {database: d}\nbatch:\n  maxBytes: 12 parsecs\n'), /p\.yaml:6:13: batch\.maxBytes: must be a size such as 1048576 or "64MiB" \(got "12 parsecs"\)/);
    assert.match(bad('name: x\nsource:\n  type: postgres\n  connection: mysql://x\n'), /p\.yaml:4:15: source\.connection: must be a URL postgres:\/\/user:password@host:port\/database/);
  });

  it('reports YAML syntax errors and missing keys', () => {
    assert.match(bad('name: x\nsource: [unclosed\n'), /p\.yaml:\d+:\d+: YAML syntax/);
    assert.match(bad('name: x\n'), /p\.yaml:1:1: missing required key 'source'/);
  });
});
