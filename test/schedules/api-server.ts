/**
 * A real HTTP server for the schedule tests (node:http on 127.0.0.1, a free port): each test gives
 * the handler; the server keeps what it was asked (method, URL, headers, body, when) and what
 * records it served, which is the truth the tests compare the log against.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export interface ApiServer {
  url: string;
  requests: Seen[];
  /** Records the handler says it served (in the order served). */
  served: unknown[];
  /** Most requests in progress at once. */
  maxInFlight: number;
  close(): Promise<void>;
}

export type Handler = (req: Seen, res: ServerResponse, api: ApiServer) => void | Promise<void>;

export async function startApi(handler: Handler): Promise<ApiServer> {
  let inFlight = 0;
  const api: ApiServer = { url: '', requests: [], served: [], maxInFlight: 0, close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Seen = { method: req.method ?? '', url: new URL(req.url ?? '/', api.url), headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      api.requests.push(seen);
      inFlight++;
      api.maxInFlight = Math.max(api.maxInFlight, inFlight);
      res.on('close', () => inFlight--);
      Promise.resolve(handler(seen, res, api)).catch((e) => {
        res.statusCode = 599;
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.close = () => {
    server.closeAllConnections();
    return new Promise((r) => server.close(() => r()));
  };
  return api;
}

/** Sends `body` as JSON, recording `records` as served. */
export function json(res: ServerResponse, api: ApiServer, body: unknown, records: unknown[] = [], headers: Record<string, string> = {}): void {
  api.served.push(...records);
  res.writeHead(200, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
