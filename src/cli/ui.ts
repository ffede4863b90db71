/**
 * `sluice ui`: the operations console over a pipeline's log and state directory, without running
 * the pipeline: the log opened read-only (as `sluice status` and `sluice dlq list` do), the status
 * from status.json. Dead-letter replay opens the log for writing for the one replay, which the
 * embedded log allows only while the pipeline is stopped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { PipelineConfig } from '../config/types.ts';
import { addSecret, createLogger, type Logger } from '../core/logger.ts';
import { isLoopback } from '../core/net.ts';
import { replayDeadLetters } from '../engine/dlq.ts';
import { statusFile } from '../engine/status.ts';
import { openLog } from '../log/open.ts';
import type { Log } from '../log/types.ts';
import { createConsole } from '../server/console.ts';
import { HttpError, startServer } from '../server/http.ts';
import { UsageError, type Command } from './command.ts';
import { openReadOnly, resolveLog } from './common.ts';

const USAGE = `usage: sluice ui --config <pipeline.yaml> [--port <n>] [--host <address>] [--token <token>]

Serves the operations console (docs/console.md) over the pipeline's log and state directory,
without running the pipeline: its state and source position (from status.json, as the pipeline
last wrote it), topics with their rates, sinks with their lag, processors and their
expectations, reconcile results, the dead letters with search, and the config graph. A running
pipeline with \`server:\` in its config serves the same console itself, live.

Dead-letter replay from this console opens the log for writing, which the embedded log allows
only while the pipeline is stopped; while it runs, replay from its own console.

options:
  --port    listen port (default: 8080; 0 picks a free one, printed at start)
  --host    listen address (default: 127.0.0.1). Any other than loopback needs a token
  --token   bearer token the console and API then want (default: the config's server.token;
            the SLUICE_TOKEN environment variable is read when neither is given)
  --log-dir, --state-dir   read another log or state directory than the config's

example:
  sluice ui --config pipeline.yaml --port 8081
`;

export interface UiOptions {
  host?: string;
  port?: number;
  token?: string;
  logger?: Logger;
  /** The log to read; default the config's, opened read-only. */
  log?: Log;
  stateDir?: string;
}

/** Serves the console over `cfg`'s log and state; resolves once listening. */
export async function serveConsole(cfg: PipelineConfig, opts: UiOptions = {}): Promise<{ port: number; close(): Promise<void> }> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token;
  if (!isLoopback(host) && !token) throw new UsageError(`--token is required when --host is ${host} (not a loopback address): anyone who reaches it could read the dead letters. Give --token (or server.token in the config, or SLUICE_TOKEN), or listen on 127.0.0.1`);
  if (token && token.length < 16) throw new UsageError('the token must be at least 16 characters');
  if (token) addSecret(token);
  const logger = (opts.logger ?? createLogger({ level: cfg.logging.level, format: cfg.logging.format })).child({ component: 'ui', pipeline: cfg.name });
  const log = opts.log ?? (await openReadOnly({ where: '', log: cfg.log, cfg, stateDir: null }));
  const file = statusFile(opts.stateDir ?? cfg.state.dir);
  const status = () => {
    if (!existsSync(file)) return { pipeline: cfg.name, state: 'unknown', message: `no status yet: ${file} is written by a running pipeline (sluice run)` };
    try {
      const s = JSON.parse(readFileSync(file, 'utf8'));
      // status.json is rewritten each second while the pipeline runs: older means it stopped or died.
      const age = Date.now() - Date.parse(s.updatedAt);
      return age > 5000 && s.state === 'running' ? { ...s, state: 'not running', lastState: s.state } : s;
    } catch {
      return { pipeline: cfg.name, state: 'unknown', message: `${file} could not be read` };
    }
  };
  const c = createConsole({
    cfg,
    log,
    status,
    mode: 'ui',
    replay: async (o) => {
      let w: Log;
      try {
        w = await openLog(cfg.log);
      } catch (e) {
        if ((e as { code?: string }).code === 'LOG_LOCKED') throw new HttpError(409, `the pipeline is running and holds its log for writing, so this console cannot replay: replay from the running pipeline's own console (add server: to its config), or stop it and replay here`);
        throw e;
      }
      try {
        return await replayDeadLetters(w, cfg.name, o);
      } finally {
        await w.close();
      }
    },
  });
  let server: { port: number; close(): Promise<void> };
  try {
    server = await startServer(
      { host, port: opts.port ?? 8080, token },
      { metrics: { render: () => '# sluice ui serves no metrics: the running pipeline\'s server does (/metrics)\n' }, status, console: c, logger },
    );
  } catch (e) {
    c.close();
    if (!opts.log) await log.close();
    throw e;
  }
  return {
    port: server.port,
    close: async () => {
      c.close();
      await server.close();
      if (!opts.log) await log.close();
    },
  };
}

export const uiCommand: Command = {
  summary: 'serve the operations console over a pipeline\'s log, without running it',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, token: { type: 'string' }, 'log-dir': { type: 'string' }, 'state-dir': { type: 'string' } } });
    if (!values.config) throw new UsageError('give the pipeline with --config <pipeline.yaml>');
    const port = values.port !== undefined ? Number(values.port) : 8080;
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new UsageError(`--port must be a port number (0–65535), not ${values.port}`);
    const at = await resolveLog(values);
    const cfg = at.cfg!;
    const log = await openReadOnly(at);
    const token = values.token ?? cfg.server?.token ?? process.env.SLUICE_TOKEN ?? undefined;
    let s: Awaited<ReturnType<typeof serveConsole>>;
    try {
      s = await serveConsole(cfg, { host: values.host ?? '127.0.0.1', port, token, log, stateDir: at.stateDir ?? undefined });
    } catch (e) {
      await log.close();
      throw e;
    }
    const host = values.host ?? '127.0.0.1';
    process.stdout.write(`console at http://${host.includes(':') ? `[${host}]` : host}:${s.port}/ui/ (Ctrl-C stops it)\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await s.close();
    await log.close();
    return 0;
  },
};
