/** What the read-side commands share: finding the log (and the pipeline's state) from --config or --log-dir. */
import { existsSync } from 'node:fs';
import { loadConfig } from '../config/index.ts';
import type { LogConfig, PipelineConfig } from '../config/types.ts';
import { logError } from '../log/errors.ts';
import { embeddedLogAt, openLog } from '../log/open.ts';
import type { Log } from '../log/types.ts';
import { logSpec } from '../registry/index.ts';
import { UsageError } from './command.ts';

export interface Located {
  /** How the log reads in output: its directory for the embedded log. */
  where: string;
  log: LogConfig;
  cfg: PipelineConfig | null;
  /** The pipeline's state directory (status.json), when known. */
  stateDir: string | null;
}

/** The log from --log-dir (an embedded log's directory) or --config, and the pipeline config when given. */
export async function resolveLog(values: { config?: string; 'log-dir'?: string; 'state-dir'?: string }): Promise<Located> {
  const cfg = values.config ? await loadConfig(values.config) : null;
  if (values['log-dir']) {
    const dir = values['log-dir'];
    return { where: dir, log: embeddedLogAt(dir), cfg, stateDir: values['state-dir'] ?? cfg?.state.dir ?? null };
  }
  if (cfg) return { where: describeLog(cfg.log), log: cfg.log, cfg, stateDir: values['state-dir'] ?? cfg.state.dir };
  throw new UsageError('give the log with --config <pipeline.yaml> or --log-dir <dir>');
}

/** The log as messages name it: the embedded log's directory, else its backend and address (`kafka 10.0.0.5:9092 topics shop.*`). */
function describeLog(log: LogConfig): string {
  return (log as { dir?: string }).dir ?? logSpec(log.backend).describe(log as never).replace(/^log /, '');
}

/** Opens the located log read-only; a missing embedded log directory says how to get one. */
export async function openReadOnly(at: Located): Promise<Log> {
  if (at.log.backend === 'embedded' && !existsSync(at.log.dir)) throw logError('LOG_MISSING', `no log at ${at.log.dir}: run the pipeline first (sluice run), or pass the right --log-dir / --config`);
  return openLog(at.log, { readOnly: true });
}
