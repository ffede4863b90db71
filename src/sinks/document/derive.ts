/**
 * Derived collections: after a batch is in the operational layer, each deriver is asked which of
 * its keys the batch's changes touched; those keys are recomputed from the layer and written to
 * the derived store (a null result deletes the key's document). A truncate recomputes every key:
 * those the derived collection holds and those `allKeys` lists.
 */
import { pathToFileURL } from 'node:url';
import { SluiceError } from '../../core/errors.ts';
import type { DerivedChange, Deriver, Doc, DocumentStore } from './types.ts';
import { documentError } from './errors.ts';

/** Loads `derivers` (or a default export of that shape) from a module file. */
export async function loadDerivers(file: string): Promise<Deriver[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw documentError('SINK_DERIVE_INVALID', `cannot load the derive module ${file}: ${(e as Error).message}`, { cause: e });
  }
  const list = mod.derivers ?? (mod.default as Record<string, unknown> | undefined)?.derivers ?? mod.default;
  if (!Array.isArray(list)) {
    throw documentError('SINK_DERIVE_INVALID', `the derive module ${file} must export \`derivers\`: an array of { collection, affected, compute, allKeys } (see docs/connectors/documents.md)`);
  }
  const seen = new Set<string>();
  list.forEach((d: Partial<Deriver>, i) => {
    const bad = !d || typeof d.collection !== 'string' || !d.collection ? 'collection' : (['affected', 'compute', 'allKeys'] as const).find((f) => typeof d[f] !== 'function');
    if (bad) throw documentError('SINK_DERIVE_INVALID', `derivers[${i}] of ${file} lacks ${bad === 'collection' ? 'a `collection` name' : `the function \`${bad}\``}`);
    if (seen.has(d.collection!)) throw documentError('SINK_DERIVE_INVALID', `two derivers of ${file} write collection ${d.collection}; give each its own`);
    seen.add(d.collection!);
  });
  return list as Deriver[];
}

type Key = string | number;

/** Runs `fn` over `items`, at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

function failed(d: Deriver, what: string, e: unknown): unknown {
  if (e instanceof SluiceError) return e;
  const err = e as Error;
  // Connection failures of the stores keep their own nature (retried by the sink).
  if (/^Mongo(Network|ServerSelection|NetworkTimeout)/.test(err?.name ?? '') || /^(08|57P)/.test((e as { code?: string })?.code ?? '')) return e;
  return documentError('SINK_DERIVE_FAILED', `deriver ${d.collection}: ${what} failed: ${err?.message ?? String(e)}. Fix the derive module and restart; the batch is applied again`, { cause: e });
}

/** Recomputes and writes the derived documents a batch's changes affect. */
export async function deriveBatch(derivers: Deriver[], changes: DerivedChange[], source: DocumentStore, target: DocumentStore, now: Date, parallelism = 1): Promise<void> {
  const truncated = changes.some((c) => c.op === 't');
  for (const d of derivers) {
    const keys = new Set<Key>();
    if (truncated) {
      try {
        for (const doc of await target.find(d.collection, {})) keys.add(doc._id as Key);
        for (const k of await d.allKeys(source)) keys.add(k);
      } catch (e) {
        throw failed(d, 'allKeys()', e);
      }
    }
    for (const c of changes) {
      if (c.op === 't') continue;
      let ks: Key[];
      try {
        ks = await d.affected(c, source);
      } catch (e) {
        throw failed(d, `affected() of a change of ${c.table}`, e);
      }
      for (const k of ks) keys.add(k);
    }
    await recompute(d, [...keys], source, target, now, parallelism);
  }
}

/** Computes `keys` and writes (or deletes) their documents. */
export async function recompute(d: Deriver, keys: Key[], source: DocumentStore, target: DocumentStore, now: Date, parallelism = 1): Promise<void> {
  const upserts: Doc[] = [];
  const deletes: Key[] = [];
  await pool(keys, parallelism, async (k) => {
    let doc: Doc | null;
    try {
      doc = await d.compute(k, source, now);
    } catch (e) {
      throw failed(d, `compute(${JSON.stringify(k)})`, e);
    }
    if (doc) upserts.push({ ...doc, _id: k });
    else deletes.push(k);
  });
  if (upserts.length) await target.upsert(d.collection, upserts);
  if (deletes.length) await target.deleteIds(d.collection, deletes);
}

/** A from-scratch recomputation of a derived collection: every key of `allKeys`, and nothing else. */
export async function rebuild(d: Deriver, source: DocumentStore, target: DocumentStore, now: Date): Promise<void> {
  await target.ensureCollection(d.collection, d.indexes);
  await target.deleteAll(d.collection);
  await recompute(d, await d.allKeys(source), source, target, now);
}
