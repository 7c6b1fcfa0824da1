import { describe, it, expect } from 'vitest';
import { createServer } from 'node:net';
import { execFile } from 'node:child_process';
import { peerUid } from '../../src/http/peer.js';

const isRoot = process.getuid?.() === 0;

describe('peerUid: the owner of the other end of a loopback connection', () => {
  /** Accepts one connection from curl run as uid; resolves with what peerUid says. */
  const ask = (listen: string, connectTo: string, uid: number) =>
    new Promise<number | null>((resolve, reject) => {
      const srv = createServer((sock) => {
        void peerUid(sock).then((u) => {
          sock.destroy();
          srv.close();
          resolve(u);
        }, reject);
      });
      srv.listen(0, listen, () => {
        const host = connectTo.includes(':') ? `[${connectTo}]` : connectTo;
        const { port } = srv.address() as { port: number };
        execFile('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', 'curl', '-s', '--max-time', '5', `http://${host}:${port}/`], () => {});
      });
    });

  it.skipIf(!isRoot)('IPv4, IPv6 and IPv4-mapped listeners, root and nobody', async () => {
    for (const [listen, connectTo] of [
      ['127.0.0.1', '127.0.0.1'],
      ['::1', '::1'],
      ['::', '127.0.0.1'],
    ] as const) {
      expect(await ask(listen, connectTo, 0), `${listen} <- ${connectTo} as root`).toBe(0);
      expect(await ask(listen, connectTo, 65534), `${listen} <- ${connectTo} as nobody`).toBe(65534);
    }
  });
});
