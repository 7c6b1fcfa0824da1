import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { connect, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import ssh2, { type ConnectConfig } from 'ssh2';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { batchKeyArgs, run, sshArgs } from '../helpers/clients.js';
import { execOn } from '../helpers/ssh2Client.js';
import { sleep } from '../helpers/proc.js';
import { until } from '../helpers/until.js';

/** Opens a TCP connection from `bind` that never sends a byte. */
function silentSocket(port: number, bind: string): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect({ port, host: '127.0.0.1', localAddress: bind });
    socket.on('data', () => {});
    socket.on('error', () => {});
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - t0)));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

/** An ssh2 client connection that reports how it ended. */
function ssh2Session(config: ConnectConfig, prepare?: (client: ssh2.Client) => void): Promise<{ error: Error | null; ready: boolean; client: ssh2.Client }> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    prepare?.(client);
    let settled = false;
    const done = (error: Error | null, ready: boolean) => {
      if (settled) return;
      settled = true;
      resolve({ error, ready, client });
    };
    client.on('ready', () => done(null, true));
    client.on('error', (err) => done(err, false));
    client.on('close', () => done(new Error('closed'), false));
    client.connect({ host: '127.0.0.1', readyTimeout: 15_000, ...config });
  });
}

/** OpenSSH arguments without LogLevel=ERROR, so the client's own error lines show. */
const verboseSshArgs = (port: number, key: string, extra: string[] = []) => [...batchKeyArgs(key), '-p', String(port), ...extra];

/** ssh2's client internals a test reaches into: the EXT_INFO handler. */
type ExtInfoHandler = (p: unknown, exts: Array<{ name: string; algs?: string[] }>) => void;
function extInfoHook(client: ssh2.Client, hook: (original: ExtInfoHandler) => ExtInfoHandler): void {
  client.once('connect', () => {
    const handlers = (client as unknown as { _protocol: { _handlers: Record<string, ExtInfoHandler> } })._protocol._handlers;
    handlers.EXT_INFO = hook(handlers.EXT_INFO!);
  });
}

const rssKb = (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('SSH protocol hardening', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      runAs: { accounts: { alice: 'nobody', bob: 'nobody' } },
      limits: {
        maxConnectionsPerSource: 3,
        loginGraceSeconds: 1.5,
        authFailures: { threshold: 2, windowSeconds: 60, baseBlockSeconds: 30, maxBlockSeconds: 60, perSourceThreshold: 1000 },
      },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  const sshFrom = (bind: string, args: string[], user = 'alice', key = gw.keys.ed25519, extra: string[] = []) =>
    run('ssh', [...sshArgs(gw.port, key, ['-b', bind, ...extra]), `${user}@127.0.0.1`, ...args]);

  // Finding 2: the login deadline starts at accept, not at the client's version line.
  it('silent TCP connections are closed at loginGraceSeconds and give their slots back', async () => {
    const silent = await Promise.all([1, 2, 3].map(() => silentSocket(gw.port, '127.0.0.21')));
    const refused = await sshFrom('127.0.0.21', ['echo', 'no']);
    expect(refused.stderr).toContain('limits.maxConnectionsPerSource = 3');
    const closedAfter = await Promise.all(silent.map((s) => Promise.race([s.closed, sleep(10_000).then(() => -1)])));
    for (const ms of closedAfter) {
      expect(ms).toBeGreaterThanOrEqual(1400);
      expect(ms).toBeLessThan(5000);
    }
    const ok = await sshFrom('127.0.0.21', ['echo', 'slots-back']);
    expect(ok.stdout.toString()).toBe('slots-back\n');
    expect(gw.output()).toContain('login grace time (limits.loginGraceSeconds) exceeded');
  });

  it('a client that authenticated is not cut at the login deadline', async () => {
    const r = await sshFrom('127.0.0.22', ['sleep 2.5; echo still-here']);
    expect(r.stdout.toString()).toBe('still-here\n');
  });

  // Finding 3: no compression before authentication.
  it('plain zlib is not offered; zlib@openssh.com starts only after authentication', async () => {
    const zlib = await ssh2Session({ port: gw.port, username: 'alice', privateKey: readFileSync(gw.keys.ed25519), algorithms: { compress: ['zlib'] } });
    expect(zlib.ready).toBe(false);
    expect(zlib.error?.message).toMatch(/no matching.*compression|Handshake failed/i);
    const delayed = await ssh2Session({ port: gw.port, username: 'alice', privateKey: readFileSync(gw.keys.ed25519), algorithms: { compress: ['zlib@openssh.com'] } });
    expect(delayed.ready).toBe(true);
    const out = await execOn(delayed.client, 'head -c 200000 /dev/zero | tr "\\0" x | wc -c');
    expect(out.stdout.toString().trim()).toBe('200000');
    delayed.client.end();
    // OpenSSH with -C negotiates zlib@openssh.com
    const c = await sshFrom('127.0.0.23', ['echo', 'compressed'], 'alice', gw.keys.ed25519, ['-C']);
    expect(c.stdout.toString()).toBe('compressed\n');
  });

  it('a compressed packet that inflates past the packet limit is refused with a message, not a crash', async () => {
    const s = await ssh2Session({ port: gw.port, username: 'alice', privateKey: readFileSync(gw.keys.ed25519), algorithms: { compress: ['zlib@openssh.com'] } });
    expect(s.ready).toBe(true);
    const ended = new Promise<string>((resolve) => {
      s.client.on('error', (err) => resolve(err.message));
      s.client.on('close', () => resolve('closed'));
    });
    // 4 MB of "x" compresses to a few KB on the wire: within the wire limit, 12x over the inflated one
    s.client.exec(`: ${'x'.repeat(4_000_000)}`, () => {});
    expect(await Promise.race([ended, sleep(15_000).then(() => 'no disconnect within 15 s')])).toMatch(
      /inflated packet exceeds the limit of \d+ bytes; a command line may have at most limits\.maxCommandBytes/,
    );
    await until(() => gw.output().includes('packet too large'), 3000);
    const after = await sshFrom('127.0.0.23', ['echo', 'alive']);
    expect(after.stdout.toString()).toBe('alive\n');
  });

  it('the 6th failed authentication request disconnects (sshd MaxAuthTries; the first "none" is free)', async () => {
    let attempts = 0;
    const s = await ssh2Session({
      port: gw.port,
      username: 'alice',
      authHandler: (_left, _partial, next) => {
        attempts++;
        next({ type: 'none', username: 'alice' } as never);
      },
    });
    expect(s.ready).toBe(false);
    expect(s.error?.message).toMatch(/too many authentication failures \(6; limits\.maxAuthTries = 6\)/);
    expect(attempts).toBe(7);
    await until(() => gw.output().includes('authentication refused: too many authentication failures'), 3000);
  });

  it('OpenSSH with 5 wrong keys before the right one still gets in; with 7 wrong keys it is told why', async () => {
    const dir = join(gw.dir, 'many');
    mkdirSync(dir);
    const wrong = Array.from({ length: 7 }, (_, i) => {
      const f = join(dir, `k${i}`);
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', f]);
      return f;
    });
    const ids = (keys: string[]) => keys.flatMap((k) => ['-i', k]);
    const base = ['-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-p', String(gw.port), '-b', '127.0.0.24'];
    const ok = await run('ssh', [...base, ...ids([...wrong.slice(0, 5), gw.keys.ed25519]), 'bob@127.0.0.1', 'echo', 'sixth-key']);
    expect(ok.stdout.toString()).toBe('sixth-key\n');
    const no = await run('ssh', [...base, ...ids(wrong), 'bob@127.0.0.1', 'echo', 'no']);
    expect(no.code).toBe(255);
    expect(no.stderr).toMatch(/Received disconnect .*too many authentication failures/);
  });

  it('a huge username is refused before authentication without growing the gateway', async () => {
    const pid = gw.proc.pid!;
    const before = rssKb(pid, 'VmRSS');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => ssh2Session({ port: gw.port, localAddress: `127.0.1.${i + 1}`, username: 'u'.repeat(30_000), authHandler: ['none'] as never })),
    );
    for (const r of results) {
      expect(r.ready).toBe(false);
      expect(r.error?.message ?? '').toMatch(/username of 30000 bytes \(at most 256\)/);
    }
    const after = rssKb(pid, 'VmRSS');
    console.log(`gateway RSS around 20 connections with 30 KB usernames: ${before} kB -> ${after} kB (peak ${rssKb(pid, 'VmHWM')} kB)`);
  });

  // Finding 4: command lines up to limits.maxCommandBytes arrive; longer ones are told.
  it('OpenSSH runs a 100 KB command line and one of 131071 bytes; 150 KB gets exit 75 and a message; 1 MB a disconnect that says why', async () => {
    // argv strings for the local ssh stay under 128 KiB each; ssh joins them with spaces.
    const parts = (bytes: number) => {
      const out: string[] = [];
      for (let left = bytes; left > 0; left -= 100_000) out.push('x'.repeat(Math.min(100_000, left)));
      return out;
    };
    const ok = await sshFrom('127.0.0.25', [':', ...parts(100_000), ';', 'echo', 'ok']);
    expect(ok.stderr).not.toMatch(/packet|disconnect/i);
    expect(ok.stdout.toString()).toBe('ok\n');
    // ": " + 100000 + " " + k + "; echo edge" = 131071 bytes, the most Linux passes as one argument.
    const edge = await sshFrom('127.0.0.25', [':', 'x'.repeat(100_000), `${'x'.repeat(131_071 - 100_014)};`, 'echo', 'edge']);
    expect(edge.stderr).not.toMatch(/cannot run|E2BIG|packet|disconnect/i);
    expect(edge.stdout.toString()).toBe('edge\n');
    const long = await sshFrom('127.0.0.25', [':', ...parts(150_000), ';', 'echo', 'ran']);
    expect(long.code).toBe(75);
    expect(long.stdout.toString()).toBe('');
    expect(long.stderr).toMatch(/over limits\.maxCommandBytes \(131071\)/);
    const huge = await sshFrom('127.0.0.25', [':', ...parts(1_000_000), ';', 'echo', 'ran']);
    expect(huge.code).toBe(255);
    expect(huge.stderr).toMatch(/Received disconnect .*packet of \d+ bytes exceeds the limit of \d+ bytes; a command line may have at most limits\.maxCommandBytes = 131071 bytes/);
  });

  it('before authentication the packet cap stays at 35000 bytes', async () => {
    const r = await new Promise<string>((resolve) => {
      const s = connect(gw.port, '127.0.0.1');
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        // after our version line and ssh2's KEXINIT: a 1 MB packet length in the clear
        if (got.includes('\n') && !s.writableEnded) {
          const header = Buffer.alloc(5);
          header.writeUInt32BE(1_000_000, 0);
          s.write('SSH-2.0-hostile\r\n');
          s.write(header);
          s.end();
        }
      });
      s.on('close', () => resolve(got));
      s.on('error', () => {});
    });
    expect(r).toContain('SSH-2.0-execgate');
    await until(() => /packet of 1000000 bytes exceeds the limit of 35000 bytes \(before authentication\)/.test(gw.output()), 3000);
    expect(gw.output()).toMatch(/packet of 1000000 bytes exceeds the limit of 35000 bytes \(before authentication\)/);
  });

  // Finding 8: authentication algorithms.
  it('refuses RSA keys under 2048 bits (and reports them at load), naming the reason', async () => {
    const dir = join(gw.dir, 'weak');
    mkdirSync(dir);
    const weak = join(dir, 'id_rsa1024');
    execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '1024', '-m', 'PEM', '-N', '', '-f', weak]);
    appendFileSync(join(gw.dir, 'authorized_keys'), readFileSync(`${weak}.pub`, 'utf8'));
    const r = await sshFrom('127.0.0.26', ['echo', 'no'], 'alice', weak);
    expect(r.code).toBe(255);
    // the next login re-reads authorized_keys and reports the line
    expect((await sshFrom('127.0.0.26', ['echo', 'reload'])).stdout.toString()).toBe('reload\n');
    await until(() => /authorized_keys:\d+: RSA key of 1024 bits is refused/.test(gw.output()), 3000);
    expect(gw.output()).toMatch(/authorized_keys:\d+: RSA key of 1024 bits is refused \(at least 2048\)/);
    expect(gw.output()).toMatch(/authentication failed for alice from [^:]+:\d+: RSA key of 1024 bits is refused/);
    // A 512-bit key (ssh-keygen refuses to make one; the review logged in with one)
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 512 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    writeFileSync(join(dir, 'id_rsa512'), pem, { mode: 0o600 });
    const s = await ssh2Session({ port: gw.port, localAddress: '127.0.0.26', username: 'alice', privateKey: pem });
    expect(s.ready).toBe(false);
    await until(() => gw.output().includes('RSA key of 512 bits is refused'), 3000);
    expect(gw.output()).toContain('RSA key of 512 bits is refused');
  });

  it('a wrong username with the right key does not block that key for its right username', async () => {
    for (let i = 0; i < 4; i++) expect((await sshFrom('127.0.0.27', ['true'], 'mallory')).code).toBe(255);
    const good = await sshFrom('127.0.0.27', ['echo', 'right-user']);
    expect(good.stdout.toString()).toBe('right-user\n');
  });

  it('advertises server-sig-algs with every algorithm separated and without ssh-dss', async () => {
    const v = await run('ssh', [...verboseSshArgs(gw.port, gw.keys.ed25519, ['-b', '127.0.0.28', '-v']), 'alice@127.0.0.1', 'true']);
    const m = /server-sig-algs=<([^>]*)>/.exec(v.stderr);
    expect(m).not.toBeNull();
    expect(m![1]!.split(',')).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });
});

describe('auth.allowSshRsaSha1: false', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ runAs: { accounts: { alice: 'nobody' } }, auth: { allowSshRsaSha1: false } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('accepts RSA keys signing with rsa-sha2-256/512 and refuses ssh-rsa (SHA-1) signatures', async () => {
    const sha2 = await run('ssh', [...sshArgs(gw.port, gw.keys.rsaPem), 'alice@127.0.0.1', 'echo', 'rsa-sha2']);
    expect(sha2.stdout.toString()).toBe('rsa-sha2\n');
    for (const alg of ['rsa-sha2-256', 'rsa-sha2-512']) {
      const r = await run('ssh', [...sshArgs(gw.port, gw.keys.rsaPem, ['-o', `PubkeyAcceptedAlgorithms=${alg}`]), 'alice@127.0.0.1', 'echo', alg]);
      expect(r.stdout.toString()).toBe(`${alg}\n`);
    }
    // OpenSSH will not even try ssh-rsa: server-sig-algs no longer lists it
    const v = await run('ssh', [...verboseSshArgs(gw.port, gw.keys.rsaPem, ['-v']), 'alice@127.0.0.1', 'true']);
    expect(/server-sig-algs=<([^>]*)>/.exec(v.stderr)?.[1]).toBe('ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256');
    const noSha1 = await run('ssh', [...sshArgs(gw.port, gw.keys.rsaPem, ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa']), 'alice@127.0.0.1', 'echo', 'no']);
    expect(noSha1.code).toBe(255);
    // A client that ignores server-sig-algs (as old JSch) signs with ssh-rsa: refused by the gateway
    const sha1 = await ssh2Session({ port: gw.port, username: 'alice', privateKey: readFileSync(gw.keys.rsaPem) }, (client) => extInfoHook(client, () => () => {}));
    expect(sha1.ready).toBe(false);
    await until(() => gw.output().includes('ssh-rsa (SHA-1) signatures are disabled'), 3000);
    expect(gw.output()).toContain('ssh-rsa (SHA-1) signatures are disabled (auth.allowSshRsaSha1: false)');
  });

  it('offers no ssh-rsa host key signature', async () => {
    const r = await run('ssh', [...verboseSshArgs(gw.port, gw.keys.ed25519, ['-o', 'HostKeyAlgorithms=ssh-rsa']), 'alice@127.0.0.1', 'true']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/no matching host key type found/);
    const sha2 = await run('ssh', [...sshArgs(gw.port, gw.keys.ed25519, ['-o', 'HostKeyAlgorithms=rsa-sha2-512']), 'alice@127.0.0.1', 'echo', 'rsa-host']);
    expect(sha2.stdout.toString()).toBe('rsa-host\n');
  });
});

describe('a bad packet length (default limits: 30 s login grace)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({});
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('after a bad packet length the gateway reads no further and closes, instead of buffering what follows', async () => {
    const pid = gw.proc.pid!;
    const before = rssKb(pid, 'VmRSS');
    const total = 32 * 1024 * 1024;
    const t0 = Date.now();
    const result = await new Promise<{ written: number; closedAfterMs: number | null }>((resolve) => {
      // a hostile peer ignores the gateway's FIN, sends 32 MB and keeps sending
      const s = connect({ port: gw.port, host: '127.0.0.1', allowHalfOpen: true });
      let written = 0;
      const timer = setTimeout(() => {
        s.destroy();
        resolve({ written, closedAfterMs: null });
      }, 15_000);
      const closed = () => {
        clearTimeout(timer);
        resolve({ written, closedAfterMs: Date.now() - t0 });
      };
      s.on('error', closed);
      s.on('close', closed);
      s.on('data', () => {});
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = () => {
        while (written < total && !s.destroyed) {
          written += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
        // then a trickle, so that a close by the gateway shows up as a failed write
        const trickle = setInterval(() => (s.destroyed ? clearInterval(trickle) : s.write(Buffer.alloc(1024))), 100);
        s.once('close', () => clearInterval(trickle));
      };
      s.once('connect', () => {
        const header = Buffer.alloc(4);
        header.writeUInt32BE(0x40000000, 0); // a 1 GiB packet, in the clear before key exchange
        s.write('SSH-2.0-hostile\r\n');
        s.write(header);
        pump();
      });
    });
    const after = rssKb(pid, 'VmRSS');
    console.log(`bad packet length, then ${Math.round(result.written / 1048576)} MB sent; closed after ${result.closedAfterMs} ms; gateway RSS ${before} kB -> ${after} kB`);
    // closed by the gateway within seconds, not at limits.loginGraceSeconds (30 s)
    expect(result.closedAfterMs).not.toBeNull();
    expect(result.closedAfterMs!).toBeLessThan(10_000);
  });
});
