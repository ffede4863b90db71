import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { createLogger, type Level } from '../core/logger.ts';
import { ROLES, type Role } from '../engine/roles.ts';
import { UsageError, type Command } from './command.ts';

/**
 * How long a stop may take before the process exits anyway: a connection to a hung server (or a
 * statement it never answers) must not keep a stopped pipeline alive. Exiting mid-way loses
 * nothing: every task resumes from its last durable commit.
 */
export const STOP_DEADLINE_MS = 10_000;

export const runCommand: Command = {
  summary: 'run a pipeline (snapshot, then stream changes) until stopped',
  usage: `usage: sluice run <pipeline.yaml> [--only source|processors|sinks[,…]] [--drain] [--log-format text|json] [--log-level debug|info|warn|error]

Runs the pipeline: creates the publication and replication slot if needed, snapshots
existing rows (source.snapshot), then streams changes into the log. Ctrl-C (SIGINT) or
SIGTERM stops it cleanly (the process exits within ${STOP_DEADLINE_MS / 1000} s even when a server hangs; a
second signal exits at once); after a crash it resumes from its last durable checkpoint.

options:
  --only         run only these parts of the pipeline, comma-separated: source,
                 processors, sinks. With the kafka log, each sink is a consumer group
                 (<pipeline>.<sink>): start \`--only sinks\` on more machines and they share
                 the topics' partitions, each applying its own exactly once
  --drain        a pipeline without a source (or --only processors,sinks): take what the
                 log holds now through the processors and sinks, then stop (a batch run)
  --log-format   text (default) or json: one JSON object per line on stderr
  --log-level    overrides logging.level

examples:
  sluice run examples/postgres-to-log.yaml --log-format json
  sluice run pipeline.yaml --only source          # capture into the log here
  sluice run pipeline.yaml --only sinks           # apply the log, on any number of machines
`,
  async run(args) {
    const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { 'log-format': { type: 'string' }, 'log-level': { type: 'string' }, only: { type: 'string' }, drain: { type: 'boolean' } } });
    if (positionals.length !== 1) throw new UsageError('expected exactly one config file');
    const fmt = values['log-format'];
    const lvl = values['log-level'];
    if (fmt !== undefined && fmt !== 'text' && fmt !== 'json') throw new UsageError(`--log-format must be text or json, not ${fmt}`);
    if (lvl !== undefined && !['debug', 'info', 'warn', 'error'].includes(lvl)) throw new UsageError(`--log-level must be debug, info, warn or error, not ${lvl}`);
    let only: Set<Role> | undefined;
    if (values.only !== undefined) {
      const parts = values.only.split(',').map((x) => x.trim());
      const bad = parts.filter((x) => !(ROLES as readonly string[]).includes(x));
      if (bad.length || !parts.length) throw new UsageError(`--only takes ${ROLES.join(', ')} (comma-separated), not ${JSON.stringify(bad.join(',') || values.only)}`);
      only = new Set(parts as Role[]);
    }
    const cfg = await loadConfig(positionals[0]);
    if (only?.has('source') && !cfg.source) throw new UsageError(`--only source: ${positionals[0]} has no source`);
    if (values.drain && cfg.source && (!only || only.has('source'))) throw new UsageError(`--drain runs a pipeline without its source to the end of the log: ${positionals[0]} has a source (give --only processors,sinks, or use snapshot: initial_only to end after a snapshot)`);
    if (fmt) cfg.logging.format = fmt;
    if (lvl) cfg.logging.level = lvl as Level;
    const logger = createLogger({ level: cfg.logging.level, format: cfg.logging.format });
    const { runPipeline } = await import('../engine/runner.ts');
    // First signal: graceful stop (commit what is pending, close the slot connection), for at
    // most STOP_DEADLINE_MS. A second one while stopping means the operator wants out now; the
    // next start resumes from the last durable checkpoint, so nothing is lost either way.
    const ac = new AbortController();
    let stopped = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (!ac.signal.aborted) {
        logger.info('stopping', { signal: sig, hint: 'send the signal again to exit immediately' });
        ac.abort();
        setTimeout(() => {
          // Stopped cleanly but a connection to a hung server is still open: exit all the same.
          if (stopped) process.exit(0);
          logger.warn(`the pipeline did not stop within ${STOP_DEADLINE_MS / 1000} s (a server is not answering): exiting; the next run resumes from the last durable checkpoint`, { signal: sig });
          process.exit(1);
        }, STOP_DEADLINE_MS).unref();
      } else {
        logger.warn('exiting without a clean stop', { signal: sig });
        process.exit(130);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      await runPipeline(cfg, { logger, signal: ac.signal, only, drain: values.drain });
      stopped = true;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return 0;
  },
};
