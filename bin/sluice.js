#!/usr/bin/env node
// The sluice command. In a source checkout (src/ beside bin/) it runs the TypeScript sources
// through tsx, so a developer never runs a stale build; in an installed package (no src/, which
// `files` leaves out) it runs the compiled dist/ with production dependencies only.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
let main;
if (existsSync(source)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    console.error('sluice: this is a source checkout, which runs the TypeScript sources through tsx, and tsx is not installed: run npm install (with dev dependencies)');
    process.exit(1);
  }
  register();
  ({ main } = await import(source.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
process.exitCode = await main(process.argv.slice(2));
