import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, ROOT, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sshArgs } from '../helpers/clients.js';
import { FALLBACK_COST } from '../../src/ssh/cryptoBackend.js';

/**
 * Which crypto ssh2 uses (issue 18): the gateway says it at start, on execgate_build_info
 * and in execgate doctor. The fallback is forced with a preload that makes the dynamic
 * loader refuse ssh2's binding (test/fixtures/ssh2-crypto-fallback.cjs); node_modules are
 * not touched.
 */
const FALLBACK = join(ROOT, 'test/fixtures/ssh2-crypto-fallback.cjs');
const BINDING = join(ROOT, 'node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');

interface DoctorRow {
  check: string;
  target: string;
  verdict: string;
  detail: string;
  fix?: string;
}

function doctor(clusterPath: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; rows: DoctorRow[]; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, 'doctor', '--cluster', clusterPath, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('close', (code) => resolve({ code, rows: out ? (JSON.parse(out) as { rows: DoctorRow[] }).rows : [], stderr: err }));
  });
}

function runSsh(g: TestGateway, command: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn('ssh', [...sshArgs(g.port, g.keys.ed25519), 'root@127.0.0.1', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.on('close', (code) => resolve({ code, stdout }));
  });
}

describe('ssh2 crypto backend', () => {
  const gateways: TestGateway[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'execgate-crypto-'));
  // A cluster file whose "installed" gateway is this checkout under this Node.
  const clusterPath = join(dir, 'cluster.yaml');
  writeFileSync(
    clusterPath,
    stringify({
      cluster: 'crypto-test',
      vip: { address: '127.0.0.100', prefixLength: 8, interface: 'lo' },
      leadership: { source: 'static' },
      systemd: { nodeBinary: process.execPath, cli: CLI },
      gateway: { hostKeys: ['/nonexistent/k'], authorizedKeys: '/nonexistent/ak', audit: { path: '/nonexistent/audit.jsonl' } },
      nodes: [{ name: 'gw1', address: '127.0.0.1', priority: 150, sshPort: 1, httpPort: 1 }],
    }),
  );
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('native: the start line, the build_info label and the doctor check say so', async () => {
    const g = await startTestGateway({ node: 'gw-native' });
    gateways.push(g);
    const line = g
      .output()
      .split('\n')
      .find((l) => l.includes('ssh2 crypto:'));
    expect(line, g.output()).toBeDefined();
    const rec = JSON.parse(line!) as { level: number; ssh2Crypto: string; binding: string; msg: string };
    expect(rec.ssh2Crypto).toBe('native');
    expect(rec.binding).toBe(BINDING);
    expect(rec.level).toBe(30);
    expect(rec.msg).toContain(`native binding loaded (${BINDING}, node ${process.version}, ABI ${process.versions.modules})`);
    const metrics = await (await fetch(`${g.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^execgate_build_info\{version="[^"]+",ssh2_crypto="native",node="gw-native"\} 1$/m);
    for (const args of [[], ['--node', 'gw1']]) {
      const d = await doctor(clusterPath, args, process.env);
      const row = d.rows.find((r) => r.check === 'ssh2 crypto');
      expect(row, `${JSON.stringify(d.rows)}\n${d.stderr}`).toMatchObject({ verdict: 'ok', detail: `native binding loads (node ${process.version}, ABI ${process.versions.modules})` });
      // With --node the check runs under the unit's Node (systemd.nodeBinary) and the installed modules.
      expect(row!.target).toBe(args.length ? `${process.execPath} + ${ROOT}` : 'this process');
      // A one-node cluster with static leadership is a single gateway: a warning, no keepalived to check.
      expect(d.rows.find((r) => r.target === 'nodes')).toMatchObject({ check: 'cluster file', verdict: 'warn' });
      expect(d.rows.find((r) => r.check === 'keepalived.conf')).toMatchObject({ verdict: 'skip', detail: 'one node with static leadership: no VRRP' });
    }
  });

  it('fallback: a warning with the load error and the fix, ssh2_crypto="javascript", a failed doctor check; commands still run', async () => {
    const g = await startTestGateway({ node: 'gw-js' }, ['--require', FALLBACK]);
    gateways.push(g);
    const line = g
      .output()
      .split('\n')
      .find((l) => l.includes('ssh2 crypto:'));
    expect(line, g.output()).toBeDefined();
    const rec = JSON.parse(line!) as { level: number; ssh2Crypto: string; error: string; fix: string; msg: string };
    expect(rec.level).toBe(40); // warn
    expect(rec.ssh2Crypto).toBe('javascript');
    expect(rec.error).toBe(`${FALLBACK}: invalid ELF header`); // the loader's own words
    expect(rec.fix).toContain(`"npm rebuild ssh2" in ${ROOT}`);
    expect(rec.fix).toContain('apt-get install --reinstall execgate');
    expect(rec.msg).toContain(`${FALLBACK_COST}: the native binding ${BINDING} did not load under node ${process.version}`);
    const metrics = await (await fetch(`${g.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/^execgate_build_info\{version="[^"]+",ssh2_crypto="javascript",node="gw-js"\} 1$/m);
    // The fallback is slower, not broken: OpenSSH still runs a command through it.
    const r = await runSsh(g, 'echo fallback-ok');
    expect(r).toEqual({ code: 0, stdout: 'fallback-ok\n' });
    const env = { ...process.env, NODE_OPTIONS: `--require ${FALLBACK}` };
    for (const args of [[], ['--node', 'gw1']]) {
      const d = await doctor(clusterPath, args, env);
      expect(d.code).toBe(1);
      const row = d.rows.find((r) => r.check === 'ssh2 crypto');
      expect(row, `${JSON.stringify(d.rows)}\n${d.stderr}`).toMatchObject({ verdict: 'fail', target: args.length ? `${process.execPath} + ${ROOT}` : 'this process' });
      expect(row!.detail).toBe(`${FALLBACK_COST}: ${BINDING} does not load under node ${process.version} (ABI ${process.versions.modules}): ${FALLBACK}: invalid ELF header`);
      expect(row!.fix).toContain('npm rebuild ssh2');
    }
  });
});
