/**
 * Config checks of the document sinks (`mongodb`, `postgres_jsonb`), called by the config loader
 * after JSON Schema validation (the spec's `check`): templates are compiled here so that a bad `$$` name
 * or field name fails at load time with its file:line; each template leaf's position is kept so
 * that a column the source table lacks (known only once its schema arrives) is reported at its
 * line too.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CheckContext } from '../../registry/spec.ts';
import { compileTemplate } from './template.ts';

/** The database named in a MongoDB URL's path, if any. */
export { mongoUrlDatabase } from '../../core/net.ts';
import { mongoUrlDatabase } from '../../core/net.ts';

/** Leaf paths of a template (below `document`). */
function leaves(t: unknown, path: string[], out: string[][]): string[][] {
  if (t && typeof t === 'object' && !Array.isArray(t) && !('$literal' in t)) {
    for (const [k, v] of Object.entries(t)) leaves(v, [...path, k], out);
  } else if (Array.isArray(t)) t.forEach((v, i) => leaves(v, [...path, String(i)], out));
  else out.push(path);
  return out;
}

/**
 * Checks one document sink of the raw config (at `path`, e.g. ['sinks', '2']) and records, on the
 * raw object, what the defaults step needs: positions, the resolved derive module path.
 */
export function checkDocumentSink(raw: any, path: string[], ctx: CheckContext): void {
  const where = (p: string[]) => {
    const at = ctx.pos(p);
    return `${ctx.fileName}:${at.line}:${at.col}`;
  };
  if (raw.type === 'mongodb' && !raw.database && typeof raw.connection === 'string' && !mongoUrlDatabase(raw.connection)) {
    ctx.fail([...path, 'connection'], `names no database: add database: <name> to the sink, or write it in the URL (mongodb://host:27017/<database>)`);
  }
  (raw.collections ?? []).forEach((c: any, j: number) => {
    const cpath = [...path, 'collections', String(j)];
    const positions: Record<string, string> = {};
    if (c.document !== undefined) {
      compileTemplate(c.document, (p, msg) => ctx.fail([...cpath, 'document', ...p], msg));
      for (const leaf of leaves(c.document, [], [])) positions[leaf.join('.')] = where([...cpath, 'document', ...leaf]);
    }
    (c.indexes ?? []).forEach((fields: string[], k: number) => {
      fields.forEach((f, n) => {
        if (f.startsWith('$') || f.split('.').some((part) => part === '')) ctx.fail([...cpath, 'indexes', String(k), String(n)], `${JSON.stringify(f)} is not a document field (write a field name, dotted for nested fields: personal_info.email)`);
      });
    });
    Object.defineProperty(c, '__at', { value: where(cpath), enumerable: false });
    Object.defineProperty(c, '__positions', { value: positions, enumerable: false });
  });
  if (raw.derive?.module) {
    const file = resolve(dirname(ctx.fileName), raw.derive.module);
    if (!existsSync(file)) ctx.fail([...path, 'derive', 'module'], `${file} does not exist (the path is relative to the config file)`);
    Object.defineProperty(raw.derive, '__file', { value: file, enumerable: false });
  }
}
