import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay the test controls: 127.0.0.1:<port> -> target. cut() destroys every
 * relayed connection and refuses new ones (the listening socket is closed, so
 * connects get ECONNREFUSED); restore() listens again on the same port.
 */
export interface TcpRelay {
  port: number;
  url: string;
  readonly isCut: boolean;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(targetHost: string, targetPort: number): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  let cut = false;
  let closed = false;
  let server: Server;

  const onConnection = (client: Socket) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: targetHost, port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer(onConnection);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
  const closeServer = () => new Promise<void>((r) => (server.listening ? server.close(() => r()) : r()));

  const port = await listen(0);
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    get isCut() {
      return cut;
    },
    async cut() {
      cut = true;
      const closing = closeServer();
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closing;
    },
    async restore() {
      if (!cut || closed) return;
      cut = false;
      // The port was ours a moment ago; retry briefly in case the kernel lags.
      for (let i = 0; ; i++) {
        try {
          await listen(port);
          return;
        } catch (err) {
          if (i >= 20) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
    async close() {
      closed = true;
      cut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closeServer();
    },
  };
}
