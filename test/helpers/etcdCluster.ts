import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, makeClientKeys, waitForOutput, type ClientKeys } from './gateway.js';
import { run, sshArgs } from './clients.js';

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

export interface EtcdCluster {
  dir: string;
  members: EtcdMember[];
  endpoints: string[];
  stop(): Promise<void>;
}

/** A real N-member etcd cluster on loopback, each member with its own ports and data dir. */
export async function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'execgate-etcd-'));
  const ports = await freePorts(size * 2);
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const peer = (i: number) => `http://127.0.0.1:${ports[size + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const token = `execgate-test-${process.pid}-${Date.now()}`;
  const members: EtcdMember[] = [];
  const cluster: EtcdCluster = {
    dir,
    members,
    endpoints: [],
    async stop() {
      await Promise.all(members.map((m) => stopProcess(m.proc)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    names.forEach((name, i) => {
      const clientUrl = `http://127.0.0.1:${ports[i]}`;
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
    cluster.endpoints = members.map((m) => m.clientUrl);
    // Healthy = every member answers /health with quorum.
    const deadline = Date.now() + 30_000;
    for (const m of members) {
      for (;;) {
        if (m.proc.exitCode !== null) throw new Error(`etcd ${m.name} exited:\n${m.output()}`);
        try {
          const r = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
          const body = (await r.json()) as { health?: string };
          if (body.health === 'true') break;
        } catch {
          // not yet
        }
        if (Date.now() > deadline) throw new Error(`etcd ${m.name} not healthy in time:\n${m.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
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
  etcd: { endpoints: string[]; ttlSeconds: number; marginSeconds: number },
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
