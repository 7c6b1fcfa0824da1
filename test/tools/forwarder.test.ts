import { describe, it, expect, afterEach } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createLogger } from '../../src/log.js';
import { forwardConnection, type ForwardResult } from '../../src/ssh/forwarder.js';
import { encodeProxyV2, parseProxyV2 } from '../../src/ssh/proxyProtocol.js';

const log = createLogger('silent', 'test');
const header = encodeProxyV2({ source: { address: '198.18.0.9', port: 41000 }, destination: { address: '127.0.0.1', port: 22 } });
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function listen(onConnection: (s: Socket) => void, options: { allowHalfOpen?: boolean; pauseOnConnect?: boolean } = {}): Promise<{ server: Server; port: number }> {
  const server = createServer(options, onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => server.close());
  return { server, port: (server.address() as { port: number }).port };
}

/** A client connected to a forwarding "gateway" that hands each accepted socket to forwardConnection. */
async function throughForwarder(target: { host: string; port: number }, options: { connectTimeoutMs?: number; halfOpen?: boolean } = {}): Promise<{ client: Socket; result: Promise<ForwardResult> }> {
  let result!: Promise<ForwardResult>;
  let got!: () => void;
  const accepted = new Promise<void>((r) => (got = r));
  const { port } = await listen(
    (socket) => {
      result = forwardConnection(socket, { ...target, name: 'gw2' }, header, { connectTimeoutMs: options.connectTimeoutMs ?? 2000, log, node: 'gw1' });
      got();
    },
    { pauseOnConnect: true },
  );
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: options.halfOpen ?? false });
  cleanups.push(() => client.destroy());
  await accepted;
  return { client, result };
}

/**
 * A port whose SYNs go unanswered: a listener (python, which need not accept) with a
 * full accept queue; Linux then drops further SYNs (tcp_abort_on_overflow = 0).
 */
async function silentPort(): Promise<number> {
  const py = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  cleanups.push(() => py.kill());
  const port = Number(await new Promise<string>((r) => py.stdout!.once('data', (d: Buffer) => r(d.toString().trim()))));
  // fill the accept queue until a connection hangs in SYN_SENT
  for (let i = 0; i < 8; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    cleanups.push(() => s.destroy());
    const connected = await Promise.race([new Promise((r) => s.once('connect', () => r(true))), new Promise((r) => setTimeout(() => r(false), 300))]);
    if (!connected) return port;
  }
  throw new Error(`could not fill the accept queue of 127.0.0.1:${port}`);
}

const collect = (socket: Socket) =>
  new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
  });

describe('forwardConnection', () => {
  it('sends the PROXY header first, relays both ways byte-exact under backpressure, and passes each FIN on alone', async () => {
    const up = randomBytes(8 * 1024 * 1024);
    const down = randomBytes(8 * 1024 * 1024);
    let targetGot!: Promise<Buffer>;
    const { port } = await listen(
      (s) => {
        targetGot = collect(s);
        // the target answers only once the client has finished (half-close: its FIN came alone)
        void targetGot.then(() => {
          s.end(down);
        });
      },
      { allowHalfOpen: true },
    );
    const { client, result } = await throughForwarder({ host: '127.0.0.1', port }, { halfOpen: true });
    // a slow reader on the client side: the target's 8 MiB must wait in flow control, not in memory
    client.pause();
    const clientGot = collect(client);
    client.end(up);
    await new Promise((r) => setTimeout(r, 300));
    client.resume();
    const received = await targetGot;
    const parsed = parseProxyV2(received)!;
    expect(parsed.info).toEqual({ address: '198.18.0.9', port: 41000 });
    expect(createHash('sha256').update(received.subarray(parsed.length)).digest('hex')).toBe(createHash('sha256').update(up).digest('hex'));
    expect((await clientGot).equals(down)).toBe(true);
    const r = await result;
    expect(r).toEqual({ bytesUp: up.length, bytesDown: down.length, connected: true });
  });

  it('the target closing first ends the client, and the client can still send until it closes', async () => {
    let targetGot!: Promise<Buffer>;
    const { port } = await listen(
      (s) => {
        targetGot = collect(s);
        s.end('bye');
      },
      { allowHalfOpen: true },
    );
    const { client, result } = await throughForwarder({ host: '127.0.0.1', port }, { halfOpen: true });
    expect((await collect(client)).toString()).toBe('bye');
    client.end('late');
    expect((await targetGot).subarray(header.length).toString()).toBe('late');
    expect((await result).connected).toBe(true);
  });

  it('a reset on the target destroys the client side too, and the promise settles', async () => {
    const { port } = await listen((s) => setTimeout(() => s.resetAndDestroy(), 50));
    const { client, result } = await throughForwarder({ host: '127.0.0.1', port });
    const clientClosed = new Promise((r) => client.once('close', r));
    client.on('error', () => {});
    client.write('hello');
    await clientClosed;
    const r = await result;
    expect(r.connected).toBe(true);
    expect(r.error?.message).toMatch(/ECONNRESET/);
  });

  it('destroying the client socket (a gateway shutdown) ends the target connection and settles', async () => {
    let targetEnded!: Promise<Buffer>;
    let accepted!: () => void;
    const targetAccepted = new Promise<void>((r) => (accepted = r));
    const { port } = await listen((s) => {
      targetEnded = collect(s);
      accepted();
    });
    let gatewaySide!: Socket;
    let result!: Promise<ForwardResult>;
    const { port: gwPort } = await listen(
      (socket) => {
        gatewaySide = socket;
        result = forwardConnection(socket, { host: '127.0.0.1', port, name: 'gw2' }, header, { connectTimeoutMs: 2000, log, node: 'gw1' });
      },
      { pauseOnConnect: true },
    );
    const client = connect(gwPort, '127.0.0.1');
    client.on('error', () => {});
    cleanups.push(() => client.destroy());
    client.write('last words');
    await targetAccepted;
    await new Promise((r) => setTimeout(r, 100));
    gatewaySide.destroy();
    expect((await targetEnded).subarray(header.length).toString()).toBe('last words');
    expect((await result).connected).toBe(true);
  });

  it('an unreachable target: the client gets an SSH disconnect naming the node, the leader and the error', async () => {
    const { server, port } = await listen(() => {});
    await new Promise<void>((r) => server.close(() => r())); // nothing listens there now
    const { client, result } = await throughForwarder({ host: '127.0.0.1', port });
    client.write('SSH-2.0-OpenSSH_9.2\r\n');
    const text = (await collect(client)).toString('latin1');
    expect(text).toMatch(/^SSH-2\.0-execgate_/);
    expect(text).toContain(`execgate: gw1 is draining and could not reach the leader gw2 at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; retry`);
    const r = await result;
    expect(r.connected).toBe(false);
    expect(r.error?.message).toMatch(/ECONNREFUSED/);
  });

  it('a target that does not answer within connectTimeoutMs is refused the same way', async () => {
    const port = await silentPort();
    const started = Date.now();
    const { client, result } = await throughForwarder({ host: '127.0.0.1', port }, { connectTimeoutMs: 300 });
    const text = (await collect(client)).toString('latin1');
    expect(text).toContain(`could not reach the leader gw2 at 127.0.0.1:${port}: no connection within 300 ms; retry`);
    expect((await result).connected).toBe(false);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
