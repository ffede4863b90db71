import { existsSync } from 'node:fs';
import { loadConfig } from '../config/index.ts';
import type { PipelineConfig } from '../config/types.ts';
import { UsageError } from './main.ts';
import { logError } from '../log/errors.ts';

/** Resolves the log directory from --log-dir or --config (and the config when given). */
export async function resolveLog(values: { config?: string; 'log-dir'?: string }): Promise<{ dir: string; cfg: PipelineConfig | null }> {
  if (values['log-dir']) return { dir: values['log-dir'], cfg: values.config ? await loadConfig(values.config) : null };
  if (values.config) {
    const cfg = await loadConfig(values.config);
    return { dir: cfg.log.dir, cfg };
  }
  throw new UsageError('give the log with --config <pipeline.yaml> or --log-dir <dir>');
}

export function requireLogDir(dir: string): void {
  if (!existsSync(dir)) throw logError('LOG_MISSING', `no log at ${dir}: run the pipeline first (sluice run), or pass the right --log-dir / --config`);
}
