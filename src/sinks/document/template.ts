/**
 * The document template language: a YAML mapping whose shape is the document's. Leaves are
 *   `$column`      a source column's value (converted as in reshape.ts)
 *   `$$source_ts`  the change's commit time in the source (`source.ts_ms`), a date
 *   `$$sync_ts`    when the sink applied the change, a date
 *   `$$op`         the change's op: c, u, r
 *   `$$table`      the source table, `schema.table`
 *   anything else  a literal (string, number, boolean, null); `{ $literal: … }` for a literal that
 *                  starts with `$` or is itself a mapping
 * Mappings nest; lists hold leaves or mappings. Field names may not start with `$` nor contain
 * `.` (MongoDB reads a dot as a path), and `_id` is reserved: the sink sets it from the key.
 */
import type { DocValue } from './types.ts';

export const META_NAMES = ['source_ts', 'sync_ts', 'op', 'table'] as const;
export type MetaName = (typeof META_NAMES)[number];

export type Compiled =
  | { k: 'col'; name: string; path: string }
  | { k: 'meta'; name: MetaName }
  | { k: 'lit'; v: DocValue }
  | { k: 'obj'; fields: [string, Compiled][] }
  | { k: 'arr'; items: Compiled[] };

/** Reports a problem at a template path (keys and list indexes below `document`). */
export type TemplateProblem = (path: string[], message: string) => void;

/** Compiles a template; problems are reported and the offending leaf becomes null. */
export function compileTemplate(t: unknown, problem: TemplateProblem, path: string[] = []): Compiled {
  if (t === null || typeof t === 'number' || typeof t === 'boolean') return { k: 'lit', v: t };
  if (typeof t === 'string') {
    if (t.startsWith('$$')) {
      const name = t.slice(2);
      if ((META_NAMES as readonly string[]).includes(name)) return { k: 'meta', name: name as MetaName };
      problem(path, `unknown ${JSON.stringify(t)}: the names after $$ are ${META_NAMES.map((m) => '$$' + m).join(', ')}; write { $literal: ${JSON.stringify(t)} } for this text`);
      return { k: 'lit', v: null };
    }
    if (t.startsWith('$')) {
      const name = t.slice(1);
      if (!name) {
        problem(path, `"$" names no column: write $<column>, or { $literal: "$" } for the text`);
        return { k: 'lit', v: null };
      }
      return { k: 'col', name, path: path.join('.') };
    }
    return { k: 'lit', v: t };
  }
  if (Array.isArray(t)) return { k: 'arr', items: t.map((x, i) => compileTemplate(x, problem, [...path, String(i)])) };
  if (typeof t === 'object') {
    const o = t as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.includes('$literal')) {
      if (keys.length > 1) problem(path, `a { $literal: … } mapping holds nothing else (found ${keys.filter((k) => k !== '$literal').join(', ')})`);
      return { k: 'lit', v: o.$literal as DocValue };
    }
    const fields: [string, Compiled][] = [];
    for (const key of keys) {
      const at = [...path, key];
      if (key.startsWith('$')) problem(at, `field names may not start with "$" (only { $literal: … } is known)`);
      else if (key.includes('.')) problem(at, `field names may not contain "." (MongoDB reads it as a path): nest a mapping instead`);
      else if (key === '_id' && path.length === 0) problem(at, `_id is set by the sink from the source row's primary key; name this field otherwise`);
      fields.push([key, compileTemplate(o[key], problem, at)]);
    }
    return { k: 'obj', fields };
  }
  problem(path, `unsupported template value ${JSON.stringify(t)}`);
  return { k: 'lit', v: null };
}

/** Every column the template reads, with the template path that reads it. */
export function templateColumns(c: Compiled, out: { name: string; path: string }[] = []): { name: string; path: string }[] {
  if (c.k === 'col') out.push({ name: c.name, path: c.path });
  else if (c.k === 'obj') for (const [, f] of c.fields) templateColumns(f, out);
  else if (c.k === 'arr') for (const f of c.items) templateColumns(f, out);
  return out;
}

export interface RenderContext {
  row: Record<string, DocValue>;
  sourceTs: Date | null;
  syncTs: Date;
  op: string;
  table: string;
}

export function render(c: Compiled, ctx: RenderContext): DocValue {
  switch (c.k) {
    case 'col': {
      const v = ctx.row[c.name];
      return v === undefined ? null : v;
    }
    case 'meta':
      return c.name === 'source_ts' ? ctx.sourceTs : c.name === 'sync_ts' ? ctx.syncTs : c.name === 'op' ? ctx.op : ctx.table;
    case 'lit':
      return c.v;
    case 'arr':
      return c.items.map((x) => render(x, ctx));
    case 'obj': {
      const o: Record<string, DocValue> = {};
      for (const [k, f] of c.fields) o[k] = render(f, ctx);
      return o;
    }
  }
}
