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
    // ...with the same TLS files and etcd user.
    expect(config.runOnce.etcd?.tls).toEqual(cluster.leadership.etcd!.tls);
    expect(config.runOnce.etcd?.auth).toEqual({ user: 'execgate', passwordFile: '/etc/execgate/etcd/password' });
  });

  it('names an unknown node and lists the known ones', () => {
    const cluster = loadClusterFile(EXAMPLE);
    expect(() => nodeConfigFromCluster(cluster, 'nope', EXAMPLE)).toThrow(/node "nope" is not in .*; its nodes are: /);
  });
});

describe('the etcd connection of a cluster file', () => {
  const example = () => JSON.parse(JSON.stringify(loadClusterFile(EXAMPLE))) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const withEtcd = (etcd: Record<string, unknown>) => {
    const c = example();
    c.leadership.etcd = { ...c.leadership.etcd, ...etcd };
    delete c.leadership.etcd.tls;
    delete c.leadership.etcd.auth;
    Object.assign(c.leadership.etcd, etcd);
    return c;
  };

  it('refuses plain HTTP unless insecure: true, naming the key and both fixes', () => {
    const plain = withEtcd({ endpoints: ['http://198.18.0.11:2379'] });
    expect(() => parseCluster(plain, 'c.yaml')).toThrow(
      /leadership\.etcd\.endpoints: http:\/\/198\.18\.0\.11:2379 is plain HTTP: .*execgate certs --cluster FILE --dir DIR.*or set leadership\.etcd\.insecure: true/,
    );
    expect(parseCluster(withEtcd({ endpoints: ['http://198.18.0.11:2379'], insecure: true }), 'c.yaml').leadership.etcd?.insecure).toBe(true);
  });

  it('refuses mixed schemes, TLS files for http endpoints, and a URL that is not http(s)', () => {
    expect(() => parseCluster(withEtcd({ endpoints: ['http://198.18.0.11:2379', 'https://198.18.0.12:2379'], insecure: true }), 'c.yaml')).toThrow(
      /leadership\.etcd\.endpoints: mixes http:\/\/ and https:\/\//,
    );
    expect(() => parseCluster(withEtcd({ endpoints: ['http://198.18.0.11:2379'], insecure: true, tls: {} }), 'c.yaml')).toThrow(/leadership\.etcd\.tls: set, but the endpoints are http:\/\//);
    expect(() => parseCluster(withEtcd({ endpoints: ['ftp://198.18.0.11:2379'] }), 'c.yaml')).toThrow(/leadership\.etcd\.endpoints\.0/);
  });

  it('https endpoints without a tls block use the default files', async () => {
    const { withEtcdDefaults } = await import('../../src/config/etcdConnection.js');
    const cluster = parseCluster(withEtcd({ endpoints: ['https://198.18.0.11:2379'] }), 'c.yaml');
    expect(withEtcdDefaults(cluster.leadership.etcd!).tls).toEqual({ caFile: '/etc/execgate/etcd/ca.pem', certFile: '/etc/execgate/etcd/client.pem', keyFile: '/etc/execgate/etcd/client-key.pem' });
  });

  it('a gateway.runOnce.etcd block follows the same rules', () => {
    const c = example();
    c.gateway.runOnce = { enabled: true, etcd: { endpoints: ['http://198.18.0.30:2379'] } };
    expect(() => parseCluster(c, 'c.yaml')).toThrow(/gateway\.runOnce\.etcd\.endpoints: http:\/\/198\.18\.0\.30:2379 is plain HTTP/);
  });
});
