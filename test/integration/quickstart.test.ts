import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { CLI, waitForOutput } from '../helpers/gateway.js';
import { run } from '../helpers/clients.js';

describe('the README quick start (npm start = execgate serve with embedded defaults)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'execgate-quickstart-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('creates its state, prints an ssh command, and that command works', async () => {
    // Port 0: a port picked beforehand can be taken by another socket before serve binds it.
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--http-port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const m = await waitForOutput(proc, () => out, /^\s*(ssh -i .*)$/m);
      expect(m[1]).not.toMatch(/-p 0 /); // the bound port, not the requested 0
      expect(statSync(join(cwd, '.execgate/host-keys/ssh_host_rsa_key')).mode & 0o777).toBe(0o600);
      const r = await run('sh', ['-c', `cd ${cwd} && ${m[1]!.replace('ssh ', 'ssh -o BatchMode=yes ')}`]);
      expect(r.stderr).toBe('');
      expect(r.stdout.toString()).toBe(`hello from ${hostname()}\n`);
      if (process.getuid?.() === 0) {
        // As root the embedded defaults permit root for the printed line (root@), say so once, and let no other username in.
        expect(out.match(/^execgate: started as root, so the embedded defaults set runAs\.permitRoot: true .*unprivileged user.*$/gm)).toHaveLength(1);
        const other = await run('sh', ['-c', `cd ${cwd} && ${m[1]!.replace('ssh ', 'ssh -o BatchMode=yes ').replace(' root@', ' nobody@')}`]);
        expect(other.code).toBe(255);
        expect(other.stdout.toString()).toBe('');
      }
      const page = await waitForOutput(proc, () => out, /Status page: (http:\/\/\S+)/);
      const status = await run(process.execPath, [CLI, 'status', '--url', page[1]!.replace(/\/$/, '')]);
      expect(status.code).toBe(0);
      expect(status.stdout.toString()).toMatch(/leader/);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
    }
  });
});
