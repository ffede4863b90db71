/**
 * `sluice registry serve`: the built-in schema registry (src/schema-registry/) over a log, for
 * users without a Confluent or Apicurio registry.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.ts';
import { embeddedLogAt, openLog } from '../log/open.ts';
import { isCompatibilityLevel, COMPATIBILITY_LEVELS } from '../schema-registry/compat.ts';
import { startRegistryServer } from '../schema-registry/server.ts';
import { DEFAULT_SCHEMA_TOPIC, RegistryStore } from '../schema-registry/store.ts';
import { UsageError, type Command } from './command.ts';

const USAGE = `usage: sluice registry serve (--log-dir <dir> | --config <pipeline.yaml>) [options]

Serves the Confluent Schema Registry REST API (the subset serializers and tools use: subjects,
versions, schemas by id, compatibility checks, config; AVRO schemas) from Sluice's built-in
registry. Its state lives in a compacted topic of the log (one partition), read on start; every
change is durable in the log before it is answered. One registry process per log; the embedded
log has one writer, so give the registry its own directory (a running pipeline holds its own).

options:
  --log-dir <dir>       the embedded log at <dir> (created when missing); also --log <dir>
  --config <file>       the log of a pipeline config (any backend: embedded, kafka, nats)
  --host <addr>         listen address (default 127.0.0.1)
  --port <n>            listen port (default 8081, Confluent's)
  --topic <name>        the registry's topic (default ${DEFAULT_SCHEMA_TOPIC})
  --compatibility <l>   the global compatibility level until one is set with PUT /config
                        (default BACKWARD): NONE, BACKWARD[_TRANSITIVE], FORWARD[_TRANSITIVE],
                        FULL[_TRANSITIVE]
  Basic auth: set SLUICE_REGISTRY_USER and SLUICE_REGISTRY_PASSWORD; every request must then
  carry them.

examples:
  sluice registry serve --log-dir data/registry --port 8081
  curl -s -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \\
    --data '{"schema": "{\\"type\\": \\"string\\"}"}' http://127.0.0.1:8081/subjects/test-value/versions
`;

async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      'log-dir': { type: 'string' },
      log: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8081' },
      topic: { type: 'string' },
      compatibility: { type: 'string' },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const port = Number(values.port);
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new UsageError(`--port takes a port number 0–65535, not ${values.port}`);
  if (values.compatibility !== undefined && !isCompatibilityLevel(values.compatibility)) throw new UsageError(`--compatibility must be one of ${COMPATIBILITY_LEVELS.join(', ')}, not ${values.compatibility}`);
  const dir = values['log-dir'] ?? values.log;
  let logCfg;
  if (dir) logCfg = embeddedLogAt(dir);
  else if (values.config) logCfg = (await loadConfig(values.config)).log;
  else throw new UsageError('give the log with --log-dir <dir> or --config <pipeline.yaml>');
  const user = process.env.SLUICE_REGISTRY_USER;
  const password = process.env.SLUICE_REGISTRY_PASSWORD;
  if ((user === undefined) !== (password === undefined)) throw new UsageError('set both SLUICE_REGISTRY_USER and SLUICE_REGISTRY_PASSWORD for basic auth, or neither');

  const log = await openLog(logCfg);
  let store: RegistryStore | undefined;
  try {
    store = await RegistryStore.open(log, { topic: values.topic, defaultCompatibility: values.compatibility as never });
    const server = await startRegistryServer(store, { host: values.host, port, auth: user !== undefined ? { username: user, password: password! } : undefined });
    process.stderr.write(`schema registry serving ${server.url} (topic ${store.topic}${dir ? ` in ${dir}` : ''}); Ctrl-C stops it\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await server.close();
    return 0;
  } finally {
    await store?.close().catch(() => {});
    await log.close();
  }
}

export const registryCommand: Command = {
  summary: 'serve the built-in schema registry (Confluent REST API) over the log',
  usage: USAGE,
  async run(args) {
    const [action, ...rest] = args;
    if (action === 'serve') return serve(rest);
    throw new UsageError(action ? `unknown action ${action} (known: serve)` : 'expected an action: serve');
  },
};
