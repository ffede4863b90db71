/** What every `sluice` subcommand is, and the error for bad usage (exit code 2 with the usage text). */
export class UsageError extends Error {}

export interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}
