/** The files a lab cluster runs from: keys, the cluster file, and what `execgate render` makes of it. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ETCD_PREFIX, etcdConnection } from './etcdAccess.js';
import { CLI } from './paths.js';
import { HTTP_PORT, LAB_DEFAULT_TTL_SECONDS, LB, SSH_PORT, VIP, type Handover, type NodeSpec, type Topology } from './topology.js';

export interface ClientKeys {
  ed25519: string;
  /** PEM, for JSch. */
  rsa: string;
}

/** Host keys in dir/keys, two client keys, and authorized_keys with both. */
export function writeKeys(dir: string): ClientKeys {
  execFileSync(process.execPath, [CLI, 'keygen', '--dir', join(dir, 'keys')]);
  const ed25519 = join(dir, 'client_ed25519');
  const rsa = join(dir, 'client_rsa');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', ed25519]);
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', rsa]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${ed25519}.pub`, 'utf8') + readFileSync(`${rsa}.pub`, 'utf8'));
  return { ed25519, rsa };
}

export interface ClusterFileOptions {
  topology: Topology;
  /** The run's directory (keys, authorized_keys, cluster.yaml), seen by every host. */
  dir: string;
  /** Each host's own directory: the same path on every machine. */
  hostDir: string;
  nodes: NodeSpec[];
  /** gateway.http.token. */
  token: string;
  /** The cluster's name (default LAB_CLUSTER). */
  name?: string;
  /** etcd topologies: the lease (default LAB_DEFAULT_TTL_SECONDS, margin 0.5 s) and leadership.handover. */
  ttlSeconds?: number;
  marginSeconds?: number;
  handover?: Handover | null;
}

/** The lab cluster's name (the etcd keys are under <prefix>/<name>/). */
export const LAB_CLUSTER = 'failoverlab';

export const clusterFilePath = (dir: string): string => join(dir, 'cluster.yaml');
export const renderedKeepalived = (dir: string, node: string): string => join(dir, 'render', `${node}-keepalived.conf`);
export const renderedHaproxy = (dir: string): string => join(dir, 'render', 'haproxy.cfg');

/** Writes dir/cluster.yaml; returns its path. */
export function writeClusterFile(o: ClusterFileOptions): string {
  const keys = join(o.dir, 'keys');
  const h = o.hostDir;
  const etcd = o.topology !== 'vrrp';
  const cluster = {
    cluster: o.name ?? LAB_CLUSTER,
    vip: { address: VIP, prefixLength: 24, interface: 'eth0', sshPort: 22, bind: 'nonlocal' },
    vrrp: {
      version: 3,
      advertInterval: 0.2,
      scriptUser: 'root',
      keepalivedPidFile: join(h, 'keepalived.pid'),
      keepalivedVrrpPidFile: join(h, 'vrrp.pid'),
      configPath: join(h, 'keepalived.conf'),
      pollIntervalMs: 150,
      peerPollIntervalMs: 500,
    },
    leadership: {
      source: etcd ? 'etcd' : 'vrrp',
      ...(etcd
        ? {
            etcd: {
              // https with each gateway's own client certificate (%n) and the execgate user (etcdAccess.ts).
              ...etcdConnection(o.dir, o.nodes),
              ttlSeconds: o.ttlSeconds ?? LAB_DEFAULT_TTL_SECONDS,
              marginSeconds: o.marginSeconds ?? 0.5,
              prefix: ETCD_PREFIX,
            },
          }
        : {}),
      ...(o.handover ? { handover: o.handover } : {}),
      onLeadershipLoss: 'terminate',
      // Above the workload's longest command (30 s): a drain waits for it.
      drainTimeoutSeconds: 40,
    },
    trackFile: join(h, 'keepalived.track'),
    notifyFifo: join(h, 'keepalived.fifo'),
    stateDir: join(h, 'state'),
    loadBalancers: o.topology === 'haproxy-etcd' ? [LB.address] : [],
    haproxy: { stateFile: join(h, 'haproxy-server-state'), configPath: join(h, 'haproxy.cfg') },
    gateway: {
      hostKeys: [join(keys, 'ssh_host_ed25519_key'), join(keys, 'ssh_host_rsa_key')],
      authorizedKeys: join(o.dir, 'authorized_keys'),
      // The lab's Rundeck (JSch) logs in as root with one shared file.
      runAs: { user: 'root', permitRoot: true },
      audit: { path: join(h, 'audit.jsonl') },
      exec: { killGraceSeconds: 2 },
      http: { token: o.token },
      ...(o.topology === 'haproxy-etcd' ? { proxyProtocol: { trustedProxies: [LB.address] } } : {}),
    },
    nodes: o.nodes.map((g) => ({ name: g.name, address: g.address, priority: g.priority, sshPort: SSH_PORT, httpPort: HTTP_PORT })),
  };
  const file = clusterFilePath(o.dir);
  writeFileSync(file, stringify(cluster));
  return file;
}

/** `execgate render` of every node's keepalived.conf (and HAProxy's file in haproxy-etcd) into dir/render. */
export function renderConfigs(dir: string, topology: Topology, nodes: NodeSpec[]): void {
  const clusterFile = clusterFilePath(dir);
  mkdirSync(join(dir, 'render'), { recursive: true });
  for (const g of nodes) {
    execFileSync(process.execPath, [CLI, 'render', 'keepalived', '--cluster', clusterFile, '--node', g.name, '--out', renderedKeepalived(dir, g.name)]);
  }
  if (topology === 'haproxy-etcd') execFileSync(process.execPath, [CLI, 'render', 'haproxy', '--cluster', clusterFile, '--out', renderedHaproxy(dir)]);
}
