import { createServer, type Server } from 'node:http';
import type { Express } from 'express';
import { errors } from '../errors.js';

export interface HttpListener {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Listens for the HTTP surface on its own socket (not the SSH one). */
export function listenHttp(app: Express, host: string, port: number): Promise<HttpListener> {
  const server: Server = createServer(app);
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(errors.listenFailed(host, port, `${err.message} (HTTP listener: set http.port, or http.enabled: false)`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve({
        host,
        port: typeof addr === 'object' && addr ? addr.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
