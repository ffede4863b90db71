/** Opening the configured log through its backend's spec, and the embedded log at a bare directory (`--log-dir`). */
import type { LogConfig } from '../config/types.ts';
import { logSpec } from '../registry/index.ts';
import type { LogOpenOptions } from '../registry/spec.ts';
import type { Log } from './types.ts';

export function openLog(cfg: LogConfig, opts: LogOpenOptions = {}): Promise<Log> {
  return logSpec(cfg.backend).open(cfg, opts);
}

/** The config of the embedded log at `dir`, with its defaults (for `--log-dir` and tests). */
export function embeddedLogAt(dir: string): LogConfig {
  const spec = logSpec('embedded');
  return { backend: 'embedded', ...spec.config.resolve({ dir }, { root: {}, path: ['log'], fileName: '' }) } as LogConfig;
}
