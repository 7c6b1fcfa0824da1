import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, readFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh, sftpWith, scpWith, jsch, describeEachClient } from '../helpers/clients.js';
import { connectClient, execOn } from '../helpers/ssh2Client.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('session surfaces real clients use', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  describeEachClient('pty, shell, sftp and scp', (client) => {
    it('ssh -tt runs the command on a real terminal and prompts work', async () => {
      const r = await ssh(gw.port, gw.keys.ed25519, 'tty; test -t 0 && echo stdin-is-tty; printf "Password: "; read secret; echo "got $secret"', {
        extra: ['-tt'],
        input: 'hunter2\n',
        client,
      });
      const text = r.stdout.toString();
      expect(text).toMatch(/\/dev\/pts\/\d+\r\n/); // the terminal echoes typed input too
      expect(text).toContain('stdin-is-tty');
      expect(text).toContain('Password: ');
      expect(text).toContain('got hunter2');
      expect(r.code).toBe(0);
    });

    it('a shell session driven over stdin runs two commands and reports $?', async () => {
      const r = await ssh(gw.port, gw.keys.ed25519, '', { extra: ['-T'], input: 'true\necho "first $?"\nfalse\necho "second $?"\nexit 4\n', client });
      // no command given: ssh asks for a shell
      expect(r.stdout.toString()).toContain('first 0\nsecond 1\n');
      expect(r.code).toBe(4);
    });

    it('sftp batch put/get round-trips a 20 MB file byte-exact', async () => {
      const local = join(gw.dir, `sftp-src-${client.name}.bin`);
      const remote = join(gw.dir, `sftp-remote-${client.name}.bin`);
      const back = join(gw.dir, `sftp-back-${client.name}.bin`);
      writeFileSync(local, randomBytes(20 * 1024 * 1024));
      const batch = join(gw.dir, `batch-${client.name}`);
      writeFileSync(batch, `put ${local} ${remote}\nget ${remote} ${back}\n`);
      const auditBefore = gw.audit().length; // both clients' sessions land in this gateway's audit
      const r = await sftpWith(client, gw.port, gw.keys.ed25519, ['-b', batch, 'root@127.0.0.1']);
      expect(r.code).toBe(0);
      expect(sha256(readFileSync(back))).toBe(sha256(readFileSync(local)));
      const audit = gw
        .audit()
        .slice(auditBefore)
        .find((a) => a.command === '(sftp)');
      expect(audit).toMatchObject({ result: 'completed', exitStatus: 0 });
    });

    it('scp in SFTP mode and scp -O both work', async () => {
      const local = join(gw.dir, `scp-src-${client.name}.txt`);
      writeFileSync(local, 'scp payload\n');
      for (const mode of [[], ['-O']]) {
        const remote = join(gw.dir, `scp-dst-${client.name}${mode.length}.txt`);
        const r = await scpWith(client, gw.port, gw.keys.ed25519, [...mode, local, `root@127.0.0.1:${remote}`]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(readFileSync(remote, 'utf8')).toBe('scp payload\n');
      }
    });
  });

  it('stty size reflects the requested window, and window-change resizes it', async () => {
    const client = await connectClient(gw.port, gw.keys.ed25519);
    try {
      const r = await execOn(client, 'stty size', { pty: { rows: 33, cols: 111, term: 'vt100' } });
      expect(r.stdout.toString().trim()).toBe('33 111');
      const resized = await execOn(client, 'sleep 0.5; stty size', {
        pty: { rows: 24, cols: 80, term: 'vt100' },
        onChannel: (ch) => setTimeout(() => ch.setWindow(50, 132, 0, 0), 100),
      });
      expect(resized.stdout.toString().trim()).toBe('50 132');
    } finally {
      client.end();
    }
  });

  it("sshj's scp form works: scp -t -r -p '<path>' with a T line", async () => {
    const dir = join(gw.dir, 'sshj target');
    mkdirSync(dir);
    const client = await connectClient(gw.port, gw.keys.ed25519);
    try {
      const payload = Buffer.from('#!/bin/sh\necho from sshj\n');
      const mtime = 1_700_000_000;
      const result = await new Promise<number | null>((resolve, reject) => {
        client.exec(`scp -t -r -p '${dir}'`, (err, ch) => {
          if (err) return reject(err);
          const steps = [Buffer.from(`T${mtime} 0 ${mtime} 0\n`), Buffer.from(`C0755 ${payload.length} script.sh\n`), Buffer.concat([payload, Buffer.from([0])])];
          let code: number | null = null;
          ch.on('exit', (c: number | null) => (code = c));
          ch.on('data', (d: Buffer) => {
            expect(d[0]).toBe(0); // every ack is a NUL byte
            const next = steps.shift();
            if (next) ch.write(next);
            else ch.end(); // sshj closes stdin after the last ack
          });
          ch.on('close', () => resolve(code));
        });
      });
      expect(result).toBe(0);
      expect(readFileSync(join(dir, 'script.sh'), 'utf8')).toBe('#!/bin/sh\necho from sshj\n');
      expect(Math.round(statSync(join(dir, 'script.sh')).mtimeMs / 1000)).toBe(mtime);
    } finally {
      client.end();
    }
  });

  it('an sshj-like burst of 40 env requests, each with want-reply, all arrive', async () => {
    const env = Array.from({ length: 40 }, (_, i) => ['--env', `RD_OPTION_V${i}=value-${i}`]).flat();
    const r = await jsch(['--host', '127.0.0.1', '--port', String(gw.port), '--user', 'root', '--key', gw.keys.rsaPem, '--mode', 'exec', '--command', 'env | grep -c ^RD_OPTION_V', ...env]);
    expect(r.ops[0]).toMatchObject({ op: 'exec', exit: 0, stdout: '40\n' });
  });
});
