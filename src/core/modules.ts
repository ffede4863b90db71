/**
 * Loading a user's module (a processor's `module`, a document sink's derive module) by path. A
 * JavaScript module is imported as it is. A TypeScript one is imported directly where Node can
 * (under tsx, or a Node that strips types); otherwise it is bundled with esbuild (an optional
 * package) into one ES module, relative imports included and packages left as imports, written to
 * `.sluice/` beside the module (so its packages resolve as they would from the module itself),
 * and that is imported.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadDriver } from './drivers.ts';

export async function importUserModule(file: string, what: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !/\.[cm]?ts$/.test(file)) throw e;
  }
  const esbuild = await loadDriver('esbuild', `${what} (${file}, TypeScript)`, () => import('esbuild' as string) as Promise<{ build(o: object): Promise<unknown> }>);
  const dir = join(dirname(file), '.sluice');
  mkdirSync(dir, { recursive: true });
  // Named by the module's path, rebuilt on every load (its imports may have changed).
  const out = join(dir, `${basename(file).replace(/\.[cm]?ts$/, '')}.${createHash('sha256').update(file).digest('hex').slice(0, 8)}.mjs`);
  await esbuild.build({ entryPoints: [file], outfile: out, bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'silent' });
  return (await import(`${pathToFileURL(out).href}?at=${statSync(out).mtimeMs}`)) as Record<string, unknown>;
}
