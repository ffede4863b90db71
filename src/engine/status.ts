/**
 * `status.json` in the pipeline's state directory: what `sluice status` shows of a running (or
 * stopped) pipeline, rewritten every second and on every state change.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDirs } from '../core/dirs.ts';
import { redact } from '../core/logger.ts';

export const statusFile = (stateDir: string): string => join(stateDir, 'status.json');

export class StatusWriter {
  private writes = 0;
  /** The state last written (`starting`, `running`, `stopped`, `failed`). */
  current = 'starting';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly stateDir: string,
    private readonly body: (state: string) => Record<string, unknown>,
  ) {}

  async write(state: string): Promise<void> {
    this.current = state;
    // Not mkdir's recursive mode, which never returns for some paths (/proc/x/…).
    await makeDirs(this.stateDir);
    const path = statusFile(this.stateDir);
    // A file of its own per write: the periodic refresh and a final write may overlap.
    const tmp = `${path}.${process.pid}.${++this.writes}.tmp`;
    // Masked like a log line: an error message that names a connection URL shows no password.
    await writeFile(tmp, redact(JSON.stringify({ ...this.body(state), updatedAt: new Date().toISOString() }, null, 2)));
    await rename(tmp, path);
  }

  /** Rewrites the file every second with `state` until stopped. */
  every(ms: number, state: string): void {
    this.timer = setInterval(() => void this.write(state).catch(() => {}), ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
