import { afterEach, describe, expect, it } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setSynHold } from '../../src/ssh/synHold.js';

/**
 * The kernel side of a VIP drain's hold, on real loopback sockets: a held listener
 * neither accepts nor refuses, a connection accepted before keeps working, and the
 * client's own SYN retransmission gets in once the hold ends.
 */

type Outcome = { kind: 'connected' | 'error'; atMs: number; message?: string };

function attempt(port: number): { socket: Socket; outcome: Promise<Outcome> } {
  const t0 = Date.now();
  const socket = connect(port, '127.0.0.1');
  const outcome = new Promise<Outcome>((resolve) => {
    socket.once('connect', () => resolve({ kind: 'connected', atMs: Date.now() - t0 }));
    socket.once('error', (err) => resolve({ kind: 'error', atMs: Date.now() - t0, message: err.message }));
  });
  return { socket, outcome };
}

const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);

describe('holding new connections on a listener (SO_ATTACH_FILTER)', () => {
  let server: Server;
  const sockets: Socket[] = [];

  async function listen(): Promise<number> {
    server = createServer((s) => {
      sockets.push(s);
      s.on('data', (d) => s.write(d)); // echo
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as { port: number }).port;
  }

  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.length = 0;
    await new Promise((r) => server.close(r));
  });

  it('a held listener neither accepts nor refuses; an earlier connection keeps working; the SYN gets in after the hold', async () => {
    const port = await listen();
    const before = attempt(port);
    sockets.push(before.socket);
    expect((await before.outcome).kind).toBe('connected');

    await setSynHold(server, true);
    const held = attempt(port);
    sockets.push(held.socket);
    expect(await within(held.outcome, 1500)).toBe('pending'); // no RST: ECONNREFUSED would be an error here

    const echoed = new Promise<string>((r) => before.socket.once('data', (d) => r(d.toString())));
    before.socket.write('still here');
    expect(await within(echoed, 2000)).toBe('still here');

    await setSynHold(server, false);
    const got = await within(held.outcome, 8000);
    expect(got).toMatchObject({ kind: 'connected' });
    expect((got as Outcome).atMs).toBeGreaterThanOrEqual(1500); // through a retransmitted SYN
  }, 20_000);

  it('admitting a listener that was never held is a no-op', async () => {
    const port = await listen();
    await setSynHold(server, false);
    const c = attempt(port);
    sockets.push(c.socket);
    expect((await c.outcome).kind).toBe('connected');
  });

  it('names the missing program and what it is for', async () => {
    await listen();
    await expect(setSynHold(server, true, '/nonexistent/python3')).rejects.toThrow(/cannot run \/nonexistent\/python3: .*install python3 to hold connections during a VIP drain/);
  });

  it('refuses a closed listener with a clear reason', async () => {
    await listen();
    await new Promise((r) => server.close(r));
    await expect(setSynHold(server, true)).rejects.toThrow(/no file descriptor/);
    server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  });
});
