import { readFileSync } from 'node:fs';

/** Sluice's version, from package.json; appears in every event's source.version. */
export const SLUICE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
