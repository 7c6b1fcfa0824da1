import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCluster } from '../../src/config/clusterLoad.js';
import { etcdRows } from '../../src/doctor/etcdChecks.js';
import { etcdHealth } from '../../src/doctor/peers.js';
import { loadEtcdTls } from '../../src/etcd/tls.js';
import type { Row } from '../../src/doctor/report.js';
import { TestCerts } from '../helpers/testCerts.js';

/**
 * The doctor's etcd checks against certificates made by openssl (a CA, a client certificate
 * without a CN, a member certificate that expires in 10 days) and a stand-in member: an
 * https server that requires a client certificate signed by the CA (as etcd with
 * --client-cert-auth) and answers /health and the two JSON-gateway calls the probe makes.
 */
const dir = mkdtempSync(join(tmpdir(), 'eg-doctor-tls-'));
const certs = new TestCerts(dir);
const f = (name: string) => certs.file(name);

let member: Server;
let port = 0;
let rangeAnswer: { status: number; body: unknown } = { status: 200, body: { header: { revision: '5' }, kvs: [] } };
const seen: Array<{ path: string | undefined; authorization: string | undefined; clientCert: boolean }> = [];

beforeAll(async () => {
  certs.ca().leaf('client', '/O=execgate', 400, 'extendedKeyUsage=clientAuth\n').leaf('member', '/CN=gw1', 10, 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(f('password'), 'etcd-password-0123456789\n', { mode: 0o600 });
  member = createServer({ ca: readFileSync(f('ca.pem')), cert: readFileSync(f('member.pem')), key: readFileSync(f('member-key.pem')), requestCert: true, rejectUnauthorized: true }, (req, res) => {
    seen.push({ path: req.url, authorization: req.headers.authorization, clientCert: (req.socket as unknown as { authorized: boolean }).authorized });
    req.resume();
    req.on('end', () => {
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/health') return send(200, { health: 'true', reason: '' });
      if (req.url === '/v3/auth/authenticate') return send(200, { header: {}, token: 'simple-token.1' });
      if (req.url === '/v3/kv/range') return send(rangeAnswer.status, rangeAnswer.body);
      send(404, { error: 'not found' });
    });
  });
  await new Promise<void>((r) => member.listen(0, '127.0.0.1', r));
  port = (member.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => member?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function cluster(tls: Record<string, string> = {}) {
  return parseCluster(
    {
      cluster: 'prod',
      vip: { address: '127.0.0.100', prefixLength: 8 },
      leadership: {
        source: 'etcd',
        etcd: {
          endpoints: [`https://127.0.0.1:${port}`],
          tls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client-key.pem'), ...tls },
          auth: { passwordFile: f('password') },
        },
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

const row = (rows: Row[], check: string, target?: string) => rows.find((r) => r.check === check && (target === undefined || r.target === target));

describe('doctor etcd checks with openssl certificates and a client-cert member', () => {
  it('flags the member certificate expiring in 10 days; client cert, CA, health over mutual TLS and the login probe pass', async () => {
    const c = cluster();
    const rows = await etcdRows(c, c.nodes[0], 3000);
    const endpoint = `https://127.0.0.1:${port}`;
    expect(row(rows, 'etcd transport')).toMatchObject({ verdict: 'ok' });
    expect(row(rows, 'etcd auth')).toMatchObject({ verdict: 'ok' });
    expect(row(rows, 'etcd TLS files', 'gw1')).toMatchObject({ verdict: 'ok' });
    const certs = rows.filter((r) => r.check === 'etcd certificate');
    expect(certs.find((r) => r.detail.startsWith('client certificate'))).toMatchObject({ verdict: 'ok', detail: expect.stringMatching(/\((399|400) days\)$/) });
    expect(certs.find((r) => r.detail.startsWith('CA'))).toMatchObject({ verdict: 'ok', detail: expect.stringMatching(/CN=execgate test CA/) });
    expect(row(rows, 'etcd certificate', endpoint)).toMatchObject({
      verdict: 'fail',
      detail: expect.stringMatching(/^server certificate gw1 expires on .*, in (9|10) days \(less than 30\)$/),
      fix: expect.stringMatching(/execgate certs --force/),
    });
    expect(row(rows, 'etcd health', endpoint)).toMatchObject({ verdict: 'ok', detail: 'healthy' });
    expect(row(rows, 'etcd login and read')).toMatchObject({ verdict: 'ok', detail: 'logged in as execgate, read 0 key(s) under /execgate/prod/' });
    // Every request carried the client certificate; the range carried the login token.
    expect(seen.every((s) => s.clientCert)).toBe(true);
    expect(seen.find((s) => s.path === '/v3/kv/range')?.authorization).toBe('simple-token.1');
  });

  it('the login probe names a missing permission and the fix', async () => {
    rangeAnswer = { status: 403, body: { error: 'etcdserver: permission denied', code: 7, message: 'etcdserver: permission denied' } };
    try {
      const c = cluster();
      const rows = await etcdRows(c, c.nodes[0], 3000);
      expect(row(rows, 'etcd login and read')).toMatchObject({
        verdict: 'fail',
        detail: expect.stringMatching(/refused the read of \/execgate\/prod\/: the user execgate has no role covering it/),
        fix: expect.stringMatching(/execgate etcd-setup --cluster FILE --apply/),
      });
    } finally {
      rangeAnswer = { status: 200, body: { header: { revision: '5' }, kvs: [] } };
    }
  });

  it("a key readable by others fails the TLS files row; the member and health checks then skip (they need this node's certificate)", async () => {
    writeFileSync(f('open-key.pem'), readFileSync(f('client-key.pem')), { mode: 0o644 });
    chmodSync(f('open-key.pem'), 0o644);
    const c = cluster({ keyFile: f('open-key.pem') });
    const rows = await etcdRows(c, c.nodes[0], 3000);
    expect(row(rows, 'etcd TLS files', 'gw1')).toMatchObject({
      verdict: 'fail',
      detail: expect.stringMatching(/has mode 0644, readable by group or others: run "chmod 600/),
      fix: expect.stringMatching(/--etcd-certs DIR/),
    });
    expect(row(rows, 'etcd health')).toMatchObject({ verdict: 'skip' });
    expect(row(rows, 'etcd login and read')).toBeUndefined();
    expect(rows.filter((r) => r.check === 'etcd certificate')).toEqual([]);
  });

  it('without --node: TLS checks skip with the reason', async () => {
    const rows = await etcdRows(cluster(), undefined, 3000);
    expect(row(rows, 'etcd TLS files')).toMatchObject({ verdict: 'skip', detail: expect.stringMatching(/give --node NAME/) });
    expect(row(rows, 'etcd health')).toMatchObject({ verdict: 'skip' });
  });

  it("etcdHealth: without the client certificate the member's refusal is in words; with it, healthy", async () => {
    const tls = loadEtcdTls({ caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client-key.pem') }, 'gw1', 'leadership.etcd.tls');
    expect(await etcdHealth(`https://127.0.0.1:${port}`, 3000, tls)).toEqual({ endpoint: `https://127.0.0.1:${port}`, ok: true, detail: 'healthy' });
    const plain = await etcdHealth(`https://127.0.0.1:${port}`, 3000);
    expect(plain.ok).toBe(false);
  });
});
