/**
 * The running pipeline's reconcile actions (`POST /api/actions/<name>` on its server): `repair`,
 * which appends through the pipeline's own log (the embedded log takes one writer), and
 * `reconcile`, which compares from inside the process (DuckDB lets one process open a file: the
 * sink's own instance is shared).
 */
import { reconcileError } from './errors.ts';
import type { PipelineConfig } from '../../config/types.ts';
import type { Log } from '../../log/types.ts';
import type { ChangeEvent } from '../../core/event.ts';

export function reconcileActions(cfg: PipelineConfig, log: Log, inject: () => ((events: ChangeEvent[]) => Promise<void>) | null): Record<string, (body: unknown) => Promise<unknown>> {
  return {
    async repair(body) {
      const { repair } = await import('./repair.ts');
      const req = body as { tables?: unknown };
      if (!req || !Array.isArray(req.tables)) throw reconcileError('RECONCILE_REPAIR_REQUEST', 'repair takes {"tables": [{"table": "schema.table", "keys": [{"column": "value"}]}]}');
      const through = inject();
      if (!through) throw reconcileError('RECONCILE_REPAIR_REQUEST', 'the pipeline runs no source here (--only): repair where the source runs');
      return repair(log, cfg, body as never, through);
    },
    async reconcile(body) {
      const { reconcile } = await import('./run.ts');
      const { appendHistory } = await import('./report.ts');
      const b = (body ?? {}) as { tables?: string[]; sinks?: string[]; chunk?: number; waitMs?: number };
      const r = await reconcile(cfg, { tables: b.tables, sinks: b.sinks, chunk: b.chunk, waitMs: b.waitMs, log });
      await appendHistory(cfg.state.dir, r);
      return r;
    },
  };
}
