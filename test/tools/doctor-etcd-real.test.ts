import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCluster } from '../../src/config/clusterLoad.js';
import { etcdRows } from '../../src/doctor/etcdChecks.js';
import { etcdHealth } from '../../src/doctor/peers.js';
import { loadEtcdTls, tlsFetch } from '../../src/etcd/tls.js';
import { b64, prefixRangeEnd } from '../../src/etcd/wire.js';
import type { Row } from '../../src/doctor/report.js';
import { ETCD_BIN, freePorts } from '../helpers/etcdCluster.js';
import { TestCerts } from '../helpers/testCerts.js';

/**
 * The doctor's etcd checks against a real etcd member serving only mutual TLS
 * (--client-cert-auth), with etcd's authentication on and a role limited to the cluster's
 * prefix, set up through the JSON gateway the way execgate etcd-setup does: /health needs
 * this node's client certificate, the login works, and a user without the role is refused
 * in words.
 */
const required = process.env.EXECGATE_REQUIRE_LAB === '1';
const missing = existsSync(ETCD_BIN) ? null : `${ETCD_BIN} is not installed (etcd-server)`;
if (missing && required) throw new Error(`doctor etcd test: ${missing}`);

const PASSWORD = 'execgate-password-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'eg-doctor-etcd-'));
const certs = new TestCerts(dir);
const f = (name: string) => certs.file(name);
let etcd: ChildProcess | undefined;
let endpoint = '';
let output = '';

function cluster(prefix = '/execgate', user = 'execgate') {
  return parseCluster(
    {
      cluster: 'prod',
      vip: { address: '127.0.0.100', prefixLength: 8 },
      leadership: {
        source: 'etcd',
        etcd: { endpoints: [endpoint], prefix, tls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client-key.pem') }, auth: { user, passwordFile: f('password') } },
      },
      gateway: { hostKeys: ['/k'], authorizedKeys: '/ak', audit: { path: '/a' } },
      nodes: [
        { name: 'gw1', address: '127.0.0.1', priority: 150 },
        { name: 'gw2', address: '127.0.0.2', priority: 140 },
      ],
    },
    'test',
  );
}
const row = (rows: Row[], check: string) => rows.find((r) => r.check === check);

describe.skipIf(missing !== null)('doctor against a real etcd with mutual TLS and authentication', () => {
  beforeAll(async () => {
    certs.ca().leaf('client', '/O=execgate', 400, 'extendedKeyUsage=clientAuth\n').leaf('member', '/CN=etcd1', 10, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    writeFileSync(f('password'), `${PASSWORD}\n`, { mode: 0o600 });
    const [client, peer] = (await freePorts(2)) as [number, number];
    endpoint = `https://127.0.0.1:${client}`;
    etcd = spawn(
      ETCD_BIN,
      [
        '--name',
        'etcd1',
        '--data-dir',
        join(dir, 'data'),
        '--listen-client-urls',
        endpoint,
        '--advertise-client-urls',
        endpoint,
        '--listen-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peer}`,
        '--initial-cluster',
        `etcd1=http://127.0.0.1:${peer}`,
        '--cert-file',
        f('member.pem'),
        '--key-file',
        f('member-key.pem'),
        '--trusted-ca-file',
        f('ca.pem'),
        '--client-cert-auth',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    etcd.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    etcd.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const tls = loadEtcdTls({ caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client-key.pem') }, 'gw1', 'test.tls');
    const deadline = Date.now() + 20_000;
    while (!(await etcdHealth(endpoint, 1000, tls)).ok) {
      if (Date.now() > deadline || etcd.exitCode !== null) throw new Error(`etcd did not become healthy:\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // What execgate etcd-setup --apply does: root, a role on <prefix>/<cluster>/ only, the user, auth on.
    const t = tlsFetch(tls);
    const call = async (path: string, body: unknown) => {
      const res = await t.fetch(`${endpoint}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${text}`);
    };
    try {
      await call('/v3/auth/user/add', { name: 'root', password: 'root-password-0123456789' });
      await call('/v3/auth/user/grant', { user: 'root', role: 'root' });
      await call('/v3/auth/role/add', { name: 'execgate-prod' });
      await call('/v3/auth/role/grant', { name: 'execgate-prod', perm: { permType: 'READWRITE', key: b64('/execgate/prod/'), range_end: prefixRangeEnd('/execgate/prod/') } });
      for (const user of ['execgate', 'outsider']) await call('/v3/auth/user/add', { name: user, password: PASSWORD });
      await call('/v3/auth/user/grant', { user: 'execgate', role: 'execgate-prod' });
      await call('/v3/auth/enable', {});
    } finally {
      t.close();
    }
  }, 60_000);

  afterAll(async () => {
    if (etcd && etcd.exitCode === null) {
      const exited = new Promise((r) => etcd!.once('exit', r));
      etcd.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('health over mutual TLS, the member certificate expiring in 10 days, and a login that reads the cluster prefix', async () => {
    const c = cluster();
    const rows = await etcdRows(c, c.nodes[0], 5000);
    expect(row(rows, 'etcd health'), JSON.stringify(rows)).toMatchObject({ verdict: 'ok', detail: 'healthy' });
    expect(rows.find((r) => r.check === 'etcd certificate' && r.target === endpoint)).toMatchObject({
      verdict: 'fail',
      detail: expect.stringMatching(/^server certificate etcd1 expires on .*, in (9|10) days/),
    });
    expect(row(rows, 'etcd login and read')).toMatchObject({ verdict: 'ok', detail: 'logged in as execgate, read 0 key(s) under /execgate/prod/' });
    // Without this node's certificate the member does not even answer /health.
    expect((await etcdHealth(endpoint, 3000)).ok).toBe(false);
  });

  it('a user without the role, and a wrong password, are failures in words with the fix', async () => {
    const outsider = cluster('/execgate', 'outsider');
    const denied = row(await etcdRows(outsider, outsider.nodes[0], 5000), 'etcd login and read');
    expect(denied).toMatchObject({
      verdict: 'fail',
      detail: expect.stringMatching(/the user outsider has no role covering it/),
      fix: expect.stringMatching(/execgate etcd-setup --cluster FILE --apply/),
    });
    writeFileSync(f('password'), 'not-the-password-0123456789\n', { mode: 0o600 });
    try {
      const c = cluster();
      const refused = row(await etcdRows(c, c.nodes[0], 5000), 'etcd login and read');
      expect(refused).toMatchObject({ verdict: 'fail', detail: expect.stringMatching(/etcd refused the login of user "execgate" .*check leadership\.etcd\.auth\.passwordFile/) });
    } finally {
      writeFileSync(f('password'), `${PASSWORD}\n`, { mode: 0o600 });
    }
  });
});
