import { dirname, resolve } from 'node:path';
import { clusterSchema, type Cluster } from './cluster.js';
import { describeIssues, parseConfig, readYamlFile } from './load.js';
import type { Config } from './schema.js';
import { errors } from '../errors.js';
import { etcdConnectionProblems } from './etcdConnection.js';

const etcdConnectionOf = (e: NonNullable<Cluster['leadership']['etcd']>) => ({ endpoints: e.endpoints, tls: e.tls, auth: e.auth, insecure: e.insecure });

/** Cross-field rules zod cannot express per field; each message names the field. */
export function clusterProblems(cluster: Cluster): string[] {
  const problems: string[] = [];
  if (cluster.leadership.etcd) problems.push(...etcdConnectionProblems(cluster.leadership.etcd, 'leadership.etcd'));
  if (cluster.gateway.runOnce.etcd) problems.push(...etcdConnectionProblems(cluster.gateway.runOnce.etcd, 'gateway.runOnce.etcd'));
  const seen = new Map<string, number>();
  cluster.nodes.forEach((n, i) => {
    if (seen.has(n.name)) problems.push(`nodes.${i}.name: "${n.name}" is used by nodes.${seen.get(n.name)} too; node names must be unique`);
    seen.set(n.name, i);
  });
  if (cluster.leadership.source === 'etcd' && !cluster.leadership.etcd) {
    problems.push('leadership.etcd: required when leadership.source is "etcd" (endpoints, ttlSeconds, marginSeconds)');
  }
  const etcd = cluster.leadership.etcd;
  if (etcd && etcd.ttlSeconds < 3 * etcd.marginSeconds) {
    problems.push(`leadership.etcd.ttlSeconds: ${etcd.ttlSeconds} is less than 3 x marginSeconds (${etcd.marginSeconds}); a leader would fence itself almost at once`);
  }
  problems.push(...vrrpProblems(cluster));
  return problems;
}

/** 198.18.0.11 -> 32-bit unsigned number. */
export function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function sameSubnet(a: string, b: string, prefixLength: number): boolean {
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return (ipv4ToNumber(a) & mask) >>> 0 === (ipv4ToNumber(b) & mask) >>> 0;
}

/** The keepalived side of the cluster file: rules keepalived itself would reject or silently get wrong. */
function vrrpProblems(cluster: Cluster): string[] {
  const problems: string[] = [];
  const { vrrp, vip } = cluster;
  if (vrrp.virtualRouterId < 1 || vrrp.virtualRouterId > 255) {
    problems.push(`vrrp.virtualRouterId: ${vrrp.virtualRouterId} is outside 1-255 (VRRP carries it in one byte; 0 is reserved)`);
  }
  if (vrrp.version === 2 && vrrp.advertInterval < 1) {
    problems.push(`vrrp.advertInterval: ${vrrp.advertInterval} s is below 1 s, which VRRPv2 cannot express; use vrrp.version 3 for sub-second adverts`);
  } else if (vrrp.version === 2 && !Number.isInteger(vrrp.advertInterval)) {
    problems.push(`vrrp.advertInterval: ${vrrp.advertInterval} s is not a whole number of seconds, which VRRPv2 requires; use vrrp.version 3`);
  } else if (vrrp.version === 3 && (vrrp.advertInterval < 0.01 || vrrp.advertInterval > 40.95)) {
    problems.push(`vrrp.advertInterval: ${vrrp.advertInterval} s is outside VRRPv3's 0.01-40.95 s`);
  } else if (vrrp.version === 3 && Math.abs(Math.round(vrrp.advertInterval * 100) - vrrp.advertInterval * 100) > 1e-6) {
    problems.push(`vrrp.advertInterval: ${vrrp.advertInterval} s is not a multiple of 0.01 s (VRRPv3 counts centiseconds)`);
  }
  if (vrrp.authPassword !== undefined && vrrp.version === 3) {
    problems.push('vrrp.authPassword: VRRPv3 has no authentication; remove it or use vrrp.version 2');
  }
  if (vrrp.healthCheckTimeoutSeconds >= vrrp.healthCheckIntervalSeconds) {
    problems.push(`vrrp.healthCheckTimeoutSeconds: ${vrrp.healthCheckTimeoutSeconds} s must be below vrrp.healthCheckIntervalSeconds (${vrrp.healthCheckIntervalSeconds} s) or checks pile up`);
  }
  if (vrrp.preemptDelaySeconds !== undefined && vrrp.preemptDelaySeconds > 1000) {
    problems.push(`vrrp.preemptDelaySeconds: ${vrrp.preemptDelaySeconds} is above keepalived's maximum of 1000`);
  }
  if (cluster.leadership.source === 'etcd' && (vrrp.nopreempt || vrrp.preemptDelaySeconds !== undefined)) {
    problems.push('vrrp.nopreempt: in etcd mode the VIP must follow the etcd leader at once (its track_file lifts its priority by 100); remove nopreempt and preemptDelaySeconds');
  }
  const priorities = new Map<number, number>();
  cluster.nodes.forEach((n, i) => {
    const other = priorities.get(n.priority);
    if (other !== undefined) {
      problems.push(`nodes.${i}.priority: ${n.priority} is used by nodes.${other} too; give every node a distinct VRRP priority`);
    }
    priorities.set(n.priority, i);
    if (!sameSubnet(n.address, vip.address, vip.prefixLength)) {
      problems.push(
        `vip.address: ${vip.address}/${vip.prefixLength} is outside the subnet of nodes.${i}.address (${n.address}); the VIP must be on the same subnet as every node's ${vip.interface} (or fix vip.prefixLength)`,
      );
    }
    if (n.address === vip.address) problems.push(`nodes.${i}.address: ${n.address} is the VIP itself; give the node its own address`);
  });
  const addresses = new Map<string, number>();
  cluster.nodes.forEach((n, i) => {
    const other = addresses.get(n.address);
    if (other !== undefined) problems.push(`nodes.${i}.address: ${n.address} is used by nodes.${other} too`);
    addresses.set(n.address, i);
  });
  return problems;
}

export function parseCluster(raw: unknown, source: string): Cluster {
  const result = clusterSchema.safeParse(raw ?? {});
  if (!result.success) throw errors.configInvalid(source, describeIssues(result.error.issues));
  const problems = clusterProblems(result.data);
  if (problems.length) throw errors.configInvalid(source, problems);
  return result.data;
}

export function loadClusterFile(path: string): Cluster {
  return parseCluster(readYamlFile(path), path);
}

/** The single-node config of one cluster member: shared gateway settings + its own addresses. */
export function nodeConfigFromCluster(cluster: Cluster, nodeName: string, source: string): Config {
  const node = cluster.nodes.find((n) => n.name === nodeName);
  if (!node) {
    throw errors.clusterNodeUnknown(
      nodeName,
      source,
      cluster.nodes.map((n) => n.name),
    );
  }
  const alsoListen = cluster.vip.bind === 'nonlocal' ? [{ host: cluster.vip.address, port: cluster.vip.sshPort }] : [{ host: cluster.vip.address, port: node.sshPort }];
  return parseConfig(
    {
      ...cluster.gateway,
      node: node.name,
      listen: { host: node.address, port: node.sshPort },
      alsoListen,
      http: { ...cluster.gateway.http, host: node.address, port: node.httpPort },
      // HAProxy sends PROXY v2 (send-proxy-v2): its addresses must be trusted for it.
      proxyProtocol: {
        ...cluster.gateway.proxyProtocol,
        trustedProxies: [...new Set([...cluster.gateway.proxyProtocol.trustedProxies, ...cluster.loadBalancers])],
      },
      // Run-once claims go to the leadership etcd unless the file names another.
      runOnce:
        cluster.gateway.runOnce.enabled && !cluster.gateway.runOnce.etcd && cluster.leadership.etcd
          ? { ...cluster.gateway.runOnce, etcd: { ...etcdConnectionOf(cluster.leadership.etcd), prefix: `${cluster.leadership.etcd.prefix}/${cluster.cluster}/run-once` } }
          : cluster.gateway.runOnce,
    },
    source,
    dirname(resolve(source)),
  );
}
