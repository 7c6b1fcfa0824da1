import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh } from '../helpers/clients.js';
import { fixture } from '../helpers/fixtures.js';

/** Opens a TCP connection, sends the payload, and waits until the server closes it (or 1 s). */
function sendGarbage(port: number, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(payload));
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.on('error', done);
    socket.on('close', done);
    socket.on('data', () => {});
    setTimeout(done, 1000).unref();
  });
}

const payloads = [
  () => randomBytes(64 + Math.floor(Math.random() * 4096)),
  () => Buffer.concat([Buffer.from('SSH-2.0-evil\r\n'), randomBytes(512)]),
  // a packet header announcing an absurd length
  () => Buffer.concat([Buffer.from('SSH-2.0-evil\r\n'), Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x04]), randomBytes(32)]),
  () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
  () => Buffer.from('SSH-1.5-ancient\r\n'),
  () => Buffer.alloc(0),
];

describe('hostile clients never take the gateway down', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('survives 200 connections of garbage, then serves a normal exec', async () => {
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => sendGarbage(gw.port, payloads[(batch * 20 + i) % payloads.length]!())));
    }
    expect(gw.proc.exitCode).toBeNull();
    const r = await ssh(gw.port, gw.keys.ed25519, 'echo alive');
    expect(r.stdout.toString()).toBe('alive\n');
    expect(r.code).toBe(0);
  });

  it('survives clients that vanish mid-job while output floods', async () => {
    const clients = Array.from({ length: 10 }, () => ssh(gw.port, gw.keys.ed25519, fixture('floods-both-streams.sh')));
    await new Promise((r) => setTimeout(r, 500));
    for (const c of clients) c.child.kill('SIGKILL');
    await Promise.all(clients);
    const r = await ssh(gw.port, gw.keys.ed25519, 'echo alive');
    expect(r.stdout.toString()).toBe('alive\n');
    expect(gw.proc.exitCode).toBeNull();
  });
});
