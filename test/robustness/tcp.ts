/**
 * TCP stand-ins for servers that misbehave, for the robustness tests: a port that accepts
 * connections and never answers, and a proxy to a real server that can stop forwarding (the
 * server "hangs" mid-session: nothing it sends arrives, and nothing sent to it arrives either).
 */
import net from 'node:net';

export interface Listening {
  port: number;
  close(): Promise<void>;
}

/** Accepts connections, reads what they send, answers nothing. */
export async function silentServer(): Promise<Listening & { accepted: () => number }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Forwards connections to `host:port`. While frozen, bytes in either direction are held back
 * (delivered on thaw) and new connections are accepted but not forwarded until then.
 */
export async function freezableProxy(host: string, port: number): Promise<Listening & { freeze(): void; thaw(): void; connections: () => number }> {
  let frozen = false;
  const thawers = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const pipe = (from: net.Socket, to: net.Socket) => {
    const held: Buffer[] = [];
    from.on('data', (d) => {
      if (frozen || held.length) held.push(d);
      else to.write(d);
    });
    thawers.add(() => {
      for (const d of held.splice(0)) to.write(d);
    });
  };
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const t of thawers) t();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
