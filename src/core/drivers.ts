/**
 * Optional drivers. Connectors whose database driver a user may not need (MongoDB, DuckDB) load
 * it on first use through `loadDriver`, so a package installed without optional dependencies
 * still runs every other pipeline, and a pipeline that does need the missing driver stops with
 * a coded error naming the package to install instead of a module-resolution stack trace.
 */
import { coreError } from './errors.ts';

/**
 * Runs `load` (a dynamic import of the driver, or of the connector module that imports it) and
 * turns "the package `pkg` is not installed" into DRIVER_MISSING. `what` names the component for
 * the message, e.g. `the duckdb sink`. Any other failure, including a missing package other than
 * `pkg` (a broken install of the driver itself), is rethrown unchanged.
 */
export async function loadDriver<T>(pkg: string, what: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (e) {
    if (missingPackage(e) === pkg) {
      throw coreError('DRIVER_MISSING', `${what} needs the npm package ${pkg}: run npm install ${pkg}`, { cause: e });
    }
    throw e;
  }
}

/**
 * The package a module-resolution error says is missing, or null for any other error. Node's ESM
 * loader says `Cannot find package 'x' imported from …` (ERR_MODULE_NOT_FOUND); require() says
 * `Cannot find module 'x/sub'` (MODULE_NOT_FOUND), so a subpath is cut back to its package.
 */
export function missingPackage(err: unknown): string | null {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'MODULE_NOT_FOUND')) return null;
  const m = /Cannot find (?:package|module) '([^']+)'/.exec(typeof e.message === 'string' ? e.message : '');
  if (!m) return null;
  const spec = m[1];
  // A relative or absolute path is a missing file of some installed package, not a missing package.
  if (spec.startsWith('.') || spec.startsWith('/') || /^[a-z]+:/i.test(spec)) return null;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}
