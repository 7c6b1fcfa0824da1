import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { ssh, run, scpWith, sftpWith, describeEachClient, negotiatedKex } from '../helpers/clients.js';
import { groupMembers, sleep } from '../helpers/proc.js';
import { until } from '../helpers/until.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('exec through the real OpenSSH client', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(async () => {
    await gw?.stop();
  });

  describeEachClient('exec, stderr, exit codes, env, stdin and scp', (client) => {
    it(`is really ${client.name}: ssh -V, and ssh, scp (both modes) and sftp all speak as it`, async () => {
      const v = await run(client.ssh, ['-V']);
      expect(v.code).toBe(0);
      expect(v.stderr.split('\n')[0]).toMatch(client.version);
      // `-v` makes the ssh that actually connects print "debug1: Local version string SSH-2.0-<version>":
      // proof that scp and sftp started this flavour's ssh (-S), not /usr/bin/ssh.
      const spoke = (stderr: string) => /^debug1: Local version string SSH-2\.0-(\S+)/m.exec(stderr)?.[1];
      const exec = await ssh(gw.port, gw.keys.ed25519, 'true', { extra: ['-v'], client });
      expect(exec.code).toBe(0);
      expect(spoke(exec.stderr)).toMatch(client.version);
      const kex = negotiatedKex(exec.stderr);
      expect(kex).not.toBeNull();
      console.log(`${client.name}: ${v.stderr.split('\n')[0]}; kex: algorithm: ${kex}`);
      const local = join(gw.dir, `ident-${client.name}.txt`);
      writeFileSync(local, 'ident\n');
      for (const flags of [['-O'], []]) {
        const up = await scpWith(client, gw.port, gw.keys.ed25519, ['-v', ...flags, local, `root@127.0.0.1:${local}.scp${flags.join('')}`]);
        expect(up.code).toBe(0);
        expect(spoke(up.stderr)).toMatch(client.version);
      }
      const batch = join(gw.dir, `ident-${client.name}.batch`);
      writeFileSync(batch, `put ${local} ${local}.sftp\n`);
      const s = await sftpWith(client, gw.port, gw.keys.ed25519, ['-v', '-b', batch, 'root@127.0.0.1']);
      expect(s.code).toBe(0);
      expect(spoke(s.stderr)).toMatch(client.version);
      expect(readFileSync(`${local}.sftp`, 'utf8')).toBe('ident\n');
    });

    it.each([0, 1, 3, 254])('returns exit code %i exactly', async (code) => {
      const r = await ssh(gw.port, gw.keys.ed25519, `echo marker-${code}; exit ${code}`, { client });
      expect(r.stdout.toString()).toBe(`marker-${code}\n`);
      expect(r.code).toBe(code);
    });

    it('sends stderr as stderr and stdout as stdout', async () => {
      const r = await ssh(gw.port, gw.keys.ed25519, 'echo to-out; echo to-err >&2', { client });
      expect(r.stdout.toString()).toBe('to-out\n');
      expect(r.stderr).toContain('to-err');
      expect(r.stderr).not.toContain('to-out');
    });

    it('passes allow-listed env (RD_*) and drops the rest (LD_PRELOAD)', async () => {
      const execid = client.name === 'openssh-10' ? '5242' : '4242'; // one audit line per client
      const r = await ssh(
        gw.port,
        gw.keys.ed25519,
        'echo "id=${RD_JOB_EXECID:-unset} preload=${LD_PRELOAD:-unset} node=$EXECGATE_NODE token=$EXECGATE_FENCING_TOKEN execid=${EXECGATE_EXEC_ID:+set}"',
        {
          extra: ['-o', 'SendEnv=RD_JOB_EXECID', '-o', 'SendEnv=LD_PRELOAD'],
          env: { ...process.env, RD_JOB_EXECID: execid, LD_PRELOAD: '/nonexistent/evil.so' },
          client,
        },
      );
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toBe(`id=${execid} preload=unset node=gw-test token=1 execid=set\n`);
      const line = gw.audit().find((a) => a.rdJobExecId === execid);
      expect(line).toMatchObject({ result: 'completed', exitStatus: 0, token: '1', node: 'gw-test' });
    });

    it('runs in the user home with a clean environment', async () => {
      const r = await ssh(gw.port, gw.keys.ed25519, 'pwd; env | cut -d= -f1 | sort | tr "\\n" " "', { client });
      const [pwd, names] = r.stdout.toString().split('\n');
      expect(pwd).toBe(process.env.HOME ?? '/root');
      expect(names!.trim().split(' ')).toEqual(expect.arrayContaining(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'EXECGATE_NODE', 'EXECGATE_FENCING_TOKEN', 'EXECGATE_EXEC_ID']));
      expect(names).not.toMatch(/\bNODE_|npm_|VITEST/);
    });

    it('wires stdin through without waiting for EOF to start', async () => {
      const r = await ssh(gw.port, gw.keys.ed25519, 'sha256sum', { input: 'hello stdin\n', client });
      expect(r.stdout.toString().split(' ')[0]).toBe(sha256(Buffer.from('hello stdin\n')));
      const noStdin = await ssh(gw.port, gw.keys.ed25519, 'echo does-not-read-stdin', { extra: ['-n'], client });
      expect(noStdin.stdout.toString()).toBe('does-not-read-stdin\n');
    });

    it('reports a SIGKILL death as 137 and a SIGTERM death as 143', async () => {
      const k = await ssh(gw.port, gw.keys.ed25519, 'echo before; kill -KILL $$', { client });
      expect(k.stdout.toString()).toBe('before\n');
      expect(k.code).toBe(137);
      const t = await ssh(gw.port, gw.keys.ed25519, 'kill -TERM $$', { client });
      expect(t.code).toBe(143);
    });

    it.each([
      { mode: '-O (legacy scp protocol)', flags: ['-O'] },
      { mode: 'in SFTP mode (the default)', flags: [] },
    ])('scp $mode upload, then chmod and exec of the uploaded script', async ({ flags }) => {
      const local = join(gw.dir, 'step.sh');
      const remote = join(gw.dir, `12-999-gw-test-dispatch-script-${client.name}${flags.join('')}.tmp.sh`);
      writeFileSync(local, '#!/bin/sh\necho "script ran with $1"\nexit 5\n');
      const up = await scpWith(client, gw.port, gw.keys.ed25519, [...flags, local, `root@127.0.0.1:${remote}`]);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      expect(readFileSync(remote, 'utf8')).toBe(readFileSync(local, 'utf8'));
      expect((await ssh(gw.port, gw.keys.ed25519, `chmod +x ${remote}`, { client })).code).toBe(0);
      const exec = await ssh(gw.port, gw.keys.ed25519, `${remote} arg1`, { client });
      expect(exec.stdout.toString()).toBe('script ran with arg1\n');
      expect(exec.code).toBe(5);
      expect((await ssh(gw.port, gw.keys.ed25519, `rm -f ${remote}`, { client })).code).toBe(0);
      expect(existsSync(remote)).toBe(false);
    });
  });

  it('streams 50 MB of binary output byte-identical', async () => {
    const file = join(gw.dir, 'blob.bin');
    writeFileSync(file, randomBytes(50 * 1024 * 1024));
    const r = await ssh(gw.port, gw.keys.ed25519, `cat ${file}`);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(50 * 1024 * 1024);
    expect(sha256(r.stdout)).toBe(sha256(readFileSync(file)));
  });

  it('kills the whole process tree when the client disconnects', async () => {
    const marker = `tree-${Date.now()}`;
    const client = ssh(gw.port, gw.keys.ed25519, `echo $$; sleep 1000 & sleep 1000; sleep 1000 # ${marker}`);
    const pgid = await new Promise<number>((resolve) => {
      let text = '';
      client.child.stdout!.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes('\n')) resolve(Number(text.trim()));
      });
    });
    expect(await until(() => groupMembers(pgid).length >= 3, 5000)).not.toBeNull();
    const t0 = Date.now();
    client.child.kill('SIGKILL'); // the client vanishes: TCP connection drops
    const took = await until(() => groupMembers(pgid).length === 0, 2000 + 10_000, 20);
    console.log(`process tree gone ${took === null ? 'NEVER' : `${Date.now() - t0} ms`} after the client vanished`);
    expect(took).not.toBeNull();
    expect(await until(() => gw.audit().some((a) => String(a.command).includes(marker)), 5000)).not.toBeNull();
    const line = gw.audit().find((a) => String(a.command).includes(marker))!;
    expect(line.result).toBe('killed');
    expect(line.killReason).toBe('client disconnected');
  });

  it('delivers 30 MB stdout and 20 MB stderr at once, complete, five runs in a row', async () => {
    const out = join(gw.dir, 'out.bin');
    const err = join(gw.dir, 'err.bin');
    writeFileSync(out, randomBytes(30 * 1024 * 1024));
    writeFileSync(err, randomBytes(20 * 1024 * 1024));
    for (let i = 0; i < 5; i++) {
      const r = await ssh(gw.port, gw.keys.ed25519, `cat ${err} >&2 & cat ${out}; wait`);
      expect(r.code).toBe(0);
      expect(sha256(r.stdout)).toBe(sha256(readFileSync(out)));
      expect(sha256(r.stderrBytes)).toBe(sha256(readFileSync(err)));
    }
  });

  it('keeps serving after a client vanishes mid-job', async () => {
    for (let i = 0; i < 5; i++) {
      const c = ssh(gw.port, gw.keys.ed25519, 'while true; do echo spam; done');
      await sleep(150);
      c.child.kill('SIGKILL');
      await c;
    }
    const r = await ssh(gw.port, gw.keys.ed25519, 'echo still-serving');
    expect(r.stdout.toString()).toBe('still-serving\n');
    rmSync(join(gw.dir, 'blob.bin'), { force: true });
  });
});
