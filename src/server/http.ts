/**
 * The pipeline's HTTP endpoint: GET /health (200 while running; `degraded` while a sink holds a
 * table), /metrics (Prometheus text), /status (JSON: source position, snapshot progress, queue).
 */
import { createServer } from 'node:http';
import type { Logger } from '../core/logger.ts';

export interface ServerDeps {
  metrics: { render(): string };
  status(): unknown;
  /** Problems that make /health answer 503 (e.g. a failed sink); empty: healthy. */
  problems?(): string[];
  /** Tables sinks hold (`onError: skip_table`): /health still answers 200, with status `degraded`. */
  held?(): string[];
  logger: Logger;
}

export async function startServer(cfg: { host: string; port: number }, deps: ServerDeps): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (url === '/health') {
      const problems = deps.problems?.() ?? [];
      const held = deps.held?.() ?? [];
      if (problems.length) res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'failing', problems, ...(held.length ? { held } : {}) }));
      else if (held.length) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'degraded', held }));
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else if (url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(deps.metrics.render());
    } else if (url === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(deps.status(), null, 2));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: try /health, /metrics or /status"}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
  deps.logger.info('http server listening', { url: `http://${cfg.host}:${port}` });
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
