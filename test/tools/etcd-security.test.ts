import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { certPaths } from '../../src/certs/paths.js';
import { EtcdClient, EtcdResponseError } from '../../src/etcd/client.js';
import { httpsFetch, loadEtcdTls } from '../../src/etcd/tls.js';
import { b64 } from '../../src/etcd/wire.js';
import { ETCD_BIN, startEtcdCluster, type EtcdCluster } from '../helpers/etcdCluster.js';
import { CLI } from '../helpers/gateway.js';

/**
 * Issue 20's acceptance: etcd as the cluster plane runs it (mutual TLS, authentication on,
 * the gateways' user limited to the cluster's prefix) lets no one else touch the election
 * key, a run-once claim or the leader's lease. Real etcd, real openssl, the built CLI.
 */

const CLUSTER = 'sec';
const PREFIX = '/execgate-test';
const ELECTION_KEY = `${PREFIX}/${CLUSTER}/leader/x`;
const RUN_ONCE_KEY = `${PREFIX}/${CLUSTER}/run-once/claims/4711/abc/0`;
const etcdMissing = existsSync(ETCD_BIN) ? null : `${ETCD_BIN} not found (install etcd 3.4+)`;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 }, (_err, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }));
  });
}

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A cluster file whose leadership.etcd is the test etcd (or, before it runs, any https endpoints). */
function writeClusterFile(dir: string, etcd: Record<string, unknown>): string {
  const file = join(dir, `cluster-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(
    file,
    stringify({
      cluster: CLUSTER,
      vip: { address: '127.0.0.100', interface: 'lo' },
      leadership: { source: 'etcd', etcd: { ...etcd, prefix: PREFIX } },
      gateway: { hostKeys: ['/nonexistent/k'], audit: { path: '/nonexistent/audit.jsonl' } },
      nodes: [
        { name: 'gw1', address: '127.0.0.11', priority: 150 },
        { name: 'gw2', address: '127.0.0.12', priority: 140 },
      ],
    }),
  );
  return file;
}

describe('execgate certs: the files, their names and modes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-certs-'));
  const out = join(dir, 'out');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a CA, a certificate per member and per gateway that openssl verifies, with the SANs and without a CN on client certificates', async () => {
    const file = writeClusterFile(dir, { endpoints: ['https://127.0.0.11:2379', 'https://127.0.0.12:2379', 'https://etcd3.example:2379'] });
    const r = await cli(['certs', '--cluster', file, '--dir', out, '--days', '30']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const p = certPaths(out);
    expect(r.stdout).toContain(`made  ${p.ca}`);
    expect(r.stdout).toContain('/etc/execgate/etcd/client.pem on gw1');
    expect(r.stdout).toContain('etcd-setup --cluster FILE --apply');
    const members = {
      gw1: ['IP Address:127.0.0.11', 'IP Address:127.0.0.1', 'DNS:localhost', 'DNS:gw1'],
      gw2: ['IP Address:127.0.0.12', 'IP Address:127.0.0.1', 'DNS:localhost', 'DNS:gw2'],
      'etcd3.example': ['DNS:etcd3.example', 'IP Address:127.0.0.1', 'DNS:localhost'],
    };
    for (const [name, sans] of Object.entries(members)) {
      const f = p.member(name);
      expect(openssl(['verify', '-CAfile', p.ca, f.cert])).toContain(': OK');
      const text = openssl(['x509', '-in', f.cert, '-noout', '-subject', '-ext', 'subjectAltName,extendedKeyUsage']);
      expect(text.split('\n')[0]).not.toMatch(/CN\s*=/);
      for (const san of sans) expect(text).toContain(san);
      expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    }
    for (const node of ['gw1', 'gw2']) {
      const f = p.gateway(node);
      expect(openssl(['verify', '-CAfile', p.ca, f.cert])).toContain(': OK');
      const text = openssl(['x509', '-in', f.cert, '-noout', '-subject', '-ext', 'subjectAltName,extendedKeyUsage', '-enddate']);
      expect(text.split('\n')[0]).toBe(`subject=O = execgate, OU = ${CLUSTER}`);
      expect(text).toContain(`DNS:${node}`);
      expect(text).toContain('TLS Web Client Authentication');
      expect(text).not.toContain('Server Authentication');
      const notAfter = new Date(text.match(/notAfter=(.*)/)![1]!).getTime();
      expect(Math.abs(notAfter - Date.now() - 30 * 86_400_000)).toBeLessThan(86_400_000);
      expect(statSync(f.key).mode & 0o777).toBe(0o600);
    }
    for (const secret of [p.caKey, p.password, p.rootPassword]) expect(statSync(secret).mode & 0o777).toBe(0o600);
    for (const d of [p.dir, p.etcdDir, p.gatewaysDir]) expect(statSync(d).mode & 0o777).toBe(0o700);
    expect(readFileSync(p.password, 'utf8').trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Again: everything kept. With --force: new leaves from the same CA, the passwords kept.
    const before = { ca: readFileSync(p.ca, 'utf8'), leaf: readFileSync(p.gateway('gw1').cert, 'utf8'), password: readFileSync(p.password, 'utf8') };
    const again = await cli(['certs', '--cluster', file, '--dir', out]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/^made/m);
    expect(readFileSync(p.gateway('gw1').cert, 'utf8')).toBe(before.leaf);
    const forced = await cli(['certs', '--cluster', file, '--dir', out, '--force']);
    expect(forced.code).toBe(0);
    expect(readFileSync(p.ca, 'utf8')).toBe(before.ca);
    expect(readFileSync(p.password, 'utf8')).toBe(before.password);
    expect(readFileSync(p.gateway('gw1').cert, 'utf8')).not.toBe(before.leaf);
    expect(openssl(['verify', '-CAfile', p.ca, p.gateway('gw1').cert])).toContain(': OK');

    const bad = await cli(['certs', '--cluster', file, '--dir', out, '--days', 'soon']);
    expect(bad.code).toBe(2);
  });
});

/** A fetch over TLS that trusts the CA but presents no client certificate. */
const noCertFetch = (ca: Buffer) => httpsFetch(new Agent({ ca, keepAlive: false }));

describe('etcd with TLS and authentication lets no one but the execgate user in', () => {
  let etcd: EtcdCluster | undefined;
  let owner: EtcdClient;
  let leaseId: string;
  const dir = mkdtempSync(join(tmpdir(), 'execgate-etcd-security-'));
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    if (etcdMissing) return;
    // Least privilege as etcd-setup grants it: only the cluster's own prefix.
    etcd = await startEtcdCluster(1, { prefixes: [`${PREFIX}/${CLUSTER}/`] });
    owner = etcd.client();
    leaseId = (await owner.grantLease(60)).id;
    expect((await owner.putIfAbsent(ELECTION_KEY, 'gw1', leaseId)).created).toBe(true);
    expect((await owner.putIfAbsent(RUN_ONCE_KEY, '{"node":"gw1"}', '0')).created).toBe(true);
  }, 60_000);
  afterAll(async () => {
    for (const c of closers) c();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every way to read, write, delete the keys or end the leader's lease fails with `refusal`. */
  async function expectLockedOut(client: EtcdClient, refusal: RegExp): Promise<void> {
    for (const key of [ELECTION_KEY, RUN_ONCE_KEY]) {
      await expect(client.call('/v3/kv/range', { key: b64(key) }), `read ${key}`).rejects.toThrow(refusal);
      await expect(client.call('/v3/kv/put', { key: b64(key), value: b64('intruder') }), `put ${key}`).rejects.toThrow(refusal);
      await expect(client.call('/v3/kv/deleterange', { key: b64(key) }), `delete ${key}`).rejects.toThrow(refusal);
      await expect(client.txn({ compare: [], success: [{ type: 'deleteRange', key }] }), `txn delete ${key}`).rejects.toThrow(refusal);
    }
    await expect(client.call('/v3/lease/revoke', { ID: leaseId }), 'revoke the lease').rejects.toThrow(refusal);
    // And nothing changed: the owner still sees both keys, the lease still lives.
    const { kvs } = await owner.rangePrefix(`${PREFIX}/${CLUSTER}/`);
    expect(kvs.map((kv) => [kv.key, kv.value])).toEqual([
      [ELECTION_KEY, 'gw1'],
      [RUN_ONCE_KEY, '{"node":"gw1"}'],
    ]);
    expect((await owner.keepAlive(leaseId)).ttlSeconds).toBeGreaterThan(0);
  }

  it.skipIf(etcdMissing !== null)('a client without a certificate is refused in the TLS handshake', async () => {
    const t = noCertFetch(readFileSync(etcd!.certs.ca));
    closers.push(t.close);
    await expectLockedOut(new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 3000, fetch: t.fetch }), /certificate required|bad certificate|socket hang up|ECONNRESET|EPROTO|alert/i);
  });

  it.skipIf(etcdMissing !== null)('a client with a certificate from another CA is refused in the TLS handshake', async () => {
    const other = join(dir, 'other-ca');
    const file = writeClusterFile(dir, { endpoints: ['https://127.0.0.1:2379'] });
    expect((await cli(['certs', '--cluster', file, '--dir', other])).code).toBe(0);
    const o = certPaths(other);
    // It trusts the right CA for the server and presents a certificate the members never signed.
    const tls = loadEtcdTls({ caFile: etcd!.certs.ca, certFile: o.gateway('gw1').cert, keyFile: o.gateway('gw1').key }, 'gw1', 'test.tls');
    const client = new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 3000, tls });
    closers.push(() => client.close());
    await expectLockedOut(client, /TLS: the member refused this node's client certificate|bad certificate|unknown ca|ECONNRESET|socket hang up/i);
  });

  it.skipIf(etcdMissing !== null)('a client with valid TLS that does not log in is refused by etcd (no user: empty name or permission denied)', async () => {
    const tls = loadEtcdTls(etcd!.connection.tls, 'gw1', 'test.tls');
    const client = new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 3000, tls });
    closers.push(() => client.close());
    // etcd answers a read without a token "permission denied", a write "user name is empty".
    await expectLockedOut(client, /user name is empty|permission denied/);
  });

  it.skipIf(etcdMissing !== null)('a client with valid TLS logged in as a user without the execgate role is refused (permission denied)', async () => {
    const tls = loadEtcdTls(etcd!.connection.tls, 'gw1', 'test.tls');
    const rootPassword = etcd!.rootPassword();
    const root = new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 3000, tls, auth: { user: 'root', password: () => rootPassword, key: 'root', passwordFile: '-' } });
    closers.push(() => root.close());
    await root.call('/v3/auth/user/add', { name: 'intruder', password: 'intruder-password-1234' });
    const client = new EtcdClient({
      endpoints: etcd!.endpoints,
      requestTimeoutMs: 3000,
      tls,
      auth: { user: 'intruder', password: () => 'intruder-password-1234', key: 'intruder', passwordFile: '-' },
    });
    closers.push(() => client.close());
    await expectLockedOut(client, /permission denied/);
    // The same holds for a wrong password of the execgate user itself.
    const guesser = new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 3000, tls, auth: { user: 'execgate', password: () => 'not-the-password-at-all', key: 'guess', passwordFile: '-' } });
    closers.push(() => guesser.close());
    await expectLockedOut(guesser, /authentication failed|invalid user ID or password/i);
  });

  it.skipIf(etcdMissing !== null)('the execgate user reads, writes and deletes under its prefix, and is refused outside it', async () => {
    const probe = `${PREFIX}/${CLUSTER}/leader/probe`;
    await owner.call('/v3/kv/put', { key: b64(probe), value: b64('p') });
    expect((await owner.rangePrefix(probe)).kvs).toHaveLength(1);
    await owner.call('/v3/kv/deleterange', { key: b64(probe) });
    const outside = `${PREFIX}/another-cluster/leader/x`;
    const refused = await owner.call('/v3/kv/put', { key: b64(outside), value: b64('x') }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EtcdResponseError);
    expect((refused as EtcdResponseError).grpcCode).toBe(7);
  });

  it.skipIf(etcdMissing !== null)('etcd-setup prints the etcdctl script with the role grant for the cluster prefix and no password', async () => {
    const file = writeClusterFile(dir, etcd!.connection as unknown as Record<string, unknown>);
    const r = await cli(['etcd-setup', '--cluster', file, '--root-password-file', etcd!.certs.rootPassword]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`etcdctl role grant-permission execgate-${CLUSTER} --prefix=true readwrite '${PREFIX}/${CLUSTER}/'`);
    expect(r.stdout).toContain(`etcdctl user grant-role 'execgate' execgate-${CLUSTER}`);
    expect(r.stdout).toContain(`export ETCDCTL_CERT='${etcd!.connection.tls.certFile}'`);
    expect(r.stdout).toContain('etcdctl auth enable');
    expect(r.stdout).toContain('cat "$PASSWORD_FILE" | etcdctl user add');
    expect(r.stdout).not.toContain('--new-user-password');
    for (const secret of [readFileSync(etcd!.certs.password, 'utf8').trim(), etcd!.rootPassword()]) expect(r.stdout).not.toContain(secret);
    if (existsSync('/bin/sh')) execFileSync('/bin/sh', ['-n'], { input: r.stdout }); // it parses
  });

  it.skipIf(etcdMissing !== null)('etcd-setup --apply twice: the same result, and a new password file takes effect (rotation)', async () => {
    const file = writeClusterFile(dir, etcd!.connection as unknown as Record<string, unknown>);
    const args = ['etcd-setup', '--cluster', file, '--apply', '--root-password-file', etcd!.certs.rootPassword];
    const first = await cli(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('authentication is on: logged in as root');
    expect(first.stdout).toMatch(/role execgate-sec: readwrite \/execgate-test\/sec\/\*: done/);
    expect(first.stdout).toMatch(/check: user execgate is refused a put outside them/);
    const second = await cli(args);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`role execgate-${CLUSTER}: already so`);
    expect(second.stdout).toMatch(/user execgate: password set from/);
    for (const secret of [readFileSync(etcd!.certs.password, 'utf8').trim(), etcd!.rootPassword()]) expect(first.stdout + second.stdout).not.toContain(secret);
    // The owner's client still works (same password); the keys are intact.
    expect((await owner.rangePrefix(`${PREFIX}/${CLUSTER}/`)).kvs).toHaveLength(2);

    // Rotation: a new password in the file, applied; a fresh login needs the new one.
    const oldPassword = readFileSync(etcd!.certs.password, 'utf8').trim();
    writeFileSync(etcd!.certs.password, 'a-brand-new-password-0123456789\n', { mode: 0o600 });
    expect((await cli(args)).code).toBe(0);
    const fresh = etcd!.client();
    expect((await fresh.rangePrefix(`${PREFIX}/${CLUSTER}/`)).kvs).toHaveLength(2);
    const tls = loadEtcdTls(etcd!.connection.tls, 'gw1', 'test.tls');
    const stale = new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 3000, tls, auth: { user: 'execgate', password: () => oldPassword, key: 'stale', passwordFile: '-' } });
    closers.push(() => stale.close());
    await expect(stale.rangePrefix(`${PREFIX}/${CLUSTER}/`)).rejects.toThrow(/authentication failed|invalid user ID or password/i);

    const noRoot = await cli(['etcd-setup', '--cluster', file, '--apply']);
    expect(noRoot.code).toBe(2);
    expect(noRoot.stderr).toContain('--root-password-file');
  });
});
