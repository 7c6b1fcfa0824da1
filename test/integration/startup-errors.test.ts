import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, chmodSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { stringify } from 'yaml';
import { CLI, startTestGateway, makeClientKeys } from '../helpers/gateway.js';
import { run, ssh } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

const dir = mkdtempSync(join(tmpdir(), 'execgate-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function serveWith(config: unknown) {
  const path = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, typeof config === 'string' ? config : stringify(config));
  return run(process.execPath, [CLI, 'serve', '--config', path]);
}

describe('bad input at startup gives one clear error line', () => {
  execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
  const good = {
    listen: { port: 0 },
    hostKeys: [join(dir, 'host/ssh_host_ed25519_key'), join(dir, 'host/ssh_host_rsa_key')],
    authorizedKeys: join(dir, 'authorized_keys'),
    audit: { path: join(dir, 'audit.jsonl') },
  };
  writeFileSync(join(dir, 'authorized_keys'), '');

  it('names the key path and the expected value of a bad config', async () => {
    const r = await serveWith({ ...good, listen: { port: 'twenty-two' } });
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^execgate: config .* is invalid: listen\.port: .*number/);
  });

  it('names an unknown key', async () => {
    const r = await serveWith({ ...good, limts: {} });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/limts: unknown key/);
  });

  it('reports YAML syntax errors', async () => {
    const r = await serveWith('listen: [port: 1\n');
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not valid YAML/);
  });

  it('refuses a host key readable by others, saying how to fix it', async () => {
    const key = join(dir, 'host/ssh_host_rsa_key');
    chmodSync(key, 0o644);
    try {
      const r = await serveWith(good);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`chmod 600 ${key}`);
    } finally {
      chmodSync(key, 0o600);
    }
  });

  it('refuses a missing host key and names keygen', async () => {
    const r = await serveWith({ ...good, hostKeys: [join(dir, 'nope')] });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/host key .*nope does not exist: create it with "execgate keygen/);
  });

  it('refuses a damaged host key and says how to check and replace it', async () => {
    const damaged = join(dir, 'damaged_key');
    writeFileSync(damaged, readFileSync(join(dir, 'host/ssh_host_ed25519_key'), 'utf8').replace(/\n[^\n-]+\n-----END/, '\n-----END'), { mode: 0o600 });
    const r = await serveWith({ ...good, hostKeys: [damaged, good.hostKeys[1]] });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`host key ${damaged} is not a usable private key`);
    expect(r.stderr).toContain(`ssh-keygen -y -f ${damaged}`);
    expect(r.stderr).toContain('execgate keygen --dir <dir> --force');
  });

  it('refuses a config with only an ed25519 host key (old JSch cannot negotiate it)', async () => {
    const r = await serveWith({ ...good, hostKeys: [join(dir, 'host/ssh_host_ed25519_key')] });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Algorithm negotiation fail/);
  });

  it('logs one clear line for an unknown client key, with address and fingerprint', async () => {
    const gw = await startTestGateway();
    try {
      const stranger = makeClientKeys(mkdtempSync(join(dir, 'stranger-')));
      const r = await ssh(gw.port, stranger.ed25519, 'true');
      expect(r.code).toBe(255);
      const fp = execFileSync('ssh-keygen', ['-lf', `${stranger.ed25519}.pub`])
        .toString()
        .split(' ')[1]!;
      await until(() => gw.output().includes(fp), 3000);
      const lines = gw
        .output()
        .split('\n')
        .filter((l) => l.includes(fp));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/authentication failed for root from 127\.0\.0\.1:\d+: key SHA256:\S+ is not in /);
      // Nothing about the failed login: only the gateway's own start marker.
      expect(gw.auditLines().map((r) => r.event)).toEqual(['open']);
    } finally {
      await gw.stop();
    }
  });
});
