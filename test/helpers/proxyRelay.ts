import { createServer, connect, type Server, type Socket } from 'node:net';

/** A PROXY protocol v2 header for a TCP over IPv4 connection. */
export function proxyV2Header(src: string, srcPort: number, dst: string, dstPort: number): Buffer {
  const header = Buffer.alloc(16 + 12);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(header, 0);
  header[12] = 0x21; // version 2, PROXY
  header[13] = 0x11; // TCP over IPv4
  header.writeUInt16BE(12, 14);
  src.split('.').forEach((o, i) => (header[16 + i] = Number(o)));
  dst.split('.').forEach((o, i) => (header[20 + i] = Number(o)));
  header.writeUInt16BE(srcPort, 24);
  header.writeUInt16BE(dstPort, 26);
  return header;
}

/**
 * A tiny load balancer for tests: accepts on loopback, connects upstream from
 * `bindAddress`, prepends a PROXY v2 header claiming `claimedClient`, then relays.
 */
export async function startProxyRelay(upstreamPort: number, bindAddress: string, claimedClient: { address: string; port: number }): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((down) => {
    sockets.add(down);
    const up = connect({ port: upstreamPort, host: '127.0.0.1', localAddress: bindAddress }, () => {
      up.write(proxyV2Header(claimedClient.address, claimedClient.port, '127.0.0.1', upstreamPort));
      down.pipe(up);
      up.pipe(down);
    });
    sockets.add(up);
    const close = () => {
      down.destroy();
      up.destroy();
    };
    down.on('error', close).on('close', close);
    up.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
