import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import ssh2 from 'ssh2';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh, scpWith, sftpWith, openssh10, negotiatedKex, type SshClientFlavour } from '../helpers/clients.js';
import { rawKex, kexInitMessage } from '../helpers/rawKex.js';
import { until } from '../helpers/until.js';
import { clientStart } from '../../src/ssh/kex/mlkem768x25519.js';
import { registerPostQuantumKex } from '../../src/ssh/kex/register.js';

const PQ = 'mlkem768x25519-sha256';
const KEY_EXCHANGE_FAILED = 3;

const client10 = openssh10();
const required = process.env.EXECGATE_REQUIRE_LAB === '1';
if (client10.missing && !required) console.warn(`pq-kex OpenSSH 10 tests skipped: ${client10.missing}`);
const with10 = client10.missing && !required ? describe.skip : describe;

function requireClient10(): SshClientFlavour {
  if (client10.missing) throw new Error(`${client10.missing} (EXECGATE_REQUIRE_LAB=1 makes a missing client a failure)`);
  return client10;
}

/**
 * A TCP relay that flips one bit of the ML-KEM ciphertext in the server's
 * SSH_MSG_KEX_HYBRID_REPLY (31) on its way to the client; everything else passes.
 */
function startCorruptingRelay(targetPort: number): Promise<{ port: number; corrupted: () => boolean; close: () => void }> {
  let corrupted = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((downstream) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(downstream).add(upstream);
    downstream.on('error', () => upstream.destroy());
    upstream.on('error', () => downstream.destroy());
    downstream.on('close', () => upstream.destroy());
    upstream.on('close', () => downstream.destroy());
    downstream.pipe(upstream);
    let pending = Buffer.alloc(0);
    let identDone = false;
    let passthrough = false;
    upstream.on('data', (chunk: Buffer) => {
      if (passthrough) return void downstream.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      if (!identDone) {
        const eol = pending.indexOf('\r\n');
        if (eol < 0) return;
        downstream.write(pending.subarray(0, eol + 2));
        pending = pending.subarray(eol + 2);
        identDone = true;
      }
      while (pending.length >= 5) {
        const length = pending.readUInt32BE(0);
        if (pending.length < 4 + length) return;
        const packet = Buffer.from(pending.subarray(0, 4 + length));
        pending = pending.subarray(4 + length);
        if (packet[5] === 31) {
          // type(1) | string K_S | string S_REPLY (ciphertext first) | string signature
          const hostKeyLength = packet.readUInt32BE(6);
          const replyStart = 6 + 4 + hostKeyLength + 4;
          packet[replyStart + 100] = packet[replyStart + 100]! ^ 0x04;
          corrupted = true;
          downstream.write(packet);
          downstream.write(pending);
          passthrough = true;
          return;
        }
        downstream.write(packet);
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        corrupted: () => corrupted,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    ),
  );
}

describe('post-quantum key exchange mlkem768x25519-sha256', () => {
  let gw: TestGateway;
  let work: string;
  beforeAll(async () => {
    gw = await startTestGateway();
    work = mkdtempSync(join(tmpdir(), 'execgate-pq-'));
  });
  afterAll(async () => {
    await gw?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  with10('with a real OpenSSH 10 client', () => {
    it('OpenSSH 10 with its defaults negotiates mlkem768x25519-sha256 and runs exec, scp (both protocols), sftp and a pty session', async () => {
      const client = requireClient10();
      const exec = await ssh(gw.port, gw.keys.ed25519, 'echo pq-ok; echo err >&2; exit 7', { extra: ['-v'], client });
      expect(negotiatedKex(exec.stderr)).toBe(PQ);
      expect(exec.stdout.toString()).toBe('pq-ok\n');
      expect(exec.stderr).toContain('err');
      expect(exec.code).toBe(7);

      const payload = randomBytes(256 * 1024);
      const local = join(work, 'payload.bin');
      writeFileSync(local, payload);
      for (const [mode, extra] of [
        ['sftp', []],
        ['legacy', ['-O']],
      ] as const) {
        const remote = join(work, `up-${mode}.bin`);
        const up = await scpWith(client, gw.port, gw.keys.ed25519, [...extra, '-v', local, `root@127.0.0.1:${remote}`]);
        expect(up.code, up.stderr).toBe(0);
        expect(negotiatedKex(up.stderr)).toBe(PQ);
        expect(readFileSync(remote).equals(payload)).toBe(true);
      }

      const back = join(work, 'back.bin');
      const batch = join(work, 'batch');
      writeFileSync(batch, `get ${join(work, 'up-sftp.bin')} ${back}\n`);
      const sftp = await sftpWith(client, gw.port, gw.keys.ed25519, ['-v', '-b', batch, 'root@127.0.0.1']);
      expect(sftp.code, sftp.stderr).toBe(0);
      expect(negotiatedKex(sftp.stderr)).toBe(PQ);
      expect(readFileSync(back).equals(payload)).toBe(true);

      const pty = await ssh(gw.port, gw.keys.ed25519, 'tty; echo "term=$TERM"', { extra: ['-v', '-tt'], client });
      expect(negotiatedKex(pty.stderr)).toBe(PQ);
      expect(pty.code).toBe(0);
      expect(pty.stdout.toString()).toMatch(/^\/dev\/pts\/\d+\r?\n/);
    });

    it('OpenSSH 10 limited to -o KexAlgorithms=mlkem768x25519-sha256 connects; the system OpenSSH 9.2 (no ML-KEM) falls back to curve25519', async () => {
      const client = requireClient10();
      const only = await ssh(gw.port, gw.keys.ed25519, 'echo only-pq', { extra: ['-v', '-o', `KexAlgorithms=${PQ}`], client });
      expect(only.code, only.stderr).toBe(0);
      expect(negotiatedKex(only.stderr)).toBe(PQ);
      expect(only.stdout.toString()).toBe('only-pq\n');
      const old = await ssh(gw.port, gw.keys.ed25519, 'echo nine', { extra: ['-v'] });
      expect(old.code).toBe(0);
      expect(negotiatedKex(old.stderr)).toBe('curve25519-sha256');
    });

    it('a ciphertext corrupted on the way fails the handshake cleanly: the client refuses the host key signature, the gateway serves on', async () => {
      const client = requireClient10();
      const relay = await startCorruptingRelay(gw.port);
      try {
        const r = await ssh(relay.port, gw.keys.ed25519, 'echo must-not-run', { extra: ['-v'], client });
        expect(relay.corrupted()).toBe(true);
        expect(r.code).toBe(255);
        expect(r.stdout.toString()).toBe('');
        expect(r.stderr).toMatch(/incorrect signature|signature.*(fail|invalid)/i);
      } finally {
        relay.close();
      }
      const after = await ssh(gw.port, gw.keys.ed25519, 'echo still-serving', { client });
      expect(after.stdout.toString()).toBe('still-serving\n');
      expect(gw.proc.exitCode).toBeNull();
    });
  });

  it("execgate's own ssh2 client side of the kex interoperates with the server side", async () => {
    registerPostQuantumKex();
    const client = new ssh2.Client();
    let kex = '';
    const out = await new Promise<string>((resolve, reject) => {
      client.on('handshake', (negotiated) => (kex = negotiated.kex));
      client.on('error', reject);
      client.on('ready', () =>
        client.exec('echo ssh2-pq', (err, ch) => {
          if (err) return reject(err);
          let data = '';
          ch.on('data', (d: Buffer) => (data += d.toString()));
          ch.on('close', () => resolve(data));
        }),
      );
      client.connect({
        host: '127.0.0.1',
        port: gw.port,
        username: 'root',
        privateKey: readFileSync(gw.keys.ed25519),
        algorithms: { kex: [PQ as ssh2.KexAlgorithm] },
      });
    });
    client.end();
    expect(kex).toBe(PQ);
    expect(out).toBe('ssh2-pq\n');
  });

  describe('hostile key shares, sent as exact bytes', () => {
    const valid = () => clientStart().init;
    const cases: Array<[string, () => Buffer, RegExp]> = [
      ['an all-zero (low-order) X25519 share', () => Buffer.concat([valid().subarray(0, 1184), Buffer.alloc(32)]), /X25519/],
      ['a low-order X25519 share u=1', () => Buffer.concat([valid().subarray(0, 1184), Buffer.from([1]), Buffer.alloc(31)]), /X25519/],
      [
        'an ML-KEM key with a coefficient >= q',
        () => {
          const b = Buffer.from(valid());
          b[0] = 0xff;
          b[1] = b[1]! | 0x0f;
          return b;
        },
        /ML-KEM/,
      ],
      ['a share one byte short', () => valid().subarray(1), /1215 bytes, expected 1216/],
      ['a 32-byte curve25519-sized share', () => randomBytes(32), /32 bytes, expected 1216/],
      ['an empty share', () => Buffer.alloc(0), /0 bytes, expected 1216/],
    ];
    for (const [name, share, reason] of cases) {
      it(`${name}: DISCONNECT key-exchange-failed, a log line naming the fault, and the gateway serves on`, async () => {
        const logged = gw.output().length;
        const r = await rawKex(gw.port, [PQ], [kexInitMessage(share())]);
        expect(r.serverIdent).toMatch(/^SSH-2\.0-execgate/);
        expect(r.disconnect, JSON.stringify(r.packets.map((p) => p.type))).not.toBeNull();
        expect(r.disconnect!.reason).toBe(KEY_EXCHANGE_FAILED);
        expect(r.closed).toBe(true);
        const failure = () =>
          gw
            .output()
            .slice(logged)
            .split('\n')
            .find((l) => l.includes('key exchange failed'));
        await until(() => failure() !== undefined, 3000);
        expect(failure()).toMatch(reason);
        const after = await ssh(gw.port, gw.keys.ed25519, 'echo alive');
        expect(after.stdout.toString()).toBe('alive\n');
      });
    }

    it('a KEX_HYBRID_INIT whose string length runs past the packet: DISCONNECT, no crash', async () => {
      const truncated = Buffer.from([30, 0, 0, 0x04, 0xc0, 1, 2, 3]); // claims 1216 bytes, carries 3
      const r = await rawKex(gw.port, [PQ], [truncated]);
      expect(r.disconnect?.reason).toBe(KEY_EXCHANGE_FAILED);
      const after = await ssh(gw.port, gw.keys.ed25519, 'echo alive');
      expect(after.stdout.toString()).toBe('alive\n');
      expect(gw.proc.exitCode).toBeNull();
    });
  });
});
