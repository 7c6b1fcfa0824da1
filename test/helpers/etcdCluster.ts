import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, makeClientKeys, waitForOutput, type ClientKeys } from './gateway.js';
import { run, sshArgs } from './clients.js';
import { clusterSchema, type Cluster } from '../../src/config/cluster.js';
import { makeClusterCerts } from '../../src/certs/make.js';
import { certPaths, type CertPaths } from '../../src/certs/paths.js';
import { connectEtcd } from '../../src/etcd/connect.js';
import type { EtcdClient } from '../../src/etcd/client.js';
import { applyEtcdSetupPlan } from '../../src/etcd/setup.js';
import { loadEtcdTls, tlsFetch } from '../../src/etcd/tls.js';

export const ETCD_BIN = '/usr/bin/etcd';

/** Free TCP ports on 127.0.0.1 (bound at once, then released together). */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, host, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', killAfterMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    proc.kill(signal);
  } catch {
    // gone
  }
  const timer = setTimeout(() => {
    try {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    } catch {
      // gone
    }
  }, killAfterMs);
  await exited;
  clearTimeout(timer);
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  clientPort: number;
  proc: ChildProcess;
  output: () => string;
}

/**
 * Where a test etcd lets the execgate user read and write: the prefixes the tests use
 * (cluster files' `/execgate-test/<cluster>/`, the contract test's `/contract-*`, run-once's
 * own prefixes, the announce test's, and the key the contract test reads only for the store's
 * revision). Everything else is refused to it.
 */
export const TEST_ETCD_PREFIXES = ['/execgate-test/', '/contract-', '/execgate-runonce-test-', '/announce-test-', '\u0000never-a-key'];
export const TEST_ETCD_ROLE = 'execgate-test';

/** An etcd block for cluster and config files (leadership.etcd, runOnce.etcd). */
export interface EtcdConnectionBlock {
  endpoints: string[];
  tls: { caFile: string; certFile: string; keyFile: string };
  auth: { user: string; passwordFile: string };
}

export interface EtcdCluster {
  dir: string;
  members: EtcdMember[];
  /** https:// client URLs. */
  endpoints: string[];
  /** The certificates (execgate certs' layout) and passwords of this etcd. */
  certs: CertPaths;
  /** Logged in as the execgate user over mutual TLS; use as leadership.etcd / runOnce.etcd. */
  connection: EtcdConnectionBlock;
  /** An EtcdClient as the execgate user (connectEtcd with `connection`, endpoints overridable). */
  client(opts?: { endpoints?: string[]; requestTimeoutMs?: number }): EtcdClient;
  /** etcd's root user's password (for tests of the setup itself). */
  rootPassword(): string;
  stop(): Promise<void>;
}

/** The synthetic cluster whose certificates a test etcd uses: its members all on 127.0.0.1. */
function syntheticCluster(endpoints: string[]): Cluster {
  return clusterSchema.parse({
    cluster: 'etcd-test',
    vip: { address: '127.0.0.100' },
    leadership: { source: 'etcd', etcd: { endpoints, prefix: '/execgate-test' } },
    gateway: { hostKeys: ['/nonexistent/k'], audit: { path: '/nonexistent/audit.jsonl' } },
    nodes: [{ name: 'gateway', address: '127.0.0.2', priority: 100 }],
  });
}

/**
 * A real N-member etcd cluster on loopback, each member with its own ports and data dir,
 * the way production runs it: client and peer traffic over mutual TLS (certificates from
 * makeClusterCerts), authentication on, and the execgate user limited to the test prefixes.
 */
export async function startEtcdCluster(size = 3, opts: { prefixes?: string[] } = {}): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-etcd-'));
  const ports = await freePorts(size * 2);
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const peer = (i: number) => `https://127.0.0.1:${ports[size + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const token = `execgate-test-${process.pid}-${Date.now()}`;
  const endpoints = names.map((_, i) => `https://127.0.0.1:${ports[i]}`);
  const certs = certPaths(join(dir, 'certs'));
  const report = makeClusterCerts(syntheticCluster(endpoints), certs.dir);
  const member = certs.member(report.members[0]!.name);
  const gateway = certs.gateway('gateway');
  const connection: EtcdConnectionBlock = {
    endpoints,
    tls: { caFile: certs.ca, certFile: gateway.cert, keyFile: gateway.key },
    auth: { user: 'execgate', passwordFile: certs.password },
  };
  const clients: EtcdClient[] = [];
  const members: EtcdMember[] = [];
  const cluster: EtcdCluster = {
    dir,
    members,
    endpoints,
    certs,
    connection,
    client(o = {}) {
      const c = connectEtcd({ ...connection, endpoints: o.endpoints ?? endpoints, insecure: false }, { node: 'gateway', key: 'test.etcd', requestTimeoutMs: o.requestTimeoutMs ?? 5000 });
      clients.push(c);
      return c;
    },
    rootPassword: () => readFileSync(certs.rootPassword, 'utf8').trim(),
    async stop() {
      for (const c of clients) c.close();
      await Promise.all(members.map((m) => stopProcess(m.proc)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    names.forEach((name, i) => {
      const clientUrl = endpoints[i]!;
      const proc = spawn(
        ETCD_BIN,
        [
          '--name',
          name,
          '--data-dir',
          join(dir, name),
          '--listen-client-urls',
          clientUrl,
          '--advertise-client-urls',
          clientUrl,
          '--listen-peer-urls',
          peer(i),
          '--initial-advertise-peer-urls',
          peer(i),
          '--initial-cluster',
          initialCluster,
          '--initial-cluster-state',
          'new',
          '--initial-cluster-token',
          token,
          '--cert-file',
          member.cert,
          '--key-file',
          member.key,
          '--trusted-ca-file',
          certs.ca,
          '--client-cert-auth',
          '--peer-cert-file',
          member.cert,
          '--peer-key-file',
          member.key,
          '--peer-trusted-ca-file',
          certs.ca,
          '--peer-client-cert-auth',
          '--heartbeat-interval',
          '100',
          '--election-timeout',
          '1000',
          '--log-level',
          'warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      members.push({ name, clientUrl, clientPort: ports[i]!, proc, output: () => out });
    });
    // Healthy = every member answers /health with quorum (over mutual TLS, with the gateway's certificate).
    const transport = tlsFetch(loadEtcdTls(connection.tls, 'gateway', 'test.etcd.tls'));
    try {
      const deadline = Date.now() + 30_000;
      for (const m of members) {
        for (;;) {
          if (m.proc.exitCode !== null) throw new Error(`etcd ${m.name} exited:\n${m.output()}`);
          try {
            const r = await transport.fetch(`${m.clientUrl}/health`, { method: 'GET', headers: {}, body: '', signal: AbortSignal.timeout(1000) });
            const body = JSON.parse(await r.text()) as { health?: string };
            if (body.health === 'true') break;
          } catch {
            // not yet
          }
          if (Date.now() > deadline) throw new Error(`etcd ${m.name} not healthy in time:\n${m.output()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      transport.close();
    }
    // Authentication on, the execgate user limited to the test prefixes (what etcd-setup --apply does).
    await applyEtcdSetupPlan(
      {
        cluster: 'etcd-test',
        role: TEST_ETCD_ROLE,
        user: connection.auth.user,
        prefixes: opts.prefixes ?? TEST_ETCD_PREFIXES,
        passwordFile: connection.auth.passwordFile,
        connection: { ...connection, insecure: false },
      },
      { node: 'gateway', rootPassword: cluster.rootPassword(), log: () => {} },
    );
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

export interface ClusterFixture {
  dir: string;
  keys: ClientKeys;
  clusterName: string;
}

/** Host keys and a client key shared by every node of one test cluster. */
export function makeClusterFixture(clusterName: string): ClusterFixture {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-cluster-'));
  execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'host')]);
  const keys = makeClientKeys(dir);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${keys.ed25519}.pub`, 'utf8'));
  return { dir, keys, clusterName };
}

export interface ClusterNodeSpec {
  name: string;
  address: string;
  sshPort: number;
  httpPort: number;
  priority: number;
}

export interface ClusterGateway {
  name: string;
  address: string;
  sshPort: number;
  httpPort: number;
  proc: ChildProcess;
  auditPath: string;
  output: () => string;
  audit: () => Array<Record<string, unknown>>;
  /** The latest role this node logged ("etcd leadership state"/"fenced"), with its line. */
  lastState: () => { role: string; token: string | null; leader: string | null; reason: string | null; time: string } | null;
  ssh: (command: string) => ReturnType<typeof run>;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/**
 * Writes one node's view of the cluster file (its own etcd endpoints: every node
 * reaches etcd through its own relay) and starts `execgate serve --cluster --node`.
 */
export async function startClusterGateway(
  fixture: ClusterFixture,
  nodes: ClusterNodeSpec[],
  nodeName: string,
  /** The etcd block: the cluster's `connection` (endpoints may be replaced, e.g. by relays) plus the lease timing. */
  etcd: EtcdConnectionBlock & { ttlSeconds: number; marginSeconds: number },
  options: { waitListening?: boolean } = {},
): Promise<ClusterGateway> {
  const me = nodes.find((n) => n.name === nodeName)!;
  const nodeDir = join(fixture.dir, nodeName);
  mkdirSync(nodeDir, { recursive: true });
  const auditPath = join(nodeDir, 'audit.jsonl');
  const vipPort = (await freePorts(1, '127.0.0.1'))[0]!;
  const cluster = {
    cluster: fixture.clusterName,
    // node-port: each node also listens on VIP:<its own sshPort>, so two nodes on one host do not collide.
    vip: { address: '127.0.0.100', prefixLength: 24, interface: 'lo', sshPort: vipPort, bind: 'node-port' },
    leadership: { source: 'etcd', etcd: { ...etcd, prefix: '/execgate-test' } },
    trackFile: join(nodeDir, 'keepalived.track'),
    notifyFifo: join(nodeDir, 'keepalived.fifo'),
    stateDir: nodeDir,
    gateway: {
      hostKeys: [join(fixture.dir, 'host/ssh_host_ed25519_key'), join(fixture.dir, 'host/ssh_host_rsa_key')],
      authorizedKeys: join(fixture.dir, 'authorized_keys'),
      // The tests log in as root with one shared file: every username runs as this account.
      runAs: { user: userInfo().username, permitRoot: true },
      audit: { path: auditPath },
      exec: { killGraceSeconds: 2 },
    },
    nodes: nodes.map((n) => ({ name: n.name, address: n.address, priority: n.priority, sshPort: n.sshPort, httpPort: n.httpPort })),
  };
  const file = join(nodeDir, 'cluster.yaml');
  writeFileSync(file, stringify(cluster));
  const proc = spawn(process.execPath, [CLI, 'serve', '--cluster', file, '--node', nodeName], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const output = () => out;
  const gw: ClusterGateway = {
    name: nodeName,
    address: me.address,
    sshPort: me.sshPort,
    httpPort: me.httpPort,
    proc,
    auditPath,
    output,
    audit: () =>
      existsSync(auditPath)
        ? readFileSync(auditPath, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [],
    lastState: () => {
      const lines = out.split('\n');
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = lines[i]!;
        if (!line.includes('"etcd leadership')) continue;
        try {
          const j = JSON.parse(line) as Record<string, string | null>;
          return { role: j.role!, token: j.token ?? null, leader: j.leader ?? null, reason: j.reason ?? null, time: j.time! };
        } catch {
          // partial line
        }
      }
      return null;
    },
    ssh: (command: string) => run('ssh', [...sshArgs(me.sshPort, fixture.keys.ed25519), `root@${me.address}`, command]),
    stop: (signal: NodeJS.Signals = 'SIGTERM') => stopProcess(proc, signal, 10_000),
  };
  if (options.waitListening !== false) {
    try {
      await waitForOutput(proc, output, /"msg":"execgate listening"/, 20_000);
    } catch (err) {
      await gw.stop('SIGKILL');
      throw err;
    }
  }
  return gw;
}

/** Polls until the gateway logs the role (optionally from a given output offset). */
export async function waitForRole(gw: ClusterGateway, role: string, timeoutMs = 15_000): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (gw.lastState()?.role === role) return Date.now() - start;
    if (gw.proc.exitCode !== null || gw.proc.signalCode !== null) throw new Error(`${gw.name} exited while waiting for ${role}:\n${gw.output().slice(-3000)}`);
    if (Date.now() - start > timeoutMs) throw new Error(`${gw.name} did not become ${role} within ${timeoutMs} ms; last state ${JSON.stringify(gw.lastState())}\n${gw.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
