/**
 * The `module` processor: a user's transform, a function in a JavaScript or TypeScript module
 * (`module: ./fraud.ts`, relative to the config file), called for each input record with the
 * record and a context. Its types are exported by the package (`ModuleTransform`).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { object, oneOf, raw, string, type Infer } from '../../config/fields.ts';
import { defineProcessor } from '../../registry/spec.ts';
import { processorFields } from '../common.ts';

const config = object({
  ...processorFields({ output: '{name}.{topic}' }),
  module: string({ minLength: 1, description: 'The module file (.js, .mjs, .ts), relative to the config file. TypeScript is bundled with esbuild where Node cannot import it (`npm install esbuild`).' }),
  export: string({ minLength: 1, description: 'The exported function to call per record; the module may also export `init(ctx)`.' }).default('default'),
  options: raw<Record<string, unknown>>({ jsonType: 'object', type: 'mapping', description: 'Passed to the module as `ctx.options`.' }).default({}),
  format: oneOf(['event', 'flat', 'envelope'] as const, {
    description: "What its records are: `event` (any JSON), `flat` (rows), or `envelope` (change events, which table sinks apply; the input's schema header is kept, so the module must keep the table's columns and types).",
  }).default('event'),
}).map((c, ctx) => ({ ...c, module: resolve(dirname(ctx.fileName || '.'), c.module) }));

export type ModuleProcessorConfig = Infer<typeof config>;

export const moduleProcessor = defineProcessor({
  kind: 'processor',
  type: 'module',
  title: 'Module processor',
  docs: 'processing.md',
  config,
  input: 'any',
  output: (c) => c.format,
  check(raw, path, ctx) {
    const file = resolve(dirname(ctx.fileName), String(raw.module));
    if (!existsSync(file)) ctx.fail([...path, 'module'], `${file} does not exist (the path is relative to the config file)`);
  },
  describe: (c) => `processor ${c.name}: module ${c.module}${c.export === 'default' ? '' : `#${c.export}`} over ${c.inputs.length ? c.inputs.join(', ') : '(source topics)'} → ${c.output}`,
  async create(c, ctx) {
    const { moduleTransform } = await import('./module.ts');
    return moduleTransform(c, ctx);
  },
});
