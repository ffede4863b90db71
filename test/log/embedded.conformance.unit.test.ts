/** The log conformance suite (test/log/conformance.ts) for the embedded backend: a fresh directory per case. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogConfig } from '../../src/config/types.ts';
import { embeddedLogAt } from '../../src/log/open.ts';
import { logConformance } from './conformance.ts';

logConformance({
  name: 'embedded',
  async fresh(opts = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-log-'));
    const config = { ...embeddedLogAt(dir), ...(opts.segmentBytes ? { segmentBytes: opts.segmentBytes } : {}) } as LogConfig;
    return { config, remove: async () => rmSync(dir, { recursive: true, force: true }) };
  },
});
