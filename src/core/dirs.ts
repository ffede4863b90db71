/**
 * Creating a directory and its parents without Node's recursive mkdir, which never returns for
 * some paths (`mkdirSync('/proc/x/y', { recursive: true })` spins forever on Node 20): each missing
 * level is created on its own, below the nearest existing ancestor, so a path that cannot exist
 * fails at once with the reason.
 */
import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** The missing levels of `dir`, outermost first, and the nearest ancestor that exists. */
function missingLevels(dir: string, exists: (p: string) => boolean | 'not-dir'): string[] {
  const out: string[] = [];
  let p = resolve(dir);
  for (;;) {
    const e = exists(p);
    if (e === 'not-dir') throw Object.assign(new Error(`${p} exists and is not a directory`), { code: 'ENOTDIR', path: p });
    if (e) break;
    out.unshift(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return out;
}

function existsSyncDir(p: string): boolean | 'not-dir' {
  try {
    return statSync(p).isDirectory() ? true : 'not-dir';
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return false;
    throw e;
  }
}

/** `mkdir -p`, synchronously; throws the file system's error (EACCES, ENOENT, EROFS, ENOTDIR…). */
export function makeDirsSync(dir: string): void {
  for (const p of missingLevels(dir, existsSyncDir)) {
    try {
      mkdirSync(p);
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
  }
}

/** `mkdir -p`; throws the file system's error (EACCES, ENOENT, EROFS, ENOTDIR…). */
export async function makeDirs(dir: string): Promise<void> {
  const known = new Map<string, boolean | 'not-dir'>();
  // Walk up with async stats first, then create downwards.
  let p = resolve(dir);
  for (;;) {
    let e: boolean | 'not-dir';
    try {
      e = (await stat(p)).isDirectory() ? true : 'not-dir';
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
      e = false;
    }
    known.set(p, e);
    if (e) break;
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const level of missingLevels(dir, (x) => known.get(x) ?? true)) {
    try {
      await mkdir(level);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
  }
}
