import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCluster } from '../../src/config/clusterLoad.js';
import { etcdBlocks, etcdPostureRows, expiryRow, pemCertificates } from '../../src/doctor/etcdChecks.js';
import { clusterTokenRow } from '../../src/doctor/clusterToken.js';

function cluster(etcd: Record<string, unknown>, http: Record<string, unknown> = {}) {
  return parseCluster(
    {
      cluster: 'prod',
      vip: { address: '198.18.0.100' },
      leadership: { source: 'etcd', etcd: { ttlSeconds: 5, marginSeconds: 1, ...etcd } },
      gateway: { hostKeys: ['/k'], authorizedKeys: '/ak', audit: { path: '/a' }, http },
      nodes: [
        { name: 'gw1', address: '198.18.0.11', priority: 150 },
        { name: 'gw2', address: '198.18.0.12', priority: 140 },
      ],
    },
    'test',
  );
}

describe('doctor: how etcd is protected', () => {
  it('plain HTTP (insecure: true) and no auth block: two failures, each with its fix', () => {
    const [block] = etcdBlocks(cluster({ endpoints: ['http://198.18.0.11:2379'], insecure: true }));
    expect(block!.prefix).toBe('/execgate/prod/');
    const rows = etcdPostureRows(block!);
    expect(rows).toMatchObject([
      { check: 'etcd transport', verdict: 'fail', detail: expect.stringMatching(/^plain HTTP etcd \(leadership\.etcd\.insecure: true\): anyone who reaches .* can delete the election key/) },
      { check: 'etcd auth', verdict: 'fail', detail: expect.stringMatching(/^etcd without authentication/) },
    ]);
    expect(rows[0]!.fix).toMatch(/https:\/\/ endpoints with leadership\.etcd\.tls: make them with execgate certs/);
    expect(rows[1]!.fix).toMatch(/execgate etcd-setup --cluster FILE --apply/);
    expect(rows[1]!.fix).toContain('/execgate/prod/');
  });

  it('https with an auth block: both ok', () => {
    const [block] = etcdBlocks(cluster({ endpoints: ['https://198.18.0.11:2379'], auth: {} }));
    expect(etcdPostureRows(block!).map((r) => r.verdict)).toEqual(['ok', 'ok']);
    expect(etcdPostureRows(block!)[1]!.detail).toBe('user execgate, password in /etc/execgate/etcd/password');
  });

  it("run-once in vrrp mode uses leadership.etcd: checked, under the cluster's run-once prefix", () => {
    const c = parseCluster(
      {
        cluster: 'prod',
        vip: { address: '198.18.0.100' },
        leadership: { source: 'vrrp', etcd: { endpoints: ['https://198.18.0.11:2379'], auth: {} } },
        gateway: { hostKeys: ['/k'], authorizedKeys: '/ak', audit: { path: '/a' }, runOnce: { enabled: true } },
        nodes: [
          { name: 'gw1', address: '198.18.0.11', priority: 150 },
          { name: 'gw2', address: '198.18.0.12', priority: 140 },
        ],
      },
      'test',
    );
    expect(etcdBlocks(c).map((b) => [b.key, b.prefix])).toEqual([['leadership.etcd', '/execgate/prod/run-once/']]);
  });

  it('https without auth: transport ok, auth fails', () => {
    const [block] = etcdBlocks(cluster({ endpoints: ['https://198.18.0.11:2379'] }));
    expect(etcdPostureRows(block!).map((r) => r.verdict)).toEqual(['ok', 'fail']);
  });
});

describe('doctor: certificate expiry', () => {
  const now = new Date('2026-12-02T00:00:00Z');
  const day = 86_400_000;
  it('fails within 30 days and once expired, ok beyond', () => {
    expect(expiryRow('c', 't', 'client certificate /x', new Date(now.getTime() + 10 * day + 5000), 'rotate', now)).toMatchObject({
      verdict: 'fail',
      detail: 'client certificate /x expires on 2026-12-12, in 10 days (less than 30)',
      fix: 'rotate',
    });
    expect(expiryRow('c', 't', 'CA', new Date(now.getTime() - day), 'new CA', now)).toMatchObject({ verdict: 'fail', detail: 'CA expired on 2026-12-01' });
    expect(expiryRow('c', 't', 'CA', new Date(now.getTime() + 400 * day), 'new CA', now)).toMatchObject({ verdict: 'ok', detail: 'CA valid until 2028-01-06 (400 days)' });
    expect(expiryRow('c', 't', 'CA', new Date(now.getTime() + 30 * day + 1), 'x', now).verdict).toBe('ok');
  });
  it('a PEM file without certificates has none', () => {
    expect(pemCertificates('not a certificate')).toEqual([]);
  });
});

describe("doctor: the cluster's token it sends its peers", () => {
  it('--token wins; else the token file; no token in a cluster is a failure naming the fix', () => {
    expect(clusterTokenRow(cluster({ endpoints: ['https://198.18.0.11:2379'] }), 'from-the-flag-0123456789')).toEqual({ token: 'from-the-flag-0123456789', row: null });
    const none = clusterTokenRow(cluster({ endpoints: ['https://198.18.0.11:2379'] }), undefined);
    expect(none.token).toBeUndefined();
    expect(none.row).toMatchObject({ check: 'cluster token', verdict: 'fail', fix: expect.stringMatching(/gateway\.http\.tokenFile.*same file on every node/) });
    const dir = mkdtempSync(join(tmpdir(), 'eg-doctor-token-'));
    try {
      writeFileSync(join(dir, 'token'), 'the-cluster-token-0123456789\n', { mode: 0o600 });
      const ok = clusterTokenRow(cluster({ endpoints: ['https://198.18.0.11:2379'] }, { tokenFile: join(dir, 'token') }), undefined);
      expect(ok).toMatchObject({ token: 'the-cluster-token-0123456789', row: { verdict: 'ok' } });
      writeFileSync(join(dir, 'open'), 'the-cluster-token-0123456789\n', { mode: 0o644 });
      const open = clusterTokenRow(cluster({ endpoints: ['https://198.18.0.11:2379'] }, { tokenFile: join(dir, 'open') }), undefined);
      expect(open).toMatchObject({ token: undefined, row: { verdict: 'warn', detail: expect.stringMatching(/not readable here/) } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
