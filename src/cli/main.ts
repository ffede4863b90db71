/**
 * The `sluice` command line: run, validate, tail, status, schema. Every command has --help.
 * Exit codes: 0 ok, 1 error (message on stderr as `error [CODE]: …`), 2 usage error.
 */
import { SluiceError } from '../core/errors.ts';
import { redact } from '../core/logger.ts';
import { SLUICE_VERSION } from '../core/version.ts';
import { alertsCommand } from './alerts.ts';
import { UsageError, type Command } from './command.ts';
import { dlqCommand } from './dlq.ts';
import { lakeCommand } from './lake.ts';
import { reconcileCommand } from './reconcile.ts';
import { registryCommand } from './registry.ts';
import { runCommand } from './run.ts';
import { schedulesCommand } from './schedules.ts';
import { snapshotCommand } from './snapshot.ts';
import { statusCommand } from './status.ts';
import { tailCommand } from './tail.ts';
import { uiCommand } from './ui.ts';
import { schemaCommand, validateCommand } from './validate.ts';

const COMMANDS: Record<string, Command> = {
  run: runCommand,
  validate: validateCommand,
  tail: tailCommand,
  status: statusCommand,
  schema: schemaCommand,
  dlq: dlqCommand,
  lake: lakeCommand,
  registry: registryCommand,
  reconcile: reconcileCommand,
  snapshot: snapshotCommand,
  schedules: schedulesCommand,
  alerts: alertsCommand,
  ui: uiCommand,
};

function topHelp(): string {
  return `sluice ${SLUICE_VERSION}: change-data-capture pipelines

usage: sluice <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`)
  .join('\n')}

sluice <command> --help shows a command's options and an example.
`;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd) {
    process.stderr.write(topHelp());
    return 2;
  }
  if (cmd === '--help' || cmd === '-h') {
    process.stdout.write(topHelp());
    return 0;
  }
  if (cmd === '--version' || cmd === '-V') {
    process.stdout.write(SLUICE_VERSION + '\n');
    return 0;
  }
  if (cmd === 'help') {
    if (!rest[0]) {
      process.stdout.write(topHelp());
      return 0;
    }
    const c = Object.hasOwn(COMMANDS, rest[0]) ? COMMANDS[rest[0]] : undefined;
    if (!c) {
      process.stderr.write(`sluice: unknown command '${rest[0]}'\n\n${topHelp()}`);
      return 2;
    }
    process.stdout.write(c.usage);
    return 0;
  }
  const c = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!c) {
    process.stderr.write(`sluice: unknown command '${cmd}'\n\n${topHelp()}`);
    return 2;
  }
  const end = rest.indexOf('--');
  const opts = end < 0 ? rest : rest.slice(0, end);
  if (opts.includes('--help') || opts.includes('-h')) {
    process.stdout.write(c.usage);
    return 0;
  }
  try {
    return await c.run(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`sluice ${cmd}: ${(e as Error).message}\n\n${c.usage}`);
      return 2;
    }
    if (e instanceof SluiceError) {
      process.stderr.write(`error [${e.code}]: ${redact(e.message)}\n`);
      return 1;
    }
    process.stderr.write(`error: ${redact(String((e as Error).stack ?? e))}\n`);
    return 1;
  }
}
