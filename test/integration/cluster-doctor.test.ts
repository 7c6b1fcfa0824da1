import { describe, it, expect, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, writeFileSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { makeClusterCerts } from '../../src/certs/make.js';
import { certPaths } from '../../src/certs/paths.js';
import { clusterSchema } from '../../src/config/cluster.js';

const IFACE = readdirSync('/sys/class/net').find((i) => i !== 'lo' && existsSync(`/sys/class/net/${i}/address`)) ?? 'eth0';

/** A loopback port nothing listens on (bound, then released). */
function deadPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('execgate doctor against running gateways', () => {
  const gateways: TestGateway[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'execgate-doctor-'));
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports a host key mismatch, a dead peer, two leaders and a dead etcd, and exits 1', async () => {
    // Each test gateway makes its own host keys: exactly the mistake doctor must catch.
    gateways.push(await startTestGateway({ node: 'gw-a', http: { host: '127.0.0.1', port: 0 } }));
    gateways.push(await startTestGateway({ node: 'gw-b', http: { host: '127.0.0.2', port: 0 } }));
    const [a, b] = gateways as [TestGateway, TestGateway];
    expect(a.httpPort).not.toBeNull();
    expect(b.httpPort).not.toBeNull();
    const dead = await deadPort('127.0.0.3');
    const etcdDead = await deadPort('127.0.0.1');
    // etcd as production reaches it: https with each node's client certificate and the execgate user.
    const endpoints = [`https://127.0.0.1:${etcdDead}`];
    const certs = certPaths(join(dir, 'etcd-certs'));
    const etcdBlock = {
      endpoints,
      tls: { caFile: certs.ca, certFile: certs.gateway('%n').cert, keyFile: certs.gateway('%n').key },
      auth: { user: 'execgate', passwordFile: certs.password },
    };
    const cluster = {
      cluster: 'doctor-test',
      vip: { address: '127.0.0.100', prefixLength: 8, interface: IFACE },
      vrrp: { scriptUser: 'nobody' },
      leadership: { source: 'etcd', etcd: etcdBlock },
      gateway: { hostKeys: ['/nonexistent/k'], authorizedKeys: '/nonexistent/ak', audit: { path: '/nonexistent/audit.jsonl' } },
      nodes: [
        { name: 'gw-a', address: '127.0.0.1', priority: 150, sshPort: a.port, httpPort: a.httpPort },
        { name: 'gw-b', address: '127.0.0.2', priority: 140, sshPort: b.port, httpPort: b.httpPort },
        { name: 'gw-c', address: '127.0.0.3', priority: 130, sshPort: 2222, httpPort: dead },
      ],
    };
    const file = join(dir, 'cluster.yaml');
    writeFileSync(file, stringify(cluster));
    makeClusterCerts(clusterSchema.parse(cluster), certs.dir);

    const table = await run(['doctor', '--cluster', file]);
    expect(table.stderr).toBe('');
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^peer \/status\s+gw-a\s+OK\s+role leader/m);
    expect(table.stdout).toMatch(/^peer \/status\s+gw-c\s+FAIL\s+http:\/\/127\.0\.0\.3:\d+\/status: unreachable \(ECONNREFUSED\)/m);
    expect(table.stdout).toMatch(/^host keys\s+gw-\w\s+FAIL\s+fingerprints differ/m);
    expect(table.stdout).toMatch(/fix:\s+copy the host keys of gw-\w to gw-\w/);
    expect(table.stdout).toMatch(/^leaders\s+cluster\s+FAIL\s+2 leaders/m);
    expect(table.stdout).toMatch(/^etcd health\s+https:\/\/127\.0\.0\.1:\d+\s+FAIL/m);
    expect(table.stdout).toMatch(/^clock skew\s+gw-a\s+OK/m);
    expect(table.stdout).toMatch(/^keepalived\.conf\s+gw-a\s+OK/m);
    expect(table.stdout).toMatch(/^haproxy\.cfg\s+load balancers\s+OK/m);

    const json = await run(['doctor', '--cluster', file, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; rows: Array<{ check: string; target: string; verdict: string; fix?: string }> };
    expect(report.ok).toBe(false);
    const failing = report.rows.filter((r) => r.verdict === 'fail');
    expect(failing.map((r) => `${r.check}/${r.target}`)).toEqual(expect.arrayContaining(['peer /status/gw-c', 'leaders/cluster']));
    expect(failing.some((r) => r.check === 'host keys')).toBe(true);
    for (const r of failing) expect(r.fix, `${r.check} ${r.target} has a fix`).toBeTruthy();
  });
});
