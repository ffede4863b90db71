/** The parts of a pipeline `sluice run --only` chooses between (kept apart so the CLI loads no engine code for it). */
export const ROLES = ['source', 'processors', 'sinks'] as const;
export type Role = (typeof ROLES)[number];
