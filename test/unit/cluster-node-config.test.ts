import { describe, it, expect } from 'vitest';
import { resolve } from 'node:path';
import { loadClusterFile, nodeConfigFromCluster } from '../../src/config/clusterLoad.js';
import { parseCluster } from '../../src/config/clusterLoad.js';

const EXAMPLE = resolve(import.meta.dirname, '../../deploy/example-cluster.yaml');

describe('a node config derived from the cluster file', () => {
  it('listens on the node address, trusts the load balancers for PROXY v2', () => {
    const cluster = loadClusterFile(EXAMPLE);
    const node = cluster.nodes[0]!;
    const config = nodeConfigFromCluster(cluster, node.name, EXAMPLE);
    expect(config.node).toBe(node.name);
    expect(config.listen).toEqual({ host: node.address, port: node.sshPort });
    expect(config.http.host).toBe(node.address);
    for (const lb of cluster.loadBalancers) expect(config.proxyProtocol.trustedProxies).toContain(lb);
  });

  it('run-once falls back to the leadership etcd', () => {
    const cluster = loadClusterFile(EXAMPLE);
    if (cluster.leadership.source !== 'etcd') return expect(cluster.leadership.source).toBe('etcd');
    const withRunOnce = parseCluster({ ...JSON.parse(JSON.stringify(cluster)), gateway: { ...cluster.gateway, runOnce: { enabled: true } } }, 'test');
    const config = nodeConfigFromCluster(withRunOnce, cluster.nodes[1]!.name, EXAMPLE);
    expect(config.runOnce.etcd?.endpoints).toEqual(cluster.leadership.etcd!.endpoints);
    expect(config.runOnce.etcd?.prefix).toMatch(/run-once$/);
  });

  it('names an unknown node and lists the known ones', () => {
    const cluster = loadClusterFile(EXAMPLE);
    expect(() => nodeConfigFromCluster(cluster, 'nope', EXAMPLE)).toThrow(/node "nope" is not in .*; its nodes are: /);
  });
});
