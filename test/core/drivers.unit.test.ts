/** loadDriver: a connector's missing optional driver is a coded error naming the package, nothing else is. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { loadDriver, missingPackage } from '../../src/core/drivers.ts';
import { SluiceError } from '../../src/core/errors.ts';

// Modules that import packages no one installs, in a directory with no node_modules above it: the
// same failure as a connector module whose driver was left out by --omit=optional.
const dir = mkdtempSync(join(tmpdir(), 'sluice-drivers-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function moduleImporting(name: string, spec: string): string {
  const file = join(dir, name);
  writeFileSync(file, `import x from '${spec}';\nexport default x;\n`);
  return pathToFileURL(file).href;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('expected a rejection');
}

describe('loadDriver', () => {
  it('returns what load() resolves to', async () => {
    const m = await loadDriver('node:path', 'the test', () => import('node:path'));
    assert.equal(m.join('a', 'b'), join('a', 'b'));
  });

  it('turns a missing driver imported by a connector module into DRIVER_MISSING naming the package', async () => {
    const url = moduleImporting('duck.mjs', '@sluice-test-absent/node-api');
    const e = await rejection(loadDriver('@sluice-test-absent/node-api', 'the duckdb sink', () => import(url)));
    assert.ok(e instanceof SluiceError, String(e));
    assert.equal(e.code, 'DRIVER_MISSING');
    assert.equal(e.message, 'the duckdb sink needs the npm package @sluice-test-absent/node-api: run npm install @sluice-test-absent/node-api');
    assert.equal(e.retriable, false);
    assert.equal((e.cause as { code?: string }).code, 'ERR_MODULE_NOT_FOUND');
  });

  it('recognizes a subpath import of the driver (mysql2/promise) and a direct dynamic import', async () => {
    const url = moduleImporting('sub.mjs', 'sluice-test-absent-driver/promise');
    const e1 = await rejection(loadDriver('sluice-test-absent-driver', 'the mysql sink', () => import(url)));
    assert.equal((e1 as SluiceError).code, 'DRIVER_MISSING');
    const spec = 'sluice-test-absent-driver';
    const e2 = await rejection(loadDriver(spec, 'the mongodb sink', () => import(spec)));
    assert.equal((e2 as SluiceError).code, 'DRIVER_MISSING');
    assert.match((e2 as SluiceError).message, /^the mongodb sink needs the npm package sluice-test-absent-driver: run npm install sluice-test-absent-driver$/);
  });

  it('recognizes require() of the driver from CommonJS', async () => {
    const require = createRequire(join(dir, 'x.cjs'));
    const e = await rejection(loadDriver('sluice-test-absent-driver', 'the sink', async () => require('sluice-test-absent-driver/lib/x.js')));
    assert.equal((e as SluiceError).code, 'DRIVER_MISSING');
  });

  it('rethrows unchanged when another package is missing, a file is missing, or load fails otherwise', async () => {
    const url = moduleImporting('other.mjs', 'sluice-test-absent-dependency');
    const e1 = await rejection(loadDriver('sluice-test-absent-driver', 'the sink', () => import(url)));
    assert.ok(!(e1 instanceof SluiceError));
    assert.equal((e1 as { code?: string }).code, 'ERR_MODULE_NOT_FOUND');
    // A prefix of the driver's name is another package.
    const e2 = await rejection(loadDriver('sluice-test-absent', 'the sink', () => import(url)));
    assert.ok(!(e2 instanceof SluiceError));
    const missingFile = pathToFileURL(join(dir, 'no-such-module.mjs')).href;
    const e3 = await rejection(loadDriver('sluice-test-absent-driver', 'the sink', () => import(missingFile)));
    assert.ok(!(e3 instanceof SluiceError));
    const boom = new Error('boom');
    assert.equal(await rejection(loadDriver('x', 'the sink', () => Promise.reject(boom))), boom);
  });

  it('missingPackage reads the package out of both loaders\' messages', () => {
    const err = (code: string, message: string) => Object.assign(new Error(message), { code });
    assert.equal(missingPackage(err('ERR_MODULE_NOT_FOUND', "Cannot find package 'mongodb' imported from /x/dist/sinks/document/mongodb.js")), 'mongodb');
    assert.equal(missingPackage(err('MODULE_NOT_FOUND', "Cannot find module '@duckdb/node-api/lib/index.js'\nRequire stack:\n- /x/y.js")), '@duckdb/node-api');
    assert.equal(missingPackage(err('ERR_MODULE_NOT_FOUND', "Cannot find module '/x/dist/a.js' imported from /x/dist/b.js")), null);
    assert.equal(missingPackage(err('ECONNREFUSED', "Cannot find package 'mongodb'")), null);
    assert.equal(missingPackage(null), null);
  });
});
